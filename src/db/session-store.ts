/** Signed-in sessions (migrations/0008-sign-in.ts): found by the SHA-256 of the cookie's secret. */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export interface SessionRecord {
  id: number;
  userId: number;
  createdAt: number;
  lastSeenAt: number;
  /** The absolute end of the session, whatever its use. */
  expiresAt: number;
}

const COLUMNS = ['id', 'user_id', 'created_at', 'last_seen_at', 'expires_at'] as const;

export class SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(session: { userId: number; tokenHash: string; now: number; expiresAt: number; ip?: string; userAgent?: string }): Promise<SessionRecord> {
    const row = await this.db
      .insertInto('sessions')
      .values({
        user_id: session.userId,
        token_hash: session.tokenHash,
        created_at: session.now,
        last_seen_at: session.now,
        expires_at: session.expiresAt,
        ip: session.ip?.slice(0, 255) ?? null,
        user_agent: session.userAgent?.slice(0, 1000) ?? null,
      })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    return toRecord(row);
  }

  async findByHash(tokenHash: string): Promise<SessionRecord | undefined> {
    const row = await this.db.selectFrom('sessions').select(COLUMNS).where('token_hash', '=', tokenHash).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Records a use at `now`, at most once per `minIntervalMs` so that a busy session does not write on every request. */
  async touch(id: number, now: number, minIntervalMs = 60_000): Promise<void> {
    await this.db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', id).where('last_seen_at', '<=', now - minIntervalMs).execute();
  }

  /** Ends one session; false when there was none. */
  async delete(id: number): Promise<boolean> {
    const res = await this.db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Ends every session of the user; returns how many there were. */
  async deleteForUser(userId: number): Promise<number> {
    const res = await this.db.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /** Removes sessions past their absolute end, or unused since `idleBefore`. */
  async deleteExpired(now: number, idleBefore: number): Promise<number> {
    const res = await this.db
      .deleteFrom('sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now), eb('last_seen_at', '<=', idleBefore)]))
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /** How many sessions the user has (expired ones not yet removed included). */
  async countForUser(userId: number): Promise<number> {
    const row = await this.db.selectFrom('sessions').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', userId).executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

function toRecord(row: { id: number; user_id: number; created_at: number; last_seen_at: number; expires_at: number }): SessionRecord {
  return { id: Number(row.id), userId: Number(row.user_id), createdAt: Number(row.created_at), lastSeenAt: Number(row.last_seen_at), expiresAt: Number(row.expires_at) };
}
