import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Organization mirrors (Quay's `OrgMirrorConfig` and `OrgMirrorRepository`): an organization with a row
 * in `organization_mirrors` is kept as a copy of a namespace (Quay organization, Harbor project) of an
 * external registry. A discovery run lists the source's repositories, keeps those the globs select and
 * makes each a local repository mirror (`repository_mirrors`, one per repository): the tags themselves
 * are synced by the repository-mirror workers.
 *
 *   namespaces 1─0..1 organization_mirrors 1─* organization_mirror_repositories *─0..1 repositories
 *
 * Scheduling of the discovery runs is that of repository mirrors (`sync_*` columns: start, lease,
 * retries, txn compare-and-swap). The credentials are SecretBox strings (`v1:…`) sealed under the
 * fields `org_mirror_username` / `org_mirror_password`.
 */
export function organizationMirrors(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('organization_mirrors')
        .addColumn('namespace_id', d.bigintType, (c) => c.primaryKey().references('namespaces.id').onDelete('cascade'))
        .addColumn('is_enabled', 'integer', (c) => c.notNull().defaultTo(1))
        // 'quay' | 'harbor'
        .addColumn('registry_type', 'text', (c) => c.notNull())
        .addColumn('registry_url', 'text', (c) => c.notNull())
        .addColumn('external_namespace', 'text', (c) => c.notNull())
        .addColumn('username_enc', 'text')
        .addColumn('password_enc', 'text')
        .addColumn('verify_tls', 'integer', (c) => c.notNull().defaultTo(1))
        // JSON {http_proxy?, https_proxy?, no_proxy?}
        .addColumn('proxy', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('robot_id', d.bigintType, (c) => c.references('robots.id').onDelete('set null'))
        // 'public' | 'private'
        .addColumn('visibility', 'text', (c) => c.notNull())
        // JSON array of repository-name globs ('[]' = every repository)
        .addColumn('repository_filters', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('sync_interval_s', d.bigintType, (c) => c.notNull())
        .addColumn('timeout_s', d.bigintType, (c) => c.notNull())
        .addColumn('sync_start_at', d.bigintType)
        .addColumn('sync_expires_at', d.bigintType)
        .addColumn('sync_retries_remaining', 'integer', (c) => c.notNull().defaultTo(3))
        .addColumn('sync_status', 'text', (c) => c.notNull().defaultTo('NEVER_RUN'))
        .addColumn('sync_txn', 'text', (c) => c.notNull())
        .addColumn('sync_holder', 'text')
        .addColumn('last_finished_at', d.bigintType)
        .addColumn('last_message', 'text')
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addColumn('updated_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('organization_mirrors_due').on('organization_mirrors').columns(['sync_status', 'sync_start_at']).execute();
      await db.schema
        .createTable('organization_mirror_repositories')
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().references('organization_mirrors.namespace_id').onDelete('cascade'))
        // The repository's path in the external namespace (and in the organization).
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('repository_id', d.bigintType, (c) => c.references('repositories.id').onDelete('set null'))
        .addColumn('discovered_at', d.bigintType, (c) => c.notNull())
        // Set while the last discovery did not find it at the source (its mirror is disabled meanwhile).
        .addColumn('vanished_at', d.bigintType)
        .addColumn('message', 'text')
        .addPrimaryKeyConstraint('organization_mirror_repositories_pk', ['namespace_id', 'name'])
        .execute();
    },
  };
}
