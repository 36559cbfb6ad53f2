import { sql, type Kysely, type Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Storage quotas (Quay's `UserOrganizationQuota`, `QuotaLimits`, `QuotaNamespaceSize`,
 * `QuotaRepositorySize`) with reference-counted totals:
 *
 *   namespaces 1─0..1 namespace_quotas 1─* quota_limits     (kind 'Warning' | 'Reject' at a percent)
 *   quota_repository_blobs (repository, blob, refs)          refs = manifests of the repository using the blob
 *   quota_namespace_blobs  (namespace, blob, refs)           refs = repositories of the namespace using it
 *   repository_sizes / namespace_sizes                       sum of the sizes of the blobs with a row above
 *
 * A blob counts once per repository and once per namespace: its size is added when its count goes
 * from 0 to 1 and taken off when it goes back to 0, in the transaction that creates or deletes the
 * manifest (db/quota-accounting.ts). The migration fills the tables from what is already stored.
 */
export function quotas(d: DialectAdapter): Migration {
  const id = (c: any) => (d.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey());
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('namespace_quotas')
        .addColumn('id', d.idType as never, id)
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().unique().references('namespaces.id').onDelete('cascade'))
        .addColumn('limit_bytes', d.bigintType, (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('quota_limits')
        .addColumn('id', d.idType as never, id)
        .addColumn('quota_id', d.bigintType, (c) => c.notNull().references('namespace_quotas.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('percent', 'integer', (c) => c.notNull())
        .addUniqueConstraint('quota_limits_kind_percent', ['quota_id', 'kind', 'percent'])
        .execute();

      await db.schema
        .createTable('quota_repository_blobs')
        .addColumn('repository_id', d.bigintType, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
        .addColumn('blob_id', d.bigintType, (c) => c.notNull())
        .addColumn('refs', d.bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_repository_blobs_pk', ['repository_id', 'blob_id'])
        .execute();
      await db.schema
        .createTable('quota_namespace_blobs')
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().references('namespaces.id').onDelete('cascade'))
        .addColumn('blob_id', d.bigintType, (c) => c.notNull())
        .addColumn('refs', d.bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_namespace_blobs_pk', ['namespace_id', 'blob_id'])
        .execute();
      await db.schema
        .createTable('repository_sizes')
        .addColumn('repository_id', d.bigintType, (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
        .addColumn('size_bytes', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('namespace_sizes')
        .addColumn('namespace_id', d.bigintType, (c) => c.primaryKey().references('namespaces.id').onDelete('cascade'))
        .addColumn('size_bytes', d.bigintType, (c) => c.notNull())
        .execute();
      // Uploads in progress count against a namespace's Reject limit.
      await db.schema.createIndex('uploads_repository').on('uploads').column('repository_id').execute();
      // Proxy-cache eviction walks a namespace's expiring tags, least recently pulled first.
      await sql`create index tags_open_expiry_repository on tags (repository_id, expires_at) where lifetime_end is null and expires_at is not null`.execute(db);

      await sql`insert into quota_repository_blobs (repository_id, blob_id, refs)
        select m.repository_id, mb.blob_id, count(*) from manifest_blobs mb inner join manifests m on m.id = mb.manifest_id
        group by m.repository_id, mb.blob_id`.execute(db);
      await sql`insert into quota_namespace_blobs (namespace_id, blob_id, refs)
        select r.namespace_id, q.blob_id, count(*) from quota_repository_blobs q inner join repositories r on r.id = q.repository_id
        group by r.namespace_id, q.blob_id`.execute(db);
      await sql`insert into repository_sizes (repository_id, size_bytes)
        select q.repository_id, sum(b.size) from quota_repository_blobs q inner join blobs b on b.id = q.blob_id group by q.repository_id`.execute(db);
      await sql`insert into namespace_sizes (namespace_id, size_bytes)
        select q.namespace_id, sum(b.size) from quota_namespace_blobs q inner join blobs b on b.id = q.blob_id group by q.namespace_id`.execute(db);
    },
  };
}
