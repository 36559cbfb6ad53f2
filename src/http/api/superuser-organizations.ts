/**
 * Organization changes reserved to superusers (super:user scope), at Quay's path.
 *
 *   PUT /superuser/organizations/{orgname}   {name} renames the organization: its repositories (their
 *                                            full names), teams, robots (`new+short`) and grants follow;
 *                                            409 when a user or organization has the name already
 */
import { z } from 'zod';
import { notFound } from './errors.js';
import { defineRoute } from './route.js';

export const superuserOrganizationRoutes = [
  defineRoute({
    method: 'PUT',
    path: '/superuser/organizations/:orgname',
    summary: 'Rename an organization (superusers only); its repositories, teams and robots follow',
    tag: 'superuser',
    params: z.object({ orgname: z.string().max(255) }),
    body: z.object({ name: z.string().min(1).max(255).optional() }),
    response: z.strictObject({ name: z.string(), email: z.string().nullable() }),
    async handler(ctx, { params, body }) {
      await ctx.superuser();
      const org = await ctx.accounts.accounts.getOrganization(params.orgname);
      if (!org) throw notFound(`organization ${params.orgname.slice(0, 100)}`);
      if (body.name === undefined || body.name === org.name) return { name: org.name, email: org.email };
      const renamed = await ctx.accounts.accounts.renameOrganization(org.name, body.name);
      await ctx.audit('org_change_name', { namespace: renamed.name, metadata: { old_name: org.name, new_name: renamed.name } });
      return { name: renamed.name, email: renamed.email };
    },
  }),
];
