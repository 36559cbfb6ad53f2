/**
 * One manifest of a repository, as Quay's API shows it (read permission):
 *
 *   GET …/manifest/{digest}                   the manifest, its configuration's media type and its layers
 *                                             with their build history (what `quay_layer_info` reads)
 *   GET …/manifest/{digest}/security          Wharf has no vulnerability scanner: `{"status":
 *                                             "unsupported", "data": null}` for every manifest that exists,
 *                                             as Quay answers for a manifest its scanner cannot index
 *
 * A layer row is Quay's: the configuration's history entries in order, an entry that made no layer
 * (`empty_layer`) with Docker's empty-layer digest, each other one with the next layer of the manifest;
 * without history (or when the configuration is not held locally) the manifest's layers alone.
 */
import { z } from 'zod';
import type { Descriptor } from '../../oci/manifest.js';
import type { HistoryEntry } from '../../registry/image-config.js';
import { digest, httpDate, queryBool, repositoryPathName } from './params.js';
import { requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH } from './route.js';

/** The digest Docker gives layers that change nothing (an empty tar), as Quay reports them. */
const EMPTY_LAYER = 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';

const params = z.object({ repository: repositoryPathName, digest });

const LayerSchema = z.strictObject({
  index: z.int(),
  compressed_size: z.int().nullable(),
  is_remote: z.boolean(),
  urls: z.array(z.string()).nullable(),
  command: z.array(z.string()).nullable(),
  comment: z.string().nullable(),
  author: z.string().nullable(),
  blob_digest: z.string(),
  created_datetime: z.string().nullable(),
});
type Layer = z.infer<typeof LayerSchema>;

function layerRows(layers: Descriptor[], history: HistoryEntry[]): Layer[] {
  const row = (index: number, d: Descriptor | undefined, h: HistoryEntry | undefined): Layer => {
    const created = h?.created === undefined ? NaN : Date.parse(h.created);
    return {
      index,
      compressed_size: d ? d.size : null,
      is_remote: (d?.urls?.length ?? 0) > 0,
      urls: d?.urls ?? null,
      command: h?.created_by === undefined ? null : [h.created_by],
      comment: h?.comment ?? null,
      author: h?.author ?? null,
      blob_digest: d ? d.digest : EMPTY_LAYER,
      created_datetime: Number.isNaN(created) ? null : httpDate(created),
    };
  };
  if (history.length === 0) return layers.map((d, i) => row(i, d, undefined));
  const out: Layer[] = [];
  let next = 0;
  for (const h of history) out.push(row(out.length, h.empty_layer ? undefined : layers[next++], h));
  // Layers the history does not describe still belong to the image.
  for (; next < layers.length; next++) out.push(row(out.length, layers[next], undefined));
  return out;
}

export const manifestRoutes = [
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/manifest/:digest`,
    summary: 'A manifest of the repository: its bytes (`manifest_data`), whether it is a list, its configuration media type and its layers with their build history (null for a list)',
    tag: 'manifest',
    params,
    response: z.strictObject({ digest: z.string(), is_manifest_list: z.boolean(), manifest_data: z.string(), config_media_type: z.string().nullable(), layers: z.array(LayerSchema).nullable() }),
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'read');
      const { stored, parsed } = await ctx.registry.images.manifest(repo, params.digest);
      const list = parsed.manifests.length > 0 || !parsed.config;
      const config = list ? undefined : await ctx.registry.images.config(repo, parsed);
      return {
        digest: stored.digest,
        is_manifest_list: list,
        manifest_data: stored.content.toString('utf8'),
        config_media_type: parsed.config?.mediaType ?? null,
        layers: list ? null : layerRows(parsed.layers, config?.history ?? []),
      };
    },
  }),
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/manifest/:digest/security`,
    summary: 'Vulnerability scan of a manifest: Wharf has no scanner, so every existing manifest answers {"status": "unsupported", "data": null}',
    tag: 'manifest',
    params,
    query: z.object({ vulnerabilities: queryBool(false), raw: queryBool(false) }),
    response: z.strictObject({ status: z.literal('unsupported'), data: z.null() }),
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'read');
      await ctx.registry.images.manifest(repo, params.digest);
      return { status: 'unsupported' as const, data: null };
    },
  }),
];
