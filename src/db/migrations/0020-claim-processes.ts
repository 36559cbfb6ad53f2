import type { Kysely, Migration } from 'kysely';

/**
 * The process behind a claim, whose liveness lock says whether it still lives (db/process-liveness.ts):
 * a claim of a process that died is taken over at once instead of when it expires. Null when the
 * claiming process holds no such lock (SQLite, a CLI command): that claim lapses only by expiring.
 *
 *   uploads.chunk_process            the process of `chunk_writer`
 *   blob_fills.owner_process         the process of `owner`
 *   replication_jobs.lease_process   the process of `lease_owner`
 */
export function claimProcesses(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('uploads').addColumn('chunk_process', 'text').execute();
      await db.schema.alterTable('blob_fills').addColumn('owner_process', 'text').execute();
      await db.schema.alterTable('replication_jobs').addColumn('lease_process', 'text').execute();
    },
  };
}
