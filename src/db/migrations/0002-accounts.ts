import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Accounts: users and organizations share the namespace table (`kind`), organizations have teams,
 * namespaces have robots, repositories get visibility, state and permissions, plus API tokens, the
 * audit log and the token-signing keys.
 */
export function accounts(d: DialectAdapter): Migration {
  const id = (c: any) => (d.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey());
  const ref = (table: string) => (c: any) => c.notNull().references(`${table}.id`).onDelete('cascade');
  return {
    async up(db: Kysely<any>) {
      // Namespaces created by pushes before accounts existed become organizations.
      await db.schema.alterTable('namespaces').addColumn('kind', 'text', (c) => c.notNull().defaultTo('org')).execute();
      await db.schema.alterTable('namespaces').addColumn('email', 'text').execute();
      await db.schema.alterTable('namespaces').addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1)).execute();

      await db.schema.alterTable('repositories').addColumn('visibility', 'text', (c) => c.notNull().defaultTo('private')).execute();
      await db.schema.alterTable('repositories').addColumn('state', 'text', (c) => c.notNull().defaultTo('NORMAL')).execute();
      await db.schema.alterTable('repositories').addColumn('description', 'text').execute();
      await db.schema.alterTable('repositories').addColumn('mirror_robot_id', d.bigintType).execute();

      await db.schema
        .createTable('users')
        .addColumn('id', d.idType as never, id)
        .addColumn('namespace_id', d.bigintType, (c) => ref('namespaces')(c).unique())
        .addColumn('password_hash', 'text')
        .addColumn('superuser', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('teams')
        .addColumn('id', d.idType as never, id)
        .addColumn('namespace_id', d.bigintType, ref('namespaces'))
        .addColumn('name', d.exactText as never, (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addUniqueConstraint('teams_namespace_name', ['namespace_id', 'name'])
        .execute();

      await db.schema
        .createTable('team_members')
        .addColumn('team_id', d.bigintType, ref('teams'))
        .addColumn('user_id', d.bigintType, ref('users'))
        .addPrimaryKeyConstraint('team_members_pk', ['team_id', 'user_id'])
        .execute();
      await db.schema.createIndex('team_members_user').on('team_members').column('user_id').execute();

      await db.schema
        .createTable('robots')
        .addColumn('id', d.idType as never, id)
        .addColumn('namespace_id', d.bigintType, ref('namespaces'))
        .addColumn('name', d.exactText as never, (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addUniqueConstraint('robots_namespace_name', ['namespace_id', 'name'])
        .execute();

      // subject_kind: 'user' | 'team' | 'robot'; role: 'read' | 'write' | 'admin'.
      await db.schema
        .createTable('repository_permissions')
        .addColumn('repository_id', d.bigintType, ref('repositories'))
        .addColumn('subject_kind', 'text', (c) => c.notNull())
        .addColumn('subject_id', d.bigintType, (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('repository_permissions_pk', ['repository_id', 'subject_kind', 'subject_id'])
        .execute();
      await db.schema.createIndex('repository_permissions_subject').on('repository_permissions').columns(['subject_kind', 'subject_id']).execute();

      // Permissions granted to every new repository of an organization.
      await db.schema
        .createTable('default_permissions')
        .addColumn('namespace_id', d.bigintType, ref('namespaces'))
        .addColumn('subject_kind', 'text', (c) => c.notNull())
        .addColumn('subject_id', d.bigintType, (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('default_permissions_pk', ['namespace_id', 'subject_kind', 'subject_id'])
        .execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', d.idType as never, id)
        .addColumn('user_id', d.bigintType, ref('users'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addColumn('expires_at', d.bigintType)
        .addColumn('last_used_at', d.bigintType)
        .addColumn('revoked_at', d.bigintType)
        .execute();

      // Names are copied so that entries outlive the users, robots and repositories they mention.
      await db.schema
        .createTable('audit_log')
        .addColumn('id', d.idType as never, id)
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('namespace', d.exactText as never)
        .addColumn('repository', d.exactText as never)
        .addColumn('actor_kind', 'text', (c) => c.notNull())
        .addColumn('actor_name', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('metadata', 'text')
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_namespace_time').on('audit_log').columns(['namespace', 'created_at']).execute();
      await db.schema.createIndex('audit_log_repository_time').on('audit_log').columns(['namespace', 'repository', 'created_at']).execute();

      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('algorithm', 'text', (c) => c.notNull())
        .addColumn('private_jwk', 'text', (c) => c.notNull())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .execute();
    },
  };
}
