/**
 * Every `/api/v1` endpoint is declared once with `defineRoute`: method, path, zod schemas for its
 * parameters, query and body, and the handler. The plugin registers it with Fastify and the OpenAPI
 * document is generated from the same declarations, so the document lists exactly what exists.
 */
import type { z } from 'zod';
import type { ApiContext } from './context.js';

/**
 * The start of the path of every route on one repository: `${REPOSITORY_PATH}/tag/:tag`. `:repository+`
 * is the repository's full name (`namespace/name`, two or more components); repository-router.ts
 * finds where it ends, and the route's params schema parses it (`repository` in its params).
 */
export const REPOSITORY_PATH = '/repository/:repository+';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
}

export interface ApiRoute<P = unknown, Q = unknown, B = unknown> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /**
   * Path under /api/v1 with Fastify parameters, e.g. `/organization/:orgname`, or `${REPOSITORY_PATH}…`
   * for a route on one repository. It is served with and without its trailing slash.
   */
  path: string;
  summary: string;
  tag: string;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Success status (default 200); 204 sends no body. */
  status?: number;
  /**
   * 'none': no credentials are read before the handler runs (it sees an anonymous caller and checks
   * what it needs itself, as sign-in and sign-out do with their cookies).
   */
  caller?: 'none';
  /** The JSON the handler returns on success (none for 204); rendered into the OpenAPI document. */
  response?: z.ZodType;
  handler(ctx: ApiContext, input: RouteInput<P, Q, B>): Promise<unknown>;
}

export function defineRoute<P = Record<string, never>, Q = Record<string, never>, B = undefined>(route: ApiRoute<P, Q, B>): ApiRoute {
  return route as unknown as ApiRoute;
}

/** The path of a repository route below the repository name (`/tag/:tag`, `` for the repository itself), or undefined for other routes. */
export function repositorySubPath(route: Pick<ApiRoute, 'path'>): string | undefined {
  if (route.path === REPOSITORY_PATH) return '';
  return route.path.startsWith(`${REPOSITORY_PATH}/`) ? route.path.slice(REPOSITORY_PATH.length) : undefined;
}
