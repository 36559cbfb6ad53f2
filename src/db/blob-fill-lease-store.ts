/**
 * Leases of proxy-cache fills across processes (`blob_fills`, one row per digest being fetched from an
 * upstream). One statement decides who fills: an insert when nobody does, an update of an expired row
 * or of one whose owner's process is gone (process-liveness.ts), or a compare-and-swap against the row a
 * caller saw (its owner failed before the lease expired). The
 * owner renews the lease while the fill runs and deletes the row when it ends, committed or failed.
 */
import type { Kysely, Selectable } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { BlobFillsTable, Database } from './tables.js';

export type BlobFillLease = Selectable<BlobFillsTable>;

/** Who asks for a lease: the process's id and the URL the others stream its fills from. */
export interface FillOwner {
  owner: string;
  ownerUrl: string;
}

export class BlobFillLeaseStore {
  /**
   * `dialect` tells a lease whose process died (taken over at once, not when it expires); `processId`
   * is this process's id when it holds its liveness lock, stamped on its leases.
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect?: DialectAdapter,
    private readonly processId?: string,
  ) {}

  /**
   * Takes the fill of `digest` for `who` until `now + leaseMs` when nobody holds it, when its lease
   * expired or its owner's process is gone, or — with `replacing` — when the row is still exactly the
   * one the caller saw. Answers
   * whether it was taken, and the lease as it stands (the caller's when taken, absent when the row went
   * away meanwhile).
   */
  async take(digest: string, who: FillOwner, now: number, leaseMs: number, replacing?: BlobFillLease): Promise<{ taken: boolean; lease: BlobFillLease | undefined }> {
    const mine: BlobFillLease = { digest, owner: who.owner, owner_url: who.ownerUrl, expires_at: now + leaseMs, started_at: now, owner_process: this.processId ?? null };
    const inserted = await this.db.insertInto('blob_fills').values(mine).onConflict((oc) => oc.column('digest').doNothing()).executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return { taken: true, lease: mine };
    let update = this.db
      .updateTable('blob_fills')
      .set({ owner: mine.owner, owner_url: mine.owner_url, expires_at: mine.expires_at, started_at: now, owner_process: mine.owner_process })
      .where('digest', '=', digest);
    const gone = this.dialect?.processGone('owner_process');
    update = update.where((eb) =>
      eb.or([
        eb('expires_at', '<=', now),
        ...(gone ? [gone] : []),
        ...(replacing ? [eb.and([eb('owner', '=', replacing.owner), eb('expires_at', '=', replacing.expires_at)])] : []),
      ]),
    );
    const updated = await update.executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 1) return { taken: true, lease: mine };
    return { taken: false, lease: await this.find(digest) };
  }

  /** The lease of `digest`, expired or not; undefined when no fill of it is recorded. */
  async find(digest: string): Promise<BlobFillLease | undefined> {
    const row = await this.db.selectFrom('blob_fills').selectAll().where('digest', '=', digest).executeTakeFirst();
    return row && { ...row, expires_at: Number(row.expires_at), started_at: Number(row.started_at) };
  }

  /**
   * The lease of `digest` as `find` reads it, and whether its owner's process is gone (PostgreSQL, for
   * an owner that holds a liveness lock; false otherwise): a follower that polls the lease notices a
   * dead owner then, not when the lease expires.
   */
  async look(digest: string): Promise<{ lease: BlobFillLease; ownerGone: boolean } | undefined> {
    const gone = this.dialect?.processGone('owner_process');
    if (!gone) {
      const lease = await this.find(digest);
      return lease && { lease, ownerGone: false };
    }
    const row = await this.db.selectFrom('blob_fills').selectAll().select(gone.as('owner_gone')).where('digest', '=', digest).executeTakeFirst();
    if (!row) return undefined;
    const { owner_gone, ...lease } = row;
    return { lease: { ...lease, expires_at: Number(lease.expires_at), started_at: Number(lease.started_at) }, ownerGone: Boolean(owner_gone) };
  }

  /** Extends `owner`'s lease of `digest`; false when it no longer holds it. */
  async renew(digest: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    const res = await this.db.updateTable('blob_fills').set({ expires_at: now + leaseMs }).where('digest', '=', digest).where('owner', '=', owner).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Ends `owner`'s lease of `digest` (nothing when another process holds it now). */
  async release(digest: string, owner: string): Promise<void> {
    await this.db.deleteFrom('blob_fills').where('digest', '=', digest).where('owner', '=', owner).execute();
  }

  /** Removes leases that expired before `before` (fills of processes that died); returns how many. */
  async sweepExpired(before: number): Promise<number> {
    const res = await this.db.deleteFrom('blob_fills').where('expires_at', '<', before).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
