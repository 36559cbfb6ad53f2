import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Proxy-cache organizations: one `proxy_cache_configs` row makes an organization a pull-through cache
 * of an upstream registry (deleting the organization deletes it). `answers_for` is a JSON array of
 * lower-case `host[:port]`; the credentials are SecretBox strings (`v1:…`), never plain text.
 * Cached tags get an expiry: `tags.expires_at` (epoch ms; null = no expiry, as for every pushed tag).
 */
export function proxyCache(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('proxy_cache_configs')
        .addColumn('namespace_id', d.bigintType, (c) => c.notNull().unique().references('namespaces.id').onDelete('cascade'))
        .addColumn('upstream_registry', 'text', (c) => c.notNull())
        .addColumn('insecure', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expiration_s', d.bigintType, (c) => c.notNull().defaultTo(86_400))
        .addColumn('anonymous_pull', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('revalidate_interval_s', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('prefetch_layers', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('answers_for', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('username_enc', 'text')
        .addColumn('password_enc', 'text')
        .addColumn('created_at', d.bigintType, (c) => c.notNull())
        .addColumn('updated_at', d.bigintType, (c) => c.notNull())
        .execute();

      await db.schema.alterTable('tags').addColumn('expires_at', d.bigintType).execute();
      // The data plane's expiry sweep reads live cached tags by expiry.
      await db.schema.createIndex('tags_expires_at').on('tags').column('expires_at').where('expires_at', 'is not', null).execute();
    },
  };
}
