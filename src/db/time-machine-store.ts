/** Each namespace's time-machine window (`namespaces.time_machine_s`; null = the registry default). */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export class TimeMachineStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The namespace's own window in seconds (null: the default), or undefined when there is no such namespace. */
  async get(namespace: string): Promise<{ windowS: number | null } | undefined> {
    const row = await this.db.selectFrom('namespaces').select('time_machine_s').where('name', '=', namespace).executeTakeFirst();
    return row && { windowS: row.time_machine_s === null ? null : Number(row.time_machine_s) };
  }

  /** Sets the namespace's window (null: back to the default); false when there is no such namespace. */
  async set(namespace: string, windowS: number | null): Promise<boolean> {
    const res = await this.db.updateTable('namespaces').set({ time_machine_s: windowS }).where('name', '=', namespace).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
}
