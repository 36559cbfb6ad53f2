/** The settings the last `wharf serve` to start published (migrations/0007-server-settings.ts): name → JSON text. */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export class ServerSettingsStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores `value` (JSON text) under `name`, replacing what an earlier start published. */
  async publish(name: string, value: string, now: number): Promise<void> {
    await this.db
      .insertInto('server_settings')
      .values({ name, value, updated_at: now })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value, updated_at: now }))
      .execute();
  }

  /**
   * The value stored under `name`, storing `value` first when there is none: every process that calls
   * it gets the same value, the first caller's (a secret generated once and shared through the database).
   */
  async claim(name: string, value: string, now: number): Promise<string> {
    await this.db.insertInto('server_settings').values({ name, value, updated_at: now }).onConflict((oc) => oc.column('name').doNothing()).execute();
    const row = await this.read(name);
    if (!row) throw new Error(`server setting ${name} vanished after it was stored`);
    return row.value;
  }

  /** What was published under `name`, or undefined when no server published it. */
  async read(name: string): Promise<{ value: string; updatedAt: number } | undefined> {
    const row = await this.db.selectFrom('server_settings').select(['value', 'updated_at']).where('name', '=', name).executeTakeFirst();
    return row && { value: row.value, updatedAt: row.updated_at };
  }
}
