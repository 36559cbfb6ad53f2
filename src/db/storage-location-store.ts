/**
 * The marker id each storage location's storage holds (`storage_locations`, registry/location-identity.ts).
 * A row is written once, by the first process to see the location (`claim`: the first claim wins, the
 * others read the winner's id), and replaced only by an operator adopting other storage (`set`).
 */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export class StorageLocationStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The marker id recorded for `name`, or undefined. */
  async get(name: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('storage_locations').select('marker_id').where('name', '=', name).executeTakeFirst();
    return row?.marker_id;
  }

  /** Records `markerId` for `name` unless an id is recorded already; returns the id recorded (this one or the earlier). */
  async claim(name: string, markerId: string, now: number): Promise<string> {
    await this.db.insertInto('storage_locations').values({ name, marker_id: markerId, recorded_at: now }).onConflict((oc) => oc.column('name').doNothing()).execute();
    const recorded = await this.get(name);
    if (recorded === undefined) throw new Error(`storage location ${JSON.stringify(name)}: the recorded marker id vanished`);
    return recorded;
  }

  /** Forgets `name`'s row if it still records `markerId` (a claim whose marker could not be written). */
  async release(name: string, markerId: string): Promise<void> {
    await this.db.deleteFrom('storage_locations').where('name', '=', name).where('marker_id', '=', markerId).execute();
  }

  /** Records `markerId` for `name` whatever was recorded; returns the id it replaced, if any. */
  async set(name: string, markerId: string, now: number): Promise<string | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const before = await tx.selectFrom('storage_locations').select('marker_id').where('name', '=', name).executeTakeFirst();
      await tx
        .insertInto('storage_locations')
        .values({ name, marker_id: markerId, recorded_at: now })
        .onConflict((oc) => oc.column('name').doUpdateSet({ marker_id: markerId, recorded_at: now }))
        .execute();
      return before?.marker_id;
    });
  }
}
