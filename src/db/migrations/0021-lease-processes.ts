import type { Kysely, Migration } from 'kysely';

/**
 * The process behind the leases and guards migration 0020 left out, so that those of a process that
 * died are taken over (or ignored) at once rather than when they expire (db/process-liveness.ts). Null
 * when the holder holds no liveness lock (SQLite, a CLI command): its lease lapses only by expiring.
 *
 *   worker_leases.holder_process          the process of `holder` (a GC pass)
 *   blob_guards.owner_process             the process of a 'write' guard's writer
 *   repository_mirrors.sync_process       the process of `sync_holder` (a mirror run)
 *   organization_mirrors.sync_process     the process of `sync_holder` (a discovery run)
 */
export function leaseProcesses(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('worker_leases').addColumn('holder_process', 'text').execute();
      await db.schema.alterTable('blob_guards').addColumn('owner_process', 'text').execute();
      await db.schema.alterTable('repository_mirrors').addColumn('sync_process', 'text').execute();
      await db.schema.alterTable('organization_mirrors').addColumn('sync_process', 'text').execute();
    },
  };
}
