/**
 * `/api/v1`, the management API (Quay's paths and JSON field names where Quay defines them). Callers
 * authenticate with a Bearer API token, HTTP Basic (password, robot token or API token) or a signed-in
 * session cookie with its CSRF token (caller.ts); anonymous callers reach only what is public. Errors
 * are always the JSON shape of errors.ts.
 *
 * Every route answers with and without its trailing slash. The routes on one repository are not
 * Fastify routes: `/repository/*` hands the raw path to the RepositoryRouter, which finds the
 * repository name and the route (repository-router.ts says how).
 *
 * The routes are registered at start from their paths alone (route-table.ts); their declarations
 * (handlers and zod schemas), the RepositoryRouter and the OpenAPI document are loaded by the first
 * request that needs them, so that a process serving only `/v2` never holds them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ANONYMOUS } from '../../registry/access.js';
import type { Accounts } from '../../registry/accounts/accounts.js';
import type { Registry } from '../../registry/registry.js';
import { acceptEmptyJsonBodies } from '../json-body.js';
import { apiCaller } from './caller.js';
import { ApiContext } from './context.js';
import { invalid, renderApiError } from './errors.js';
import { nulTextField } from './nul-text.js';
import type { RepositoryRouter } from './repository-router.js';
import type { ApiRoute } from './route.js';
import { API_ROUTE_TABLE } from './route-table.js';

type Services = { registry: Registry; accounts: Accounts };

/** A route outside `/repository/` whose path ends with a repository name, e.g. `/user/starred/:repository+`. */
const TRAILING_REPOSITORY = '/:repository+';

/** Register with `prefix: '/api/v1'` so that its error and not-found handlers cover only the API. */
export async function apiPlugin(app: FastifyInstance, opts: { registry: Registry; accounts: Accounts; version: string }): Promise<void> {
  const { registry, accounts } = opts;
  app.setErrorHandler((err, req, reply) => renderApiError(err, req, reply));
  acceptEmptyJsonBodies(app);
  app.setNotFoundHandler((req, reply) => renderApiError(Object.assign(new Error(`no such endpoint: ${req.method} ${req.url.split('?')[0]}`), { statusCode: 404 }), req, reply));

  // Built on the first request for it, not at start: most processes never serve it, and it is large.
  let document: Record<string, unknown> | undefined;
  for (const path of ['/discovery', '/openapi.json']) {
    app.get(path, async (req, reply) => {
      req.wharfRoute = 'api_discovery';
      if (!document) {
        const [{ API_ROUTES }, { openApiDocument }] = await Promise.all([import('./routes.js'), import('./openapi.js')]);
        document ??= openApiDocument(API_ROUTES, opts.version);
      }
      return reply.send(document);
    });
  }

  const services = { registry, accounts };
  const declarations = lazyDeclarations();
  for (const [method, path] of API_ROUTE_TABLE) {
    const declared = async () => (await declarations()).route(method, path);
    if (path.endsWith(TRAILING_REPOSITORY)) {
      // A repository name (any number of components) ends the path: a wildcard, one trailing `/` ignored.
      const url = `${path.slice(0, -TRAILING_REPOSITORY.length)}/*`;
      app.route({
        method,
        url,
        handler: async (req, reply) => {
          const { '*': rest = '', ...params } = req.params as Record<string, string>;
          return run(await declared(), { ...params, repository: rest.endsWith('/') ? rest.slice(0, -1) : rest }, services, req, reply);
        },
      });
      continue;
    }
    const other = path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
    for (const url of [path, other]) {
      app.route({ method, url, handler: async (req, reply) => run(await declared(), req.params, services, req, reply) });
    }
  }

  // The path's segments before the repository name: '', 'api', 'v1', 'repository'.
  const skip = `${app.prefix}/repository`.split('/').length;
  app.route({
    method: ['GET', 'POST', 'PUT', 'DELETE'],
    url: '/repository/*',
    handler: async (req, reply) => {
      req.wharfRoute = 'api_repository';
      const path = req.url.split('?')[0]!.split('/').slice(skip).join('/');
      const { route, params } = (await declarations()).router.resolve(req.method, path);
      return run(route, params, services, req, reply);
    },
  });
}

/** The route declarations, loaded once by the first request that needs them. */
interface Declarations {
  /** The declaration of a route of API_ROUTE_TABLE. */
  route(method: ApiRoute['method'], path: string): ApiRoute;
  router: RepositoryRouter;
}

function lazyDeclarations(): () => Promise<Declarations> {
  let loading: Promise<Declarations> | undefined;
  const load = async (): Promise<Declarations> => {
    const [{ API_ROUTES }, { RepositoryRouter }] = await Promise.all([import('./routes.js'), import('./repository-router.js')]);
    const byPath = new Map(API_ROUTES.map((r) => [`${r.method} ${r.path}`, r]));
    return {
      route(method, path) {
        const route = byPath.get(`${method} ${path}`);
        if (!route) throw new Error(`${method} ${path} is in route-table.ts but not in API_ROUTES`);
        return route;
      },
      router: new RepositoryRouter(API_ROUTES),
    };
  };
  return () =>
    (loading ??= load().catch((err: unknown) => {
      // Tried again by the next request rather than failing every one after it.
      loading = undefined;
      throw err;
    }));
}

/** Runs one route: the caller, the parsed input, the handler, the reply. */
async function run(route: ApiRoute, params: unknown, services: Services, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  req.wharfRoute = `api_${route.tag}`;
  const principal = route.caller === 'none' ? ANONYMOUS : await apiCaller(services.registry, services.accounts, req, reply);
  const ctx = new ApiContext(services.registry, services.accounts, principal, req, reply);
  const nul = nulTextField(req.body);
  if (nul) throw invalid(`${nul}: text must not contain NUL characters (\\u0000)`);
  const input = {
    params: route.params ? route.params.parse(params) : {},
    query: route.query ? route.query.parse(req.query ?? {}) : {},
    body: route.body ? route.body.parse(req.body ?? {}) : undefined,
  };
  const result = await route.handler(ctx, input);
  if (reply.sent) return reply;
  const status = route.status ?? 200;
  return status === 204 ? reply.code(204).send() : reply.code(status).send(result);
}
