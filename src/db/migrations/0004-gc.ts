import { sql, type Kysely, type Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * The time machine and garbage collection:
 *
 *   namespaces.time_machine_s   how long ended tags stay restorable; null = `gc.time_machine_default`
 *   manifests.pushed_at         last push of the manifest (null: `created_at`); GC spares manifests
 *                               pushed within `gc.grace_period` (index children pushed before their index)
 *   blob_guards                 per-digest guards between blob writers and GC (see db/blob-guard-store.ts):
 *                               kind 'write' (a writer is committing bytes) or 'delete' (GC is deleting them)
 *   worker_leases               one row per scheduled job: who runs it until when, when it last finished
 */
export function gc(d: DialectAdapter): Migration {
  const id = (c: any) => (d.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey());
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('namespaces').addColumn('time_machine_s', d.bigintType).execute();
      await db.schema.alterTable('manifests').addColumn('pushed_at', d.bigintType).execute();

      await db.schema
        .createTable('blob_guards')
        .addColumn('id', d.idType as never, id)
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('expires_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('blob_guards_digest').on('blob_guards').columns(['digest', 'kind']).execute();
      await db.schema.createIndex('blob_guards_expires').on('blob_guards').column('expires_at').execute();

      await db.schema
        .createTable('worker_leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text')
        .addColumn('expires_at', d.bigintType, (c) => c.notNull().defaultTo(0))
        .addColumn('finished_at', d.bigintType)
        .execute();

      // GC pages through ended tags by the end of their lifetime, and open ones by their expiry.
      await sql`create index tags_lifetime_end on tags (lifetime_end, id) where lifetime_end is not null`.execute(db);
      await sql`create index tags_open_expiry on tags (expires_at, id) where lifetime_end is null and expires_at is not null`.execute(db);
    },
  };
}
