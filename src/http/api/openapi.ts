/**
 * The OpenAPI 3.1 document of `/api/v1`, generated from the route declarations. A repository route's
 * `:repository+` is the path parameter `{repository}`, Quay's full name `namespace/name`.
 */
import { z } from 'zod';
import type { ApiRoute } from './route.js';

const ERROR = {
  type: 'object',
  required: ['status', 'error_type', 'detail'],
  properties: { status: { type: 'integer' }, error_type: { type: 'string' }, detail: { type: 'string' }, title: { type: 'string' }, error_message: { type: 'string' }, type: { type: 'string' } },
};

/** The document's path of a route: `/api/v1/repository/{repository}/tag/{tag}`. */
export function openApiPath(r: Pick<ApiRoute, 'path'>): string {
  return `/api/v1${r.path.replace(/:([A-Za-z_]+)\+?/g, '{$1}')}`;
}

export function openApiDocument(routes: readonly ApiRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = openApiPath(r);
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', r.params], ['query', r.query]] as const) {
      if (!schema) continue;
      const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, s] of Object.entries(json.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (json.required ?? []).includes(name), schema: s });
      }
    }
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${r.path.replace(/[/:{}_+-]+(\w)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      parameters,
      responses: {
        [String(r.status ?? 200)]:
          r.status === 204 || !r.response
            ? { description: r.status === 204 ? 'No content' : 'Success' }
            : { description: 'Success', content: { 'application/json': { schema: z.toJSONSchema(r.response, { io: 'output', unrepresentable: 'any' }) } } },
        '400': { description: 'Invalid request', content: { 'application/json': { schema: ERROR } } },
        '401': { description: 'Authentication required', content: { 'application/json': { schema: ERROR } } },
        '403': { description: 'Insufficient permission', content: { 'application/json': { schema: ERROR } } },
        '404': { description: 'Not found', content: { 'application/json': { schema: ERROR } } },
      },
    };
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) } } };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Wharf management API', version },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token' },
        basic: { type: 'http', scheme: 'basic' },
        session: { type: 'apiKey', in: 'cookie', name: 'wharf_session', description: 'A session from POST /api/v1/signin; state-changing calls also send its CSRF token in X-CSRF-Token' },
      },
    },
    security: [{ bearer: [] }, { basic: [] }, { session: [] }],
    paths,
  };
}
