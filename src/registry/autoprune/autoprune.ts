/**
 * Wires auto-prune over its stores (built by main/compose-autoprune.ts): the policy service the API and
 * CLI use, and the pruner the worker and `wharf autoprune run` use. The configuration's default
 * policies are checked here, at start, with the same rules as policies sent to the API.
 */
import { ConfigError } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import type { AutopruneStore } from '../../db/autoprune-store.js';
import type { NamespaceStore } from '../../db/namespace-store.js';
import { isAccountError } from '../accounts/account-error.js';
import type { TagService } from '../tags.js';
import { NamespacePruner, type NamespacePrunerDeps } from './namespace-pruner.js';
import { parsePolicy } from './policy.js';
import { AutoprunePolicyService, type PolicyServiceDeps } from './policy-service.js';
import type { AppliedPolicy } from './tag-selection.js';

export interface Autoprune {
  policies: AutoprunePolicyService;
  pruner: NamespacePruner;
}

export interface AutopruneStores {
  /** Policies, tasks and the tags to prune. */
  store: AutopruneStore;
  namespaces: NamespaceStore;
}

export type AutopruneDeps = { tags: TagService; audit?: PolicyServiceDeps['audit'] & NamespacePrunerDeps['audit'] } & Pick<NamespacePrunerDeps, 'onAuditError'> &
  Pick<PolicyServiceDeps, 'now'>;

/** The policy service and the pruner over `stores`; ConfigError when a default policy is invalid. */
export function wireAutoprune({ store, namespaces }: AutopruneStores, config: Pick<Config, 'autoprune'>, deps: AutopruneDeps): Autoprune {
  return {
    policies: new AutoprunePolicyService({ store, namespaces, audit: deps.audit, now: deps.now }),
    pruner: new NamespacePruner({ store, tags: deps.tags, audit: deps.audit, defaults: defaultPolicies(config), onAuditError: deps.onAuditError }),
  };
}

/** `autoprune.default_policies`, validated like API input; ConfigError naming the entry otherwise. */
export function defaultPolicies(config: Pick<Config, 'autoprune'>): AppliedPolicy[] {
  return config.autoprune.default_policies.map((p, i) => {
    try {
      return parsePolicy({ method: p.method, value: p.value, tagPattern: p.tag_pattern, tagPatternMatches: p.tag_pattern_matches });
    } catch (err) {
      if (isAccountError(err)) throw new ConfigError(`autoprune.default_policies[${i}]: ${err.message}`);
      throw err;
    }
  });
}
