/**
 * App-specific tokens (Quay's): a password for registry clients (`podman login -u '$app'`), per user,
 * titled, addressed by a uuid, expiring after the configured lifetime (never when none is configured),
 * revocable. The secret is shown once, when the token is created; only its SHA-256 is stored.
 *
 * An app token stands for its user on `/v2` with the repository scopes only (repo:read, repo:write,
 * repo:admin, repo:create): everything the user may do with repositories, no account administration and
 * no superuser powers. It is kept with the API tokens (`kind` 'app'), so a `/v2` bearer token issued
 * to an app-token login stays tied to it: revoking or expiring the app token ends that bearer token too.
 */
import { randomUUID } from 'node:crypto';
import type { ApiTokenRecord, ApiTokenStore } from '../../db/api-token-store.js';
import type { UserStore } from '../../db/user-store.js';
import { AccountError } from './account-error.js';
import type { ApiScope } from './api-scopes.js';
import { isLookupName } from './names.js';
import { randomSecret, sha256 } from './passwords.js';

/** The user name registry clients log in with to use an app token (any user's). */
export const APP_TOKEN_USERNAME = '$app';

export const APP_TOKEN_SCOPES: readonly ApiScope[] = ['repo:read', 'repo:write', 'repo:admin', 'repo:create'];

export interface AppTokenInfo {
  uuid: string;
  title: string;
  createdAt: number;
  lastAccessedAt: number | null;
  expiresAt: number | null;
}

const MAX_TITLE = 255;

export class AppTokenService {
  private readonly now: () => number;

  constructor(
    private readonly stores: { users: UserStore; apiTokens: ApiTokenStore },
    private readonly opts: { lifetimeMs?: number; now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Creates a token for the user; the secret is returned here and never again. */
  async create(userName: string, title: string): Promise<{ token: AppTokenInfo; secret: string }> {
    const user = await this.requireUser(userName);
    if (typeof title !== 'string' || title.trim() === '' || title.length > MAX_TITLE) throw new AccountError('invalid_request', `a token title is 1 to ${MAX_TITLE} characters`);
    const secret = randomSecret();
    const expiresAt = this.opts.lifetimeMs === undefined ? null : this.now() + this.opts.lifetimeMs;
    const record = await this.stores.apiTokens.create({ userId: user.id, name: title, tokenHash: sha256(secret), scopes: APP_TOKEN_SCOPES, expiresAt, kind: 'app', uuid: randomUUID() });
    return { token: info(record), secret };
  }

  /** The user's tokens that are not revoked (expired ones included), newest first; with `expiringWithinMs`, only those expiring that soon. */
  async list(userName: string, opts: { expiringWithinMs?: number } = {}): Promise<AppTokenInfo[]> {
    const user = await this.requireUser(userName);
    const now = this.now();
    return (await this.stores.apiTokens.listForUser(user.id, 'app'))
      .filter((t) => t.revokedAt === null)
      .filter((t) => opts.expiringWithinMs === undefined || (t.expiresAt !== null && t.expiresAt > now && t.expiresAt <= now + opts.expiringWithinMs))
      .map(info);
  }

  /** One of the user's tokens (not revoked); not_found otherwise, also for another user's token. */
  async get(userName: string, uuid: string): Promise<AppTokenInfo> {
    return info(await this.find(userName, uuid));
  }

  /** Revokes one of the user's tokens at once; not_found if it is not theirs or already revoked. */
  async revoke(userName: string, uuid: string): Promise<AppTokenInfo> {
    const record = await this.find(userName, uuid);
    if (!(await this.stores.apiTokens.revoke(record.id, record.userId, this.now(), 'app'))) throw new AccountError('not_found', `app token ${uuid} not found`);
    return info(record);
  }

  /** The configured lifetime of new tokens, if any. */
  get lifetimeMs(): number | undefined {
    return this.opts.lifetimeMs;
  }

  private async find(userName: string, uuid: string): Promise<ApiTokenRecord> {
    const user = await this.requireUser(userName);
    const record = typeof uuid === 'string' && uuid.length <= 64 ? await this.stores.apiTokens.findAppToken(user.id, uuid) : undefined;
    if (!record || record.revokedAt !== null) throw new AccountError('not_found', `app token ${String(uuid).slice(0, 64)} not found`);
    return record;
  }

  private async requireUser(name: string) {
    const user = isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    if (!user) throw new AccountError('not_found', `user ${String(name).slice(0, 100)} not found`);
    return user;
  }
}

function info(r: ApiTokenRecord): AppTokenInfo {
  return { uuid: r.uuid!, title: r.name, createdAt: r.createdAt, lastAccessedAt: r.lastUsedAt, expiresAt: r.expiresAt };
}
