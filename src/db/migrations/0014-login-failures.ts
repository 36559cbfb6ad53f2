import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Failed logins, one row per failure and throttling key (`user:<name>`, `ip:<address>`), so that the
 * limit of `auth.login_failures_per_minute` holds across every process sharing the database. Rows older
 * than the throttling window are deleted as new failures come in.
 */
export function loginFailures(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('login_failures')
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('at', d.bigintType, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('login_failures_key_at').on('login_failures').columns(['key', 'at']).execute();
      await db.schema.createIndex('login_failures_at').on('login_failures').column('at').execute();
    },
  };
}
