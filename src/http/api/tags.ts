/**
 * Tags and their history (the time machine): list (live, or with `onlyActiveTags=false` history too,
 * newest first), create or move, give an expiration (Quay's `expiration`, epoch seconds; an expired tag
 * leaves the live view and becomes history), delete (the tag moves to history), restore an earlier
 * target while it is within the namespace's time-machine window, expire for good, make immutable.
 * Reading needs read on the repository; everything else write (making a tag mutable again: admin), and a
 * repository state that accepts writes (as on /v2). A change of an immutable tag is refused with
 * `409 tag_immutable` (registry/tag-immutability.ts).
 */
import { z } from 'zod';
import { MediaType } from '../../oci/media-types.js';
import type { TagRow } from '../../registry/tags.js';
import { MAX_TAG_PAGE } from '../../registry/tags.js';
import { digest, epochSeconds, httpDate, isoTime, queryBool, queryInt, repositoryPathName, seconds, tagName } from './params.js';
import { roleAtLeast } from '../../registry/accounts/roles.js';
import { forbidden } from './errors.js';
import { requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH } from './route.js';

const repoParams = z.object({ repository: repositoryPathName });
const tagParams = repoParams.extend({ tag: tagName });
const LISTS: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList];

const filterTagName = z
  .string()
  .regex(/^(like|eq):[A-Za-z0-9_.-]{1,128}$/, 'must be like:<text> or eq:<tag>')
  .transform((v) => ({ op: v.slice(0, v.indexOf(':')) as 'like' | 'eq', value: v.slice(v.indexOf(':') + 1) }));

/**
 * `end_ts` and `expiration`: when a history row ended, or when a live tag will expire (as Quay, which
 * keeps both in `lifetime_end`); absent on live tags without expiry. `size` (compressed bytes) is null
 * for a list.
 */
const TagSchema = z.strictObject({
  name: z.string(),
  reversion: z.literal(false),
  manifest_digest: z.string(),
  is_manifest_list: z.boolean(),
  size: z.int().nullable(),
  start_ts: z.int(),
  last_modified: z.string(),
  end_ts: z.int().optional(),
  expiration: z.string().optional(),
  immutable: z.boolean(),
});

function tagView(t: TagRow) {
  const list = LISTS.includes(t.mediaType);
  return {
    name: t.name,
    reversion: false,
    manifest_digest: t.digest,
    is_manifest_list: list,
    // Quay reports an image's compressed size (config and layers) and nothing for a list.
    size: list ? null : t.blobSize,
    start_ts: seconds(t.lifetimeStart),
    last_modified: httpDate(t.lifetimeStart),
    ...endView(t.lifetimeEnd ?? t.expiresAt),
    immutable: t.immutable,
  };
}

function endView(end: number | undefined) {
  return end === undefined ? {} : { end_ts: seconds(end), expiration: httpDate(end) };
}

export const tagRoutes = [
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/tag/`,
    summary: 'Tags of the repository, newest first; `onlyActiveTags=false` adds history rows (moved, deleted) with `end_ts`',
    tag: 'tag',
    params: repoParams,
    query: z.object({
      onlyActiveTags: queryBool(true),
      page: queryInt(1, 1_000_000, 1),
      limit: queryInt(1, MAX_TAG_PAGE, 50),
      specificTag: tagName.optional(),
      filter_tag_name: filterTagName.optional(),
    }),
    response: z.strictObject({ tags: z.array(TagSchema), page: z.int(), has_additional: z.boolean() }),
    async handler(ctx, { params, query }) {
      const { repo } = await requireRepository(ctx, params.repository, 'read');
      const page = await ctx.registry.tags.list(repo, { onlyActive: query.onlyActiveTags, name: query.specificTag, filter: query.filter_tag_name, page: query.page, limit: query.limit });
      return { tags: page.tags.map(tagView), page: query.page, has_additional: page.hasAdditional };
    },
  }),
  defineRoute({
    method: 'PUT',
    path: `${REPOSITORY_PATH}/tag/:tag`,
    summary:
      'Create the tag, or move it, to a manifest of the repository (the previous target stays in history); and/or set its `expiration` (epoch seconds in the future, at most 253402300799 = 9999-12-31T23:59:59Z; null: none); and/or make it `immutable` (true: write; false: repository admin). 409 tag_immutable for a change of an immutable tag',
    tag: 'tag',
    status: 201,
    params: tagParams,
    body: z
      .object({ manifest_digest: digest.optional(), expiration: epochSeconds.nullable().optional(), immutable: z.boolean().optional() })
      .refine((b) => b.manifest_digest !== undefined || b.expiration !== undefined || b.immutable !== undefined, 'give manifest_digest, expiration, immutable, or several'),
    response: z.strictObject({ name: z.string(), manifest_digest: z.string() }),
    async handler(ctx, { params, body }) {
      const { repo, role } = await requireRepository(ctx, params.repository, 'write');
      if (body.immutable === false && !roleAtLeast(role, 'admin')) throw forbidden(`making a tag mutable again needs admin permission on ${params.repository}`);
      const lock = async (immutable: boolean) => {
        const res = await ctx.registry.tags.setImmutable(repo, params.tag, immutable);
        if (res.previous !== immutable) {
          await ctx.audit('change_tag_immutability', { namespace: repo.namespace, repository: repo.name, metadata: { tag: params.tag, manifest_digest: res.digest, immutable } });
        }
        return res.digest;
      };
      // Unlocked first, locked last: the other changes of the same request apply to a mutable tag.
      let current = body.immutable === false ? await lock(false) : body.manifest_digest;
      if (body.manifest_digest !== undefined) {
        current = body.manifest_digest;
        const res = await ctx.registry.tags.set(repo, params.tag, body.manifest_digest);
        if (res.changed) {
          const metadata = { tag: params.tag, manifest_digest: body.manifest_digest, ...(res.previous ? { original_manifest_digest: res.previous } : {}) };
          await ctx.audit(res.previous ? 'move_tag' : 'create_tag', { namespace: repo.namespace, repository: repo.name, metadata });
        }
      }
      if (body.expiration !== undefined) {
        const expiresAt = body.expiration === null ? null : Math.round(body.expiration * 1000);
        const res = await ctx.registry.tags.setExpiration(repo, params.tag, expiresAt);
        current = res.digest;
        if (res.previous !== expiresAt) {
          const metadata = { tag: params.tag, manifest_digest: res.digest, expiration_date: isoTime(expiresAt), old_expiration_date: isoTime(res.previous) };
          await ctx.audit('change_tag_expiration', { namespace: repo.namespace, repository: repo.name, metadata });
        }
      }
      if (body.immutable === true) current = await lock(true);
      return { name: params.tag, manifest_digest: current! };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: `${REPOSITORY_PATH}/tag/:tag`,
    summary: 'Delete the tag: it leaves the live view and stays restorable from history',
    tag: 'tag',
    status: 204,
    params: tagParams,
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'write');
      const was = await ctx.registry.tags.delete(repo, params.tag);
      await ctx.audit('delete_tag', { namespace: repo.namespace, repository: repo.name, metadata: { tag: params.tag, manifest_digest: was } });
    },
  }),
  defineRoute({
    method: 'POST',
    path: `${REPOSITORY_PATH}/tag/:tag/restore`,
    summary:
      "Point the tag at a digest it pointed at before: its history must still hold it, ended within the namespace's time-machine window (`tag_expiration_s`), and the manifest must exist",
    tag: 'tag',
    params: tagParams,
    body: z.object({ manifest_digest: digest }),
    response: z.strictObject({}),
    async handler(ctx, { params, body }) {
      const { repo } = await requireRepository(ctx, params.repository, 'write');
      const res = await ctx.registry.tags.restore(repo, params.tag, body.manifest_digest);
      if (res.changed) {
        const metadata = { tag: params.tag, manifest_digest: body.manifest_digest, ...(res.previous ? { original_manifest_digest: res.previous } : {}) };
        await ctx.audit('restore_tag', { namespace: repo.namespace, repository: repo.name, metadata });
      }
      return {};
    },
  }),
  defineRoute({
    method: 'POST',
    path: `${REPOSITORY_PATH}/tag/:tag/expire`,
    summary: 'Remove the tag for good: its live row and its history (only rows pointing at `manifest_digest` when given); it cannot be restored',
    tag: 'tag',
    params: tagParams,
    body: z.object({ manifest_digest: digest.optional() }),
    response: z.strictObject({ removed: z.int() }),
    async handler(ctx, { params, body }) {
      const { repo } = await requireRepository(ctx, params.repository, 'write');
      const removed = await ctx.registry.tags.expire(repo, params.tag, body.manifest_digest);
      await ctx.audit('expire_tag', {
        namespace: repo.namespace,
        repository: repo.name,
        metadata: { tag: params.tag, removed_rows: removed, ...(body.manifest_digest ? { manifest_digest: body.manifest_digest } : {}) },
      });
      return { removed };
    },
  }),
];
