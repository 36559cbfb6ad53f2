/**
 * POST /v2/<name>/blobs/uploads/              start, monolithic (?digest=) or mount (?mount=&from=)
 * GET | PATCH | PUT | DELETE /v2/<name>/blobs/uploads/<id>
 */
import type { RepositoryRef } from '../../registry/repositories.js';
import type { Digest } from '../../oci/digest.js';
import type { RepositoryName } from '../../oci/reference.js';
import { rangeHeader, type UploadState } from '../../registry/uploads.js';
import { RegistryError } from '../../oci/errors.js';
import { body, query, type V2Context } from './context.js';
import * as parse from './parse.js';

export async function startUpload(ctx: V2Context, rawName: string): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const q = query(ctx.req);
  await registry.access.authorize(ctx.principal, name, ['pull', 'push']);
  const repo = await registry.repositories.ensure(name);

  if (q.mount !== undefined) {
    const digest = parse.digest(q.mount, 'mount');
    if (await mount(ctx, repo, digest, q.from)) return created(ctx, name, digest);
  }
  if (q.digest !== undefined) {
    const digest = parse.digest(q.digest);
    const declared = Number(ctx.req.headers['content-length']);
    await registry.uploads.monolithic(repo, digest, body(ctx, 'blob'), Number.isFinite(declared) ? declared : undefined);
    return created(ctx, name, digest);
  }
  const up = await registry.uploads.start(repo);
  return accepted(ctx, name, up);
}

/** Links a blob from `from` (or, without it, from any repository the caller can pull) into `repo`. */
async function mount(ctx: V2Context, repo: RepositoryRef, digest: Digest, rawFrom: string | undefined): Promise<boolean> {
  const { registry } = ctx;
  const candidates: RepositoryName[] = [];
  if (rawFrom !== undefined) {
    candidates.push(parse.repositoryName(rawFrom, registry.options.defaultNamespace));
  } else {
    for (const h of await registry.blobs.holders(digest)) candidates.push(h.name as RepositoryName);
  }
  for (const from of candidates) {
    // The caller's own right to read the source decides, not the scope of their token: the token was
    // asked for the target, and a mount reveals nothing the caller could not pull with another token.
    if (!(await registry.access.canSee(ctx.principal, from))) continue;
    const source = await registry.repositories.find(from);
    if (source && (await registry.blobs.mount(repo, digest, source))) return true;
  }
  return false;
}

export async function uploadStatus(ctx: V2Context, rawName: string, id: string): Promise<void> {
  const { name, repo } = await resolve(ctx, rawName);
  const up = await ctx.registry.uploads.status(repo, id);
  return accepted(ctx, name, up, 204);
}

export async function patchUpload(ctx: V2Context, rawName: string, id: string): Promise<void> {
  const { name, repo } = await resolve(ctx, rawName);
  const range = parse.contentRange(ctx.req.headers['content-range']);
  const up = await ctx.registry.uploads.append(repo, id, body(ctx, 'blob'), range);
  return accepted(ctx, name, up);
}

export async function putUpload(ctx: V2Context, rawName: string, id: string): Promise<void> {
  const { name, repo } = await resolve(ctx, rawName);
  const digest = parse.digest(query(ctx.req).digest);
  const range = parse.contentRange(ctx.req.headers['content-range']);
  await ctx.registry.uploads.complete(repo, id, digest, body(ctx, 'blob'), range);
  return created(ctx, name, digest);
}

export async function cancelUpload(ctx: V2Context, rawName: string, id: string): Promise<void> {
  const { repo } = await resolve(ctx, rawName);
  await ctx.registry.uploads.cancel(repo, id);
  return ctx.reply.code(204).send();
}

async function resolve(ctx: V2Context, rawName: string): Promise<{ name: RepositoryName; repo: RepositoryRef }> {
  const name = parse.repositoryName(rawName, ctx.registry.options.defaultNamespace);
  await ctx.registry.access.authorize(ctx.principal, name, ['pull', 'push']);
  const repo = await ctx.registry.repositories.find(name);
  if (!repo) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `no uploads in ${name}`);
  return { name, repo };
}

function accepted(ctx: V2Context, name: RepositoryName, up: UploadState, status = 202): void {
  ctx.reply
    .code(status)
    .header('Location', `/v2/${name}/blobs/uploads/${up.id}`)
    .header('Docker-Upload-UUID', up.id)
    .headers(rangeHeader(up.size))
    .header('Content-Length', 0)
    .send();
}

function created(ctx: V2Context, name: RepositoryName, digest: Digest): void {
  ctx.reply
    .code(201)
    .header('Location', `/v2/${name}/blobs/${digest}`)
    .header('Docker-Content-Digest', digest)
    .header('Content-Length', 0)
    .send();
}
