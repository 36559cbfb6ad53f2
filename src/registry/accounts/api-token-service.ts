/**
 * API tokens: per user, named, scoped (api-scopes.ts), optionally expiring, revocable. The token is 256
 * random bits shown once at creation; only its SHA-256 is stored, and lookups are by that digest.
 */
import type { ApiTokenRecord, ApiTokenStore, TokenKind } from '../../db/api-token-store.js';
import type { UserStore } from '../../db/user-store.js';
import type { Principal } from '../access.js';
import { AccountError } from './account-error.js';
import { validateScopes, type ApiScope } from './api-scopes.js';
import { isLookupName } from './names.js';
import { randomSecret, sha256 } from './passwords.js';

export type ApiTokenInfo = Omit<ApiTokenRecord, 'scopes'> & { scopes: ApiScope[] };

export interface ApiTokenStores {
  users: UserStore;
  apiTokens: ApiTokenStore;
}

const MAX_NAME = 255;

/** The longest lifetime a token may be given. */
const MAX_LIFETIME_MS = 10 * 366 * 86_400_000;

export class ApiTokenService {
  private readonly now: () => number;

  constructor(
    private readonly stores: ApiTokenStores,
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Creates a token for the user; the plaintext is returned here and never again. */
  async create(userName: string, input: { name: string; scopes: readonly string[]; expiresAt?: number | null; applicationId?: number }): Promise<{ token: ApiTokenInfo; secret: string }> {
    const user = await this.requireUser(userName);
    if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > MAX_NAME) {
      throw new AccountError('invalid_request', `a token name is 1 to ${MAX_NAME} characters`);
    }
    const scopes = validateScopes(input.scopes);
    const expiresAt = input.expiresAt ?? null;
    if (expiresAt !== null && (!Number.isSafeInteger(expiresAt) || expiresAt <= this.now())) {
      throw new AccountError('invalid_request', 'a token expiry must be a time in the future (milliseconds since the epoch)');
    }
    if (expiresAt !== null && expiresAt > this.now() + MAX_LIFETIME_MS) {
      throw new AccountError('invalid_request', 'a token may live at most 10 years; create a new one before it expires');
    }
    const secret = randomSecret();
    const record = await this.stores.apiTokens.create({ userId: user.id, name: input.name, tokenHash: sha256(secret), scopes, expiresAt, applicationId: input.applicationId });
    return { token: info(record), secret };
  }

  /**
   * The token's user as a principal capped by the token's scopes, if the token exists (of `kind`, when
   * given: API tokens and app-specific tokens share this check), is neither revoked nor expired, and its
   * user is enabled; records the use (at most once a minute).
   */
  async verify(secret: string, kind?: TokenKind): Promise<{ principal: Extract<Principal, { kind: 'user' }>; token: ApiTokenInfo } | undefined> {
    if (typeof secret !== 'string' || secret.length === 0 || secret.length > 512) return undefined;
    const now = this.now();
    const record = await this.stores.apiTokens.findActiveByHash(sha256(secret), now);
    if (!record || (kind !== undefined && record.kind !== kind)) return undefined;
    const user = await this.stores.users.findById(record.userId);
    if (!user || !user.enabled) return undefined;
    await this.stores.apiTokens.touch(record.id, now);
    const token = info(record);
    return { principal: { kind: 'user', id: user.id, name: user.name, superuser: user.superuser, tokenScopes: token.scopes }, token };
  }

  /**
   * The user of token `id` as a principal capped by its scopes, if the token is still neither revoked
   * nor expired and its user is enabled (for registry bearer tokens issued to an API-token login).
   */
  async principalFor(id: number): Promise<Extract<Principal, { kind: 'user' }> | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    const record = await this.stores.apiTokens.findById(id);
    if (!record || record.revokedAt !== null || (record.expiresAt !== null && record.expiresAt <= this.now())) return undefined;
    const user = await this.stores.users.findById(record.userId);
    if (!user || !user.enabled) return undefined;
    return { kind: 'user', id: user.id, name: user.name, superuser: user.superuser, tokenScopes: info(record).scopes };
  }

  /** Revokes one of the user's tokens at once; not_found if it is not theirs or already revoked. */
  async revoke(userName: string, tokenId: number): Promise<void> {
    const user = await this.requireUser(userName);
    if (!(await this.stores.apiTokens.revoke(tokenId, user.id, this.now()))) throw new AccountError('not_found', `token ${tokenId} not found`);
  }

  /** The user's tokens, newest first, including revoked and expired ones (never the secrets). */
  async list(userName: string): Promise<ApiTokenInfo[]> {
    const user = await this.requireUser(userName);
    return (await this.stores.apiTokens.listForUser(user.id)).map(info);
  }

  private async requireUser(name: string) {
    const user = isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    if (!user) throw new AccountError('not_found', `user ${String(name).slice(0, 100)} not found`);
    return user;
  }
}

function info(r: ApiTokenRecord): ApiTokenInfo {
  return { ...r, scopes: r.scopes as ApiScope[] };
}
