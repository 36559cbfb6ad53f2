/**
 * Auto-prune policies, with Quay's paths, bodies, statuses and views:
 *
 *   GET    …/autoprunepolicy/          {"policies": [view]}
 *   POST   …/autoprunepolicy/          201 {"uuid"}       body {method, value, tagPattern?, tagPatternMatches?}
 *   GET    …/autoprunepolicy/{uuid}    view, or 404
 *   PUT    …/autoprunepolicy/{uuid}    204                 the same body; replaces every field
 *   DELETE …/autoprunepolicy/{uuid}    200 {"uuid"}
 *
 * under `/organization/{orgname}` (organization admins and superusers), `/repository/{repository}`
 * (repository admins, which includes organization admins and superusers) and `/user` (the caller's own
 * namespace). view = {uuid, method, value, tagPattern, tagPatternMatches}. `tag_pattern` and
 * `tag_pattern_matches` are accepted as well as Quay's camelCase names.
 */
import { z } from 'zod';
import type { RepositoryName } from '../../oci/reference.js';
import type { PolicyRecord, PolicyTarget } from '../../registry/autoprune/policy-service.js';
import { policyValue, type PolicyInput } from '../../registry/autoprune/policy.js';
import type { ApiContext } from './context.js';
import { invalid } from './errors.js';
import { administeredOrganization } from './organization-access.js';
import { requireRepository } from './repository-access.js';
import { repositoryPathName } from './params.js';
import { defineRoute, REPOSITORY_PATH, type ApiRoute } from './route.js';

const Body = z.object({
  method: z.string().optional().describe('number_of_tags or creation_date'),
  value: z.union([z.int(), z.string()]).optional().describe('number_of_tags: the number of newest tags to keep (> 0); creation_date: an age such as "7d", "2w", "12h", "1y"'),
  tagPattern: z.string().nullish(),
  tagPatternMatches: z.boolean().nullish(),
  tag_pattern: z.string().nullish(),
  tag_pattern_matches: z.boolean().nullish(),
});
type BodyIn = z.infer<typeof Body>;

const PolicySchema = z.strictObject({
  uuid: z.string(),
  method: z.enum(['number_of_tags', 'creation_date']),
  value: z.union([z.int(), z.string()]),
  tagPattern: z.string().nullable(),
  tagPatternMatches: z.boolean(),
});
const UuidSchema = z.strictObject({ uuid: z.string() });
const uuid = z.string().min(1).max(100);

export function policyView(p: PolicyRecord): z.infer<typeof PolicySchema> {
  return { uuid: p.uuid, method: p.method, value: policyValue(p), tagPattern: p.tagPattern, tagPatternMatches: p.tagPatternMatches };
}

/** Quay's camelCase fields, or the snake_case ones; both forms with different values is a 400. */
function inputOf(b: BodyIn): PolicyInput {
  const pick = <T>(camel: T | null | undefined, snake: T | null | undefined, name: string): T | undefined => {
    if (camel != null && snake != null && camel !== snake) throw invalid(`give ${name} once (as ${name} or its camelCase form)`);
    return camel ?? snake ?? undefined;
  };
  return { method: b.method, value: b.value, tagPattern: pick(b.tagPattern, b.tag_pattern, 'tag_pattern'), tagPatternMatches: pick(b.tagPatternMatches, b.tag_pattern_matches, 'tag_pattern_matches') };
}

const who = (ctx: ApiContext) => ({
  actor: ctx.principal,
  ip: ctx.req.ip,
  userAgent: typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined,
});

/** The five routes of one kind of target; `target` checks the caller's rights (`change`: a write). */
type Params = Record<string, string>;

function policyRoutes(opts: {
  base: string;
  what: string;
  params: z.ZodObject<Record<string, z.ZodType<string, string>>>;
  target: (ctx: ApiContext, params: Params, change: boolean) => Promise<PolicyTarget>;
}): ApiRoute[] {
  const { base, what, target } = opts;
  const all = opts.params as unknown as z.ZodType<Params>;
  const one = opts.params.extend({ policy_uuid: uuid }) as unknown as z.ZodType<Params & { policy_uuid: string }>;
  return [
    defineRoute({
      method: 'GET',
      path: `${base}/autoprunepolicy/`,
      summary: `The auto-prune policies of ${what}`,
      tag: 'autoprune',
      params: all,
      response: z.strictObject({ policies: z.array(PolicySchema) }),
      async handler(ctx, { params }) {
        return { policies: (await ctx.registry.autoprune.policies.list(await target(ctx, params, false))).map(policyView) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: `${base}/autoprunepolicy/`,
      summary: `Create an auto-prune policy of ${what}: number_of_tags (keep the N newest tags) or creation_date (prune tags older than a duration such as "7d"), optionally only among the tags a regular expression selects`,
      tag: 'autoprune',
      status: 201,
      params: all,
      body: Body,
      response: UuidSchema,
      async handler(ctx, { params, body }) {
        const created = await ctx.registry.autoprune.policies.create(await target(ctx, params, true), inputOf(body), who(ctx));
        return { uuid: created.uuid };
      },
    }),
    defineRoute({
      method: 'GET',
      path: `${base}/autoprunepolicy/:policy_uuid`,
      summary: `One auto-prune policy of ${what}`,
      tag: 'autoprune',
      params: one,
      response: PolicySchema,
      async handler(ctx, { params }) {
        return policyView(await ctx.registry.autoprune.policies.get(await target(ctx, params, false), params.policy_uuid));
      },
    }),
    defineRoute({
      method: 'PUT',
      path: `${base}/autoprunepolicy/:policy_uuid`,
      summary: `Replace an auto-prune policy of ${what} (every field; an absent tagPattern removes the pattern)`,
      tag: 'autoprune',
      status: 204,
      params: one,
      body: Body,
      async handler(ctx, { params, body }) {
        await ctx.registry.autoprune.policies.update(await target(ctx, params, true), params.policy_uuid, inputOf(body), who(ctx));
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: `${base}/autoprunepolicy/:policy_uuid`,
      summary: `Delete an auto-prune policy of ${what}`,
      tag: 'autoprune',
      params: one,
      response: UuidSchema,
      async handler(ctx, { params }) {
        await ctx.registry.autoprune.policies.delete(await target(ctx, params, true), params.policy_uuid, who(ctx));
        return { uuid: params.policy_uuid };
      },
    }),
  ];
}

export const autopruneRoutes: ApiRoute[] = [
  ...policyRoutes({
    base: '/organization/:orgname',
    what: 'the organization (organization admins)',
    params: z.object({ orgname: z.string().max(255) }),
    target: async (ctx, p) => ({ namespace: (await administeredOrganization(ctx, p.orgname!)).org.name }),
  }),
  ...policyRoutes({
    base: REPOSITORY_PATH,
    what: 'the repository (repository admins)',
    params: z.object({ repository: repositoryPathName }),
    target: async (ctx, p) => ({ repository: (await requireRepository(ctx, p.repository as RepositoryName, 'admin')).repo }),
  }),
  ...policyRoutes({
    base: '/user',
    what: "the caller's own namespace",
    params: z.object({}),
    target: async (ctx, _p, change) => ({ namespace: ctx.user(change ? 'user:admin' : 'user:read').name }),
  }),
];
