import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * Proxy-cache fills across processes (db/blob-fill-lease-store.ts):
 *
 *   blob_fills   one row per digest being fetched from an upstream: the process filling it (`owner`, an
 *                id chosen at start), where the others stream it from (`owner_url`), until when the
 *                lease holds unless renewed (`expires_at`), and when the fill started
 */
export function blobFills(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('blob_fills')
        .addColumn('digest', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('owner_url', 'text', (c) => c.notNull())
        .addColumn('expires_at', d.bigintType, (c) => c.notNull())
        .addColumn('started_at', d.bigintType, (c) => c.notNull())
        .execute();
    },
  };
}
