import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Replication between storage locations (db/blob-placement-store.ts, db/replication-job-store.ts,
 * db/replication-target-store.ts):
 *
 *   blob_placements                one row per blob digest and location that holds its bytes
 *   replication_jobs               one copy of a digest to a location still to do: its attempts, when it
 *                                  is due, the process working it (`lease_owner`) until `lease_expires_at`
 *   namespace_replication_targets  the extra locations an organization's blobs are copied to
 *
 * Rows are keyed by digest, not by `blobs.id`: a blob's bytes may be committed (and replicated) before
 * its row exists, and GC deletes placements and jobs with the row.
 */
export function replication(d: DialectAdapter): Migration {
  const id = (c: any) => (d.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey());
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('blob_placements')
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('location', d.exactText as never, (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('blob_placements_pk', ['digest', 'location'])
        .execute();
      await db.schema.createIndex('blob_placements_location').on('blob_placements').columns(['location', 'digest']).execute();

      await db.schema
        .createTable('replication_jobs')
        .addColumn('id', d.idType as never, id)
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('location', d.exactText as never, (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull().defaultTo('queued'))
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', d.bigintType, (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', d.bigintType)
        .addColumn('last_error', 'text')
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addUniqueConstraint('replication_jobs_digest_location', ['digest', 'location'])
        .execute();
      await db.schema.createIndex('replication_jobs_due').on('replication_jobs').columns(['next_attempt_at', 'id']).execute();
      await db.schema.createIndex('replication_jobs_location').on('replication_jobs').columns(['location', 'attempts']).execute();

      await db.schema
        .createTable('namespace_replication_targets')
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().references('namespaces.id').onDelete('cascade'))
        .addColumn('location', d.exactText as never, (c) => c.notNull())
        .addPrimaryKeyConstraint('namespace_replication_targets_pk', ['namespace_id', 'location'])
        .execute();
    },
  };
}
