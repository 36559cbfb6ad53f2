/**
 * Leases of scheduled jobs (`worker_leases`, one row per job name): any number of worker processes may
 * try to take a job; one statement decides, so exactly one gets it until the lease expires or its
 * holder's process is gone (process-liveness.ts: taken over at once), or it is released. A job that
 * finished less than `minIntervalMs` ago is not due.
 */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export class WorkerLeaseStore {
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
   * Takes the job for `holder` until `now + leaseMs` if it is free (never held, released, expired, or its
   * holder's process is gone) and due; true when taken.
   */
  async tryAcquire(name: string, holder: string, now: number, leaseMs: number, minIntervalMs: number): Promise<boolean> {
    await this.db
      .insertInto('worker_leases')
      .values({ name, holder: null, expires_at: 0, finished_at: null })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const gone = this.dialect?.processGone('holder_process');
    const res = await this.db
      .updateTable('worker_leases')
      .set({ holder, expires_at: now + leaseMs, holder_process: this.processId ?? null })
      .where('name', '=', name)
      .where((eb) => eb.or([eb('expires_at', '<=', now), ...(gone ? [gone] : [])]))
      .where((eb) => eb.or([eb('finished_at', 'is', null), eb('finished_at', '<=', now - minIntervalMs)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Extends the holder's lease; false when it no longer holds it (it expired, or was taken over). */
  async renew(name: string, holder: string, now: number, leaseMs: number): Promise<boolean> {
    const res = await this.db
      .updateTable('worker_leases')
      .set({ expires_at: now + leaseMs })
      .where('name', '=', name)
      .where('holder', '=', holder)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Gives the job back; `finished` records a completed run (the next is due `minIntervalMs` later). */
  async release(name: string, holder: string, now: number, finished: boolean): Promise<void> {
    const free = { holder: null, expires_at: 0, holder_process: null };
    await this.db
      .updateTable('worker_leases')
      .set(finished ? { ...free, finished_at: now } : free)
      .where('name', '=', name)
      .where('holder', '=', holder)
      .execute();
  }
}
