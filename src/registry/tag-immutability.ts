/**
 * Tag immutability: the one rule, and the policies that apply it.
 *
 * An immutable tag cannot be moved to another manifest (API or `/v2` push), deleted (API, `/v2`
 * DELETE by tag, or by digest of a manifest it points at), expired, permanently removed, pruned by
 * auto-prune, evicted by the proxy cache's quota eviction, or given an expiry — by anyone, superusers
 * included. Re-pushing the manifest it already points at succeeds and changes nothing. The only way
 * back is `PUT …/tag/{tag} {"immutable": false}` by a repository admin (routes check that).
 *
 * A tag becomes immutable by `{"immutable": true}` on the tag, or by a policy: a regular expression
 * matched at the start of the tag name (Python's `re.match`, as Quay), selecting the tags it matches
 * (`tagPatternMatches` true) or those it does not. Policies belong to a namespace (all its
 * repositories) or to one repository. Saving a policy marks the live tags it selects at once; a tag
 * created later (a push, an API create or restore) is marked when it is created. Deleting or changing
 * a policy never makes a tag mutable again. An immutable tag has no expiry: marking clears it.
 *
 * The stores enforce the rule inside the transaction that would break it (they throw TagImmutable,
 * which rolls the write back); `immutableRefusal` turns that into TagImmutableError, a `DENIED` (403) on
 * `/v2` and `409 tag_immutable` on `/api/v1`.
 */
import { randomUUID } from 'node:crypto';
import type { ImmutabilityFields, ImmutabilityPolicyRecord, ImmutabilityScope, ImmutabilityStore } from '../db/immutability-store.js';
import type { NamespaceStore } from '../db/namespace-store.js';
import type { RepositoryDetails } from '../db/repository-store.js';
import { TagImmutable } from '../db/tag-immutable.js';
import { RegistryError } from '../oci/errors.js';
import { AccountError } from './accounts/account-error.js';
import type { AuditContext } from './accounts/audit-service.js';
import { PatternMatcher, PatternTimeoutError } from './autoprune/pattern-matcher.js';

export type { ImmutabilityPolicyRecord };

/** The refusal of a change to an immutable tag. */
export class TagImmutableError extends RegistryError {
  constructor(
    readonly repository: string,
    readonly tag: string,
  ) {
    super('DENIED', `tag ${tag} of ${repository} is immutable: it cannot be moved, deleted or expired (a repository admin can make it mutable again)`, { tag, reason: 'tag_immutable' });
    this.name = 'TagImmutableError';
  }
}

/** Rethrows `err`, as TagImmutableError when a store refused to change an immutable tag of `repository`. */
export function immutableRefusal(err: unknown, repository: { namespace: string; name: string }): never {
  if (err instanceof TagImmutable) throw new TagImmutableError(`${repository.namespace}/${repository.name}`, err.tag);
  throw err;
}

/** Whose policies: a namespace's own, or one repository's. */
export type ImmutabilityTarget = { namespace: string } | { repository: Pick<RepositoryDetails, 'id' | 'namespaceId' | 'namespace' | 'name'> };

export type AuditWho = Pick<AuditContext, 'actor' | 'ip' | 'userAgent'>;

export interface ImmutabilityInput {
  tagPattern?: unknown;
  tagPatternMatches?: unknown;
}

export const MAX_IMMUTABILITY_PATTERN = 256;

export interface ImmutabilityDeps {
  store: ImmutabilityStore;
  namespaces: NamespaceStore;
  audit?: { record(kind: string, ctx: AuditContext): Promise<void> };
  matcher?: PatternMatcher;
}

interface Resolved {
  scope: ImmutabilityScope;
  namespace: string;
  repository?: string;
}

export class ImmutabilityPolicies {
  private readonly matcher: PatternMatcher;

  constructor(private readonly deps: ImmutabilityDeps) {
    // A pattern runs on every push of a tag: a pathological one is stopped (after the matcher's
    // default 2 s, wide enough that a busy machine never stops a sound one) instead of stalling it.
    this.matcher = deps.matcher ?? new PatternMatcher();
  }

  /** Whether the policies in force for the repository select `tag` (a tag created now is then immutable). */
  async selects(repositoryId: number, tag: string): Promise<boolean> {
    const policies = await this.deps.store.inForce(repositoryId);
    return policies.some((p) => this.select(p, [tag])[0]);
  }

  /** Whether the namespace holds an immutable live tag (such an organization cannot become a proxy cache). */
  async hasImmutableTags(namespace: string): Promise<boolean> {
    const t = await this.resolve({ namespace });
    return this.deps.store.hasImmutableTags(t.scope.namespaceId);
  }

  async list(target: ImmutabilityTarget): Promise<ImmutabilityPolicyRecord[]> {
    return this.deps.store.list((await this.resolve(target)).scope);
  }

  /** The policy; 404 when the target has none with that uuid. */
  async get(target: ImmutabilityTarget, uuid: string): Promise<ImmutabilityPolicyRecord> {
    const t = await this.resolve(target);
    return (await this.deps.store.find(t.scope, uuid)) ?? notFound(t, uuid);
  }

  /** Stores a policy and marks the live tags it selects; 400 when invalid or its pattern is taken in the target. */
  async create(target: ImmutabilityTarget, input: ImmutabilityInput, who: AuditWho): Promise<ImmutabilityPolicyRecord> {
    const fields = parse(input);
    const t = await this.resolve(target);
    const created = await this.deps.store.create(t.scope, randomUUID(), fields, Date.now());
    if (created === 'duplicate') throw new AccountError('invalid_request', 'A policy with the same tag_pattern already exists');
    await this.audit('create_immutability_policy', t, who, { tag_pattern: fields.tagPattern, tag_pattern_matches: fields.tagPatternMatches, policy_uuid: created.uuid });
    await this.apply(t, fields, who);
    return created;
  }

  /** Replaces the policy's fields and marks the live tags it now selects; 404 when missing, 400 as for create. */
  async update(target: ImmutabilityTarget, uuid: string, input: ImmutabilityInput, who: AuditWho): Promise<ImmutabilityPolicyRecord> {
    const fields = parse(input);
    const t = await this.resolve(target);
    const updated = await this.deps.store.update(t.scope, uuid, fields);
    if (updated === 'duplicate') throw new AccountError('invalid_request', 'A policy with the same tag_pattern already exists');
    if (!updated) return notFound(t, uuid);
    await this.audit('update_immutability_policy', t, who, { tag_pattern: fields.tagPattern, tag_pattern_matches: fields.tagPatternMatches, policy_uuid: uuid });
    await this.apply(t, fields, who);
    return updated;
  }

  /** Deletes the policy (the tags it made immutable stay immutable); 404 when missing. */
  async delete(target: ImmutabilityTarget, uuid: string, who: AuditWho): Promise<ImmutabilityPolicyRecord> {
    const t = await this.resolve(target);
    const deleted = (await this.deps.store.delete(t.scope, uuid)) ?? notFound(t, uuid);
    await this.audit('delete_immutability_policy', t, who, { policy_uuid: uuid });
    return deleted;
  }

  /** Marks the target's live tags the policy selects, in batches; audited once with the count. */
  private async apply(t: Resolved, fields: ImmutabilityFields, who: AuditWho): Promise<void> {
    let marked = 0;
    for (let after = 0; ; ) {
      const tags = await this.deps.store.mutableTags(t.scope, after, 500);
      if (tags.length === 0) break;
      const hits = this.select(fields, tags.map((x) => x.name));
      marked += await this.deps.store.markImmutable(tags.filter((_, i) => hits[i]).map((x) => x.id));
      after = tags[tags.length - 1]!.id;
    }
    if (marked > 0) await this.audit('tags_made_immutable_by_policy', t, who, { tag_pattern: fields.tagPattern, tag_pattern_matches: fields.tagPatternMatches, count: marked });
  }

  /**
   * For each name, whether the policy selects it. A pattern too slow to run selects every name: the
   * guarantee fails closed (a tag an administrator can make mutable again), never open (a tag meant to
   * be immutable left movable).
   */
  private select(p: ImmutabilityFields, names: string[]): boolean[] {
    let hits: boolean[];
    try {
      hits = this.matcher.matches(p.tagPattern, names, { atStart: true });
    } catch (err) {
      if (err instanceof PatternTimeoutError) return names.map(() => true);
      throw err;
    }
    return hits.map((h) => h === p.tagPatternMatches);
  }

  private async resolve(target: ImmutabilityTarget): Promise<Resolved> {
    if ('repository' in target) {
      const r = target.repository;
      return { scope: { namespaceId: r.namespaceId, repositoryId: r.id }, namespace: r.namespace, repository: r.name };
    }
    const ns = await this.deps.namespaces.findByName(target.namespace);
    if (!ns) throw new AccountError('not_found', `namespace ${target.namespace.slice(0, 100)} not found`);
    return { scope: { namespaceId: ns.id, repositoryId: null }, namespace: ns.name };
  }

  private async audit(kind: string, t: Resolved, who: AuditWho, metadata: Record<string, unknown>): Promise<void> {
    await this.deps.audit?.record(kind, {
      ...who,
      namespace: t.namespace,
      repository: t.repository,
      metadata: { ...metadata, namespace: t.namespace, ...(t.repository === undefined ? {} : { repo: t.repository }) },
    });
  }
}

/** Quay's checks: a non-empty pattern of at most 256 characters that compiles; tagPatternMatches a boolean (default true). */
function parse(input: ImmutabilityInput): ImmutabilityFields {
  const raw = input.tagPattern;
  if (typeof raw !== 'string' || raw.trim() === '') throw new AccountError('invalid_request', 'tag_pattern is required and must be a non-empty string');
  const tagPattern = raw.trim();
  if (tagPattern.length > MAX_IMMUTABILITY_PATTERN) throw new AccountError('invalid_request', `tag_pattern must be ${MAX_IMMUTABILITY_PATTERN} characters or less`);
  try {
    new RegExp(tagPattern, 'y');
  } catch (err) {
    throw new AccountError('invalid_request', `Invalid regex pattern: ${(err as Error).message}`);
  }
  const m = input.tagPatternMatches;
  if (m !== undefined && m !== null && typeof m !== 'boolean') throw new AccountError('invalid_request', 'tag_pattern_matches must be a boolean');
  return { tagPattern, tagPatternMatches: m !== false };
}

function notFound(t: Resolved, uuid: string): never {
  const where = t.repository === undefined ? `namespace ${t.namespace}` : `repository ${t.namespace}/${t.repository}`;
  throw new AccountError('not_found', `immutability policy ${uuid.slice(0, 100)} not found in ${where}`);
}
