import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Repository mirrors (Quay's `RepoMirrorConfig` and `RepoMirrorRule`, in one row): a repository in
 * state MIRROR with a row here is kept in sync with `external_reference` by the mirror workers. The
 * robot that writes into it stays `repositories.mirror_robot_id` (the permission check reads it there).
 *
 *   repositories 1─0..1 repository_mirrors
 *
 * Scheduling (registry/mirror/): a run is due when `sync_start_at <= now` and retries remain (or when
 * `sync_status` is SYNC_NOW); a worker claims it by setting SYNCING, a new `sync_txn` and a lease
 * `sync_expires_at` (renewed while it runs), conditioned on the old `sync_txn`. An expired lease makes
 * the mirror claimable again. Progress of the run in flight is in the `run_*` columns; the last
 * finished run's outcome in the `last_*` columns. The credentials are SecretBox strings (`v1:…`).
 */
export function repositoryMirrors(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('repository_mirrors')
        .addColumn('repository_id', d.bigintType, (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
        .addColumn('is_enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('external_reference', 'text', (c) => c.notNull())
        .addColumn('username_enc', 'text')
        .addColumn('password_enc', 'text')
        .addColumn('verify_tls', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('unsigned_images', 'integer', (c) => c.notNull().defaultTo(0))
        // JSON {http_proxy?, https_proxy?, no_proxy?}; '{}' = direct.
        .addColumn('proxy', 'text', (c) => c.notNull().defaultTo('{}'))
        // JSON array of tag globs, ORed.
        .addColumn('root_rule', 'text', (c) => c.notNull())
        // JSON array of architectures ('[]' = every platform of an index).
        .addColumn('architecture_filter', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('rollback_on_failure', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('sync_interval_s', d.bigintType, (c) => c.notNull())
        .addColumn('timeout_s', d.bigintType, (c) => c.notNull())
        .addColumn('sync_start_at', d.bigintType)
        .addColumn('sync_expires_at', d.bigintType)
        .addColumn('sync_retries_remaining', 'integer', (c) => c.notNull().defaultTo(3))
        .addColumn('sync_status', 'text', (c) => c.notNull().defaultTo('NEVER_RUN'))
        .addColumn('sync_txn', 'text', (c) => c.notNull())
        .addColumn('sync_holder', 'text')
        .addColumn('run_started_at', d.bigintType)
        .addColumn('run_tags_total', 'integer')
        .addColumn('run_tags_done', 'integer')
        .addColumn('run_bytes', d.bigintType)
        .addColumn('run_current_tag', 'text')
        .addColumn('last_started_at', d.bigintType)
        .addColumn('last_finished_at', d.bigintType)
        // 'SUCCESS' | 'PARTIAL' | 'FAIL' | 'CANCEL'
        .addColumn('last_outcome', 'text')
        .addColumn('last_message', 'text')
        .addColumn('last_bytes', d.bigintType)
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addColumn('updated_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('repository_mirrors_due').on('repository_mirrors').columns(['sync_status', 'sync_start_at']).execute();
    },
  };
}
