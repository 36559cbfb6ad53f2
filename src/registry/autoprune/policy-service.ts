/**
 * Auto-prune policies of namespaces (organizations and users) and of repositories: list, show, create,
 * replace and delete, each change audited with Quay's kinds (`create_namespace_autoprune_policy`,
 * `update_…`, `delete_…`, and the same three with `repository`). Callers have checked who may do it;
 * the service checks what: a valid policy, no exact duplicate in the same scope. Creating or changing a
 * policy queues the namespace, so the worker applies it at its next poll.
 */
import { randomUUID } from 'node:crypto';
import type { AutopruneStore, PolicyRecord, PolicyScope } from '../../db/autoprune-store.js';
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { RepositoryDetails } from '../../db/repository-store.js';
import { AccountError } from '../accounts/account-error.js';
import type { AuditContext } from '../accounts/audit-service.js';
import { DUPLICATE_POLICY, parsePolicy, policyValue, type PolicyInput } from './policy.js';

export type { PolicyRecord };

/** Whose policies: a namespace's own, or one repository's. */
export type PolicyTarget = { namespace: string } | { repository: Pick<RepositoryDetails, 'id' | 'namespaceId' | 'namespace' | 'name'> };

/** Who asks, for the audit log. */
export type AuditWho = Pick<AuditContext, 'actor' | 'ip' | 'userAgent'>;

export interface PolicyServiceDeps {
  store: AutopruneStore;
  namespaces: NamespaceStore;
  audit?: { record(kind: string, ctx: AuditContext): Promise<void> };
  now?: () => number;
}

interface Resolved {
  scope: PolicyScope;
  namespace: string;
  repository?: string;
}

export class AutoprunePolicyService {
  constructor(private readonly deps: PolicyServiceDeps) {}

  /** The target's policies, oldest first; 404 when the namespace does not exist. */
  async list(target: PolicyTarget): Promise<PolicyRecord[]> {
    return this.deps.store.list((await this.resolve(target)).scope);
  }

  /** The policy; 404 when the target has no policy `uuid`. */
  async get(target: PolicyTarget, uuid: string): Promise<PolicyRecord> {
    const t = await this.resolve(target);
    return (await this.deps.store.find(t.scope, uuid)) ?? notFound(t, uuid);
  }

  /** Stores a new policy; 400 when it is invalid or duplicates one of the target's. */
  async create(target: PolicyTarget, input: PolicyInput, who: AuditWho): Promise<PolicyRecord> {
    const fields = parsePolicy(input);
    const t = await this.resolve(target);
    const created = await this.deps.store.create(t.scope, randomUUID(), fields, (this.deps.now ?? Date.now)());
    if (created === 'duplicate') throw new AccountError('invalid_request', DUPLICATE_POLICY);
    await this.audit('create', t, who, { ...details(created), policy_uuid: created.uuid });
    return created;
  }

  /** Replaces every field of the policy (absent pattern = none); 404 when missing, 400 as for create. */
  async update(target: PolicyTarget, uuid: string, input: PolicyInput, who: AuditWho): Promise<PolicyRecord> {
    const fields = parsePolicy(input);
    const t = await this.resolve(target);
    const updated = await this.deps.store.update(t.scope, uuid, fields);
    if (updated === 'duplicate') throw new AccountError('invalid_request', DUPLICATE_POLICY);
    if (!updated) return notFound(t, uuid);
    await this.audit('update', t, who, { ...details(updated), policy_uuid: uuid });
    return updated;
  }

  /** Deletes the policy; 404 when missing. */
  async delete(target: PolicyTarget, uuid: string, who: AuditWho): Promise<PolicyRecord> {
    const t = await this.resolve(target);
    const deleted = (await this.deps.store.delete(t.scope, uuid)) ?? notFound(t, uuid);
    await this.audit('delete', t, who, { policy_uuid: uuid });
    return deleted;
  }

  private async resolve(target: PolicyTarget): Promise<Resolved> {
    if ('repository' in target) {
      const r = target.repository;
      return { scope: { namespaceId: r.namespaceId, repositoryId: r.id }, namespace: r.namespace, repository: r.name };
    }
    const ns = await this.deps.namespaces.findByName(target.namespace);
    if (!ns) throw new AccountError('not_found', `namespace ${target.namespace.slice(0, 100)} not found`);
    return { scope: { namespaceId: ns.id, repositoryId: null }, namespace: ns.name };
  }

  private async audit(change: 'create' | 'update' | 'delete', t: Resolved, who: AuditWho, metadata: Record<string, unknown>): Promise<void> {
    const kind = `${change}_${t.repository === undefined ? 'namespace' : 'repository'}_autoprune_policy`;
    await this.deps.audit?.record(kind, {
      ...who,
      namespace: t.namespace,
      repository: t.repository,
      metadata: { ...metadata, namespace: t.namespace, ...(t.repository === undefined ? {} : { repo: t.repository }) },
    });
  }
}

/** Quay's audit metadata of a policy. */
function details(p: PolicyRecord): Record<string, unknown> {
  return { method: p.method, value: policyValue(p), tag_pattern: p.tagPattern, tag_pattern_matches: p.tagPatternMatches };
}

function notFound(t: Resolved, uuid: string): never {
  const where = t.repository === undefined ? `namespace ${t.namespace}` : `repository ${t.namespace}/${t.repository}`;
  throw new AccountError('not_found', `auto-prune policy ${uuid.slice(0, 100)} not found in ${where}`);
}
