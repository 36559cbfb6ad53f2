/** API tokens of users: a name, scopes, an optional expiry, revocation; only the token's SHA-256 is stored. */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export interface ApiTokenRecord {
  id: number;
  userId: number;
  name: string;
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

const COLUMNS = ['id', 'user_id', 'name', 'scopes', 'created_at', 'expires_at', 'last_used_at', 'revoked_at'] as const;

export class ApiTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(token: { userId: number; name: string; tokenHash: string; scopes: readonly string[]; expiresAt: number | null }): Promise<ApiTokenRecord> {
    const row = await this.db
      .insertInto('api_tokens')
      .values({
        user_id: token.userId,
        name: token.name,
        token_hash: token.tokenHash,
        scopes: token.scopes.join(' '),
        created_at: Date.now(),
        expires_at: token.expiresAt,
        last_used_at: null,
        revoked_at: null,
      })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    return toRecord(row);
  }

  /** The token with this hash if it is neither revoked nor expired at `now`. */
  async findActiveByHash(tokenHash: string, now: number): Promise<ApiTokenRecord | undefined> {
    const row = await this.db
      .selectFrom('api_tokens')
      .select(COLUMNS)
      .where('token_hash', '=', tokenHash)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .executeTakeFirst();
    return row && toRecord(row);
  }

  async findById(id: number): Promise<ApiTokenRecord | undefined> {
    const row = await this.db.selectFrom('api_tokens').select(COLUMNS).where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Records a use at `now`, at most once per `minIntervalMs` so that busy tokens do not write on every request. */
  async touch(id: number, now: number, minIntervalMs = 60_000): Promise<void> {
    await this.db
      .updateTable('api_tokens')
      .set({ last_used_at: now })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - minIntervalMs)]))
      .execute();
  }

  /** Revokes one of the user's tokens; false if it does not exist, is someone else's, or was revoked already. */
  async revoke(id: number, userId: number, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable('api_tokens')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** The user's tokens, newest first, revoked and expired ones included. */
  async listForUser(userId: number): Promise<ApiTokenRecord[]> {
    const rows = await this.db.selectFrom('api_tokens').select(COLUMNS).where('user_id', '=', userId).orderBy('id', 'desc').execute();
    return rows.map(toRecord);
  }
}

function toRecord(row: {
  id: number;
  user_id: number;
  name: string;
  scopes: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}): ApiTokenRecord {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    scopes: row.scopes.split(' ').filter(Boolean),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
