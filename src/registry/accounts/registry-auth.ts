/**
 * Authentication for `/v2`: HTTP Basic logins (throttled, audited, cached), the token endpoint's grant,
 * and bearer token verification. The HTTP layer parses headers and scopes and shapes replies; every
 * decision is here.
 *
 * A verified password is cached for a short time under a hash of the credentials, so that a client
 * sending Basic on every request costs one scrypt per minute rather than one per request. A cache hit is
 * honoured only while the user's password hash and enabled flag are unchanged, and the principal is
 * re-read each time, so a password change, disabling or deletion takes effect at once. Robot and API
 * tokens are cheap to verify (one indexed lookup) and are never cached.
 */
import { RegistryError } from '../../oci/errors.js';
import type { RepositoryName } from '../../oci/reference.js';
import { ANONYMOUS, type AccessService, type GrantingAccess, type Principal } from '../access.js';
import type { AuditService } from './audit-service.js';
import type { AuthMethod, Authenticator } from './authenticator.js';
import type { LoginThrottle } from './login-throttle.js';
import { sha256 } from './passwords.js';
import type { IssuedToken, RegistryTokens, TokenAccess } from './registry-tokens.js';
import { expand, ScopedAccess } from './scoped-access.js';

/** One `scope` of a token request, parsed at the edge. */
export type ScopeRequest = { type: 'repository'; name: RepositoryName; actions: string[] } | { type: 'registry'; name: 'catalog'; actions: string[] };

/** Where a request came from, for throttling and the audit log. */
export interface ClientInfo {
  ip: string;
  userAgent?: string;
}

/** Who is calling and what they may do: the access service the request must use. */
export interface Caller {
  principal: Principal;
  access: AccessService;
  /** How the caller proved who they are. */
  via: 'anonymous' | 'basic' | 'bearer';
}

const CACHE_MS = 60_000;
const CACHE_MAX = 10_000;

export class RegistryAuth {
  private readonly cache = new Map<string, { stamp: string; name: string; expiresAt: number }>();
  private readonly now: () => number;

  constructor(
    private readonly deps: { authenticator: Authenticator; tokens: RegistryTokens; access: GrantingAccess; audit: AuditService; throttle: LoginThrottle },
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Loads the signing key (generating it on the very first start). */
  ready(): Promise<void> {
    return this.deps.tokens.ready();
  }

  /** The caller of a request without credentials. */
  anonymous(): Caller {
    return { principal: ANONYMOUS, access: new ScopedAccess(this.deps.access), via: 'anonymous' };
  }

  /**
   * The principal these Basic credentials prove. Throws TOOMANYREQUESTS (with Retry-After) while the
   * user name or the client address has too many recent failures, UNAUTHORIZED for bad credentials
   * (recorded as `login_failure`).
   */
  async login(username: string, secret: string, client: ClientInfo): Promise<Exclude<Principal, { kind: 'anonymous' }>> {
    return (await this.loginWith(username, secret, client)).principal;
  }

  private async loginWith(username: string, secret: string, client: ClientInfo): Promise<{ principal: Exclude<Principal, { kind: 'anonymous' }>; apiTokenId?: number; method: AuthMethod }> {
    // Throttled per user name and per client address, as the issue asks: guesses spread over many
    // addresses still hit the per-user limit (at the price that failures can lock an account out for a
    // minute). Behind a reverse proxy, set `trust_proxy` so that the address is the client's.
    const keys = [`user:${username}`, `ip:${client.ip}`];
    const wait = await this.deps.throttle.retryAfter(keys);
    if (wait > 0) {
      throw new RegistryError('TOOMANYREQUESTS', `too many failed logins; try again in ${wait} s`).withHeaders({ 'Retry-After': String(wait) });
    }
    const cacheKey = sha256(`${username}\u0000${secret}`);
    const cached = this.cache.get(cacheKey);
    if (cached && cached.expiresAt > this.now() && cached.name === username) {
      if ((await this.deps.authenticator.passwordStamp(username)) === cached.stamp) {
        const principal = await this.deps.authenticator.principalFor(username);
        if (principal) return { principal, method: 'password' };
      }
      this.cache.delete(cacheKey);
    }
    const result = await this.deps.authenticator.authenticate(username, secret);
    if (!result) {
      await this.deps.throttle.fail(keys);
      await this.deps.audit.record('login_failure', {
        actor: ANONYMOUS,
        ip: client.ip,
        userAgent: client.userAgent,
        // Filed under the account's namespace (a robot's is the part before `+`), so its owners see it.
        namespace: failureNamespace(username),
        metadata: { username: username.slice(0, 255) },
      });
      throw new RegistryError('UNAUTHORIZED', 'invalid username or password');
    }
    if (result.method === 'password') {
      const stamp = await this.deps.authenticator.passwordStamp(username);
      if (stamp) {
        this.cache.set(cacheKey, { stamp, name: username, expiresAt: this.now() + CACHE_MS });
        while (this.cache.size > CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
      }
    }
    return { principal: result.principal, apiTokenId: result.tokenId, method: result.method };
  }

  /**
   * Like `login`, with how the secret proved the account and the API or app token's id when it was one
   * (to tie a bearer token to it, or to refuse a token where only the password will do).
   */
  loginForToken(username: string, secret: string, client: ClientInfo): Promise<{ principal: Exclude<Principal, { kind: 'anonymous' }>; apiTokenId?: number; method: AuthMethod }> {
    return this.loginWith(username, secret, client);
  }

  /** The caller of a request with Basic credentials (see `login`). */
  async basic(username: string, secret: string, client: ClientInfo): Promise<Caller> {
    const principal = await this.login(username, secret, client);
    return { principal, access: new ScopedAccess(this.deps.access), via: 'basic' };
  }

  /**
   * The caller of a request with a bearer token: its subject re-read now (UNAUTHORIZED if the token is
   * invalid or expired, or its account no longer exists or is disabled), capped by the token's access.
   */
  async bearer(token: string, service: string): Promise<Caller> {
    const verified = await this.deps.tokens.verify(token, service);
    if (!verified) throw new RegistryError('UNAUTHORIZED', 'invalid or expired token');
    let principal: Principal = ANONYMOUS;
    if (verified.subject !== undefined) {
      // An API-token login stays tied to its token: revoking the token (or its expiry) ends it at once.
      const found =
        verified.apiTokenId !== undefined ? await this.deps.authenticator.principalForApiToken(verified.apiTokenId) : await this.deps.authenticator.principalFor(verified.subject);
      if (!found || found.name !== verified.subject || (verified.subjectId !== undefined && found.id !== verified.subjectId)) {
        throw new RegistryError('UNAUTHORIZED', 'the account of this token no longer exists or is disabled');
      }
      principal = found;
    }
    return { principal, access: new ScopedAccess(this.deps.access, verified.access), via: 'bearer' };
  }

  /**
   * A token for `service` granting, per requested scope, the intersection of what was asked and what the
   * principal may do (creating a repository when push is asked for where the principal may create one).
   * Scopes granting nothing are listed with no actions, as distribution does.
   */
  async issue(principal: Principal, service: string, scopes: readonly ScopeRequest[], apiTokenId?: number): Promise<IssuedToken & { access: TokenAccess[] }> {
    const access: TokenAccess[] = [];
    for (const scope of scopes) {
      if (scope.type === 'registry') {
        // Everyone may ask for the catalog; it lists only what the caller can read.
        access.push({ type: 'registry', name: 'catalog', actions: scope.actions.includes('*') ? ['*'] : [] });
        continue;
      }
      const granted = await this.deps.access.grant(principal, scope.name, expand(scope.actions));
      const existing = access.find((a) => a.type === 'repository' && a.name === scope.name);
      if (existing) existing.actions = [...new Set([...existing.actions, ...granted])];
      else access.push({ type: 'repository', name: scope.name, actions: granted });
    }
    const subject = principal.kind === 'anonymous' ? undefined : principal.name;
    const subjectId = principal.kind === 'anonymous' ? undefined : principal.id;
    return { ...(await this.deps.tokens.issue(service, subject, access, apiTokenId, subjectId)), access };
  }
}

/** The namespace a failed login for `username` is filed under, when the name could be one. */
function failureNamespace(username: string): string | undefined {
  const ns = username.includes('+') ? username.slice(0, username.indexOf('+')) : username;
  return /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/.test(ns) && ns.length <= 255 ? ns : undefined;
}
