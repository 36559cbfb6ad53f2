/**
 * The schedule of organization-mirror discovery runs (`organization_mirrors`), as the org-mirror worker
 * sees it, with the same rules as repository mirrors (mirror-schedule-store.ts): due when SYNC_NOW
 * without a lease, or enabled, not SYNCING, no lease, start <= now and retries left, or SYNCING with an
 * expired lease or one whose process is gone (PostgreSQL, process-liveness.ts). A claim is a compare-and-swap on `sync_txn` (candidates read `FOR UPDATE SKIP LOCKED`
 * on PostgreSQL); release follows Quay (SUCCESS and a last failed retry: next start on the grid, 3
 * retries; FAIL: one retry less, same start; CANCEL: no start, no retries). Every write after the
 * claim is conditioned on its txn: a cancelled or taken-over run changes nothing any more.
 *
 * It also records what a run found (`organization_mirror_repositories`).
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, RawBuilder, SqlBool } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { afterRun } from './mirror-schedule-store.js';
import type { MirrorSyncStatus } from './mirror-store.js';
import { selectOrgMirrors, toOrgMirrorRecord, type OrgMirrorRecord } from './org-mirror-store.js';
import type { Database } from './tables.js';

export interface OrgMirrorClaim {
  record: OrgMirrorRecord;
  txn: string;
  /** Whether the run was asked for (sync-now): its repositories are then synced now too. */
  requested: boolean;
}

export class OrgMirrorScheduleStore {
  /**
   * `processId`: this process's id when it holds its liveness lock, stamped on its claims; on PostgreSQL
   * a run whose process is gone (process-liveness.ts) is due at once, not when its lease expires.
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
    private readonly processId?: string,
  ) {}

  /** Claims up to `limit` due organization mirrors for `holder` until `now + leaseMs`. */
  async claimDue(holder: string, now: number, leaseMs: number, limit: number): Promise<OrgMirrorClaim[]> {
    const claimAll = async (db: Kysely<Database>, rows: OrgMirrorRecord[]) => {
      const claims: OrgMirrorClaim[] = [];
      for (const record of rows) {
        const claim = await this.claimRow(db, record, holder, now, leaseMs);
        if (claim) claims.push(claim);
      }
      return claims;
    };
    if (this.dialect.supportsRowLocks) {
      return this.db.transaction().execute(async (tx) => claimAll(tx, (await this.dueQuery(tx, now, limit).forUpdate('om').skipLocked().execute()).map(toOrgMirrorRecord)));
    }
    return claimAll(this.db, (await this.dueQuery(this.db, now, limit).execute()).map(toOrgMirrorRecord));
  }

  /** Extends the lease; false when the claim is lost. */
  async renew(namespaceId: number, txn: string, now: number, leaseMs: number): Promise<boolean> {
    const res = await this.db.updateTable('organization_mirrors').set({ sync_expires_at: now + leaseMs }).where('namespace_id', '=', namespaceId).where('sync_txn', '=', txn).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Whether the claim still holds (not cancelled, not taken over). */
  async holds(namespaceId: number, txn: string): Promise<boolean> {
    return (await this.db.selectFrom('organization_mirrors').select('namespace_id').where('namespace_id', '=', namespaceId).where('sync_txn', '=', txn).executeTakeFirst()) !== undefined;
  }

  /** Gives the mirror back with the run's outcome; false when the claim was lost. */
  async release(namespaceId: number, txn: string, outcome: 'SUCCESS' | 'FAIL' | 'CANCEL', message: string | null, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      let q = tx.selectFrom('organization_mirrors').select(['sync_start_at', 'sync_interval_s', 'sync_retries_remaining']).where('namespace_id', '=', namespaceId).where('sync_txn', '=', txn);
      if (this.dialect.supportsRowLocks) q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) return false;
      const start = row.sync_start_at === null ? null : Number(row.sync_start_at);
      const interval = Number(row.sync_interval_s);
      const { startAt, retries } = afterRun(outcome, start, interval, row.sync_retries_remaining, now);
      await tx
        .updateTable('organization_mirrors')
        .set({
          sync_status: outcome,
          sync_start_at: startAt,
          sync_retries_remaining: retries,
          sync_expires_at: null,
          sync_holder: null,
          sync_txn: randomUUID(),
          last_finished_at: now,
          last_message: message === null ? null : message.slice(0, 8000),
          updated_at: now,
        })
        .where('namespace_id', '=', namespaceId)
        .where('sync_txn', '=', txn)
        .execute();
      return true;
    });
  }

  /** The discovered repositories of the organization mirror, by name. */
  async discovered(namespaceId: number): Promise<Map<string, { repositoryId: number | null; vanishedAt: number | null }>> {
    const rows = await this.db.selectFrom('organization_mirror_repositories').select(['name', 'repository_id', 'vanished_at']).where('namespace_id', '=', namespaceId).execute();
    return new Map(rows.map((r) => [r.name, { repositoryId: r.repository_id === null ? null : Number(r.repository_id), vanishedAt: r.vanished_at === null ? null : Number(r.vanished_at) }]));
  }

  /** Records a repository found at the source (found again: no longer vanished). */
  async found(namespaceId: number, name: string, repositoryId: number | null, message: string | null, now: number): Promise<void> {
    await this.db
      .insertInto('organization_mirror_repositories')
      .values({ namespace_id: namespaceId, name, repository_id: repositoryId, discovered_at: now, vanished_at: null, message })
      .onConflict((oc) => oc.columns(['namespace_id', 'name']).doUpdateSet({ repository_id: repositoryId, vanished_at: null, message }))
      .execute();
  }

  /** Marks a repository the source no longer has (or the filters no longer select). */
  async vanished(namespaceId: number, name: string, message: string, now: number): Promise<void> {
    await this.db.updateTable('organization_mirror_repositories').set({ vanished_at: now, message }).where('namespace_id', '=', namespaceId).where('name', '=', name).where('vanished_at', 'is', null).execute();
  }

  private dueQuery(db: Kysely<Database>, now: number, limit: number) {
    return selectOrgMirrors(db)
      .where((eb) =>
        eb.or([
          eb.and([eb('om.sync_status', '=', 'SYNC_NOW'), eb('om.sync_expires_at', 'is', null)]),
          eb.and([
            eb('om.is_enabled', '=', 1),
            eb('om.sync_status', '!=', 'SYNCING'),
            eb('om.sync_expires_at', 'is', null),
            eb('om.sync_start_at', '<=', now),
            eb('om.sync_retries_remaining', '>', 0),
          ]),
          eb.and([eb('om.sync_status', '=', 'SYNCING'), eb.or([eb('om.sync_expires_at', '<=', now), ...this.gone('om.sync_process')])]),
        ]),
      )
      .orderBy('om.sync_start_at', 'asc')
      .orderBy('om.namespace_id', 'asc')
      .limit(limit);
  }

  /** The run's process is gone (PostgreSQL): its lease is taken over at once. */
  private gone(column: string): Array<RawBuilder<SqlBool>> {
    const gone = this.dialect.processGone(column);
    return gone ? [gone] : [];
  }

  private async claimRow(db: Kysely<Database>, record: OrgMirrorRecord, holder: string, now: number, leaseMs: number): Promise<OrgMirrorClaim | undefined> {
    const txn = randomUUID();
    const res = await db
      .updateTable('organization_mirrors')
      .set({ sync_status: 'SYNCING', sync_txn: txn, sync_holder: holder, sync_process: this.processId ?? null, sync_expires_at: now + leaseMs })
      .where('namespace_id', '=', record.namespaceId)
      .where('sync_txn', '=', record.sync.txn)
      .where((eb) => eb.or([eb('sync_status', '!=', 'SYNCING'), eb('sync_expires_at', '<=', now), ...this.gone('sync_process')]))
      .where('sync_status', '!=', 'CANCEL')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return undefined;
    const sync = { ...record.sync, status: 'SYNCING' as MirrorSyncStatus, txn, holder, expiresAt: now + leaseMs };
    return { record: { ...record, sync }, txn, requested: record.sync.status === 'SYNC_NOW' };
  }
}
