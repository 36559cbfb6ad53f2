import type { Kysely, Migration } from 'kysely';
import type { DialectAdapter } from '../dialect.js';

/**
 * The identity of each storage location (db/storage-location-store.ts, registry/location-identity.ts):
 *
 *   storage_locations   one row per location name: the id of the marker object its storage holds
 *                       (`_wharf/location.json`), recorded by the first process that saw the location
 *
 * A process whose location of a name holds no marker, or another one, is using other storage than the
 * processes before it and refuses to use it.
 */
export function storageLocations(d: DialectAdapter): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('storage_locations')
        .addColumn('name', d.exactText as never, (c) => c.primaryKey())
        .addColumn('marker_id', 'text', (c) => c.notNull())
        .addColumn('recorded_at', d.bigintType, (c) => c.notNull())
        .execute();
    },
  };
}
