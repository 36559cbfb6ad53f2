/**
 * API tokens of users: a name, scopes, an optional expiry, revocation; only the token's SHA-256 is stored.
 * The same table holds app-specific tokens (`kind` 'app'), which also have a public `uuid`.
 */
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
  kind: TokenKind;
  /** The public id of an app-specific token; null for API tokens. */
  uuid: string | null;
}

export type TokenKind = 'api' | 'app';

const COLUMNS = ['id', 'user_id', 'name', 'scopes', 'created_at', 'expires_at', 'last_used_at', 'revoked_at', 'kind', 'uuid'] as const;

export class ApiTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(token: { userId: number; name: string; tokenHash: string; scopes: readonly string[]; expiresAt: number | null; kind?: TokenKind; uuid?: string; applicationId?: number }): Promise<ApiTokenRecord> {
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
        kind: token.kind ?? 'api',
        uuid: token.uuid ?? null,
        application_id: token.applicationId ?? null,
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

  /** Revokes one of the user's tokens of `kind`; false if it does not exist, is someone else's or another kind, or was revoked already. */
  async revoke(id: number, userId: number, now: number, kind: TokenKind = 'api'): Promise<boolean> {
    const res = await this.db
      .updateTable('api_tokens')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('kind', '=', kind)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** The user's tokens of `kind`, newest first, revoked and expired ones included. */
  async listForUser(userId: number, kind: TokenKind = 'api'): Promise<ApiTokenRecord[]> {
    const rows = await this.db.selectFrom('api_tokens').select(COLUMNS).where('user_id', '=', userId).where('kind', '=', kind).orderBy('id', 'desc').execute();
    return rows.map(toRecord);
  }

  /** The user's app-specific token with this uuid (revoked or not), or undefined. */
  async findAppToken(userId: number, uuid: string): Promise<ApiTokenRecord | undefined> {
    const row = await this.db.selectFrom('api_tokens').select(COLUMNS).where('uuid', '=', uuid).where('user_id', '=', userId).where('kind', '=', 'app').executeTakeFirst();
    return row && toRecord(row);
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
  kind: string;
  uuid: string | null;
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
    kind: row.kind === 'app' ? 'app' : 'api',
    uuid: row.uuid,
  };
}
