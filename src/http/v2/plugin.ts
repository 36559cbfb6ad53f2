/**
 * The OCI Distribution API under `/v2`. One wildcard route receives every request, `matchV2Path`
 * names the operation, and one handler runs it. Bodies are not parsed by Fastify: blob handlers
 * stream them and the manifest handler reads them with a size limit.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../../oci/errors.js';
import type { Metrics } from '../../observability/metrics.js';
import { instrumentRegistry } from '../../registry/instrument.js';
import type { Registry } from '../../registry/registry.js';
import { challenge, identify, tokenEndpoint } from './auth.js';
import { deleteBlob, getBlob } from './blobs.js';
import { query, type V2Context } from './context.js';
import { renderV2Error } from './errors.js';
import { catalog, listTags, referrers } from './lists.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { matchV2Path, type V2Path } from './paths.js';
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './uploads.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The operation label used in metrics and logs, e.g. "blob_get". */
    wharfRoute: string;
  }
}

const API_VERSION = { 'Docker-Distribution-API-Version': 'registry/2.0' };

export async function v2Plugin(app: FastifyInstance, opts: { registry: Registry; metrics: Metrics }): Promise<void> {
  const { registry, metrics } = opts;
  instrumentRegistry(registry, metrics);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));
  app.setErrorHandler((err, req, reply) => {
    // Every 401 carries the challenge that tells clients where to get a token (not the token endpoint's own).
    if (registry.auth && err instanceof RegistryError && err.status === 401 && req.wharfRoute !== 'token') {
      err.withHeaders({ 'WWW-Authenticate': challenge(registry, req, err) });
    }
    renderV2Error(err, req, reply);
  });
  app.setNotFoundHandler((req, reply) => {
    renderV2Error(new RegistryError('UNSUPPORTED', `no such endpoint: ${req.method} ${req.url.split('?')[0]}`, undefined, 404), req, reply);
  });
  app.addHook('onRequest', async (_req, reply) => {
    reply.headers(API_VERSION);
  });

  app.get('/v2/', async (req, reply) => {
    req.wharfRoute = 'base';
    // Clients learn the token realm from this challenge, so an anonymous caller gets it when auth is on.
    const caller = await identify(registry, req);
    if (registry.auth && caller.via === 'anonymous') throw new RegistryError('UNAUTHORIZED');
    return reply.header('Content-Type', 'application/json').send('{}');
  });

  app.get('/v2/auth', async (req, reply) => {
    req.wharfRoute = 'token';
    return tokenEndpoint(registry, req, reply);
  });

  app.route({
    method: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'],
    url: '/v2/*',
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const rest = (req.params as { '*': string })['*'];
      const path = matchV2Path(rest);
      if (!path) throw new RegistryError('UNSUPPORTED', `no such endpoint: ${req.method} /v2/${rest.slice(0, 200)}`, undefined, 404);
      // A pull may name the repository as a mirror client knows it (containerd's `?ns=<registry>`,
      // Docker's registry-mirrors without it); the registry says which repository serves it.
      if (path.kind !== 'catalog' && (req.method === 'GET' || req.method === 'HEAD')) path.name = await registry.content.pullName(path.name, query(req).ns);
      const caller = await identify(registry, req);
      const ctx: V2Context = { registry: { ...registry, access: caller.access }, metrics, principal: caller.principal, req, reply };
      return dispatch(ctx, path, req, reply);
    },
  });
}

function dispatch(ctx: V2Context, path: V2Path, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const method = req.method;
  const label = (op: string) => (req.wharfRoute = op);
  switch (path.kind) {
    case 'manifest':
      if (method === 'GET' || method === 'HEAD') return label(`manifest_${method.toLowerCase()}`), getManifest(ctx, path.name, path.reference, method === 'HEAD');
      if (method === 'PUT') return label('manifest_put'), putManifest(ctx, path.name, path.reference);
      if (method === 'DELETE') return label('manifest_delete'), deleteManifest(ctx, path.name, path.reference);
      break;
    case 'blob':
      if (method === 'GET' || method === 'HEAD') return label(`blob_${method.toLowerCase()}`), getBlob(ctx, path.name, path.digest, method === 'HEAD');
      if (method === 'DELETE') return label('blob_delete'), deleteBlob(ctx, path.name, path.digest);
      break;
    case 'uploads':
      if (method === 'POST') return label('upload_start'), startUpload(ctx, path.name);
      break;
    case 'upload':
      if (method === 'GET') return label('upload_status'), uploadStatus(ctx, path.name, path.id);
      if (method === 'PATCH') return label('upload_patch'), patchUpload(ctx, path.name, path.id);
      if (method === 'PUT') return label('upload_put'), putUpload(ctx, path.name, path.id);
      if (method === 'DELETE') return label('upload_delete'), cancelUpload(ctx, path.name, path.id);
      break;
    case 'tags':
      if (method === 'GET') return label('tags_list'), listTags(ctx, path.name);
      break;
    case 'catalog':
      if (method === 'GET') return label('catalog'), catalog(ctx);
      break;
    case 'referrers':
      if (method === 'GET') return label('referrers'), referrers(ctx, path.name, path.digest);
      break;
  }
  void reply;
  throw new RegistryError('UNSUPPORTED', `${method} is not supported on this endpoint`);
}
