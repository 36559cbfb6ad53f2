/**
 * The schedule of repository mirrors (`repository_mirrors`), as the mirror workers see it: which
 * mirrors are due, taking one (a lease), keeping it, reporting progress, and giving it back with the
 * outcome. Every write after the claim is conditioned on the claim's `sync_txn`: a worker that lost its
 * lease (it expired and another worker took the mirror) changes nothing any more.
 *
 * Due (repository in state MIRROR), oldest `sync_start_at` first:
 *   SYNC_NOW without a lease                                   (even when disabled: "sync now" is explicit)
 *   enabled, not SYNCING, no lease, start <= now, retries > 0  (the schedule)
 *   SYNCING with an expired lease                              (its worker died; Quay leaves these stuck)
 *   SYNCING whose process is gone                              (the same, at once: PostgreSQL, process-liveness.ts)
 *
 * Claim: SYNCING, a new txn, `sync_expires_at` = now + lease, `run_*` reset, conditioned on the txn read
 * (compare-and-swap); on PostgreSQL the candidates are read `FOR UPDATE SKIP LOCKED`, so concurrent
 * workers take different mirrors instead of colliding on the same one.
 *
 * Release (Quay's release_mirror, §2.3):
 *   SUCCESS                 next start on the start-date grid, retries 3
 *   FAIL, retries left > 1  retries - 1, start unchanged (retried on the next poll)
 *   FAIL, last retry        next start on the grid, retries 3
 *   CANCEL                  start null, retries 0 (only sync-now starts it again)
 * and always: no lease, a new txn, `run_*` cleared, `last_*` filled. A mirror cancelled while its run
 * went on is released as CANCEL whatever the run reports.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, RawBuilder, SqlBool } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { selectMirrors, toMirrorRecord, type MirrorRecord, type MirrorRunOutcome, type MirrorSyncStatus } from './mirror-store.js';
import type { Database } from './tables.js';

export const MIRROR_RETRIES = 3;

/** The run's position, as the API shows it while it syncs. */
export interface MirrorProgress {
  tagsTotal?: number | null;
  tagsDone?: number;
  bytes?: number;
  currentTag?: string | null;
}

/** How a run ended. `status`: what the schedule records (PARTIAL is recorded as FAIL, as Quay does). */
export interface MirrorRelease {
  outcome: MirrorRunOutcome;
  message: string | null;
  bytes: number;
  startedAt: number;
}

/** A claimed mirror: the record as claimed, and the txn every later write is conditioned on. */
export interface MirrorClaim {
  record: MirrorRecord;
  txn: string;
}

/** The start after `now` on the grid `start + k * interval` (Quay: now + interval − (now − start) % interval). */
export function nextStart(start: number | null, intervalS: number, now: number): number {
  const interval = Math.max(1, intervalS) * 1000;
  if (start === null) return now + interval;
  if (start > now) return start;
  return now + (interval - ((now - start) % interval));
}

/**
 * A mirror's schedule once a run ended (repository and organization mirrors alike): a success runs
 * again at the next interval; a failure retries at the same start while retries remain, then waits for
 * the next interval with a fresh count; a cancel unschedules it until someone asks again.
 */
export function afterRun(
  outcome: MirrorRunOutcome,
  start: number | null,
  intervalS: number,
  retriesRemaining: number,
  now: number,
): { status: 'SUCCESS' | 'FAIL' | 'CANCEL'; startAt: number | null; retries: number } {
  if (outcome === 'CANCEL') return { status: 'CANCEL', startAt: null, retries: 0 };
  if (outcome === 'SUCCESS') return { status: 'SUCCESS', startAt: nextStart(start, intervalS, now), retries: MIRROR_RETRIES };
  const retries = retriesRemaining - 1;
  if (retries > 0 && start !== null) return { status: 'FAIL', startAt: start, retries };
  return { status: 'FAIL', startAt: nextStart(start, intervalS, now), retries: MIRROR_RETRIES };
}

export class MirrorScheduleStore {
  /**
   * `processId`: this process's id when it holds its liveness lock, stamped on its claims; on PostgreSQL
   * a run whose process is gone (process-liveness.ts) is due at once, not when its lease expires.
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
    private readonly processId?: string,
  ) {}

  /** Mirrors due at `now` (see the file comment), oldest start first, at most `limit`. */
  async due(now: number, limit: number): Promise<MirrorRecord[]> {
    const rows = await this.dueQuery(this.db, now, limit).execute();
    return rows.map(toMirrorRecord);
  }

  /**
   * Claims up to `limit` due mirrors for `holder` until `now + leaseMs`; returns those it got (a mirror
   * another worker claimed first is skipped).
   */
  async claimDue(holder: string, now: number, leaseMs: number, limit: number): Promise<MirrorClaim[]> {
    if (this.dialect.supportsRowLocks) {
      return this.db.transaction().execute(async (tx) => {
        const rows = await this.dueQuery(tx, now, limit).forUpdate('m').skipLocked().execute();
        const claims: MirrorClaim[] = [];
        for (const row of rows) {
          const claim = await this.claimRow(tx, toMirrorRecord(row), holder, now, leaseMs);
          if (claim) claims.push(claim);
        }
        return claims;
      });
    }
    const claims: MirrorClaim[] = [];
    for (const record of await this.due(now, limit)) {
      const claim = await this.claimRow(this.db, record, holder, now, leaseMs);
      if (claim) claims.push(claim);
    }
    return claims;
  }

  /** Claims one mirror read earlier, if it is still as read (its txn) and still due. */
  async claim(record: MirrorRecord, holder: string, now: number, leaseMs: number): Promise<MirrorClaim | undefined> {
    return this.claimRow(this.db, record, holder, now, leaseMs);
  }

  /** Extends the lease; false when the claim is lost. */
  async renew(repositoryId: number, txn: string, now: number, leaseMs: number): Promise<boolean> {
    const res = await this.db
      .updateTable('repository_mirrors')
      .set({ sync_expires_at: now + leaseMs })
      .where('repository_id', '=', repositoryId)
      .where('sync_txn', '=', txn)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Records the run's progress and returns the mirror's status now (CANCEL when someone cancelled it),
   * or undefined when the claim is lost.
   */
  async progress(repositoryId: number, txn: string, p: MirrorProgress): Promise<MirrorSyncStatus | undefined> {
    const set: Record<string, unknown> = {};
    if (p.tagsTotal !== undefined) set.run_tags_total = p.tagsTotal;
    if (p.tagsDone !== undefined) set.run_tags_done = p.tagsDone;
    if (p.bytes !== undefined) set.run_bytes = p.bytes;
    if (p.currentTag !== undefined) set.run_current_tag = p.currentTag;
    if (Object.keys(set).length) {
      const res = await this.db.updateTable('repository_mirrors').set(set).where('repository_id', '=', repositoryId).where('sync_txn', '=', txn).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return undefined;
    }
    return this.status(repositoryId, txn);
  }

  /** The mirror's status, or undefined when the claim `txn` is lost. */
  async status(repositoryId: number, txn: string): Promise<MirrorSyncStatus | undefined> {
    const row = await this.db.selectFrom('repository_mirrors').select('sync_status').where('repository_id', '=', repositoryId).where('sync_txn', '=', txn).executeTakeFirst();
    return row?.sync_status as MirrorSyncStatus | undefined;
  }

  /**
   * Gives the claim up without an outcome (this process is stopping): the lease expires now, so the
   * next worker to poll takes the mirror over. False when the claim was lost already.
   */
  async abandon(repositoryId: number, txn: string, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable('repository_mirrors')
      .set({ sync_expires_at: now, sync_holder: null })
      .where('repository_id', '=', repositoryId)
      .where('sync_txn', '=', txn)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Gives the mirror back with the run's outcome (see the file comment); false when the claim was lost. */
  async release(repositoryId: number, txn: string, run: MirrorRelease, now: number): Promise<{ released: boolean; status?: MirrorSyncStatus }> {
    return this.db.transaction().execute(async (tx) => {
      let q = tx
        .selectFrom('repository_mirrors')
        .select(['sync_status', 'sync_start_at', 'sync_interval_s', 'sync_retries_remaining'])
        .where('repository_id', '=', repositoryId)
        .where('sync_txn', '=', txn);
      if (this.dialect.supportsRowLocks) q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) return { released: false };
      const cancelled = row.sync_status === 'CANCEL' || run.outcome === 'CANCEL';
      const outcome: MirrorRunOutcome = cancelled ? 'CANCEL' : run.outcome;
      const start = row.sync_start_at === null ? null : Number(row.sync_start_at);
      const interval = Number(row.sync_interval_s);
      const { status, startAt, retries } = afterRun(outcome, start, interval, row.sync_retries_remaining, now);
      await tx
        .updateTable('repository_mirrors')
        .set({
          sync_status: status,
          sync_start_at: startAt,
          sync_retries_remaining: retries,
          sync_expires_at: null,
          sync_txn: randomUUID(),
          sync_holder: null,
          run_started_at: null,
          run_tags_total: null,
          run_tags_done: null,
          run_bytes: null,
          run_current_tag: null,
          last_started_at: run.startedAt,
          last_finished_at: now,
          last_outcome: outcome,
          last_message: run.message === null ? null : run.message.slice(0, 8000),
          last_bytes: run.bytes,
          updated_at: now,
        })
        .where('repository_id', '=', repositoryId)
        .where('sync_txn', '=', txn)
        .execute();
      return { released: true, status };
    });
  }

  private dueQuery(db: Kysely<Database>, now: number, limit: number) {
    return selectMirrors(db)
      .where('r.state', '=', 'MIRROR')
      .where((eb) =>
        eb.or([
          eb.and([eb('m.sync_status', '=', 'SYNC_NOW'), eb('m.sync_expires_at', 'is', null)]),
          eb.and([
            eb('m.is_enabled', '=', 1),
            eb('m.sync_status', '!=', 'SYNCING'),
            eb('m.sync_expires_at', 'is', null),
            eb('m.sync_start_at', '<=', now),
            eb('m.sync_retries_remaining', '>', 0),
          ]),
          eb.and([eb('m.sync_status', '=', 'SYNCING'), eb.or([eb('m.sync_expires_at', '<=', now), ...this.gone('m.sync_process')])]),
        ]),
      )
      .orderBy('m.sync_start_at', 'asc')
      .orderBy('m.repository_id', 'asc')
      .limit(limit);
  }

  /** The run's process is gone (PostgreSQL): its lease is taken over at once. */
  private gone(column: string): Array<RawBuilder<SqlBool>> {
    const gone = this.dialect.processGone(column);
    return gone ? [gone] : [];
  }

  private async claimRow(db: Kysely<Database>, record: MirrorRecord, holder: string, now: number, leaseMs: number): Promise<MirrorClaim | undefined> {
    const txn = randomUUID();
    const res = await db
      .updateTable('repository_mirrors')
      .set({
        sync_status: 'SYNCING',
        sync_txn: txn,
        sync_holder: holder,
        sync_process: this.processId ?? null,
        sync_expires_at: now + leaseMs,
        run_started_at: now,
        run_tags_total: null,
        run_tags_done: 0,
        run_bytes: 0,
        run_current_tag: null,
      })
      .where('repository_id', '=', record.repositoryId)
      .where('sync_txn', '=', record.sync.txn)
      // Still due: not claimed by someone else meanwhile (a lease that expired or whose process died only).
      .where((eb) => eb.or([eb('sync_status', '!=', 'SYNCING'), eb('sync_expires_at', '<=', now), ...this.gone('sync_process')]))
      .where('sync_status', '!=', 'CANCEL')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return undefined;
    const sync = { ...record.sync, status: 'SYNCING' as const, txn, holder, expiresAt: now + leaseMs, run: { startedAt: now, tagsTotal: null, tagsDone: 0, bytes: 0, currentTag: null } };
    return { record: { ...record, sync }, txn };
  }
}
