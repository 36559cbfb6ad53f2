/**
 * Tag immutability policies of namespaces (`repositoryId` null) and repositories, and the reads and
 * writes that apply them to tags that already exist. Which tags a policy selects is decided by the
 * registry (registry/tag-immutability.ts); this store only lists candidates and marks the chosen ones.
 */
import type { ExpressionBuilder, Kysely } from 'kysely';
import type { Database } from './tables.js';
import { liveTag } from './tag-lifetime.js';

export interface ImmutabilityScope {
  namespaceId: number;
  repositoryId: number | null;
}

export interface ImmutabilityFields {
  tagPattern: string;
  tagPatternMatches: boolean;
}

export interface ImmutabilityPolicyRecord extends ImmutabilityFields {
  uuid: string;
  namespaceId: number;
  repositoryId: number | null;
  createdAt: number;
}

/** A live, visible, still mutable tag that a new policy may select. */
export interface MutableTag {
  id: number;
  name: string;
}

type Row = Database['immutability_policies'];

export class ImmutabilityStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The scope's policies, oldest first. */
  async list(scope: ImmutabilityScope): Promise<ImmutabilityPolicyRecord[]> {
    const rows = await this.db.selectFrom('immutability_policies').selectAll().where(inScope(scope)).orderBy('created_at').orderBy('uuid').execute();
    return rows.map(toRecord);
  }

  /** The policies in force for tags of a repository: its namespace's and its own. */
  async inForce(repositoryId: number): Promise<ImmutabilityFields[]> {
    const rows = await this.db
      .selectFrom('immutability_policies as p')
      .innerJoin('repositories as r', 'r.namespace_id', 'p.namespace_id')
      .select(['p.tag_pattern', 'p.tag_pattern_matches'])
      .where('r.id', '=', repositoryId)
      .where((eb) => eb.or([eb('p.repository_id', 'is', null), eb('p.repository_id', '=', repositoryId)]))
      .execute();
    return rows.map((r) => ({ tagPattern: r.tag_pattern, tagPatternMatches: r.tag_pattern_matches === 1 }));
  }

  async find(scope: ImmutabilityScope, uuid: string): Promise<ImmutabilityPolicyRecord | undefined> {
    const row = await this.db.selectFrom('immutability_policies').selectAll().where(inScope(scope)).where('uuid', '=', uuid).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Stores a policy; 'duplicate' when the scope has one with the same pattern already. */
  async create(scope: ImmutabilityScope, uuid: string, f: ImmutabilityFields, now: number): Promise<ImmutabilityPolicyRecord | 'duplicate'> {
    return this.db.transaction().execute(async (tx) => {
      const dup = await tx.selectFrom('immutability_policies').select('uuid').where(inScope(scope)).where('tag_pattern', '=', f.tagPattern).executeTakeFirst();
      if (dup) return 'duplicate';
      const row: Row = { uuid, namespace_id: scope.namespaceId, repository_id: scope.repositoryId, tag_pattern: f.tagPattern, tag_pattern_matches: f.tagPatternMatches ? 1 : 0, created_at: now };
      await tx.insertInto('immutability_policies').values(row).execute();
      return toRecord(row);
    });
  }

  /** Replaces the policy's fields; undefined when missing, 'duplicate' when another policy of the scope has the pattern. */
  async update(scope: ImmutabilityScope, uuid: string, f: ImmutabilityFields): Promise<ImmutabilityPolicyRecord | 'duplicate' | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const dup = await tx
        .selectFrom('immutability_policies')
        .select('uuid')
        .where(inScope(scope))
        .where('tag_pattern', '=', f.tagPattern)
        .where('uuid', '!=', uuid)
        .executeTakeFirst();
      if (dup) return 'duplicate';
      const res = await tx
        .updateTable('immutability_policies')
        .set({ tag_pattern: f.tagPattern, tag_pattern_matches: f.tagPatternMatches ? 1 : 0 })
        .where(inScope(scope))
        .where('uuid', '=', uuid)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return undefined;
      const row = await tx.selectFrom('immutability_policies').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow();
      return toRecord(row);
    });
  }

  /** Deletes the policy (tags it made immutable stay so); the deleted policy, or undefined. */
  async delete(scope: ImmutabilityScope, uuid: string): Promise<ImmutabilityPolicyRecord | undefined> {
    const row = await this.db.deleteFrom('immutability_policies').where(inScope(scope)).where('uuid', '=', uuid).returningAll().executeTakeFirst();
    return row && toRecord(row);
  }

  /**
   * Live, visible, mutable tags of the namespace (or of one repository), by row id after `afterId`, at
   * most `limit`: the candidates a new or changed policy is applied to.
   */
  async mutableTags(scope: ImmutabilityScope, afterId: number, limit: number, now = Date.now()): Promise<MutableTag[]> {
    let q = this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .select(['t.id', 't.name'])
      .where('r.namespace_id', '=', scope.namespaceId)
      .where('t.immutable', '=', 0)
      .where('t.hidden', '=', 0)
      .where(liveTag('t', now))
      .where('t.id', '>', afterId)
      .orderBy('t.id')
      .limit(limit);
    if (scope.repositoryId !== null) q = q.where('t.repository_id', '=', scope.repositoryId);
    return (await q.execute()).map((r) => ({ id: Number(r.id), name: r.name }));
  }

  /** Whether a live tag of the namespace is immutable. */
  async hasImmutableTags(namespaceId: number): Promise<boolean> {
    const row = await this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .select('t.id')
      .where('r.namespace_id', '=', namespaceId)
      .where('t.immutable', '=', 1)
      .where('t.lifetime_end', 'is', null)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Marks live tags immutable (an immutable tag has no expiry); returns how many changed. */
  async markImmutable(tagIds: readonly number[]): Promise<number> {
    if (tagIds.length === 0) return 0;
    const res = await this.db
      .updateTable('tags')
      .set({ immutable: 1, expires_at: null })
      .where('id', 'in', [...tagIds])
      .where('immutable', '=', 0)
      .where('lifetime_end', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }
}

function inScope(scope: ImmutabilityScope) {
  return (eb: ExpressionBuilder<Database, 'immutability_policies'>) =>
    eb.and([eb('namespace_id', '=', scope.namespaceId), scope.repositoryId === null ? eb('repository_id', 'is', null) : eb('repository_id', '=', scope.repositoryId)]);
}

function toRecord(r: Row): ImmutabilityPolicyRecord {
  return {
    uuid: r.uuid,
    namespaceId: Number(r.namespace_id),
    repositoryId: r.repository_id === null ? null : Number(r.repository_id),
    tagPattern: r.tag_pattern,
    tagPatternMatches: r.tag_pattern_matches === 1,
    createdAt: Number(r.created_at),
  };
}
