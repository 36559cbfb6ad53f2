import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * One chunk of an upload written at a time, across processes (db/upload-store.ts `claimChunk`):
 *
 *   uploads.chunk_writer       the request writing a chunk now (a random id), null when none
 *   uploads.chunk_expires_at   until when that claim holds unless renewed (a writer that died lets go)
 */
export function uploadChunkClaims(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('uploads').addColumn('chunk_writer', 'text').execute();
      await db.schema.alterTable('uploads').addColumn('chunk_expires_at', d.bigintType, (c) => c.notNull().defaultTo(0)).execute();
    },
  };
}
