/**
 * The replication queue (`replication_jobs`): one row per blob digest still to be copied to a location.
 *
 * A job is taken under a lease: `claim` stamps `lease_owner` and `lease_expires_at` on up to N due jobs
 * that nobody holds, whose lease expired (its worker died or hung) or whose worker's process is gone
 * (`lease_process`, process-liveness.ts: taken over at once), in one conditional update per batch that
 * re-checks those conditions, so two workers never hold one job at once; on PostgreSQL the candidates
 * are picked `FOR UPDATE SKIP LOCKED`, so concurrent claims take distinct jobs instead of waiting.
 * Taking over a lease counts as a failed attempt (`last_error` names the worker that lost it), so a
 * copy that kills or hangs every worker shows among the failures instead of looping unseen.
 * The holder renews the lease while it copies (or waits to copy); `finish` records the placement, then
 * deletes the job; `fail` releases it with an exponential backoff. Enqueueing is idempotent (one job per
 * digest and location).
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database, ReplicationJobsTable } from './tables.js';

export type ReplicationJobRow = Selectable<ReplicationJobsTable>;

export interface ReplicationJob {
  id: number;
  digest: string;
  location: string;
  /** Failed attempts before this one. */
  attempts: number;
  leaseOwner: string;
  leaseExpiresAt: number;
  createdAt: number;
}

export interface Backoff {
  /** Delay after the first failure (ms); doubles with each further failure. */
  baseMs: number;
  /** The longest delay (ms). */
  maxMs: number;
}

/** Delay before attempt `attempts + 1` after `attempts` failures (ms). */
export function backoffDelay(attempts: number, b: Backoff): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 40));
}

export class ReplicationJobStore {
  /** `processId`: this process's id when it holds its liveness lock, stamped on its leases. */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
    private readonly processId?: string,
  ) {}

  /**
   * Queues copies of `digest`, due at once, to each of `locations` that no placement records; existing
   * jobs stay as they are. Returns how many were added. (A copy finishing at the same moment may still
   * leave a redundant job, which then only finds the blob in place.) With `evenIfPlaced`, placements are
   * not looked at (a job that only records the placement and looks for further targets).
   */
  async enqueue(digest: string, locations: readonly string[], now: number, opts: { evenIfPlaced?: boolean } = {}): Promise<number> {
    let added = 0;
    for (const location of new Set(locations)) {
      const placed = opts.evenIfPlaced ? sql`false` : sql`exists (select 1 from blob_placements p where p.digest = ${digest} and p.location = ${location})`;
      const res = await sql`insert into replication_jobs (digest, location, next_attempt_at, created_at)
        select cast(${digest} as text), cast(${location} as text), cast(${now} as bigint), cast(${now} as bigint)
        where not ${placed}
        on conflict (digest, location) do nothing`.execute(this.db);
      added += Number(res.numAffectedRows ?? 0n);
    }
    return added;
  }

  /**
   * Queues copies of `digest`, due at once, to each target of the namespace of repository `repositoryId`
   * (its own targets, `namespace_replication_targets`) that is among `locations` and that no placement
   * records; existing jobs stay as they are. One statement, which finds nothing to do when the namespace
   * has no targets of its own. Returns how many were added.
   */
  async enqueueNamespaceTargets(digest: string, repositoryId: number, locations: readonly string[], now: number): Promise<number> {
    if (!locations.length) return 0;
    const res = await sql`insert into replication_jobs (digest, location, next_attempt_at, created_at)
      select cast(${digest} as text), t.location, cast(${now} as bigint), cast(${now} as bigint)
      from namespace_replication_targets t
      inner join repositories r on r.namespace_id = t.namespace_id
      where r.id = ${repositoryId}
        and t.location in (${sql.join(locations.map((l) => sql`${l}`))})
        and not exists (select 1 from blob_placements p where p.digest = ${digest} and p.location = t.location)
      on conflict (digest, location) do nothing`.execute(this.db);
    return Number(res.numAffectedRows ?? 0n);
  }

  /**
   * Queues a copy to `location` of every blob recorded in `blobs` with id above `afterId` (up to `limit`
   * blobs, by id) that no placement in `location` records; `namespaceId` restricts it to blobs that
   * repositories of that namespace link. Returns how many blobs were looked at, how many jobs were added
   * and the last blob id looked at (undefined when the scan is through).
   */
  async enqueueMissing(location: string, afterId: number, limit: number, now: number, namespaceId?: number): Promise<{ scanned: number; queued: number; next?: number }> {
    let q = this.db
      .selectFrom('blobs as b')
      .select('b.id')
      .where('b.id', '>', afterId)
      .orderBy('b.id')
      .limit(limit);
    if (namespaceId !== undefined) {
      q = q.where(({ exists, selectFrom }) =>
        exists(selectFrom('repository_blobs as rb').innerJoin('repositories as r', 'r.id', 'rb.repository_id').select('rb.blob_id').whereRef('rb.blob_id', '=', 'b.id').where('r.namespace_id', '=', namespaceId)),
      );
    }
    const ids = (await q.execute()).map((r) => Number(r.id));
    if (!ids.length) return { scanned: 0, queued: 0 };
    const res = await this.db
      .insertInto('replication_jobs')
      .columns(['digest', 'location', 'next_attempt_at', 'created_at'])
      .expression((eb) =>
        eb
          .selectFrom('blobs as b')
          .select((s) => ['b.digest', sql.lit(location).as('location'), sql<number>`${now}`.as('next_attempt_at'), sql<number>`${now}`.as('created_at')] as never)
          .where('b.id', 'in', ids)
          .where(({ not, exists, selectFrom }) => not(exists(selectFrom('blob_placements as p').select('p.digest').whereRef('p.digest', '=', 'b.digest').where('p.location', '=', location)))),
      )
      .onConflict((oc) => oc.columns(['digest', 'location']).doNothing())
      .executeTakeFirst();
    const queued = Number(res.numInsertedOrUpdatedRows ?? 0n);
    return ids.length === limit ? { scanned: ids.length, queued, next: ids[ids.length - 1]! } : { scanned: ids.length, queued };
  }

  /**
   * Leases up to `limit` due jobs (`next_attempt_at <= now`, free, with an expired lease or one whose
   * process is gone) to `owner` until `now + leaseMs`, oldest due first; returns them. The jobs' blobs together stay within
   * `maxBytes` (by their recorded size; one job is taken whatever its size), so that a worker claiming
   * a batch takes many small copies at once but large ones one by one. A job taken over from another
   * lease has one more attempt counted, and the lost lease as its last error.
   */
  async claim(owner: string, limit: number, now: number, leaseMs: number, maxBytes = Infinity): Promise<ReplicationJob[]> {
    if (limit <= 0) return [];
    const gone = this.dialect.processGone('lease_process');
    const free = (eb: any) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires_at', '<=', now), ...(gone ? [gone] : [])]);
    return this.db.transaction().execute(async (tx) => {
      let q = tx
        .selectFrom('replication_jobs as j')
        .leftJoin('blobs as b', 'b.digest', 'j.digest')
        .select(['j.id', 'b.size'])
        .where('j.next_attempt_at', '<=', now)
        .where(free)
        .orderBy('j.next_attempt_at')
        .orderBy('j.id')
        .limit(limit);
      if (this.dialect.supportsRowLocks) q = q.forUpdate('j').skipLocked();
      const ids: number[] = [];
      let bytes = 0;
      for (const r of await q.execute()) {
        bytes += Number(r.size ?? 0);
        if (ids.length && bytes > maxBytes) break;
        ids.push(Number(r.id));
      }
      if (!ids.length) return [];
      const rows = await tx
        .updateTable('replication_jobs')
        .set({
          lease_owner: owner,
          lease_expires_at: now + leaseMs,
          lease_process: this.processId ?? null,
          // Read before the update: a lease still recorded here expired without its worker releasing it.
          attempts: sql<number>`case when lease_owner is null then attempts else attempts + 1 end`,
          state: sql<string>`case when lease_owner is null then state else 'retrying' end`,
          last_error: sql<string | null>`case when lease_owner is null then last_error when lease_expires_at <= ${now} then 'the lease of ' || lease_owner || ' expired before its copy finished (the worker stopped or hung)' else 'the process of ' || lease_owner || ' died before its copy finished' end`,
        })
        .where('id', 'in', ids)
        .where('next_attempt_at', '<=', now)
        .where(free)
        .returning(['id', 'digest', 'location', 'attempts', 'lease_owner', 'lease_expires_at', 'created_at'])
        .execute();
      return rows
        .map((r) => ({ id: Number(r.id), digest: r.digest, location: r.location, attempts: Number(r.attempts), leaseOwner: r.lease_owner!, leaseExpiresAt: Number(r.lease_expires_at), createdAt: Number(r.created_at) }))
        .sort((a, b) => ids.indexOf(a.id) - ids.indexOf(b.id));
    });
  }

  /** Extends `owner`'s lease of job `id` to `now + leaseMs`; false when it no longer holds it. */
  async renew(id: number, owner: string, now: number, leaseMs: number): Promise<boolean> {
    return (await this.renewAll([id], owner, now, leaseMs)).has(id);
  }

  /** `renew` for several jobs in one statement; returns the ids `owner` still holds (now extended). */
  async renewAll(ids: readonly number[], owner: string, now: number, leaseMs: number): Promise<Set<number>> {
    if (!ids.length) return new Set();
    const rows = await this.db.updateTable('replication_jobs').set({ lease_expires_at: now + leaseMs }).where('id', 'in', [...ids]).where('lease_owner', '=', owner).returning('id').execute();
    return new Set(rows.map((r) => Number(r.id)));
  }

  /**
   * The copy of job `id` is done: records that `location` holds `digest`, then deletes the job (whoever
   * holds its lease: the bytes are there either way). Two statements, no transaction: a crash between
   * them leaves a job that, run again, finds the placement and only deletes itself.
   */
  async finish(id: number, digest: string, location: string, now: number): Promise<void> {
    await this.db.insertInto('blob_placements').values({ digest, location, created_at: now }).onConflict((oc) => oc.columns(['digest', 'location']).doNothing()).execute();
    await this.db.deleteFrom('replication_jobs').where('id', '=', id).execute();
  }

  /** Drops job `id` without a placement (its blob is gone). */
  async drop(id: number): Promise<void> {
    await this.db.deleteFrom('replication_jobs').where('id', '=', id).execute();
  }

  /**
   * Records a failed attempt of `owner`'s job `id`: releases the lease and makes the job due again after
   * the backoff for its attempts so far. False when `owner` no longer held it (nothing changes).
   */
  async fail(id: number, owner: string, error: string, now: number, backoff: Backoff): Promise<boolean> {
    const row = await this.db.selectFrom('replication_jobs').select('attempts').where('id', '=', id).where('lease_owner', '=', owner).executeTakeFirst();
    if (!row) return false;
    const attempts = Number(row.attempts) + 1;
    const res = await this.db
      .updateTable('replication_jobs')
      .set({ state: 'retrying', attempts, next_attempt_at: now + backoffDelay(attempts, backoff), lease_owner: null, lease_expires_at: null, lease_process: null, last_error: error.slice(0, 1000) })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('attempts', '=', attempts - 1)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Releases `owner`'s leases of jobs `ids` without counting an attempt (the worker is stopping). */
  async release(ids: readonly number[], owner: string): Promise<void> {
    if (ids.length) await this.db.updateTable('replication_jobs').set({ lease_owner: null, lease_expires_at: null, lease_process: null }).where('id', 'in', [...ids]).where('lease_owner', '=', owner).execute();
  }

  /** Of `digests`, the locations each has a copy queued to (in any state). */
  async queuedFor(digests: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (!digests.length) return out;
    const rows = await this.db.selectFrom('replication_jobs').select(['digest', 'location']).where('digest', 'in', [...new Set(digests)]).execute();
    for (const r of rows) out.set(r.digest, [...(out.get(r.digest) ?? []), r.location]);
    return out;
  }

  /** The job row of `digest` and `location`, if queued. */
  async find(digest: string, location: string): Promise<ReplicationJobRow | undefined> {
    const row = await this.db.selectFrom('replication_jobs').selectAll().where('digest', '=', digest).where('location', '=', location).executeTakeFirst();
    return row && { ...row, id: Number(row.id), attempts: Number(row.attempts), next_attempt_at: Number(row.next_attempt_at), lease_expires_at: row.lease_expires_at === null ? null : Number(row.lease_expires_at), created_at: Number(row.created_at) };
  }

  /** Jobs queued per location (the backlog), for the metrics gauge. */
  async backlog(): Promise<Map<string, number>> {
    const rows = await this.db.selectFrom('replication_jobs').select(['location', (eb) => eb.fn.countAll<string | number>().as('n')]).groupBy('location').execute();
    return new Map(rows.map((r) => [r.location, Number(r.n)]));
  }
}
