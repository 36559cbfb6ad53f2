/**
 * Whole requests for a fuzz run: `/v2` operations with made-up names, references, digests, manifests,
 * upload ranges and credentials, and `/api/v1` calls built from the route table (API_ROUTES) with
 * made-up path parameters, query strings and bodies. Each request comes with the same seed's values,
 * and uses what the world learned (pushed blobs, started uploads) often enough to get past the first
 * check.
 */
import { API_ROUTES } from '../../src/http/api/routes.js';
import type { ApiRoute } from '../../src/http/api/route.js';
import * as gen from './inputs.js';
import type { Rng } from './rng.js';
import { API_TARGET, BASE_IMAGE, NAMESPACES, type FuzzWorld, type Sent } from './world.js';

/** Credentials of a request: mostly the superuser's, sometimes a user's, nobody's or made-up ones. */
function credentials(r: Rng, w: FuzzWorld): Record<string, string> {
  return r.weighted<Record<string, string>>([
    [14, () => ({ authorization: w.auth.root })],
    [2, () => ({ authorization: w.auth.user })],
    [2, () => ({})],
    [2, () => ({ authorization: gen.authorization(r, [w.auth.root, w.auth.user]) })],
  ]);
}

/** A path segment as it goes into a URL: usually encoded, sometimes raw (which may not parse). */
function seg(r: Rng, value: string): string {
  return r.chance(0.8) ? value.split('/').map(encodeURIComponent).join('/') : value;
}

const nameOf = (r: Rng, w: FuzzWorld) => (r.chance(0.15) ? BASE_IMAGE : gen.name(r, NAMESPACES));

export function v2Request(r: Rng, w: FuzzWorld): Sent {
  const headers = credentials(r, w);
  const name = () => seg(r, nameOf(r, w));
  const known = w.digests;
  const body = () => (r.chance(0.5) ? Buffer.from(`blob-${r.int(50)}`) : r.bytes(r.between(0, 300)));
  return r.weighted<Sent>([
    [4, () => ({ method: r.pick(['GET', 'HEAD', 'DELETE']), url: `/v2/${name()}/manifests/${seg(r, gen.reference(r, known))}`, headers: { ...headers, accept: r.pick(['*/*', 'application/vnd.oci.image.index.v1+json', '', 'x/y;q=abc']) } })],
    [6, () => {
      const type = gen.manifestType(r);
      return { method: 'PUT', url: `/v2/${name()}/manifests/${seg(r, gen.reference(r, known))}`, headers: { ...headers, ...(type === undefined ? {} : { 'content-type': type }) }, body: gen.manifestBody(r, w.blobs, w.manifests) };
    }],
    [3, () => ({ method: r.pick(['GET', 'HEAD', 'DELETE']), url: `/v2/${name()}/blobs/${seg(r, gen.digest(r, known))}`, headers: { ...headers, ...(r.chance(0.3) ? { range: gen.byteRange(r) } : {}) } })],
    [4, () => {
      const data = body();
      const digest = r.chance(0.6) ? gen.sha256(data) : gen.digest(r, known);
      const length: Record<string, string> = r.chance(0.1) ? { 'content-length': String(r.pick([0, data.length + 1, 2 ** 53])) } : {};
      return { method: 'POST', url: `/v2/${name()}/blobs/uploads/?digest=${seg(r, digest)}`, headers: { ...headers, 'content-type': 'application/octet-stream', ...length }, body: data };
    }],
    [2, () => ({ method: 'POST', url: `/v2/${name()}/blobs/uploads/`, headers })],
    [2, () => ({ method: 'POST', url: `/v2/${name()}/blobs/uploads/?mount=${seg(r, gen.digest(r, known))}${r.chance(0.7) ? `&from=${seg(r, nameOf(r, w))}` : ''}`, headers })],
    [5, () => {
      const location = w.uploads.length && r.chance(0.85) ? r.pick(w.uploads) : `/v2/${name()}/blobs/uploads/${r.pick(['00000000-0000-0000-0000-000000000000', 'x', '%zz', '..', gen.digest(r)])}`;
      const data = body();
      const method = r.pick(['PATCH', 'PATCH', 'PUT', 'GET', 'DELETE']);
      const query = method === 'PUT' ? `?digest=${seg(r, r.chance(0.5) ? gen.sha256(data) : gen.digest(r, known))}` : '';
      const range: Record<string, string> = r.chance(0.7) ? { 'content-range': gen.contentRange(r, data.length) } : {};
      return { method, url: `${location}${query}`, headers: { ...headers, 'content-type': 'application/octet-stream', ...range }, body: method === 'GET' || method === 'DELETE' ? undefined : data };
    }],
    [2, () => ({ method: 'GET', url: `/v2/${name()}/tags/list?n=${gen.queryValue(r)}&last=${gen.queryValue(r)}`, headers })],
    [1, () => ({ method: 'GET', url: `/v2/_catalog?n=${gen.queryValue(r)}&last=${gen.queryValue(r)}`, headers })],
    [1, () => ({ method: 'GET', url: `/v2/${name()}/referrers/${seg(r, gen.digest(r, known))}?artifactType=${gen.queryValue(r)}`, headers })],
    [2, () => ({ method: 'GET', url: `/v2/auth?service=${gen.queryValue(r)}&scope=${encodeURIComponent(`repository:${nameOf(r, w)}:${r.pick(['pull', 'push', 'pull,push', '*', 'delete', ''])}`)}${r.chance(0.3) ? `&scope=${gen.queryValue(r)}` : ''}`, headers })],
    [2, () => ({ method: r.pick(['GET', 'OPTIONS', 'PUT', 'POST', 'DELETE', 'PATCH']), url: `/v2/${Array.from({ length: r.between(0, 6) }, () => r.pick(['manifests', 'blobs', 'uploads', 'tags', 'list', '_catalog', 'referrers', gen.component(r), '', '%2F', '%', '..'])).join('/')}`, headers })],
  ]);
}

/** The field names of a zod object schema (through refinements and transforms), if it is one. */
function keysOf(schema: unknown): string[] {
  let s = schema as { shape?: Record<string, unknown>; def?: { in?: unknown; innerType?: unknown } } | undefined;
  for (let i = 0; i < 5 && s; i++) {
    if (s.shape) return Object.keys(s.shape);
    s = (s.def?.in ?? s.def?.innerType) as typeof s;
  }
  return [];
}

/** Field names worth trying on any route (those that become dates, durations, sizes, counts). */
const EXTRA_FIELDS = ['expiration', 'expiration_s', 'tag_expiration_s', 'limit_bytes', 'limit', 'threshold_percent', 'value', 'method', 'revalidate_interval_s', 'starttime', 'endtime', 'page', 'n'];

const KNOWN: Record<string, readonly string[]> = {
  orgname: ['fz', 'fy', 'nope'],
  namespace: ['fz', 'fy', 'victim', 'nope'],
  username: ['victim', 'nobody'],
  membername: ['fuzzer', 'victim', 'nobody'],
  teamname: ['owners', 'devs', 'nope'],
  robot_shortname: ['ci', 'bot'],
  tag: ['v1', 'latest', 'old'],
  id: ['1', '2', '999'],
  quota_id: ['1', '2', '999'],
  limit_id: ['1', '2', '999'],
  policy_uuid: ['00000000-0000-0000-0000-000000000000'],
  prototypeid: ['1', 'x'],
};

/** Path parameters that name what the world holds, for requests meant to reach the handler. */
const EXISTING: Record<string, string> = {
  orgname: 'fz',
  namespace: 'fz',
  username: 'victim',
  membername: 'fuzzer',
  teamname: 'owners',
  robot_shortname: 'bot',
  tag: 'v1',
};

/** Body fields whose value becomes a date, a duration, a size or a count. */
const NUMERIC = new Set(['expiration', 'expiration_s', 'tag_expiration_s', 'revalidate_interval_s', 'limit_bytes', 'threshold_percent', 'value']);

/**
 * Routes a run calls with no valid credentials: as the caller, they would lock the run out of its own
 * registry, or (an organization's rename) take away the organization that holds API_TARGET.
 */
const SPARED = new Set(['PUT /user/', 'PUT /superuser/organizations/:orgname']);

/**
 * One `/api/v1` request, routes with a body or a query string more often, and most often those whose
 * body holds a number that becomes a date, a duration or a size. Half are "deep": the
 * superuser, path parameters that name what exists, and a plausible body with one hostile field, so
 * that the hostile value reaches the handler; the other half are malformed throughout.
 */
export function apiRequest(r: Rng, w: FuzzWorld, routes: readonly ApiRoute[] = API_ROUTES): Sent {
  const route = r.weighted(routes.map((rt) => [1 + (rt.body || rt.query ? 3 : 0) + (keysOf(rt.body).some((k) => NUMERIC.has(k)) ? 6 : 0), () => rt] as const));
  // Never a deep DELETE: it would remove what the deep requests after it need.
  const deep = route.method !== 'DELETE' && r.chance(0.5);
  const headers = deep ? { authorization: w.auth.root } : credentials(r, w);
  if (SPARED.has(`${route.method} ${route.path}`) && (headers.authorization === w.auth.root || headers.authorization === w.auth.user)) delete headers.authorization;
  let path = route.path.replace(/:repository\+/, () => {
    if (deep) return API_TARGET;
    const n = r.chance(0.7) ? (r.chance(0.3) ? BASE_IMAGE : gen.validName(r, ['fz', 'fy'])) : gen.name(r, NAMESPACES);
    return r.chance(0.2) ? n.replace(/\//g, '%2F') : seg(r, n);
  });
  // Deletions spare the organization that holds API_TARGET.
  const known = (p: string) => (route.method === 'DELETE' ? (KNOWN[p] ?? ['x']).filter((v) => v !== 'fz') : (KNOWN[p] ?? ['x']));
  path = path.replace(/:([a-z_]+)/g, (_m, p: string) => (deep ? (EXISTING[p] ?? r.pick(known(p))) : gen.apiSegment(r, known(p))));
  if (!deep && r.chance(0.3)) path = path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
  const keys = [...keysOf(route.query)];
  const query = keys.filter(() => r.chance(0.6)).map((k) => `${k}=${gen.queryValue(r)}`);
  if (r.chance(0.2)) query.push(`${r.pick([...keys, ...EXTRA_FIELDS, 'x'])}=${gen.queryValue(r)}`);
  const url = `/api/v1${path}${query.length ? `?${query.join('&')}` : ''}`;
  if (route.method === 'GET' || route.method === 'DELETE') return { method: route.method, url, headers };
  const fields = keysOf(route.body);
  const body: Record<string, unknown> = {};
  if (deep) {
    const numeric = fields.filter((k) => NUMERIC.has(k));
    const hostile = numeric.length && r.chance(0.7) ? r.pick(numeric) : fields.length ? r.pick(fields) : undefined;
    for (const k of fields) body[k] = k === hostile ? hostileValue(r, k) : plausibleValue(r, w, k);
    return { method: route.method, url, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) };
  }
  for (const k of fields) if (r.chance(0.7)) body[k] = r.chance(0.5) ? hostileValue(r, k) : plausibleValue(r, w, k);
  if (r.chance(0.2)) body[r.pick(EXTRA_FIELDS)] = gen.jsonValue(r);
  const payload = r.weighted<string>([
    [8, () => JSON.stringify(body)],
    [1, () => r.pick(['', '{', 'null', '[]', '"x"', '1e400', '{"a":1}{"b":2}', '\u0000'])],
    [1, () => JSON.stringify(gen.jsonValue(r))],
  ]);
  const type = r.pick(['application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', '']);
  return { method: route.method, url, headers: { ...headers, ...(type ? { 'content-type': type } : {}) }, body: payload };
}

/** A value meant to break the field: a number past its range for numeric fields, anything otherwise. */
function hostileValue(r: Rng, field: string): unknown {
  if (NUMERIC.has(field) && r.chance(0.7)) return r.chance(0.8) ? gen.hostileNumber(r) : gen.hostileNumberText(r);
  return gen.jsonValue(r);
}

/** A value a client would send for the field. */
function plausibleValue(r: Rng, w: FuzzWorld, field: string): unknown {
  switch (field) {
    case 'manifest_digest':
      return w.target;
    case 'expiration':
      return Math.floor(Date.now() / 1000) + 3600;
    case 'expiration_s':
    case 'tag_expiration_s':
    case 'revalidate_interval_s':
      return 86_400;
    case 'limit_bytes':
      return 1e12;
    case 'threshold_percent':
      return 80;
    case 'value':
      return r.pick([5, '7d']);
    case 'method':
      return r.pick(['number_of_tags', 'creation_date']);
    case 'scopes':
      return ['repo:read'];
    case 'namespace':
      return 'fz';
    case 'upstream_registry':
      return r.pick(['registry.invalid', 'up.invalid/x']);
    case 'visibility':
      return r.pick(['public', 'private']);
    case 'state':
      return 'NORMAL';
    case 'type':
      return r.pick(['Warning', 'Reject']);
    case 'role':
      return r.pick(['member', 'admin', 'read', 'write']);
    default:
      return gen.component(r);
  }
}
