/**
 * `GET /entities/{prefix}`: users, robots, teams and organizations whose names start with `prefix`
 * (Quay's entity lookup; entity-search.ts says who sees what). Any signed-in user may look; an unknown
 * prefix is an empty list.
 *
 *   ?namespace=org       also that organization's robots (and with includeTeams its teams, with
 *                        includeOrgs the organization itself) when the caller belongs to it; each user
 *                        then says whether it is a member (`is_org_member`)
 *   ?namespace=<me>      also the caller's own robots
 */
import { z } from 'zod';
import { queryBool } from './params.js';
import { defineRoute } from './route.js';

const EntitySchema = z.union([
  z.strictObject({ name: z.string(), kind: z.literal('user'), is_robot: z.boolean(), is_org_member: z.boolean().optional() }),
  z.strictObject({ name: z.string(), kind: z.literal('team'), is_org_member: z.literal(true) }),
  z.strictObject({ name: z.string(), kind: z.literal('org'), is_org_member: z.literal(true) }),
]);

export const entityRoutes = [
  defineRoute({
    method: 'GET',
    path: '/entities/:prefix',
    summary: 'Users (and, for members of `namespace`, its robots, teams and the organization itself) whose names start with `prefix`; at most 10 of each kind, an exact match first',
    tag: 'entities',
    params: z.object({ prefix: z.string().min(1).max(255) }),
    query: z.object({ namespace: z.string().max(255).optional(), includeTeams: queryBool(false), includeOrgs: queryBool(false) }),
    response: z.strictObject({ results: z.array(EntitySchema) }),
    async handler(ctx, { params, query }) {
      const user = ctx.user();
      const found = await ctx.accounts.entities.search(user, { prefix: params.prefix, namespace: query.namespace || undefined, includeTeams: query.includeTeams, includeOrgs: query.includeOrgs });
      return {
        results: found.map((e) =>
          e.kind === 'user'
            ? { name: e.name, kind: 'user' as const, is_robot: e.isRobot, ...(e.isOrgMember === undefined ? {} : { is_org_member: e.isOrgMember }) }
            : { name: e.name, kind: e.kind, is_org_member: true as const },
        ),
      };
    },
  }),
];
