import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Settings a `wharf serve` publishes when it starts, for the CLI to compare with its own (a setting on
 * for one and off for the other must not go unnoticed): `name` is the configuration key, `value` its
 * effective value as JSON, `updated_at` when the last server to start wrote it.
 */
export function serverSettings(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('server_settings')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', d.bigintType, (c) => c.notNull())
        .execute();
    },
  };
}
