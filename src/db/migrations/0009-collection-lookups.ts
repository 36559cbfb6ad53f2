import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * What Quay's management API keeps beyond accounts and grants:
 *
 *   users 1─* repository_stars *─1 repositories          (a user's starred repositories)
 *   global_messages                                       (banners superusers publish to every user)
 *   robots 1─* robot_federations                          (trusted OIDC issuer + subject pairs of a robot)
 *   teams 1─* team_robot_members *─1 robots               (robots as team members: they get the team's grants)
 *   namespaces 1─* creator_default_permissions            (default permissions that apply only to the
 *                  └─> users (creator)                      repositories one user creates)
 *
 * `robots.token_enc` keeps the robot's token sealed (registry/proxy/secret-box.ts) so that its
 * administrators can read it again, as in Quay; null for robots made before, or when no key was at hand.
 *
 * Rows go with what they hang on (foreign keys); `creator_default_permissions.subject_*` names a user,
 * team or robot like the other grant tables and is purged with its subject (grant-purge.ts).
 */
export function collectionLookups(d: DialectAdapter): Migration {
  const ref = (table: string) => (c: any) => c.notNull().references(`${table}.id`).onDelete('cascade');
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('robots').addColumn('token_enc', 'text').execute();

      await db.schema
        .createTable('repository_stars')
        .addColumn('user_id', d.bigintType, ref('users'))
        .addColumn('repository_id', d.bigintType, ref('repositories'))
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addPrimaryKeyConstraint('repository_stars_pk', ['user_id', 'repository_id'])
        .execute();
      await db.schema.createIndex('repository_stars_repository').on('repository_stars').column('repository_id').execute();

      await db.schema
        .createTable('global_messages')
        .addColumn('uuid', 'text', (c) => c.primaryKey())
        .addColumn('content', 'text', (c) => c.notNull())
        // 'text/plain' | 'text/markdown'
        .addColumn('media_type', 'text', (c) => c.notNull())
        // 'info' | 'warning' | 'error'
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('robot_federations')
        .addColumn('robot_id', d.bigintType, ref('robots'))
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('issuer', d.exactText as never, (c) => c.notNull())
        .addColumn('subject', d.exactText as never, (c) => c.notNull())
        // Not (issuer, subject): long values would not fit in an index row; the service refuses duplicates.
        .addPrimaryKeyConstraint('robot_federations_pk', ['robot_id', 'position'])
        .execute();

      await db.schema
        .createTable('team_robot_members')
        .addColumn('team_id', d.bigintType, ref('teams'))
        .addColumn('robot_id', d.bigintType, ref('robots'))
        .addPrimaryKeyConstraint('team_robot_members_pk', ['team_id', 'robot_id'])
        .execute();
      await db.schema.createIndex('team_robot_members_robot').on('team_robot_members').column('robot_id').execute();

      await db.schema
        .createTable('creator_default_permissions')
        .addColumn('namespace_id', d.bigintType, ref('namespaces'))
        .addColumn('creator_user_id', d.bigintType, ref('users'))
        .addColumn('subject_kind', 'text', (c) => c.notNull())
        .addColumn('subject_id', d.bigintType, (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('creator_default_permissions_pk', ['namespace_id', 'creator_user_id', 'subject_kind', 'subject_id'])
        .execute();
      await db.schema.createIndex('creator_default_permissions_subject').on('creator_default_permissions').columns(['subject_kind', 'subject_id']).execute();
    },
  };
}
