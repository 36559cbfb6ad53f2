/**
 * Leases of scheduled jobs (`worker_leases`, one row per job name): any number of worker processes may
 * try to take a job; one statement decides, so exactly one gets it until the lease expires (its holder
 * died) or is released. A job that finished less than `minIntervalMs` ago is not due.
 */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export class WorkerLeaseStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Takes the job for `holder` until `now + leaseMs` if it is free and due; true when taken. */
  async tryAcquire(name: string, holder: string, now: number, leaseMs: number, minIntervalMs: number): Promise<boolean> {
    await this.db
      .insertInto('worker_leases')
      .values({ name, holder: null, expires_at: 0, finished_at: null })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const res = await this.db
      .updateTable('worker_leases')
      .set({ holder, expires_at: now + leaseMs })
      .where('name', '=', name)
      .where('expires_at', '<=', now)
      .where((eb) => eb.or([eb('finished_at', 'is', null), eb('finished_at', '<=', now - minIntervalMs)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Extends the holder's lease; false when it no longer holds it. */
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
    await this.db
      .updateTable('worker_leases')
      .set(finished ? { holder: null, expires_at: 0, finished_at: now } : { holder: null, expires_at: 0 })
      .where('name', '=', name)
      .where('holder', '=', holder)
      .execute();
  }
}
