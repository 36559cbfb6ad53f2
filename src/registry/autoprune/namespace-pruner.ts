/**
 * Applies a namespace's auto-prune policies once: the rules of one run, shared by the worker and
 * `wharf autoprune run`.
 *
 *   - Namespace rules: the namespace's own policies, or — when it has none — the registry-wide defaults
 *     (`autoprune.default_policies`). They apply to every repository of the namespace.
 *   - Repository policies apply to their repository, in addition to the namespace rules.
 *   - Only repositories in state NORMAL are pruned: MIRROR and READ_ONLY ones are skipped. Proxy-cache
 *     organizations are pruned like any other namespace (a policy there is an explicit choice; a pruned
 *     cached tag is fetched again on its next pull).
 *   - Which tags: see tag-selection.ts (date policies before count policies; hidden and immutable tags
 *     never: immutable ones are not even counted).
 *   - A pruned tag is deleted through TagService.delete: its lifetime ends, it stays in history and can
 *     be restored like any deleted tag. A tag moved or deleted meanwhile is left alone. Each pruned tag
 *     gets an `autoprune_tag_delete` audit entry.
 */
import type { AutopruneStore, LiveTag, PruneRepository, TaskLease } from '../../db/autoprune-store.js';
import type { Digest } from '../../oci/digest.js';
import { isRegistryError } from '../../oci/errors.js';
import type { Tag } from '../../oci/reference.js';
import type { AuditContext } from '../accounts/audit-service.js';
import type { TagService } from '../tags.js';
import { TagImmutableError } from '../tag-immutability.js';
import { PatternMatcher, PatternTimeoutError } from './pattern-matcher.js';
import { policyValue } from './policy.js';
import { selectTagsToPrune, type AppliedPolicy, type Matcher } from './tag-selection.js';

export const AUTOPRUNE_ACTOR = 'autoprune worker';

export interface PrunedTag {
  namespace: string;
  repository: string;
  tag: string;
  /** What it pointed at (absent in a dry run). */
  digest?: Digest;
  method: AppliedPolicy['method'];
  value: number | string;
  /** Absent for a configured default policy. */
  policyUuid?: string;
}

export interface NamespaceRun {
  namespace: string;
  /** False when neither the namespace nor its repositories have policies and there are no defaults. */
  hadPolicies: boolean;
  /** Repositories whose tags were examined. */
  repositories: number;
  /** Repositories left alone because of their state. */
  skipped: Array<{ repository: string; state: string }>;
  pruned: PrunedTag[];
  /** One message per repository that failed; the others were still pruned. */
  errors: string[];
}

export interface NamespacePrunerDeps {
  store: AutopruneStore;
  tags: TagService;
  audit?: { submit(kind: string, ctx: AuditContext, onError: (err: unknown) => void): void; flush(): Promise<void> };
  /** Registry-wide policies for namespaces without their own. */
  defaults?: readonly AppliedPolicy[];
  matcher?: PatternMatcher;
  /** Hears of a failed audit write. */
  onAuditError?: (err: unknown) => void;
  pageSize?: number;
}

export class NamespacePruner {
  private readonly matcher: PatternMatcher;

  constructor(private readonly deps: NamespacePrunerDeps) {
    this.matcher = deps.matcher ?? new PatternMatcher();
  }

  /** Whether registry-wide default policies are configured (then every namespace gets a task). */
  get hasDefaults(): boolean {
    return (this.deps.defaults?.length ?? 0) > 0;
  }

  /** Prunes the namespace as of `nowMs`; with `dryRun`, only reports what would go. */
  async prune(ns: TaskLease, opts: { nowMs: number; dryRun?: boolean }): Promise<NamespaceRun> {
    const run: NamespaceRun = { namespace: ns.namespace, hadPolicies: false, repositories: 0, skipped: [], pruned: [], errors: [] };
    const policies = await this.deps.store.forNamespace(ns.namespaceId);
    const own = policies.filter((p) => p.repositoryId === null);
    const namespaceRules: AppliedPolicy[] = own.length > 0 ? own : [...(this.deps.defaults ?? [])];
    const byRepository = new Map<number, AppliedPolicy[]>();
    for (const p of policies) if (p.repositoryId !== null) byRepository.set(p.repositoryId, [...(byRepository.get(p.repositoryId) ?? []), p]);
    if (namespaceRules.length === 0 && byRepository.size === 0) return run;
    run.hadPolicies = true;

    const badPatterns = new Set<string>();
    const matcher: Matcher = (pattern, names) => {
      if (badPatterns.has(pattern)) throw new PatternTimeoutError(pattern, 0);
      try {
        return this.matcher.matches(pattern, names);
      } catch (err) {
        if (err instanceof PatternTimeoutError) badPatterns.add(pattern);
        throw err;
      }
    };
    for await (const repo of this.repositories(ns.namespaceId, namespaceRules.length > 0, [...byRepository.keys()])) {
      if (repo.state !== 'NORMAL') {
        run.skipped.push({ repository: repo.name, state: repo.state });
        continue;
      }
      run.repositories++;
      try {
        await this.pruneRepository(ns, repo, [...namespaceRules, ...(byRepository.get(repo.id) ?? [])], matcher, opts, run);
      } catch (err) {
        run.errors.push(`${ns.namespace}/${repo.name}: ${(err as Error)?.message ?? String(err)}`);
      }
    }
    await this.deps.audit?.flush();
    return run;
  }

  private async pruneRepository(ns: TaskLease, repo: PruneRepository, policies: AppliedPolicy[], matcher: Matcher, opts: { nowMs: number; dryRun?: boolean }, run: NamespaceRun): Promise<void> {
    const tags: LiveTag[] = await this.deps.store.liveTags(repo.id, opts.nowMs);
    const decisions = selectTagsToPrune(tags, policies, opts.nowMs, matcher);
    for (const { tag, policy } of decisions) {
      const pruned: PrunedTag = {
        namespace: ns.namespace,
        repository: repo.name,
        tag: tag.name,
        method: policy.method,
        value: policyValue(policy),
        ...(policy.uuid === undefined ? {} : { policyUuid: policy.uuid }),
      };
      if (!opts.dryRun) {
        try {
          pruned.digest = await this.deps.tags.delete({ id: repo.id, namespace: ns.namespace, name: repo.name }, tag.name as Tag, { onlyRow: tag.id });
        } catch (err) {
          // Moved, deleted or made immutable since it was read: whatever happened to it was newer than this decision.
          if (isRegistryError(err) && err.code === 'MANIFEST_UNKNOWN') continue;
          if (err instanceof TagImmutableError) continue;
          throw err;
        }
        this.record(pruned);
      }
      run.pruned.push(pruned);
    }
  }

  private record(t: PrunedTag): void {
    this.deps.audit?.submit(
      'autoprune_tag_delete',
      {
        actor: { kind: 'system', name: AUTOPRUNE_ACTOR },
        namespace: t.namespace,
        repository: t.repository,
        metadata: {
          performer: AUTOPRUNE_ACTOR,
          namespace: t.namespace,
          repo: t.repository,
          tag: t.tag,
          manifest_digest: t.digest,
          method: t.method,
          value: t.value,
          policy_uuid: t.policyUuid ?? null,
        },
      },
      (err) => this.deps.onAuditError?.(err),
    );
  }

  /** Every repository of the namespace (with namespace rules), or only those with policies of their own, by id. */
  private async *repositories(namespaceId: number, all: boolean, ids: number[]): AsyncGenerator<PruneRepository> {
    if (!all) {
      yield* await this.deps.store.repositoriesByIds(ids);
      return;
    }
    const size = this.deps.pageSize ?? 100;
    for (let after = 0; ; ) {
      const page = await this.deps.store.repositories(namespaceId, after, size);
      yield* page;
      if (page.length < size) return;
      after = page[page.length - 1]!.id;
    }
  }
}
