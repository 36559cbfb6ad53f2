import { sql, type Kysely, type Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/** Namespaces, repositories, blobs, manifests, tags with history, uploads. */
export function registryCore(d: DialectAdapter): Migration {
  const id = (c: any) => (d.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey());
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('namespaces')
        .addColumn('id', d.idType as never, id)
        .addColumn('name', d.exactText as never, (c) => c.notNull().unique())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('repositories')
        .addColumn('id', d.idType as never, id)
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().references('namespaces.id').onDelete('cascade'))
        .addColumn('name', d.exactText as never, (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addUniqueConstraint('repositories_namespace_name', ['namespace_id', 'name'])
        .execute();

      await db.schema
        .createTable('blobs')
        .addColumn('id', d.idType as never, id)
        .addColumn('digest', 'text', (c) => c.notNull().unique())
        .addColumn('size', d.bigintType, (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('repository_blobs')
        .addColumn('repository_id', d.bigintType, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
        .addColumn('blob_id', d.bigintType, (c) => c.notNull().references('blobs.id').onDelete('cascade'))
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'blob_id'])
        .execute();
      await db.schema.createIndex('repository_blobs_blob').on('repository_blobs').column('blob_id').execute();

      await db.schema
        .createTable('manifests')
        .addColumn('id', d.idType as never, id)
        .addColumn('repository_id', d.bigintType, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('media_type', 'text', (c) => c.notNull())
        .addColumn('artifact_type', 'text')
        .addColumn('subject_digest', 'text')
        .addColumn('annotations', 'text')
        .addColumn('size', d.bigintType, (c) => c.notNull())
        .addColumn('content', d.bytesType, (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addUniqueConstraint('manifests_repository_digest', ['repository_id', 'digest'])
        .execute();
      await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();

      await db.schema
        .createTable('manifest_blobs')
        .addColumn('manifest_id', d.bigintType, (c) => c.notNull().references('manifests.id').onDelete('cascade'))
        .addColumn('blob_id', d.bigintType, (c) => c.notNull().references('blobs.id'))
        .addPrimaryKeyConstraint('manifest_blobs_pk', ['manifest_id', 'blob_id'])
        .execute();
      await db.schema.createIndex('manifest_blobs_blob').on('manifest_blobs').column('blob_id').execute();

      await db.schema
        .createTable('manifest_children')
        .addColumn('manifest_id', d.bigintType, (c) => c.notNull().references('manifests.id').onDelete('cascade'))
        .addColumn('child_id', d.bigintType, (c) => c.notNull().references('manifests.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('manifest_children_pk', ['manifest_id', 'child_id'])
        .execute();
      await db.schema.createIndex('manifest_children_child').on('manifest_children').column('child_id').execute();

      await db.schema
        .createTable('tags')
        .addColumn('id', d.idType as never, id)
        .addColumn('repository_id', d.bigintType, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
        .addColumn('name', d.exactText as never, (c) => c.notNull())
        .addColumn('manifest_id', d.bigintType, (c) => c.notNull().references('manifests.id').onDelete('cascade'))
        .addColumn('lifetime_start', d.bigintType, (c) => c.notNull())
        .addColumn('lifetime_end', d.bigintType)
        .addColumn('hidden', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      // At most one live row per tag name; ended rows are the tag's history.
      await sql`create unique index tags_live_name on tags (repository_id, name) where lifetime_end is null`.execute(db);
      await db.schema.createIndex('tags_manifest').on('tags').column('manifest_id').execute();
      await db.schema.createIndex('tags_history').on('tags').columns(['repository_id', 'name', 'lifetime_start']).execute();

      await db.schema
        .createTable('uploads')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('repository_id', d.bigintType, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
        .addColumn('size', d.bigintType, (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addColumn('updated_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('uploads_updated').on('uploads').column('updated_at').execute();
    },
  };
}
