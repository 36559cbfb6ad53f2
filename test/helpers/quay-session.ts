/**
 * A client that talks to Wharf as the Quay Ansible collection's `plugins/module_utils/api_module.py`
 * does, for the replay tests in test/quay-collection/ (and for e2e tests over real HTTP):
 *
 *   user/password  GET /csrf_token (cookies kept) → POST /api/v1/signin {username, password} with
 *                  X-CSRF-Token → the X-Next-CSRF-Token of the reply goes on every later call, with the
 *                  session cookie; `signOut()` is POST /api/v1/signout (as the module does on exit)
 *   token          Authorization: Bearer <token> on every call (the module's `quay_token`)
 *   anonymous      nothing (APIModuleNoAuth, e.g. quay_first_user)
 *
 * Every call sends `Content-Type: application/json` and `Accept: application/json` as the module's
 * session does. `api(method, endpoint)` builds the URL as the module's build_url does:
 * `/api/v1/<endpoint without leading "/">`, so `api('GET', 'superuser/users/')` keeps the trailing slash.
 *
 *   const t = injectTransport(app)                       // or fetchTransport('http://127.0.0.1:5000')
 *   const q = await QuayClient.signIn(t, 'admin', 'pw')   // or QuayClient.withToken(t, token)
 *   const r = await q.api('POST', 'organization/', { name: 'acme' })   // {status, headers, raw, json}
 *   await q.signOut()
 *   for (const mode of AUTH_MODES) { const q = await quayClientFor(mode, t, 'admin', 'pw'); … }
 *   await moduleRun(mode, t, 'admin', 'pw', async (q) => { …the module's calls… })   // signs out after
 */
import type { FastifyInstance } from 'fastify';

export interface QuayRequest {
  method: string;
  /** Path and query, e.g. `/api/v1/user/`. */
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

export interface QuayResponse {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  /** The parsed JSON body ({} for an empty body, as the module has it; undefined when not JSON). */
  json: any;
}

/** Sends one request and returns the response without following redirects. */
export type Transport = (req: QuayRequest) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;

/** Requests through Fastify's inject(). */
export function injectTransport(app: FastifyInstance | (() => FastifyInstance)): Transport {
  return async (req) => {
    const instance = typeof app === 'function' ? app() : app;
    const res = await instance.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, ...(req.payload === undefined ? {} : { payload: req.payload }) });
    return { status: res.statusCode, headers: res.headers as Record<string, string | string[] | undefined>, body: res.body };
  };
}

/** Requests over real HTTP to `baseUrl` (scheme://host:port). */
export function fetchTransport(baseUrl: string): Transport {
  return async (req) => {
    const res = await fetch(`${baseUrl.replace(/\/+$/, '')}${req.url}`, { method: req.method, headers: req.headers, body: req.payload, redirect: 'manual' });
    const headers: Record<string, string | string[] | undefined> = {};
    res.headers.forEach((v, k) => {
      headers[k] = v;
    });
    const cookies = res.headers.getSetCookie();
    if (cookies.length) headers['set-cookie'] = cookies;
    return { status: res.status, headers, body: await res.text() };
  };
}

export const AUTH_MODES = ['session', 'token'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

export class QuayClient {
  /** Cookies the server set (name → value), sent back on every call. */
  readonly cookies = new Map<string, string>();
  /** Headers sent on every call (Authorization, or X-CSRF-Token after sign-in). */
  readonly headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };

  private constructor(private readonly transport: Transport) {}

  static anonymous(transport: Transport): QuayClient {
    return new QuayClient(transport);
  }

  static withToken(transport: Transport, token: string): QuayClient {
    const q = new QuayClient(transport);
    q.headers.authorization = `Bearer ${token}`;
    return q;
  }

  /** Signs in as the module's `authenticate()` does; throws with the server's answer when any step fails. */
  static async signIn(transport: Transport, username: string, password: string): Promise<QuayClient> {
    const q = new QuayClient(transport);
    const csrf = await q.raw('GET', '/csrf_token', undefined, { accept: '*/*' });
    let token: string | undefined = csrf.json?.csrf_token;
    if (typeof token !== 'string') {
      // The module's fallback for servers without /csrf_token: the token in the root page.
      const page = await q.raw('GET', '/', undefined, { accept: '*/*' });
      token = /window.__token\s*=\s*'(.*?)';/.exec(page.raw)?.[1];
      if (token === undefined) throw new Error(`no CSRF token from /csrf_token (${csrf.status} ${csrf.raw.slice(0, 200)}) or / (${page.status})`);
    }
    const res = await q.api('POST', 'signin', { username, password }, { 'x-csrf-token': token });
    if (res.status !== 200) throw new Error(`sign-in as ${username} failed: ${res.status} ${res.raw.slice(0, 300)}`);
    const next = res.headers['x-next-csrf-token'];
    if (typeof next !== 'string') throw new Error('sign-in returned no X-Next-CSRF-Token');
    q.headers['x-csrf-token'] = next;
    return q;
  }

  /** A call to `/api/v1/<endpoint>` with the client's credentials; `query` as the module's query_params. */
  api(method: string, endpoint: string, body?: unknown, headers: Record<string, string> = {}, query?: Record<string, string | number | boolean>): Promise<QuayResponse> {
    const path = endpoint === '' ? '/api/v1/' : `/api/v1/${endpoint.replace(/^\/+/, '')}`;
    const qs = query ? `?${new URLSearchParams(Object.entries(query).map(([k, v]) => [k, v === true ? 'True' : v === false ? 'False' : String(v)])).toString()}` : '';
    return this.raw(method, `${path}${qs}`, body === undefined ? undefined : JSON.stringify(body), headers);
  }

  /** A call to any path with the client's cookies and headers; `headers` add to or replace them. */
  async raw(method: string, url: string, payload?: string, headers: Record<string, string> = {}): Promise<QuayResponse> {
    const all: Record<string, string> = { ...this.headers, ...headers };
    if (this.cookies.size) all.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await this.transport({ method, url, headers: all, payload });
    this.keepCookies(res.headers['set-cookie']);
    let json: unknown;
    try {
      json = res.body === '' ? {} : JSON.parse(res.body);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, raw: res.body, json };
  }

  /** POST /api/v1/signout, as the module does when it exits (after a sign-in only). */
  async signOut(): Promise<QuayResponse | undefined> {
    if (this.headers.authorization || !this.headers['x-csrf-token']) return undefined;
    const res = await this.api('POST', 'signout');
    delete this.headers['x-csrf-token'];
    return res;
  }

  private keepCookies(header: string | string[] | undefined): void {
    for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const i = pair!.indexOf('=');
      if (i <= 0) continue;
      const gone = attributes.some((a) => /^max-age=0$/i.test(a) || /^expires=thu, 01 jan 1970/i.test(a));
      if (gone || pair!.slice(i + 1) === '') this.cookies.delete(pair!.slice(0, i));
      else this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
  }
}

/**
 * A client signed in as `username` the way `mode` says: 'session' signs in with the password; 'token'
 * signs in, creates an API token with every scope (`POST /api/v1/user/apitokens`), signs out, and
 * returns a client that sends that token as the module's `quay_token`.
 */
export async function quayClientFor(mode: AuthMode, transport: Transport, username: string, password: string): Promise<QuayClient> {
  const session = await QuayClient.signIn(transport, username, password);
  if (mode === 'session') return session;
  const scopes = ['repo:read', 'repo:write', 'repo:admin', 'repo:create', 'user:read', 'user:admin', 'org:admin', 'super:user'];
  const created = await session.api('POST', 'user/apitokens', { name: 'quay-collection', scopes });
  await session.signOut();
  if (created.status !== 201 || typeof created.json?.token !== 'string') throw new Error(`could not create an API token for ${username}: ${created.status} ${created.raw.slice(0, 200)}`);
  return QuayClient.withToken(transport, created.json.token);
}

/**
 * One run of a collection module: a client signed in as `mode` says, the module's calls, then the
 * sign-out the module makes when it exits (also when the calls throw).
 */
export async function moduleRun<T>(mode: AuthMode, transport: Transport, username: string, password: string, calls: (q: QuayClient) => Promise<T>): Promise<T> {
  const q = await quayClientFor(mode, transport, username, password);
  try {
    return await calls(q);
  } finally {
    const out = await q.signOut();
    if (out && out.status !== 200) throw new Error(`sign-out failed: ${out.status} ${out.raw.slice(0, 200)}`);
  }
}
