/** GET /v2/<name>/tags/list, GET /v2/_catalog, GET /v2/<name>/referrers/<digest> */
import { MediaType } from '../../oci/media-types.js';
import { query, type V2Context } from './context.js';
import * as parse from './parse.js';

export async function listTags(ctx: V2Context, rawName: string): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  await registry.access.authorize(ctx.principal, name, ['pull']);
  const q = query(ctx.req);
  const n = parse.pageSize(q.n, registry.options.maxPageSize);
  const page = await (await registry.content.resolve(name)).tags({ last: q.last, n });
  if (page.next) reply.header('Link', `</v2/${name}/tags/list?n=${page.pageSize}&last=${encodeURIComponent(page.next)}>; rel="next"`);
  return reply.send({ name, tags: page.tags });
}

export async function catalog(ctx: V2Context): Promise<void> {
  const { registry, reply } = ctx;
  const q = query(ctx.req);
  const n = parse.pageSize(q.n, registry.options.maxPageSize);
  const page = await paginate(n, registry.options.maxPageSize, async (limit) => {
    if (registry.access.listReadable) return registry.access.listReadable(ctx.principal, { last: q.last, limit });
    const names = await registry.repositories.listNames({ last: q.last, limit });
    const visible: string[] = [];
    for (const name of names) if (await registry.access.canSee(ctx.principal, name)) visible.push(name);
    return visible;
  });
  if (page.next) reply.header('Link', `</v2/_catalog?n=${page.limit}&last=${encodeURIComponent(page.next)}>; rel="next"`);
  return reply.send({ repositories: page.items });
}

export async function referrers(ctx: V2Context, rawName: string, rawDigest: string): Promise<void> {
  const { registry, reply } = ctx;
  const name = parse.repositoryName(rawName, registry.options.defaultNamespace);
  const digest = parse.digest(rawDigest);
  await registry.access.authorize(ctx.principal, name, ['pull']);
  const artifactType = query(ctx.req).artifactType || undefined;
  const index = await (await registry.content.resolve(name)).referrers(digest, artifactType);
  if (artifactType) reply.header('OCI-Filters-Applied', 'artifactType');
  return reply.header('Content-Type', MediaType.OciIndex).send(Buffer.from(JSON.stringify(index)));
}

/**
 * One page of a list: `n` items (all, up to `max`, when absent) and the last item when more follow.
 * Fetches one item more than the page to know whether another page exists.
 */
async function paginate(n: number | undefined, max: number, fetch: (limit: number) => Promise<string[]>) {
  const limit = n ?? max;
  if (limit === 0) return { items: [] as string[], next: undefined, limit };
  const rows = await fetch(limit + 1);
  const items = rows.slice(0, limit);
  const next = rows.length > limit ? items[items.length - 1] : undefined;
  return { items, next, limit };
}
