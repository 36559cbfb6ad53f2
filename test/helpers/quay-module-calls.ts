/**
 * The HTTP calls of the Quay Ansible collection (`infra.quay_configuration`), as its modules make them,
 * against a Wharf app through `inject()`. The collection cannot be installed here, so the tests under
 * test/quay-collection/ replay each module's flow call by call: the same method, path (trailing slash
 * and all), query (Python's `True`/`False`), JSON body and headers (`Content-Type: application/json` on
 * every request, bodyless DELETEs included), and read back the same status codes and fields.
 *
 * How the collection treats answers (its module_utils):
 *   GET of one object   200 → the JSON (keys with `_` also copied without it, `super_user` → `superuser`);
 *                       404 (or the call's other accepted codes) → absent; anything else fails the module
 *   POST (create)       200, 201, 204 → done; anything else fails
 *   PUT  (update)       200, 201, 204 → done; anything else fails
 *   DELETE              200–204 → changed; 400 or 404 → not changed; anything else fails
 *   401, 403, 405 and every 5xx fail the module at once, whatever the call.
 *
 * A failure is thrown as ModuleFailure; `calls` records every request for the tests to inspect.
 */
import type { FastifyInstance } from 'fastify';

export class ModuleFailure extends Error {
  override name = 'ModuleFailure';
}

export interface Call {
  method: string;
  path: string;
  status: number;
}

type Json = Record<string, any>;

export class QuayModuleCalls {
  readonly calls: Call[] = [];
  private orgCache = new Map<string, Json | null>();

  /** `authorization`: what the module sends (`Bearer <token>` for `quay_token`). */
  constructor(
    private readonly app: () => FastifyInstance,
    private readonly authorization: string,
  ) {}

  /** One request as the collection's session sends it; fails on 401/403/405/5xx like the collection. */
  async request(method: string, endpoint: string, opts: { query?: Record<string, string | number | boolean>; body?: unknown; okErrorCodes?: number[] } = {}): Promise<{ status: number; json: any }> {
    const path = `/api/v1/${endpoint.replace(/^\/+/, '')}`;
    const query = opts.query ? `?${new URLSearchParams(Object.entries(opts.query).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v)])).toString()}` : '';
    const res = await this.app().inject({
      method: method as 'GET',
      url: path + query,
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: this.authorization },
      ...(opts.body === undefined ? {} : { payload: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) }),
    });
    this.calls.push({ method, path: path + query, status: res.statusCode });
    const ok = opts.okErrorCodes ?? [404];
    if (res.statusCode >= 500) throw new ModuleFailure(`server error ${res.statusCode} on ${method} ${path}: ${res.body}`);
    if (!ok.includes(res.statusCode) && [401, 403, 405].includes(res.statusCode)) throw new ModuleFailure(`HTTP ${res.statusCode} on ${method} ${path}: ${res.body}`);
    let json: any = {};
    if (res.body) {
      try {
        json = JSON.parse(res.body);
      } catch {
        throw new ModuleFailure(`not JSON from ${method} ${path}: ${res.body.slice(0, 200)}`);
      }
    }
    return { status: res.statusCode, json };
  }

  /** get_object_path: the object, or null when the answer is one of `okErrorCodes` (404 by default). */
  async get(endpoint: string, opts: { query?: Record<string, string | number | boolean>; okErrorCodes?: number[] } = {}): Promise<Json | null> {
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

  /** need_update: whether a field of `fields` differs from `old` (a password always does). */
  needUpdate(old: Json | null, fields: Json): boolean {
    return Object.keys(fields).some((k) => k === 'password' || fields[k] !== (old ?? {})[k]);
  }

  /** update: PUT only when needUpdate; whether it changed anything. */
  async update(old: Json | null, endpoint: string, fields: Json): Promise<boolean> {
    if (!this.needUpdate(old, fields)) return false;
    await this.put(endpoint, fields);
    return true;
  }

  /** delete: nothing when `object` is null; whether something was deleted. */
  async delete(object: unknown, endpoint: string): Promise<boolean> {
    if (object === null || object === undefined || object === false || object === '') return false;
    const res = await this.request('DELETE', endpoint, { okErrorCodes: [400, 404] });
    if ([200, 201, 202, 204].includes(res.status)) return true;
    if ([400, 404].includes(res.status)) return false;
    throw new ModuleFailure(`Unable to delete ${endpoint}: ${res.status}`);
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
}
