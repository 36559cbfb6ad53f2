/**
 * GET / HEAD /internal/fills/<digest>: a blob fill running in this process (or the blob it committed),
 * for the other processes of the deployment that follow it (registry/proxy/cluster-fills.ts). Only for
 * them: a request without the deployment's shared secret is 401, and nothing here is under /v2 or /api.
 *
 * The body is the blob from byte 0, or from `Range: bytes=<n>-` (206); its last bytes are sent only once
 * the blob is committed, and a failed fill breaks the response instead of ending it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PEER_SECRET_HEADER } from '../registry/proxy/peer-secret.js';
import type { Registry } from '../registry/registry.js';
import { RegistryError } from '../oci/errors.js';
import * as parse from './v2/parse.js';
import { sendBlobBody } from './v2/send-blob.js';

export async function internalFillRoutes(app: FastifyInstance, opts: { registry: Registry }): Promise<void> {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/internal/fills/:digest',
    handler: async (req, reply) => {
      req.wharfRoute = 'internal_fill';
      const peers = opts.registry.fillPeers;
      if (!peers) return fail(reply, 404, 'no fills are served here');
      if (!(await peers.authorize(req.headers[PEER_SECRET_HEADER]))) return fail(reply, 401, 'the peer secret is missing or wrong');
      const { digest: rawDigest } = req.params as { digest: string };
      const range = req.headers.range;
      const m = range === undefined ? undefined : /^bytes=(\d+)-$/.exec(range.trim());
      if (range !== undefined && !m) return fail(reply, 416, 'only "bytes=<offset>-" ranges are served');
      const offset = m ? Number(m[1]) : 0;
      let served;
      try {
        served = await peers.open(parse.digest(rawDigest), offset, req.method === 'HEAD');
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'DIGEST_INVALID') return fail(reply, 400, err.message);
        if (err instanceof RegistryError && err.code === 'RANGE_INVALID') return fail(reply, 416, err.message);
        throw err;
      }
      if (!served) return fail(reply, 404, `no fill of ${rawDigest} here`);
      reply.header('Content-Type', 'application/octet-stream');
      const { size } = served;
      if (offset > 0) reply.code(206).header('Content-Range', `bytes ${offset}-${size! - 1}/${size}`);
      if (size !== undefined) reply.header('Content-Length', size - offset);
      if (!served.body) return reply.send();
      return sendBlobBody(reply, served.body);
    },
  });
}

function fail(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).send({ error: message });
}
