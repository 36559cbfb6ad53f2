/**
 * Storage quotas, with Quay's paths, bodies, statuses and views:
 *
 *   GET    …/quota                       [quota view]                 (none or one)
 *   POST   …/quota                       201 "Created"                body {limit_bytes} or {limit: "10 GiB"}
 *   GET    …/quota/{quota_id}            quota view
 *   PUT    …/quota/{quota_id}            quota view                   body as POST, or {} (no change)
 *   DELETE …/quota/{quota_id}            204                          with its limits
 *   GET    …/quota/{quota_id}/limit      [{id, type, limit_percent}]
 *   POST   …/quota/{quota_id}/limit      201 "Created"                body {type: Warning|Reject, threshold_percent: 1..100}
 *   GET    …/quota/{quota_id}/limit/{id} {id, type, limit_percent}
 *   PUT    …/quota/{quota_id}/limit/{id} quota view                   body {type?, threshold_percent?}
 *   DELETE …/quota/{quota_id}/limit/{id} 204
 *
 * under `/organization/{orgname}` (members and superusers read; only superusers change: 403 for anyone
 * else who can see the organization, 404 for those who cannot), `/user` (the caller's own namespace,
 * read only), and `/superuser/organization/{namespace}` and `/superuser/users/{namespace}` (superusers:
 * the list, POST, PUT and DELETE; as in Quay either path takes a user or an organization). Plus
 * `GET/POST /superuser/registrysize/`: the bytes the registry holds, computed on the spot.
 *
 * quota view = {id, limit_bytes, limit ("1.0 GiB"), default_config: false, limits, default_config_exists: false}.
 */
import { z } from 'zod';
import type { QuotaLimitInput, QuotaSizeInput } from '../../registry/quota/quota-service.js';
import type { ApiContext } from './context.js';
import { notFound } from './errors.js';
import { visibleOrganization } from './organization-access.js';
import { QuotaLimitSchema, QuotaSchema, quotaLimitView, quotaView } from './quota-views.js';
import { defineRoute, type ApiRoute } from './route.js';

const QuotaBody = z.object({
  limit_bytes: z.number().nullish().describe('The limit in bytes, a positive integer'),
  limit: z.string().max(100).nullish().describe('The limit as text, e.g. "10 GiB", "500 MiB", "1.5 GB", "10G" (used when limit_bytes is absent)'),
});
const LimitBody = z.object({
  type: z.string().max(100).nullish().describe('Warning or Reject (any case)'),
  threshold_percent: z.number().nullish().describe('The percent of the quota at which the limit applies, an integer 1..100'),
});
const RegistrySizeSchema = z.strictObject({ size_bytes: z.int(), last_ran: z.int().nullable(), queued: z.boolean(), running: z.boolean() });
const id = z.string().max(40);

const sizeOf = (b: z.infer<typeof QuotaBody>): QuotaSizeInput => ({ limitBytes: b.limit_bytes, limit: b.limit });
const limitOf = (b: z.infer<typeof LimitBody>): QuotaLimitInput => ({ type: b.type, thresholdPercent: b.threshold_percent });

/** A numeric id from the path; anything else names nothing (404). */
function idOf(value: string, what: string): number {
  if (!/^\d{1,15}$/.test(value)) throw notFound(`${what} ${value.slice(0, 40)}`);
  return Number(value);
}

const who = (ctx: ApiContext) => ({
  actor: ctx.principal,
  ip: ctx.req.ip,
  userAgent: typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined,
});

/** Replies with a bare JSON string, as Quay does ("Created"). */
function jsonString(ctx: ApiContext, status: number, text: string): string {
  void ctx.reply.code(status).type('application/json').send(JSON.stringify(text));
  return text;
}

type Params = Record<string, string>;
type Op = 'list' | 'create' | 'get' | 'update' | 'delete' | 'limits' | 'addLimit' | 'getLimit' | 'updateLimit' | 'deleteLimit';

/**
 * The routes `ops` of one kind of namespace; `namespace` checks the caller's rights (`change`: a
 * write) and names the namespace.
 */
function namespaceQuotaRoutes(opts: {
  base: string;
  what: string;
  params: z.ZodObject<Record<string, z.ZodString>>;
  namespace: (ctx: ApiContext, params: Params, change: boolean) => Promise<string>;
  ops: readonly Op[];
}): ApiRoute[] {
  const { base, what, namespace } = opts;
  const all = opts.params as unknown as z.ZodType<Params>;
  const one = opts.params.extend({ quota_id: id }) as unknown as z.ZodType<Params & { quota_id: string }>;
  const limit = opts.params.extend({ quota_id: id, limit_id: id }) as unknown as z.ZodType<Params & { quota_id: string; limit_id: string }>;
  const quotaId = (p: { quota_id: string }) => idOf(p.quota_id, 'quota');
  const limitId = (p: { limit_id: string }) => idOf(p.limit_id, 'quota limit');
  const routes: Record<Op, ApiRoute> = {
    list: defineRoute({
      method: 'GET',
      path: `${base}/quota`,
      summary: `The storage quota of ${what}, as a list of none or one`,
      tag: 'quota',
      params: all,
      response: z.array(QuotaSchema),
      async handler(ctx, { params }) {
        return (await ctx.registry.quota.list(await namespace(ctx, params, false))).map(quotaView);
      },
    }),
    create: defineRoute({
      method: 'POST',
      path: `${base}/quota`,
      summary: `Give ${what} a storage quota (superusers): limit_bytes, or limit as text such as "10 GiB"`,
      tag: 'quota',
      status: 201,
      params: all,
      body: QuotaBody,
      response: z.literal('Created'),
      async handler(ctx, { params, body }) {
        await ctx.registry.quota.create(await namespace(ctx, params, true), sizeOf(body), who(ctx));
        return jsonString(ctx, 201, 'Created');
      },
    }),
    get: defineRoute({
      method: 'GET',
      path: `${base}/quota/:quota_id`,
      summary: `One storage quota of ${what}`,
      tag: 'quota',
      params: one,
      response: QuotaSchema,
      async handler(ctx, { params }) {
        return quotaView(await ctx.registry.quota.get(await namespace(ctx, params, false), quotaId(params)));
      },
    }),
    update: defineRoute({
      method: 'PUT',
      path: `${base}/quota/:quota_id`,
      summary: `Change the limit of a storage quota of ${what} (superusers); an empty body changes nothing`,
      tag: 'quota',
      params: one,
      body: QuotaBody,
      response: QuotaSchema,
      async handler(ctx, { params, body }) {
        return quotaView(await ctx.registry.quota.update(await namespace(ctx, params, true), quotaId(params), sizeOf(body), who(ctx)));
      },
    }),
    delete: defineRoute({
      method: 'DELETE',
      path: `${base}/quota/:quota_id`,
      summary: `Delete a storage quota of ${what} with its limits (superusers)`,
      tag: 'quota',
      status: 204,
      params: one,
      async handler(ctx, { params }) {
        await ctx.registry.quota.delete(await namespace(ctx, params, true), quotaId(params), who(ctx));
      },
    }),
    limits: defineRoute({
      method: 'GET',
      path: `${base}/quota/:quota_id/limit`,
      summary: `The Warning and Reject limits of a storage quota of ${what}`,
      tag: 'quota',
      params: one,
      response: z.array(QuotaLimitSchema),
      async handler(ctx, { params }) {
        return (await ctx.registry.quota.get(await namespace(ctx, params, false), quotaId(params))).limits.map(quotaLimitView);
      },
    }),
    addLimit: defineRoute({
      method: 'POST',
      path: `${base}/quota/:quota_id/limit`,
      summary: `Add a limit to a storage quota of ${what} (superusers): type Warning (logged) or Reject (pushes refused), threshold_percent 1..100`,
      tag: 'quota',
      status: 201,
      params: one,
      body: LimitBody,
      response: z.literal('Created'),
      async handler(ctx, { params, body }) {
        await ctx.registry.quota.addLimit(await namespace(ctx, params, true), quotaId(params), limitOf(body), who(ctx));
        return jsonString(ctx, 201, 'Created');
      },
    }),
    getLimit: defineRoute({
      method: 'GET',
      path: `${base}/quota/:quota_id/limit/:limit_id`,
      summary: `One limit of a storage quota of ${what}`,
      tag: 'quota',
      params: limit,
      response: QuotaLimitSchema,
      async handler(ctx, { params }) {
        return quotaLimitView(await ctx.registry.quota.limit(await namespace(ctx, params, false), quotaId(params), limitId(params)));
      },
    }),
    updateLimit: defineRoute({
      method: 'PUT',
      path: `${base}/quota/:quota_id/limit/:limit_id`,
      summary: `Change the type and/or threshold of a limit of a storage quota of ${what} (superusers); answers with the whole quota`,
      tag: 'quota',
      params: limit,
      body: LimitBody,
      response: QuotaSchema,
      async handler(ctx, { params, body }) {
        return quotaView(await ctx.registry.quota.updateLimit(await namespace(ctx, params, true), quotaId(params), limitId(params), limitOf(body), who(ctx)));
      },
    }),
    deleteLimit: defineRoute({
      method: 'DELETE',
      path: `${base}/quota/:quota_id/limit/:limit_id`,
      summary: `Delete a limit of a storage quota of ${what} (superusers)`,
      tag: 'quota',
      status: 204,
      params: limit,
      async handler(ctx, { params }) {
        await ctx.registry.quota.deleteLimit(await namespace(ctx, params, true), quotaId(params), limitId(params), who(ctx));
      },
    }),
  };
  return opts.ops.map((op) => routes[op]);
}

async function registrySize(ctx: ApiContext): Promise<z.infer<typeof RegistrySizeSchema>> {
  await ctx.superuser();
  const size = await ctx.registry.quota.registrySize();
  return { size_bytes: size.sizeBytes, last_ran: size.ranAt, queued: false, running: false };
}

const EVERY: readonly Op[] = ['list', 'create', 'get', 'update', 'delete', 'limits', 'addLimit', 'getLimit', 'updateLimit', 'deleteLimit'];
const superuserNamespace = async (ctx: ApiContext, p: Params) => {
  await ctx.superuser();
  return p.namespace!;
};

export const quotaRoutes: ApiRoute[] = [
  ...namespaceQuotaRoutes({
    base: '/organization/:orgname',
    what: 'the organization',
    params: z.object({ orgname: z.string().max(255) }),
    ops: EVERY,
    async namespace(ctx, p, change) {
      const { org } = await visibleOrganization(ctx, p.orgname!);
      if (change) await ctx.superuser();
      return org.name;
    },
  }),
  ...namespaceQuotaRoutes({
    base: '/user',
    what: "the caller's own namespace",
    params: z.object({}),
    ops: ['list', 'get', 'limits', 'getLimit'],
    namespace: async (ctx) => ctx.user('user:read').name,
  }),
  ...namespaceQuotaRoutes({
    base: '/superuser/organization/:namespace',
    what: 'an organization (superusers)',
    params: z.object({ namespace: z.string().max(255) }),
    ops: ['list', 'create', 'update', 'delete'],
    namespace: superuserNamespace,
  }),
  ...namespaceQuotaRoutes({
    base: '/superuser/users/:namespace',
    what: 'a user (superusers)',
    params: z.object({ namespace: z.string().max(255) }),
    ops: ['list', 'create', 'update', 'delete'],
    namespace: superuserNamespace,
  }),
  defineRoute({
    method: 'GET',
    path: '/superuser/registrysize/',
    summary: 'The bytes the registry holds, each blob once (superusers); computed on the spot, so never queued or running',
    tag: 'quota',
    response: RegistrySizeSchema,
    handler: registrySize,
  }),
  defineRoute({
    method: 'POST',
    path: '/superuser/registrysize/',
    summary: "Compute the registry's size now (superusers); answers with it, as GET",
    tag: 'quota',
    status: 201,
    response: RegistrySizeSchema,
    handler: registrySize,
  }),
];
