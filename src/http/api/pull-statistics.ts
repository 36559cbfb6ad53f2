/**
 * Pull statistics (read permission), Quay's paths and fields, counted from the audit log
 * (registry/pull-statistics.ts):
 *
 *   GET …/tag/{tag}/pull_statistics          {tag_name, tag_pull_count, last_tag_pull_date,
 *                                             current_manifest_digest, manifest_pull_count, last_manifest_pull_date}
 *   GET …/manifest/{digest}/pull_statistics  {manifest_digest, manifest_pull_count, last_manifest_pull_date}
 *
 * Dates are RFC 7231 (`Tue, 03 Mar 2026 10:00:00 GMT`), null when no pull is recorded. A tag that is not
 * live, or a manifest the repository does not hold, is 404.
 */
import { z } from 'zod';
import { RegistryError } from '../../oci/errors.js';
import { digest, httpDate, repositoryPathName, tagName } from './params.js';
import { requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH } from './route.js';

const date = (ms: number | null) => (ms === null ? null : httpDate(ms));

export const pullStatisticsRoutes = [
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/tag/:tag/pull_statistics`,
    summary: 'How often the tag was pulled (by tag) and its current manifest was pulled (by tag or digest), and when last',
    tag: 'tag',
    params: z.object({ repository: repositoryPathName, tag: tagName }),
    response: z.strictObject({
      tag_name: z.string(),
      tag_pull_count: z.int(),
      last_tag_pull_date: z.string().nullable(),
      current_manifest_digest: z.string(),
      manifest_pull_count: z.int(),
      last_manifest_pull_date: z.string().nullable(),
    }),
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'read');
      const [live] = (await ctx.registry.tags.list(repo, { onlyActive: true, name: params.tag, page: 1, limit: 1 })).tags;
      if (!live) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${params.tag} not found in ${params.repository}`);
      const [byTag, byManifest] = await Promise.all([ctx.registry.pullStatistics.forTag(repo, params.tag), ctx.registry.pullStatistics.forManifest(repo, live.digest)]);
      return {
        tag_name: params.tag,
        tag_pull_count: byTag.count,
        last_tag_pull_date: date(byTag.last),
        current_manifest_digest: live.digest,
        manifest_pull_count: byManifest.count,
        last_manifest_pull_date: date(byManifest.last),
      };
    },
  }),
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/manifest/:digest/pull_statistics`,
    summary: 'How often the manifest was pulled (by tag or digest), and when last',
    tag: 'manifest',
    params: z.object({ repository: repositoryPathName, digest }),
    response: z.strictObject({ manifest_digest: z.string(), manifest_pull_count: z.int(), last_manifest_pull_date: z.string().nullable() }),
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'read');
      await ctx.registry.images.manifest(repo, params.digest);
      const stats = await ctx.registry.pullStatistics.forManifest(repo, params.digest);
      return { manifest_digest: params.digest, manifest_pull_count: stats.count, last_manifest_pull_date: date(stats.last) };
    },
  }),
];
