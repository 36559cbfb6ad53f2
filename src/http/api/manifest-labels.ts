/**
 * Labels of a manifest, with Quay's paths, fields and statuses (registry/manifest-labels.ts says which
 * labels there are and what may be added):
 *
 *   GET    …/manifest/{digest}/labels[?filter=<prefix>]   {"labels": [label]}                       read
 *   POST   …/manifest/{digest}/labels                     201 {"label": label}, Location     write
 *          body {key, value, media_type}
 *   GET    …/manifest/{digest}/labels/{id}                label                                      read
 *   DELETE …/manifest/{digest}/labels/{id}                204                                        write
 *
 * label = {id, key, value, source_type ("manifest" | "api"), media_type}.
 */
import { z } from 'zod';
import type { ManifestLabel } from '../../registry/manifest-labels.js';
import { digest, repositoryPathName } from './params.js';
import { requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH } from './route.js';

const params = z.object({ repository: repositoryPathName, digest });
const one = params.extend({ label_id: z.string().min(1).max(100) });

const LabelSchema = z.strictObject({ id: z.string(), key: z.string(), value: z.string(), source_type: z.enum(['manifest', 'api']), media_type: z.string() });

function labelView(l: ManifestLabel): z.infer<typeof LabelSchema> {
  return { id: l.id, key: l.key, value: l.value, source_type: l.sourceType, media_type: l.mediaType };
}

export const manifestLabelRoutes = [
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/manifest/:digest/labels`,
    summary: "The manifest's labels: its image configuration's (source_type manifest) and those added through the API (source_type api); `filter` keeps keys starting with it",
    tag: 'manifest',
    params,
    query: z.object({ filter: z.string().max(255).optional() }),
    response: z.strictObject({ labels: z.array(LabelSchema) }),
    async handler(ctx, { params, query }) {
      const { repo } = await requireRepository(ctx, params.repository, 'read');
      return { labels: (await ctx.registry.manifestLabels.list(repo, params.digest, query.filter)).map(labelView) };
    },
  }),
  defineRoute({
    method: 'POST',
    path: `${REPOSITORY_PATH}/manifest/:digest/labels`,
    summary: 'Add a label to the manifest: a key of lower-case letters, digits, "." and "-"; media_type text/plain or application/json (null: inferred from the value)',
    tag: 'manifest',
    status: 201,
    params,
    body: z.object({ key: z.string().max(1000), value: z.string(), media_type: z.string().nullish() }),
    response: z.strictObject({ label: LabelSchema }),
    async handler(ctx, { params, body }) {
      const { repo } = await requireRepository(ctx, params.repository, 'write');
      const label = await ctx.registry.manifestLabels.add(repo, params.digest, { key: body.key, value: body.value, mediaType: body.media_type });
      await ctx.audit('manifest_label_add', {
        namespace: repo.namespace,
        repository: repo.name,
        metadata: { id: label.id, key: label.key, value: label.value, manifest_digest: params.digest, media_type: label.mediaType },
      });
      ctx.reply.header('Location', `/api/v1/repository/${params.repository}/manifest/${params.digest}/labels/${label.id}`);
      return { label: labelView(label) };
    },
  }),
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/manifest/:digest/labels/:label_id`,
    summary: 'One label of the manifest',
    tag: 'manifest',
    params: one,
    response: LabelSchema,
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'read');
      return labelView(await ctx.registry.manifestLabels.get(repo, params.digest, params.label_id));
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: `${REPOSITORY_PATH}/manifest/:digest/labels/:label_id`,
    summary: 'Delete a label added through the API (400 for a label of the image configuration)',
    tag: 'manifest',
    status: 204,
    params: one,
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'write');
      const deleted = await ctx.registry.manifestLabels.delete(repo, params.digest, params.label_id);
      await ctx.audit('manifest_label_delete', {
        namespace: repo.namespace,
        repository: repo.name,
        metadata: { id: deleted.id, key: deleted.key, value: deleted.value, manifest_digest: params.digest },
      });
    },
  }),
];
