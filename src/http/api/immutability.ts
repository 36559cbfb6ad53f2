/**
 * Tag immutability policies, with Quay's paths, bodies, statuses and views:
 *
 *   GET    …/immutabilitypolicy/          {"policies": [view]}
 *   POST   …/immutabilitypolicy/          201 {"uuid"}       body {tagPattern, tagPatternMatches?}
 *   GET    …/immutabilitypolicy/{uuid}    view, or 404
 *   PUT    …/immutabilitypolicy/{uuid}    204                 the same body; replaces both fields
 *   DELETE …/immutabilitypolicy/{uuid}    200 {"uuid"}
 *
 * under `/organization/{orgname}` (organization admins and superusers; a user's own namespace by its
 * user) and `/repository/{repository}` (repository admins). view = {uuid, tagPattern, tagPatternMatches}.
 * What a policy does is registry/tag-immutability.ts's business.
 */
import { z } from 'zod';
import type { RepositoryName } from '../../oci/reference.js';
import type { ImmutabilityPolicyRecord, ImmutabilityTarget } from '../../registry/tag-immutability.js';
import type { ApiContext } from './context.js';
import { administeredOrganization } from './organization-access.js';
import { repositoryPathName } from './params.js';
import { requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH, type ApiRoute } from './route.js';

const Body = z.object({
  tagPattern: z.unknown().describe('A regular expression matched at the start of the tag name (at most 256 characters)'),
  tagPatternMatches: z.unknown().optional().describe('true (default): tags the pattern matches are immutable; false: tags it does not match'),
});

const PolicySchema = z.strictObject({ uuid: z.string(), tagPattern: z.string(), tagPatternMatches: z.boolean() });
const UuidSchema = z.strictObject({ uuid: z.string() });
const uuid = z.string().min(1).max(100);

function policyView(p: ImmutabilityPolicyRecord): z.infer<typeof PolicySchema> {
  return { uuid: p.uuid, tagPattern: p.tagPattern, tagPatternMatches: p.tagPatternMatches };
}

const who = (ctx: ApiContext) => ({
  actor: ctx.principal,
  ip: ctx.req.ip,
  userAgent: typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined,
});

type Params = Record<string, string>;

function policyRoutes(opts: {
  base: string;
  what: string;
  params: z.ZodObject<Record<string, z.ZodType<string, string>>>;
  target: (ctx: ApiContext, params: Params) => Promise<ImmutabilityTarget>;
}): ApiRoute[] {
  const { base, what, target } = opts;
  const all = opts.params as unknown as z.ZodType<Params>;
  const one = opts.params.extend({ policy_uuid: uuid }) as unknown as z.ZodType<Params & { policy_uuid: string }>;
  return [
    defineRoute({
      method: 'GET',
      path: `${base}/immutabilitypolicy/`,
      summary: `The tag immutability policies of ${what}`,
      tag: 'immutability',
      params: all,
      response: z.strictObject({ policies: z.array(PolicySchema) }),
      async handler(ctx, { params }) {
        return { policies: (await ctx.registry.immutability.list(await target(ctx, params))).map(policyView) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: `${base}/immutabilitypolicy/`,
      summary: `Create a tag immutability policy of ${what}; the live tags it selects become immutable at once`,
      tag: 'immutability',
      status: 201,
      params: all,
      body: Body,
      response: UuidSchema,
      async handler(ctx, { params, body }) {
        const created = await ctx.registry.immutability.create(await target(ctx, params), body, who(ctx));
        return { uuid: created.uuid };
      },
    }),
    defineRoute({
      method: 'GET',
      path: `${base}/immutabilitypolicy/:policy_uuid`,
      summary: `One tag immutability policy of ${what}`,
      tag: 'immutability',
      params: one,
      response: PolicySchema,
      async handler(ctx, { params }) {
        return policyView(await ctx.registry.immutability.get(await target(ctx, params), params.policy_uuid));
      },
    }),
    defineRoute({
      method: 'PUT',
      path: `${base}/immutabilitypolicy/:policy_uuid`,
      summary: `Replace a tag immutability policy of ${what}; the live tags it now selects become immutable (none becomes mutable)`,
      tag: 'immutability',
      status: 204,
      params: one,
      body: Body,
      async handler(ctx, { params, body }) {
        await ctx.registry.immutability.update(await target(ctx, params), params.policy_uuid, body, who(ctx));
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: `${base}/immutabilitypolicy/:policy_uuid`,
      summary: `Delete a tag immutability policy of ${what} (tags it made immutable stay immutable)`,
      tag: 'immutability',
      params: one,
      response: UuidSchema,
      async handler(ctx, { params }) {
        await ctx.registry.immutability.delete(await target(ctx, params), params.policy_uuid, who(ctx));
        return { uuid: params.policy_uuid };
      },
    }),
  ];
}

/** An organization its admins administer, or a user's own namespace (Quay's AdministerOrganizationPermission). */
async function namespaceTarget(ctx: ApiContext, name: string): Promise<ImmutabilityTarget> {
  if (ctx.principal.kind === 'user' && ctx.principal.name === name) return { namespace: ctx.user('user:admin').name };
  return { namespace: (await administeredOrganization(ctx, name)).org.name };
}

export const immutabilityRoutes: ApiRoute[] = [
  ...policyRoutes({
    base: '/organization/:orgname',
    what: 'the organization (organization admins) or your own namespace',
    params: z.object({ orgname: z.string().max(255) }),
    target: (ctx, p) => namespaceTarget(ctx, p.orgname!),
  }),
  ...policyRoutes({
    base: REPOSITORY_PATH,
    what: 'the repository (repository admins)',
    params: z.object({ repository: repositoryPathName }),
    target: async (ctx, p) => ({ repository: (await requireRepository(ctx, p.repository as RepositoryName, 'admin')).repo }),
  }),
];
