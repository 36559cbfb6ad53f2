/** Builds the garbage-collection worker over the database's job leases. */
import type { DatabaseHandle } from '../db/connect.js';
import { WorkerLeaseStore } from '../db/worker-lease-store.js';
import type { GarbageCollector } from '../registry/gc.js';
import { GcWorker, type GcWorkerDeps } from '../workers/gc/gc-worker.js';

/** The worker running `gc` passes when the `gc` lease is due and free. */
export function createGcWorker(db: DatabaseHandle, gc: GarbageCollector, opts: Omit<GcWorkerDeps, 'leases' | 'gc'>): GcWorker {
  return new GcWorker({ leases: new WorkerLeaseStore(db.db, db.dialect, db.processId), gc, ...opts });
}
