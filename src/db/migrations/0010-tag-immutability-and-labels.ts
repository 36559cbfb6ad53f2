import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Tag immutability and manifest labels (Quay's `Tag.immutable`, `NamespaceImmutabilityPolicy`,
 * `RepositoryImmutabilityPolicy` and `Label`/`ManifestLabel`):
 *
 *   tags.immutable                 1: the live tag cannot be moved, deleted, expired or pruned
 *   namespaces 1─* immutability_policies *─0..1 repositories   (repository_id null = the whole namespace)
 *   manifests 1─* manifest_labels                              (labels added through the API)
 *
 * A policy's pattern is a regular expression matched at the start of the tag name; a tag it selects is
 * marked immutable when the policy is saved and whenever such a tag is created. Deleting a namespace,
 * repository or manifest deletes its rows.
 */
export function tagImmutabilityAndLabels(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('tags').addColumn('immutable', 'integer', (c) => c.notNull().defaultTo(0)).execute();

      await db.schema
        .createTable('immutability_policies')
        .addColumn('uuid', 'text', (c) => c.primaryKey())
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().references('namespaces.id').onDelete('cascade'))
        .addColumn('repository_id', d.bigintType, (c) => c.references('repositories.id').onDelete('cascade'))
        .addColumn('tag_pattern', 'text', (c) => c.notNull())
        .addColumn('tag_pattern_matches', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('immutability_policies_scope').on('immutability_policies').columns(['namespace_id', 'repository_id']).execute();
      await db.schema.createIndex('immutability_policies_repository').on('immutability_policies').column('repository_id').execute();

      await db.schema
        .createTable('manifest_labels')
        .addColumn('uuid', 'text', (c) => c.primaryKey())
        .addColumn('manifest_id', d.bigintType, (c) => c.notNull().references('manifests.id').onDelete('cascade'))
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('media_type', 'text', (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('manifest_labels_manifest').on('manifest_labels').column('manifest_id').execute();
    },
  };
}
