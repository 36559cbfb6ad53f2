/**
 * Upstream authentication, driven by the registry's `WWW-Authenticate` challenge:
 *
 *   1. The first request goes out anonymously.
 *   2. A 401 names the scheme. Basic → send the configured credentials. Bearer → GET
 *      `realm?service=…&scope=repository:<repo>:pull` (with Basic credentials when configured) and send
 *      `Bearer <token|access_token>`. The caller retries once; a second 401 is an UpstreamAuthError.
 *   3. The challenge is remembered, so later requests for other repositories fetch their token up front
 *      instead of paying a 401 round trip. Tokens are cached per (realm, service, scope) until
 *      `expires_in` (default 60 s, as the token spec says) minus a margin; concurrent requests for one
 *      scope share one token request.
 */
import { parseChallenge, type Challenge } from './challenge.js';
import { UpstreamAuthError, UpstreamProtocolError } from './errors.js';
import { header, statusError, type Transport } from './transport.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface AuthenticatorOptions {
  credentials?: Credentials;
  /** Subtracted from `expires_in` before a cached token is considered stale; default 10 s. */
  tokenMarginMs?: number;
  now?: () => number;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

export class Authenticator {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly now: () => number;
  /** Token requests sent so far (for metrics and tests). */
  tokenRequests = 0;

  constructor(
    private readonly transport: Transport,
    private readonly baseUrl: string,
    private readonly opts: AuthenticatorOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  get hasCredentials(): boolean {
    return this.opts.credentials !== undefined;
  }

  /**
   * The Authorization header for a request in `scope` from what is known: none before any challenge,
   * Basic after a Basic challenge, a cached or freshly fetched token after a Bearer challenge.
   */
  async headerFor(scope: string | undefined): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.basic();
    return `Bearer ${await this.token(c, scope, false)}`;
  }

  /** After a 401: learns the challenge and returns fresh credentials for one retry. */
  async reauthenticate(wwwAuthenticate: string | string[] | undefined, scope: string | undefined): Promise<string> {
    const c = parseChallenge(wwwAuthenticate);
    if (!c) throw new UpstreamAuthError('upstream answered 401 without a usable WWW-Authenticate challenge', { status: 401 });
    this.challenge = c;
    if (c.scheme === 'basic') {
      const b = this.basic();
      if (!b) throw new UpstreamAuthError('upstream requires Basic credentials and none are configured', { status: 401 });
      return b;
    }
    return `Bearer ${await this.token(c, scope, true)}`;
  }

  private basic(): string | undefined {
    const cr = this.opts.credentials;
    return cr ? `Basic ${Buffer.from(`${cr.username}:${cr.password}`).toString('base64')}` : undefined;
  }

  private token(c: Extract<Challenge, { scheme: 'bearer' }>, scope: string | undefined, force: boolean): Promise<string> {
    const key = `${c.realm}\n${c.service ?? ''}\n${scope ?? ''}`;
    const cached = this.tokens.get(key);
    if (!force && cached && cached.expiresAt > this.now()) return Promise.resolve(cached.value);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.fetchToken(c, scope ?? c.scope, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetchToken(c: Extract<Challenge, { scheme: 'bearer' }>, scope: string | undefined, key: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(c.realm);
    } catch {
      throw new UpstreamProtocolError(`token realm "${c.realm.slice(0, 200)}" is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UpstreamProtocolError(`token realm scheme ${url.protocol} refused`);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = this.basic();
    if (basic) {
      if (url.protocol === 'http:' && this.baseUrl.startsWith('https:')) {
        throw new UpstreamAuthError(`refusing to send credentials to the plain-HTTP token realm ${url.origin}`);
      }
      headers.authorization = basic;
    }
    if (c.service) url.searchParams.set('service', c.service);
    if (scope) url.searchParams.set('scope', scope);
    this.tokenRequests++;
    const res = await this.transport.send('GET', url.toString(), headers);
    if (res.status !== 200) {
      const err = await statusError(res, 'token');
      if (res.status === 401 || res.status === 403) {
        throw new UpstreamAuthError(`token endpoint ${url.host} refused ${basic ? 'the configured credentials' : 'anonymous access'} (${res.status})`, { status: res.status });
      }
      throw err;
    }
    const text = (await this.transport.read(res, 1024 * 1024, 'token response')).toString('utf8');
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      throw new UpstreamProtocolError(`token endpoint ${url.host} sent invalid JSON (${header(res.headers, 'content-type') ?? 'no content type'})`);
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' && doc.access_token ? doc.access_token : undefined;
    if (!token) throw new UpstreamProtocolError(`token endpoint ${url.host} sent neither "token" nor "access_token"`);
    const expiresIn = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    const ttl = expiresIn * 1000 - (this.opts.tokenMarginMs ?? 10_000);
    if (ttl > 0) this.tokens.set(key, { value: token, expiresAt: this.now() + ttl });
    else this.tokens.delete(key);
    return token;
  }
}
