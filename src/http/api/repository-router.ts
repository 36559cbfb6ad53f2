/**
 * Which route and which repository a path below `/api/v1/repository/` names.
 *
 * A repository name has two or more components and reaches the API with its `/` raw (as clients send
 * it) or as `%2F`, so the path alone does not say where the name ends: `/repository/qc/lib/app/tag/v1`
 * could be tag `v1` of `qc/lib/app` or the repository `qc/lib/app/tag/v1`. The router decides from
 * the sub-resources the route table declares, never from which repositories exist:
 *
 *   1. the path is split at each raw `/` (a `%2F` stays inside its segment) and every segment decoded;
 *      one trailing `/` is ignored, so `…/tag/` and `…/tag` are the same;
 *   2. a sub-resource (`tag/:tag`, `permissions/user/`, nothing for the repository itself…) fits when
 *      the last segments equal its words, one non-empty segment per parameter, and the segments before
 *      them hold a name of at least two components;
 *   3. of those that fit, the longest wins: the sub-resource beats the deeper repository, whose name
 *      then needs `%2F` (`/repository/qc%2Flib%2Fapp%2Ftag%2Fv1`). The segments before it, joined
 *      with `/`, are the name;
 *   4. the method then picks the route of that sub-resource; a sub-resource without one answers 405
 *      with `Allow`, and never falls back to another reading of the path.
 *
 * Two sub-resources that could fit the same path with the same length, or one that starts with a
 * parameter, would make a path ambiguous: the router refuses them when it is built, as it refuses a
 * route whose params schema does not parse `repository`.
 */
import { ApiError, invalid } from './errors.js';
import { repositorySubPath, type ApiRoute } from './route.js';

type Method = ApiRoute['method'];
type Segment = { word: string } | { param: string };

/** One sub-resource: its segments and the route of each method. */
interface SubResource {
  /** Its words, with `:` where a parameter goes; the same for every method. */
  words: string[];
  key: string;
  routes: Map<Method, { route: ApiRoute; segments: Segment[] }>;
}

export interface RepositoryRouteMatch {
  route: ApiRoute;
  /** The route's path parameters as strings: `repository` (the full name, not yet validated) and the sub-resource's. */
  params: Record<string, string>;
}

export class RepositoryRouter {
  /** Longest first, so the first that fits wins. */
  private readonly subResources: SubResource[];

  /** `routes` may hold any routes; those below REPOSITORY_PATH are served. Throws on an ambiguous table. */
  constructor(routes: readonly ApiRoute[]) {
    const byKey = new Map<string, SubResource>();
    for (const route of routes) {
      const sub = repositorySubPath(route);
      if (sub === undefined) continue;
      const segments = parseTemplate(route, sub);
      const declared = (route.params as { shape?: Record<string, unknown> } | undefined)?.shape;
      if (!declared || !('repository' in declared)) throw new Error(`repository route ${route.method} ${route.path} must parse \`repository\` in its params`);
      const words = segments.map((s) => ('word' in s ? s.word : ':'));
      const key = words.join('/');
      const entry = byKey.get(key) ?? { words, key, routes: new Map() };
      if (entry.routes.has(route.method)) throw new Error(`repository route ${route.method} ${route.path} is declared twice`);
      entry.routes.set(route.method, { route, segments });
      byKey.set(key, entry);
    }
    this.subResources = [...byKey.values()].sort((a, b) => b.words.length - a.words.length);
    for (const a of this.subResources) {
      for (const b of this.subResources) {
        if (a !== b && overlap(a.words, b.words)) throw new Error(`repository routes ${a.key} and ${b.key} could both fit one path`);
      }
    }
  }

  /**
   * The route and parameters `method` reaches on `path` (what follows `/repository/`, still
   * percent-encoded); HEAD is GET. 400 for malformed percent-encoding, 404 when no name of two
   * components is left, 405 when the sub-resource has no route for the method.
   */
  resolve(method: string, path: string): RepositoryRouteMatch {
    const raw = (path.endsWith('/') ? path.slice(0, -1) : path).split('/');
    let segments: string[];
    try {
      segments = raw.map((s) => decodeURIComponent(s));
    } catch {
      throw invalid('malformed percent-encoding in the path');
    }
    for (const sub of this.subResources) {
      const n = segments.length - sub.words.length;
      if (n < 1) continue;
      const name = segments.slice(0, n).join('/');
      if (!name.includes('/')) continue;
      const tail = segments.slice(n);
      if (!sub.words.every((word, i) => (word === ':' ? tail[i] !== '' : word === tail[i]))) continue;

      const wanted = (method === 'HEAD' ? 'GET' : method) as Method;
      const found = sub.routes.get(wanted);
      if (!found) throw methodNotAllowed(method, [...sub.routes.keys()]);
      const params: Record<string, string> = { repository: name };
      found.segments.forEach((s, i) => {
        if ('param' in s) params[s.param] = tail[i]!;
      });
      return { route: found.route, params };
    }
    throw new ApiError(404, 'not_found', `no such endpoint: ${method.slice(0, 10)} /repository/${path.slice(0, 300)} (a repository name has a namespace and a name)`);
  }
}

/** The segments of a route's sub-resource path (`/tag/:tag` → word tag, param tag). */
function parseTemplate(route: ApiRoute, sub: string): Segment[] {
  const trimmed = sub.replace(/^\//, '').replace(/\/$/, '');
  const segments: Segment[] = trimmed === '' ? [] : trimmed.split('/').map((s) => (s.startsWith(':') ? { param: s.slice(1) } : { word: s }));
  const bad = segments.find((s) => ('word' in s ? !/^[A-Za-z0-9_.-]+$/.test(s.word) : !/^[A-Za-z_]+$/.test(s.param) || s.param === 'repository'));
  if (bad) throw new Error(`repository route ${route.method} ${route.path}: bad path segment ${JSON.stringify(bad)}`);
  if (segments[0] && 'param' in segments[0]) throw new Error(`repository route ${route.method} ${route.path} must start with a word after the name`);
  return segments;
}

/** Whether two sub-resources could fit the same segments with the same length. */
function overlap(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((w, i) => w === ':' || b[i] === ':' || w === b[i]);
}

function methodNotAllowed(method: string, allowed: Method[]): ApiError {
  const order: Method[] = ['GET', 'POST', 'PUT', 'DELETE'];
  const allow = order.filter((m) => allowed.includes(m)).join(', ');
  const e = new ApiError(405, 'invalid_request', `${method.slice(0, 10)} is not allowed on this path; allowed: ${allow}`);
  e.headers = { Allow: allow };
  return e;
}
