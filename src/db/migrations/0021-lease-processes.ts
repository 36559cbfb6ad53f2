import type { Kysely, Migration } from 'kysely';

/**
 * The process behind the leases and guards migration 0020 left out, so that those of a process that
 * died are taken over (or ignored) at once rather than when they expire (db/process-liveness.ts). Null
 * when the holder holds no liveness lock (SQLite, a CLI command): its lease lapses only by expiring.
 *
 *   worker_leases.holder_process   the process of `holder` (a GC pass)
 *   blob_guards.owner_process      the process of the writer (or the storage sweep) holding the guard
 */
export function leaseProcesses(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('worker_leases').addColumn('holder_process', 'text').execute();
      await db.schema.alterTable('blob_guards').addColumn('owner_process', 'text').execute();
    },
  };
}
