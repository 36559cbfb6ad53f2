/** GET / HEAD / PUT / DELETE /v2/<name>/manifests/<reference> */
import { RegistryError } from '../../oci/errors.js';
import type { Reference } from '../../oci/reference.js';
import { audit, body, type V2Context } from './context.js';
import * as parse from './parse.js';

/** Says whether a manifest or blob that passed through a cache was a hit, a miss (fetched upstream) or stale (upstream failing). */
export const CACHE_HEADER = 'X-Wharf-Cache';

export async function getManifest(ctx: V2Context, rawName: string, rawRef: string, head: boolean): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const ref = parse.reference(rawRef, 'read');
  await registry.access.authorize(ctx.principal, name, ['pull']);
  const content = await registry.content.resolve(name);
  const m = await content.manifest(ref, acceptList(ctx.req.headers.accept));
  if (m.cache) reply.header(CACHE_HEADER, m.cache);
  reply.header('Content-Type', m.mediaType).header('Docker-Content-Digest', m.digest).header('ETag', `"${m.digest}"`);
  if (head) {
    reply.header('Content-Length', m.size);
    return reply.send();
  }
  ctx.metrics.bytesServed.labels('manifest').inc(m.size);
  const cacheMeta = m.cache ? { cache: m.cache, upstream_bytes: m.upstreamBytes ?? 0 } : {};
  await audit(ctx, 'pull_repo', name, { ...refMeta(ref), manifest_digest: m.digest, ...cacheMeta }, { background: true });
  return reply.send(m.content);
}

export async function putManifest(ctx: V2Context, rawName: string, rawRef: string): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const ref = parse.reference(rawRef, 'write');
  await registry.access.authorize(ctx.principal, name, ['pull', 'push']);
  const bytes = await readLimited(ctx, registry.options.maxManifestSize);
  const repo = await registry.repositories.ensure(name);
  const result = await registry.manifests.put(repo, ref, bytes, ctx.req.headers['content-type']);
  reply.header('Location', `/v2/${name}/manifests/${result.digest}`).header('Docker-Content-Digest', result.digest);
  if (result.subject) reply.header('OCI-Subject', result.subject);
  await audit(ctx, 'push_repo', name, { ...refMeta(ref), manifest_digest: result.digest });
  return reply.code(201).send();
}

export async function deleteManifest(ctx: V2Context, rawName: string, rawRef: string): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const ref = parse.reference(rawRef, 'read');
  await registry.access.authorize(ctx.principal, name, ['delete']);
  const repo = await registry.repositories.get(name);
  await registry.manifests.delete(repo, ref);
  await audit(ctx, ref.kind === 'tag' ? 'delete_tag' : 'delete_manifest', name, refMeta(ref));
  return reply.code(202).send();
}

function refMeta(ref: Reference): Record<string, string> {
  return ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest };
}

function acceptList(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const joined = Array.isArray(header) ? header.join(',') : header;
  return joined
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Reads the whole body, refusing (413) as soon as it passes `limit` bytes. */
async function readLimited(ctx: V2Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(declared, limit);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body(ctx, 'manifest')) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge(size, limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function tooLarge(size: number, limit: number): RegistryError {
  return new RegistryError('SIZE_INVALID', `manifest is larger than the limit of ${limit} bytes (got at least ${size})`, undefined, 413);
}
