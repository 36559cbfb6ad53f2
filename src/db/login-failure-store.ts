/**
 * Failed logins per throttling key (`login_failures`): every process sharing the database records its
 * failures here and counts everyone's, so a limit per minute is one limit however many processes serve.
 */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export class LoginFailureStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records one failure at `at` under each key, and forgets every failure at or before `forgetBefore`. */
  async record(keys: readonly string[], at: number, forgetBefore: number): Promise<void> {
    if (keys.length === 0) return;
    await this.db.deleteFrom('login_failures').where('at', '<=', forgetBefore).execute();
    await this.db
      .insertInto('login_failures')
      .values(keys.map((key) => ({ key, at })))
      .execute();
  }

  /** The times of the failures after `since` under each key, oldest first (keys without any are absent). */
  async since(keys: readonly string[], since: number): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    if (keys.length === 0) return out;
    const rows = await this.db.selectFrom('login_failures').select(['key', 'at']).where('key', 'in', [...keys]).where('at', '>', since).orderBy('at').execute();
    for (const r of rows) {
      const times = out.get(r.key) ?? [];
      times.push(Number(r.at));
      out.set(r.key, times);
    }
    return out;
  }
}
