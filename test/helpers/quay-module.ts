/**
 * One run of a Quay Ansible collection module (`infra.quay_configuration`), as its
 * `plugins/module_utils/api_module.py` makes its calls, over a QuayClient (quay-session.ts) that signed
 * in with a user name and password or carries a token. The collection cannot be installed here, so the
 * tests under test/quay-collection/ replay each module's flow call by call: the same method, path
 * (`/api/v1/<endpoint>`, trailing slash and all), query (Python's `True`/`False`), JSON body and headers
 * (`Content-Type: application/json` and `Accept: application/json` on every request, bodyless GETs and
 * DELETEs included; `X-CSRF-Token` and the session cookie after a sign-in, `Authorization: Bearer` with
 * a token), and read back the same status codes and fields.
 *
 * Every answer is checked: never a 5xx, always JSON, and an error (4xx) in Quay's shape
 * (`status`, `error_type`, `detail`). How the collection treats answers:
 *   GET of one object   200 → the JSON; 404 (or the call's other accepted codes) → absent; else fails
 *   POST (create)       200, 201, 204 → done; anything else fails
 *   PUT  (update)       200, 201, 204 → done; anything else fails
 *   DELETE              200–204 → changed; 400 or 404 → not changed; anything else fails
 *   401, 403, 405 and every 5xx fail the module at once, whatever the call.
 * A failure is thrown as ModuleFailure; `calls` records every request for the tests to inspect.
 *
 * Two families of helpers, as the collection's modules use them:
 *   get / create / put / update(old, endpoint, fields) / delete(object, endpoint) / whoAmI /
 *   getOrganization / getTeam / getAccount / getNamespace / splitName   (the APIModule methods)
 *   raw / getObject / remove / getTags                                   (the bare calls, for status checks)
 */
import assert from 'node:assert/strict';
import type { QuayClient } from './quay-session.js';

export class ModuleFailure extends Error {
  override name = 'ModuleFailure';
}

export interface Call {
  method: string;
  path: string;
  status: number;
}

export interface Answer {
  status: number;
  json: any;
  headers: Record<string, unknown>;
}

type Json = Record<string, any>;
type Query = Record<string, string | number | boolean>;

/** The need_update of modules that compare values read back: a key of `next` whose value differs in `old` (absent = null). */
export function needUpdate(old: Record<string, unknown> | undefined | null, next: Record<string, unknown>): boolean {
  return Object.keys(next).some((k) => JSON.stringify(next[k]) !== JSON.stringify((old ?? {})[k] ?? null));
}

export class QuayModule {
  readonly calls: Call[] = [];
  private orgCache = new Map<string, Json | null>();

  constructor(readonly client: QuayClient) {}

  /** One request as the module's session sends it: no 5xx, JSON, errors in Quay's shape; the answer whatever its status. */
  async raw(method: string, endpoint: string, body?: unknown, query?: Query): Promise<Answer> {
    const path = endpoint === '' ? '/api/v1/' : `/api/v1/${endpoint.replace(/^\/+/, '')}`;
    const url = query ? `${path}?${new URLSearchParams(Object.entries(query).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v)])).toString()}` : path;
    // A string is sent as it is (the module serializes lists itself; only dicts go through json.dumps).
    const res = await this.client.raw(method, url, body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
    this.calls.push({ method, path: url, status: res.status });
    assert.ok(res.status < 500, `${method} ${endpoint}: ${res.status} ${res.raw}`);
    if (res.json === undefined) throw new ModuleFailure(`not JSON from ${method} ${endpoint}: ${res.raw.slice(0, 200)}`);
    if (res.status >= 400) {
      assert.equal(res.json.status, res.status, `${method} ${endpoint}: error shape ${res.raw}`);
      assert.equal(typeof res.json.error_type, 'string', res.raw);
      assert.equal(typeof res.json.detail, 'string', res.raw);
    }
    return { status: res.status, json: res.json, headers: res.headers };
  }

  /** make_json_request: fails on 401/403/405 unless accepted in `okErrorCodes`. */
  async request(method: string, endpoint: string, opts: { query?: Query; body?: unknown; okErrorCodes?: number[] } = {}): Promise<{ status: number; json: any }> {
    const res = await this.raw(method, endpoint, opts.body, opts.query);
    const ok = opts.okErrorCodes ?? [404];
    if (!ok.includes(res.status) && [401, 403, 405].includes(res.status)) throw new ModuleFailure(`HTTP ${res.status} on ${method} ${endpoint}: ${JSON.stringify(res.json)}`);
    return res;
  }

  /** get_object_path: the object, or null when the answer is one of `okErrorCodes` (404 by default); `_` keys also without it. */
  async get(endpoint: string, opts: { query?: Query; okErrorCodes?: number[] } = {}): Promise<Json | null> {
    const ok = opts.okErrorCodes ?? [404];
    const res = await this.request('GET', endpoint, { query: opts.query, okErrorCodes: ok });
    if (ok.includes(res.status)) return null;
    if (res.status !== 200) throw new ModuleFailure(`Unable to get ${endpoint}: ${res.status}: ${JSON.stringify(res.json)}`);
    const json = res.json;
    if (json && typeof json === 'object' && !Array.isArray(json)) {
      for (const k of Object.keys(json)) if (k.includes('_')) json[k.replace(/_/g, '')] = json[k];
    }
    return json;
  }

  /** A GET read as is: undefined when the answer is one of `okErrorCodes`, the JSON on 200, else fails. */
  async getObject(endpoint: string, query?: Query, okErrorCodes = [404]): Promise<any> {
    const res = await this.raw('GET', endpoint, undefined, query);
    if (okErrorCodes.includes(res.status)) return undefined;
    assert.equal(res.status, 200, `GET ${endpoint}: ${JSON.stringify(res.json)}`);
    return res.json;
  }

  /** create: POST; the reply's JSON. */
  async create(endpoint: string, body: unknown, okCodes = [200, 201, 204]): Promise<any> {
    const res = await this.request('POST', endpoint, { body, okErrorCodes: okCodes });
    if (!okCodes.includes(res.status)) throw new ModuleFailure(`Unable to create ${endpoint}: ${res.status}: ${JSON.stringify(res.json)}`);
    return res.json;
  }

  /** unconditional_update: PUT; the reply's JSON. */
  async put(endpoint: string, body: unknown): Promise<any> {
    const res = await this.request('PUT', endpoint, { body });
    if (![200, 201, 204].includes(res.status)) throw new ModuleFailure(`Unable to update ${endpoint}: ${res.status}: ${JSON.stringify(res.json)}`);
    return res.json;
  }

  /** The need_update of the APIModule: whether a field of `fields` differs from `old` (a password always does). */
  needUpdate(old: Json | null, fields: Json): boolean {
    return Object.keys(fields).some((k) => k === 'password' || fields[k] !== (old ?? {})[k]);
  }

  /** update: PUT only when needUpdate; whether it changed anything. */
  async update(old: Json | null, endpoint: string, fields: Json): Promise<boolean> {
    if (!this.needUpdate(old, fields)) return false;
    await this.put(endpoint, fields);
    return true;
  }

  /** A DELETE: 200–204 'changed', 400/404 'unchanged', anything else fails. */
  async remove(endpoint: string): Promise<'changed' | 'unchanged'> {
    const res = await this.request('DELETE', endpoint, { okErrorCodes: [400, 404] });
    if ([200, 201, 202, 204].includes(res.status)) return 'changed';
    if ([400, 404].includes(res.status)) return 'unchanged';
    throw new ModuleFailure(`Unable to delete ${endpoint}: ${res.status}`);
  }

  /** delete: nothing when `object` is null; whether something was deleted. */
  async delete(object: unknown, endpoint: string): Promise<boolean> {
    if (object === null || object === undefined || object === false || object === '') return false;
    return (await this.remove(endpoint)) === 'changed';
  }

  /** get_tags: `…/tag/?onlyActiveTags=…&limit=100[&specificTag=]&page=N`, every page, filtered by digest when given. */
  async getTags(namespace: string, repository: string, opts: { tag?: string; digest?: string; onlyActive?: boolean } = {}): Promise<any[]> {
    const out: any[] = [];
    for (let page = 1; ; page++) {
      const query: Query = { onlyActiveTags: opts.onlyActive ?? true, limit: 100 };
      if (opts.tag) query.specificTag = opts.tag;
      query.page = page;
      const tags = await this.getObject(`repository/${namespace}/${repository}/tag/`, query);
      if (!tags) break;
      const list: any[] = tags.tags ?? [];
      out.push(...(opts.tag || !opts.digest ? list : list.filter((x) => x.manifest_digest === opts.digest)));
      if (!tags.has_additional) break;
    }
    return out;
  }

  /** who_am_i: the caller's user name. */
  async whoAmI(): Promise<string> {
    const me = await this.get('user/');
    if (!me) throw new ModuleFailure('GET user/ answered 404');
    return me.username as string;
  }

  /** get_organization (cached for one module run, as the collection does). */
  async getOrganization(name: string): Promise<Json | null> {
    if (this.orgCache.has(name)) return this.orgCache.get(name)!;
    const org = await this.get(`organization/${name}`);
    const value = org && Object.keys(org).length ? { ...org, is_organization: true } : null;
    this.orgCache.set(name, value);
    return value;
  }

  async getTeam(organization: string, team: string): Promise<Json | null> {
    const org = await this.getOrganization(organization);
    return org?.teams?.[team] ?? null;
  }

  /** get_account: a robot (`ns+short`) through the robot endpoints, a user through the entity lookup. */
  async getAccount(name: string): Promise<Json | null> {
    const plus = name.indexOf('+');
    if (plus >= 0) {
      const [ns, short] = [name.slice(0, plus), name.slice(plus + 1)];
      const robot = await this.get(`organization/${ns}/robots/${short}`, { okErrorCodes: [400, 404] });
      if (robot) return { ...robot, is_organization: false, is_robot: true };
      if ((await this.whoAmI()) !== ns) return null;
      const own = await this.get(`user/robots/${short}`, { okErrorCodes: [400, 404] });
      return own ? { ...own, is_organization: false, is_robot: true } : null;
    }
    const ownRobot = await this.get(`user/robots/${name}`, { okErrorCodes: [400, 404] });
    if (ownRobot && Object.keys(ownRobot).length) return { ...ownRobot, is_organization: false, is_robot: true };
    const found = await this.get(`entities/${name}`, { query: { includeOrgs: false, includeTeams: false } });
    const match = (found?.results ?? []).find((r: Json) => r.name === name);
    if (!match) return null;
    return { ...found, name, is_organization: false, is_robot: false };
  }

  /** get_namespace: an organization, or a user's personal namespace. */
  async getNamespace(namespace: string): Promise<Json | null> {
    const org = await this.getOrganization(namespace);
    if (org) return org;
    const user = await this.getAccount(namespace);
    return user && !user.is_robot ? user : null;
  }

  /**
   * split_name: `namespace<sep>short` (the caller's own namespace when there is no separator) and
   * whether it is an organization; 'absent' when the namespace does not exist and state is absent.
   */
  async splitName(value: string, state: 'present' | 'absent', sep = '/'): Promise<{ namespace: string; short: string; isOrg: boolean } | 'absent'> {
    const me = await this.whoAmI();
    const i = value.indexOf(sep);
    const [namespace, short] = i < 0 ? [me, value] : [value.slice(0, i), value.slice(i + 1)];
    const details = await this.getNamespace(namespace);
    if (!details) {
      if (state === 'absent') return 'absent';
      throw new ModuleFailure(`The ${namespace} namespace does not exist.`);
    }
    if (!details.is_organization && details.name !== me) throw new ModuleFailure(`You (${me}) are not the owner of ${namespace}'s namespace.`);
    return { namespace, short, isOrg: details.is_organization === true };
  }

  /** The requests with a 4xx or 5xx answer (404s of lookups included). */
  failures(): Call[] {
    return this.calls.filter((c) => c.status >= 400);
  }

  /** The module's exit: POST signout after a sign-in (always 200, also when the session has already ended). */
  async exit(): Promise<void> {
    const out = await this.client.signOut();
    if (out) assert.equal(out.status, 200, `sign-out: ${out.status} ${out.raw}`);
  }
}
