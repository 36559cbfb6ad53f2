import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Sign-in: server-side sessions of `/api/v1/signin` (only the SHA-256 of the cookie's secret is stored;
 * a row ends with sign-out, a password change, disabling or deleting the user, or its expiry), and
 * app-specific tokens, kept with the API tokens (`kind` 'app', addressed by `uuid`) so that revocation,
 * expiry and the tie between a `/v2` bearer token and the token it was issued for work the same way.
 * OAuth applications of organizations (Quay's) and the API tokens granted through them
 * (`application_id`; deleting the application deletes its tokens).
 */
export function signIn(d: DialectAdapter): Migration {
  const id = (c: any) => (d.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey());
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('sessions')
        .addColumn('id', d.idType as never, id)
        .addColumn('user_id', d.bigintType, (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addColumn('last_seen_at', d.bigintType, (c) => c.notNull())
        .addColumn('expires_at', d.bigintType, (c) => c.notNull())
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
      await db.schema.createIndex('sessions_expires').on('sessions').column('expires_at').execute();

      await db.schema
        .createTable('oauth_applications')
        .addColumn('id', d.idType as never, id)
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().references('namespaces.id').onDelete('cascade'))
        .addColumn('name', d.exactText as never, (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull().unique())
        .addColumn('client_secret_hash', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('application_uri', 'text', (c) => c.notNull())
        .addColumn('redirect_uri', 'text', (c) => c.notNull())
        .addColumn('avatar_email', 'text')
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addUniqueConstraint('oauth_applications_namespace_name', ['namespace_id', 'name'])
        .execute();

      await db.schema.alterTable('api_tokens').addColumn('kind', 'text', (c) => c.notNull().defaultTo('api')).execute();
      await db.schema.alterTable('api_tokens').addColumn('application_id', d.bigintType, (c) => c.references('oauth_applications.id').onDelete('cascade')).execute();
      await db.schema.alterTable('api_tokens').addColumn('uuid', 'text').execute();
      await db.schema.createIndex('api_tokens_uuid').on('api_tokens').column('uuid').unique().execute();
      await db.schema.createIndex('api_tokens_user').on('api_tokens').columns(['user_id', 'kind']).execute();
    },
  };
}
