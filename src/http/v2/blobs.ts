/** GET / HEAD / DELETE /v2/<name>/blobs/<digest> */
import { RegistryError } from '../../oci/errors.js';
import { audit, type V2Context } from './context.js';
import { sendBlobBody } from './send-blob.js';
import * as parse from './parse.js';

export async function getBlob(ctx: V2Context, rawName: string, rawDigest: string, head: boolean): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const digest = parse.digest(rawDigest);
  await registry.access.authorize(ctx.principal, name, ['pull']);
  const repo = await registry.repositories.find(name);
  if (!repo) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found in ${name}`);
  reply
    .header('Docker-Content-Digest', digest)
    .header('ETag', `"${digest}"`)
    .header('Accept-Ranges', 'bytes')
    .header('Cache-Control', 'max-age=31536000, immutable')
    .header('Content-Type', 'application/octet-stream');
  const blob = await registry.blobs.stat(repo, digest);
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
