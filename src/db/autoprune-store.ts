/**
 * Auto-prune policies, the worker's task queue and the reads the worker prunes from.
 *
 * Policies belong to a namespace (`repositoryId` null) or to one repository of it. Creating or changing
 * a policy queues the namespace's task (`last_ran_ms` null, so the next worker poll takes it). A task is
 * leased by stamping `last_ran_ms` in a short transaction — `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
 * that any number of workers take distinct namespaces; SQLite write transactions are exclusive already.
 */
import type { ExpressionBuilder, Kysely, Transaction } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';
import { liveTag } from './tag-lifetime.js';

export type PolicyMethod = 'number_of_tags' | 'creation_date';

/** What a policy says, as stored. */
export interface PolicyFields {
  method: PolicyMethod;
  /** A number of tags, or an age in seconds. */
  value: number;
  /** A creation_date duration as given ("2w"); null for number_of_tags. */
  valueText: string | null;
  tagPattern: string | null;
  tagPatternMatches: boolean;
}

export interface PolicyRecord extends PolicyFields {
  uuid: string;
  namespaceId: number;
  repositoryId: number | null;
  createdAt: number;
}

/** A namespace's own policies (`repositoryId` null) or those of one of its repositories. */
export interface PolicyScope {
  namespaceId: number;
  repositoryId: number | null;
}

export interface TaskLease {
  namespaceId: number;
  namespace: string;
}

export interface PruneRepository {
  id: number;
  name: string;
  /** 'NORMAL' | 'READ_ONLY' | 'MIRROR' */
  state: string;
}

export interface LiveTag {
  id: number;
  name: string;
  lifetimeStart: number;
}

type PolicyRow = Database['autoprune_policies'];

export class AutopruneStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  /** The scope's policies, oldest first. */
  async list(scope: PolicyScope): Promise<PolicyRecord[]> {
    const rows = await this.db.selectFrom('autoprune_policies').selectAll().where(inScope(scope)).orderBy('created_at').orderBy('uuid').execute();
    return rows.map(toRecord);
  }

  async find(scope: PolicyScope, uuid: string): Promise<PolicyRecord | undefined> {
    const row = await this.db.selectFrom('autoprune_policies').selectAll().where(inScope(scope)).where('uuid', '=', uuid).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Every policy of the namespace and of its repositories, oldest first. */
  async forNamespace(namespaceId: number): Promise<PolicyRecord[]> {
    const rows = await this.db.selectFrom('autoprune_policies').selectAll().where('namespace_id', '=', namespaceId).orderBy('created_at').orderBy('uuid').execute();
    return rows.map(toRecord);
  }

  /** Stores the policy and queues the namespace; 'duplicate' when the scope has one with the same fields. */
  async create(scope: PolicyScope, uuid: string, fields: PolicyFields, now: number): Promise<PolicyRecord | 'duplicate'> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockNamespace(tx, scope.namespaceId);
      if (await this.duplicateOf(tx, scope, fields)) return 'duplicate';
      const row: PolicyRow = { uuid, namespace_id: scope.namespaceId, repository_id: scope.repositoryId, ...toColumns(fields), created_at: now };
      await tx.insertInto('autoprune_policies').values(row).execute();
      await this.queue(tx, scope.namespaceId);
      return toRecord(row);
    });
  }

  /** Replaces the policy's fields and queues the namespace; undefined when missing, 'duplicate' as for create. */
  async update(scope: PolicyScope, uuid: string, fields: PolicyFields): Promise<PolicyRecord | 'duplicate' | undefined> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockNamespace(tx, scope.namespaceId);
      if (await this.duplicateOf(tx, scope, fields, uuid)) return 'duplicate';
      const res = await tx.updateTable('autoprune_policies').set(toColumns(fields)).where(inScope(scope)).where('uuid', '=', uuid).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return undefined;
      await this.queue(tx, scope.namespaceId);
      const row = await tx.selectFrom('autoprune_policies').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow();
      return toRecord(row);
    });
  }

  /** Deletes the policy; returns it, or undefined when the scope has no such policy. */
  async delete(scope: PolicyScope, uuid: string): Promise<PolicyRecord | undefined> {
    const row = await this.db.deleteFrom('autoprune_policies').where(inScope(scope)).where('uuid', '=', uuid).returningAll().executeTakeFirst();
    return row && toRecord(row);
  }

  /**
   * Leases the namespace whose task is due (never ran, or last ran at or before `dueBefore`) and waited
   * longest, stamping `last_ran_ms = now` and status "running"; undefined when none is due. Disabled
   * namespaces are passed over.
   */
  async lease(now: number, dueBefore: number): Promise<TaskLease | undefined> {
    return this.db.transaction().execute(async (tx) => {
      let q = tx
        .selectFrom('autoprune_tasks as t')
        .innerJoin('namespaces as n', 'n.id', 't.namespace_id')
        .select(['t.namespace_id', 'n.name'])
        .where('n.enabled', '=', 1)
        .where((eb) => eb.or([eb('t.last_ran_ms', 'is', null), eb('t.last_ran_ms', '<=', dueBefore)]))
        .orderBy('t.last_ran_ms', (ob) => ob.asc().nullsFirst())
        .orderBy('t.namespace_id')
        .limit(1);
      if (this.dialect.supportsRowLocks) q = q.forUpdate('t').skipLocked();
      const row = await q.executeTakeFirst();
      if (!row) return undefined;
      await tx.updateTable('autoprune_tasks').set({ last_ran_ms: now, status: 'running' }).where('namespace_id', '=', row.namespace_id).execute();
      return { namespaceId: row.namespace_id, namespace: row.name };
    });
  }

  /** Records how the namespace's run ended ("success" or "failure: …"). */
  async finish(namespaceId: number, status: string): Promise<void> {
    await this.db.updateTable('autoprune_tasks').set({ status: status.slice(0, 1000) }).where('namespace_id', '=', namespaceId).execute();
  }

  /**
   * Gives a task to every enabled namespace that has policies but no task (or, with `all`, to every
   * enabled namespace without one: registry-wide default policies); returns how many were added.
   */
  async queueMissing(opts: { all: boolean }): Promise<number> {
    const res = await this.db
      .insertInto('autoprune_tasks')
      .columns(['namespace_id', 'last_ran_ms', 'status'])
      .expression((eb) => {
        let q = eb
          .selectFrom('namespaces as n')
          .select(['n.id', eb.val(null).as('last_ran_ms'), eb.val('queued').as('status')])
          .where('n.enabled', '=', 1)
          .where((w) => w.not(w.exists(w.selectFrom('autoprune_tasks as t').select('t.namespace_id').whereRef('t.namespace_id', '=', 'n.id'))));
        if (!opts.all) q = q.where((w) => w.exists(w.selectFrom('autoprune_policies as p').select('p.uuid').whereRef('p.namespace_id', '=', 'n.id')));
        return q;
      })
      .onConflict((oc) => oc.column('namespace_id').doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0);
  }

  /** Removes the namespace's task unless it has policies (again). */
  async dropTask(namespaceId: number): Promise<void> {
    await this.db
      .deleteFrom('autoprune_tasks')
      .where('namespace_id', '=', namespaceId)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('autoprune_policies').select('uuid').where('namespace_id', '=', namespaceId))))
      .execute();
  }

  /** Enabled namespaces with a task or policies (with `all`: every enabled namespace), by name; dry runs visit them without leasing. */
  async namespaces(opts: { all: boolean }): Promise<TaskLease[]> {
    let q = this.db.selectFrom('namespaces as n').select(['n.id', 'n.name']).where('n.enabled', '=', 1).orderBy('n.name');
    if (!opts.all) {
      q = q.where((eb) =>
        eb.or([
          eb.exists(eb.selectFrom('autoprune_tasks as t').select('t.namespace_id').whereRef('t.namespace_id', '=', 'n.id')),
          eb.exists(eb.selectFrom('autoprune_policies as p').select('p.uuid').whereRef('p.namespace_id', '=', 'n.id')),
        ]),
      );
    }
    const rows = await q.execute();
    return rows.map((r) => ({ namespaceId: r.id, namespace: r.name }));
  }

  async task(namespaceId: number): Promise<{ lastRanMs: number | null; status: string | null } | undefined> {
    const row = await this.db.selectFrom('autoprune_tasks').select(['last_ran_ms', 'status']).where('namespace_id', '=', namespaceId).executeTakeFirst();
    return row && { lastRanMs: row.last_ran_ms === null ? null : Number(row.last_ran_ms), status: row.status };
  }

  /** Up to `limit` repositories of the namespace with an id above `afterId`, by id. */
  async repositories(namespaceId: number, afterId: number, limit: number): Promise<PruneRepository[]> {
    return this.db.selectFrom('repositories').select(['id', 'name', 'state']).where('namespace_id', '=', namespaceId).where('id', '>', afterId).orderBy('id').limit(limit).execute();
  }

  /** The repositories with these ids (those that still exist), by id. */
  async repositoriesByIds(ids: readonly number[]): Promise<PruneRepository[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom('repositories').select(['id', 'name', 'state']).where('id', 'in', [...ids]).orderBy('id').execute();
  }

  /** The repository's live, visible tags as of `now` (hidden and expired tags are never pruned). */
  async liveTags(repositoryId: number, now: number): Promise<LiveTag[]> {
    const rows = await this.db
      .selectFrom('tags as t')
      .select(['t.id', 't.name', 't.lifetime_start'])
      .where('t.repository_id', '=', repositoryId)
      .where(liveTag('t', now))
      .where('t.hidden', '=', 0)
      // Immutable tags are never pruned, nor counted by number_of_tags (as Quay).
      .where('t.immutable', '=', 0)
      .execute();
    return rows.map((r) => ({ id: r.id, name: r.name, lifetimeStart: Number(r.lifetime_start) }));
  }

  /** Queues the namespace's task to run at the next poll. */
  private async queue(tx: Transaction<Database>, namespaceId: number): Promise<void> {
    await tx
      .insertInto('autoprune_tasks')
      .values({ namespace_id: namespaceId, last_ran_ms: null, status: 'queued' })
      .onConflict((oc) => oc.column('namespace_id').doUpdateSet({ last_ran_ms: null, status: 'queued' }))
      .execute();
  }

  private async duplicateOf(tx: Transaction<Database>, scope: PolicyScope, f: PolicyFields, except?: string): Promise<boolean> {
    let q = tx.selectFrom('autoprune_policies').select('uuid').where(inScope(scope))
      .where('method', '=', f.method)
      .where('value', '=', f.value)
      .where('tag_pattern_matches', '=', f.tagPatternMatches ? 1 : 0)
      .where('tag_pattern', f.tagPattern === null ? 'is' : '=', f.tagPattern);
    if (except !== undefined) q = q.where('uuid', '<>', except);
    return (await q.executeTakeFirst()) !== undefined;
  }

  /** Policy changes in one namespace are serialised (duplicate checks), by a lock on its row on PostgreSQL. */
  private async lockNamespace(tx: Transaction<Database>, namespaceId: number): Promise<void> {
    if (this.dialect.supportsRowLocks) await tx.selectFrom('namespaces').select('id').where('id', '=', namespaceId).forUpdate().execute();
  }

}

/** The filter of a scope's policies. */
function inScope(scope: PolicyScope) {
  return (eb: ExpressionBuilder<Database, 'autoprune_policies'>) =>
    eb.and([eb('namespace_id', '=', scope.namespaceId), scope.repositoryId === null ? eb('repository_id', 'is', null) : eb('repository_id', '=', scope.repositoryId)]);
}

function toColumns(f: PolicyFields) {
  return { method: f.method, value: f.value, value_text: f.valueText, tag_pattern: f.tagPattern, tag_pattern_matches: f.tagPatternMatches ? 1 : 0 };
}

function toRecord(r: PolicyRow): PolicyRecord {
  return {
    uuid: r.uuid,
    namespaceId: Number(r.namespace_id),
    repositoryId: r.repository_id === null ? null : Number(r.repository_id),
    method: r.method as PolicyMethod,
    value: Number(r.value),
    valueText: r.value_text,
    tagPattern: r.tag_pattern,
    tagPatternMatches: r.tag_pattern_matches === 1,
    createdAt: Number(r.created_at),
  };
}
