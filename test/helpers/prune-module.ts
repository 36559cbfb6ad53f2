/**
 * The main() of `quay_organization_prune` and `quay_repository_prune` (they differ only in the base
 * path), over the replayed calls of quay-world.ts.
 */
import type { QuayWorld } from './quay-world.js';

export interface PruneParams {
  method: 'tags' | 'date';
  value: string;
  tag_pattern?: string;
  tag_pattern_matches?: boolean;
  append?: boolean;
  state?: 'present' | 'absent';
}

export type PruneOutcome = { changed: boolean; id?: string } | { failed: string };

/** The module's process_prune_parameters. */
export function pruneData(p: PruneParams): Record<string, unknown> {
  const data: Record<string, unknown> = p.method === 'tags' ? { method: 'number_of_tags', value: Number.parseInt(p.value, 10) } : { method: 'creation_date', value: p.value.replace(/\s+/g, '') };
  if (p.tag_pattern) {
    data.tagPattern = p.tag_pattern;
    data.tagPatternMatches = p.tag_pattern_matches ?? true;
  }
  return data;
}

/** `base` is `organization/{org}` or `repository/{namespace}/{repository}`. */
export async function pruneModule(w: QuayWorld, base: string, p: PruneParams, opts: { repository?: boolean } = {}): Promise<PruneOutcome> {
  const data = pruneData(p);
  const policies = await w.getObject(`${base}/autoprunepolicy/`);
  const policy = (policies?.policies ?? []).find(
    (x: any) => x.method === data.method && x.value === data.value && (x.tagPattern ?? null) === (data.tagPattern ?? null) && x.tagPatternMatches === (data.tagPatternMatches ?? true),
  );
  if ((p.state ?? 'present') === 'absent') {
    if (!policy) return { changed: false };
    return { changed: (await w.remove(`${base}/autoprunepolicy/${policy.uuid}`)) === 'changed' };
  }
  const append = p.append ?? true;
  if (append && policy) return { changed: false, id: policy.uuid };
  if (opts.repository && !policies) return { failed: 'repository does not exist' };
  if (!append) {
    let deletions = false;
    for (const x of policies.policies) {
      if (!policy || policy.uuid !== x.uuid) {
        await w.remove(`${base}/autoprunepolicy/${x.uuid}`);
        deletions = true;
      }
    }
    if (policy) return { changed: deletions, id: policy.uuid };
  }
  const created = await w.create(`${base}/autoprunepolicy/`, data);
  return { changed: true, id: created.uuid };
}
