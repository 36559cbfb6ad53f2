/**
 * Which live tags of one repository a set of policies prunes — a pure function of the tags, the
 * policies and the time, so that the worker, dry runs and tests agree:
 *
 *   1. every `creation_date` policy, then every `number_of_tags` policy (Quay's order), each over the
 *      tags the policies before it left;
 *   2. a policy considers only the tags its pattern selects (matching ones, or non-matching ones with
 *      `tagPatternMatches: false`); without a pattern, all of them;
 *   3. `creation_date D` prunes those whose lifetime started more than D ago; `number_of_tags N` keeps
 *      the N newest (by lifetime start, then by row) and prunes the rest;
 *   4. cosign signature, attestation and SBOM tags (`sha256-<64 hex>.sig|.att|.sbom`) are never
 *      considered: they belong to the image they sign, not to the tag history.
 */
import type { LiveTag } from '../../db/autoprune-store.js';
import type { PolicyFields } from './policy.js';

/** A policy to apply, with where it came from (`uuid` undefined for a configured default). */
export interface AppliedPolicy extends PolicyFields {
  uuid?: string;
}

export interface PruneDecision {
  tag: LiveTag;
  policy: AppliedPolicy;
}

/** `matches(pattern, names)` tells for each name whether the pattern is found in it. */
export type Matcher = (pattern: string, names: readonly string[]) => boolean[];

const COSIGN_TAG = /^sha256-[0-9a-f]{64}\.(sig|att|sbom)$/;

export function selectTagsToPrune(tags: readonly LiveTag[], policies: readonly AppliedPolicy[], nowMs: number, matches: Matcher): PruneDecision[] {
  let alive = tags.filter((t) => !COSIGN_TAG.test(t.name));
  const ordered = [...policies.filter((p) => p.method === 'creation_date'), ...policies.filter((p) => p.method === 'number_of_tags')];
  const decisions: PruneDecision[] = [];
  for (const policy of ordered) {
    if (alive.length === 0) break;
    const candidates = selected(alive, policy, matches);
    let pruned: LiveTag[];
    if (policy.method === 'creation_date') {
      pruned = candidates.filter((t) => nowMs - t.lifetimeStart > policy.value * 1000);
    } else {
      pruned = [...candidates].sort((a, b) => b.lifetimeStart - a.lifetimeStart || b.id - a.id).slice(policy.value);
    }
    if (pruned.length === 0) continue;
    const gone = new Set(pruned.map((t) => t.id));
    alive = alive.filter((t) => !gone.has(t.id));
    for (const tag of pruned) decisions.push({ tag, policy });
  }
  return decisions;
}

function selected(tags: LiveTag[], policy: AppliedPolicy, matches: Matcher): LiveTag[] {
  if (policy.tagPattern === null) return tags;
  const hits = matches(policy.tagPattern, tags.map((t) => t.name));
  return tags.filter((_, i) => hits[i] === policy.tagPatternMatches);
}
