/** GET / HEAD / DELETE /v2/<name>/blobs/<digest> */
import type { Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { ProxyTarget } from '../../registry/proxy/proxy-cache.js';
import { CACHE_HEADER } from './manifests.js';
import { audit, type V2Context } from './context.js';
import { sendBlobBody } from './send-blob.js';
import * as parse from './parse.js';

export async function getBlob(ctx: V2Context, rawName: string, rawDigest: string, head: boolean): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const digest = parse.digest(rawDigest);
  await registry.access.authorize(ctx.principal, name, ['pull']);
  const target = registry.proxy && (await registry.proxy.target(name));
  if (target) return getProxiedBlob(ctx, target, digest, head);
  const repo = await registry.repositories.find(name);
  if (!repo) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found in ${name}`);
  blobHeaders(ctx, digest);
  const blob = await registry.blobs.stat(repo, digest);
  return sendLocal(ctx, blob, head);
}

function blobHeaders(ctx: V2Context, digest: Digest): void {
  ctx.reply
    .header('Docker-Content-Digest', digest)
    .header('ETag', `"${digest}"`)
    .header('Accept-Ranges', 'bytes')
    .header('Cache-Control', 'max-age=31536000, immutable')
    .header('Content-Type', 'application/octet-stream');
}

async function sendLocal(ctx: V2Context, blob: { id: number; digest: Digest; size: number }, head: boolean): Promise<void> {
  const { registry, reply } = ctx;
  if (head) {
    reply.header('Content-Length', blob.size);
    return reply.send();
  }
  const range = parse.byteRange(ctx.req.headers.range, blob.size);
  if (range === 'unsatisfiable') {
    throw new RegistryError('RANGE_INVALID', `range ${ctx.req.headers.range} is outside the blob's ${blob.size} bytes`).withHeaders({
      'Content-Range': `bytes */${blob.size}`,
    });
  }
  const body = await registry.blobs.open(blob, range);
  const length = range ? range.end - range.start + 1 : blob.size;
  if (range) reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${blob.size}`);
  reply.header('Content-Length', length);
  ctx.metrics.bytesServed.labels('blob').inc(length);
  return sendBlobBody(reply, body);
}

/**
 * A blob of a proxy organization: the local copy, or the bytes of the fill in flight as they arrive
 * (a failed fill breaks the transfer off: the client never sees a complete response for bad bytes).
 */
async function getProxiedBlob(ctx: V2Context, target: ProxyTarget, digest: Digest, head: boolean): Promise<void> {
  const { registry, reply } = ctx;
  const found = await registry.proxy!.blob(target, digest);
  blobHeaders(ctx, digest);
  reply.header(CACHE_HEADER, found.cache);
  if (found.kind === 'local') return sendLocal(ctx, found.blob, head);
  const { handle } = found;
  const size = handle.size;
  if (size === undefined) reply.removeHeader('Accept-Ranges');
  if (head) {
    if (size !== undefined) reply.header('Content-Length', size);
    return reply.send();
  }
  if (!handle.joined) void audit(ctx, 'proxy_blob_fetch', target.name, { digest, size: size ?? null }, { background: true });
  const range = size === undefined ? undefined : parse.byteRange(ctx.req.headers.range, size);
  if (range === 'unsatisfiable') {
    throw new RegistryError('RANGE_INVALID', `range ${ctx.req.headers.range} is outside the blob's ${size} bytes`).withHeaders({ 'Content-Range': `bytes */${size}` });
  }
  if (range) reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
  const length = range ? range.end - range.start + 1 : size;
  if (length !== undefined) {
    reply.header('Content-Length', length);
    ctx.metrics.bytesServed.labels('blob').inc(length);
  }
  return reply.send(handle.open(range ?? undefined));
}

export async function deleteBlob(ctx: V2Context, rawName: string, rawDigest: string): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const digest = parse.digest(rawDigest);
  await registry.access.authorize(ctx.principal, name, ['delete']);
  const repo = await registry.repositories.find(name);
  if (!repo) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found in ${name}`);
  await registry.blobs.delete(repo, digest);
  await audit(ctx, 'delete_blob', name, { digest });
  return reply.code(202).send();
}
