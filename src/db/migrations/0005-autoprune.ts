import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Auto-prune policies and the worker's task table (Quay's `NamespaceAutoPrunePolicy`,
 * `RepositoryAutoPrunePolicy` and `AutoPruneTaskStatus`, seed chapter 9):
 *
 *   namespaces 1─* autoprune_policies *─0..1 repositories   (repository_id null = the whole namespace)
 *   namespaces 1─0..1 autoprune_tasks                         (one row per namespace the worker visits)
 *
 * `value` is what the worker uses: a number of tags, or an age in seconds; `value_text` keeps a
 * `creation_date` duration as it was given ("2w"). Deleting a namespace or repository deletes its rows.
 */
export function autoprune(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('autoprune_policies')
        .addColumn('uuid', 'text', (c) => c.primaryKey())
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().references('namespaces.id').onDelete('cascade'))
        .addColumn('repository_id', d.bigintType, (c) => c.references('repositories.id').onDelete('cascade'))
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('value', d.bigintType, (c) => c.notNull())
        .addColumn('value_text', 'text')
        .addColumn('tag_pattern', 'text')
        .addColumn('tag_pattern_matches', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('autoprune_policies_scope').on('autoprune_policies').columns(['namespace_id', 'repository_id']).execute();
      await db.schema.createIndex('autoprune_policies_repository').on('autoprune_policies').column('repository_id').execute();

      await db.schema
        .createTable('autoprune_tasks')
        .addColumn('namespace_id', d.bigintType, (c) => c.primaryKey().references('namespaces.id').onDelete('cascade'))
        // Null: never ran (picked first).
        .addColumn('last_ran_ms', d.bigintType)
        // 'queued' | 'running' | 'success' | 'failure: <message>'
        .addColumn('status', 'text')
        .execute();
      await db.schema.createIndex('autoprune_tasks_last_ran').on('autoprune_tasks').column('last_ran_ms').execute();
    },
  };
}
