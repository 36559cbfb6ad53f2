/**
 * The main() of `quay_organization_immutability` and `quay_repository_immutability` (the two modules
 * differ only in the base path and in how they find the namespace), over the replayed calls of
 * quay-world.ts.
 */
import { needUpdate, type QuayWorld } from './quay-world.js';

export interface ImmutabilityParams {
  tag_pattern: string;
  new_tag_pattern?: string;
  behavior?: 'matching_immutable' | 'not_matching_immutable';
  state?: 'present' | 'absent';
}

export type ImmutabilityOutcome = { changed: boolean } | { failed: string };

/** `base` is `organization/{org}` or `repository/{namespace}/{repository}`; `policies` what its GET gave (undefined: 404). */
export async function immutabilityModule(w: QuayWorld, base: string, p: ImmutabilityParams): Promise<ImmutabilityOutcome> {
  const state = p.state ?? 'present';
  const list = await w.getObject(`${base}/immutabilitypolicy/`);
  let policy: any;
  let renamed: any;
  for (const x of list?.policies ?? []) {
    if (x.tagPattern === p.tag_pattern) policy = x;
    else if (p.new_tag_pattern !== undefined && x.tagPattern === p.new_tag_pattern) renamed = x;
  }
  if (policy && renamed) return { failed: 'new_tag_pattern already exists' };
  if (state === 'absent') {
    const target = renamed ?? policy;
    if (!target) return { changed: false };
    return { changed: (await w.remove(`${base}/immutabilitypolicy/${target.uuid}`)) === 'changed' };
  }
  if (!list) return { failed: 'repository does not exist' };
  const matches = (fallback: boolean) => (p.behavior === undefined ? fallback : p.behavior === 'matching_immutable');
  const put = async (x: any, fields: Record<string, unknown>) => {
    if (!needUpdate(x, fields)) return { changed: false };
    await w.update(`${base}/immutabilitypolicy/${x.uuid}`, fields);
    return { changed: true };
  };
  if (p.new_tag_pattern) {
    if (!policy) {
      if (!renamed) {
        await w.create(`${base}/immutabilitypolicy/`, { tagPattern: p.new_tag_pattern, tagPatternMatches: p.behavior !== 'not_matching_immutable' });
        return { changed: true };
      }
      return put(renamed, { tagPattern: p.new_tag_pattern, tagPatternMatches: matches(renamed.tagPatternMatches ?? true) });
    }
  }
  const fields: Record<string, unknown> = { tagPattern: p.new_tag_pattern || p.tag_pattern };
  if (policy) return put(policy, { ...fields, tagPatternMatches: matches(policy.tagPatternMatches ?? true) });
  await w.create(`${base}/immutabilitypolicy/`, { ...fields, tagPatternMatches: p.behavior !== 'not_matching_immutable' });
  return { changed: true };
}
