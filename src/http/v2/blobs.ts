/** GET / HEAD / DELETE /v2/<name>/blobs/<digest> */
import { RegistryError } from '../../oci/errors.js';
import { CACHE_HEADER } from './manifests.js';
import { audit, type V2Context } from './context.js';
import { sendBlobBody } from './send-blob.js';
import * as parse from './parse.js';

/**
 * One path for every blob, local or passing through a cache: headers from what the repository's
 * content says (size, cache result), then the bytes or a range of them, or a `307` to where the storage
 * serves them itself. A blob whose size is not known yet (an upstream transfer of unannounced length)
 * is sent whole, without ranges.
 */
export async function getBlob(ctx: V2Context, rawName: string, rawDigest: string, head: boolean): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const digest = parse.digest(rawDigest);
  await registry.access.authorize(ctx.principal, name, ['pull']);
  const blob = await (await registry.content.resolve(name)).blob(digest);
  reply
    .header('Docker-Content-Digest', digest)
    .header('ETag', `"${digest}"`)
    .header('Cache-Control', 'max-age=31536000, immutable')
    .header('Content-Type', 'application/octet-stream');
  if (blob.cache) reply.header(CACHE_HEADER, blob.cache);
  const size = blob.size;
  if (size !== undefined) reply.header('Accept-Ranges', 'bytes');
  if (head) {
    if (size !== undefined) reply.header('Content-Length', size);
    return reply.send();
  }
  if (blob.audit) void audit(ctx, blob.audit.kind, name, blob.audit.metadata, { background: true });
  const range = size === undefined ? undefined : parse.byteRange(ctx.req.headers.range, size);
  if (range === 'unsatisfiable') {
    throw new RegistryError('RANGE_INVALID', `range ${ctx.req.headers.range} is outside the blob's ${size} bytes`).withHeaders({ 'Content-Range': `bytes */${size}` });
  }
  const body = await blob.open(range);
  if (body.kind === 'redirect') {
    // The storage serves the bytes (and the range, which the client sends again there). The URL
    // expires: the answer must not be cached as the blob's is.
    reply.removeHeader('Content-Type');
    return reply.code(307).header('Location', body.url).header('Cache-Control', 'no-store').send();
  }
  if (range) reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
  const length = range ? range.end - range.start + 1 : size;
  if (length !== undefined) {
    reply.header('Content-Length', length);
    ctx.metrics.bytesServed.labels('blob').inc(length);
  }
  return sendBlobBody(reply, body);
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
