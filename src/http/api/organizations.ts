/**
 * Organizations: create, view, change, delete, and list members.
 *
 *   POST   /organization/                   any user (org:admin scope); the caller joins the owners team
 *   GET    /organization/{orgname}          members and superusers; the email only for admins
 *   PUT    /organization/{orgname}          admins: email, time-machine window (`tag_expiration_s`)
 *   DELETE /organization/{orgname}          admins; takes repositories, teams, robots and grants with it
 *   GET    /organization/{orgname}/members  admins
 */
import { z } from 'zod';
import { teamView } from './account-views.js';
import type { ApiContext } from './context.js';
import { administeredOrganization, visibleOrganization, type OrganizationView } from './organization-access.js';
import { namespaceQuotaFields, NamespaceQuotaReportSchema, QuotaSummarySchema } from './quota-views.js';
import { defineRoute } from './route.js';
import { TeamSchema } from './schemas.js';

const OrgParams = z.object({ orgname: z.string().max(255) });
const Email = z.string().max(254).nullable();

/**
 * `email` and `tag_expiration_s` (the time-machine window in seconds) only for admins; `teams`,
 * `ordered_teams`, `quotas` and `quota_report` (storage used and the quota's limit) only for members and admins.
 */
const OrganizationSchema = z.strictObject({
  name: z.string(),
  email: z.string().optional(),
  tag_expiration_s: z.int().optional(),
  is_admin: z.boolean(),
  is_member: z.boolean(),
  teams: z.record(z.string(), TeamSchema).optional(),
  ordered_teams: z.array(z.string()).optional(),
  quotas: z.array(QuotaSummarySchema).optional(),
  quota_report: NamespaceQuotaReportSchema.optional(),
});
const MembersSchema = z.strictObject({
  members: z.array(z.strictObject({ name: z.string(), kind: z.literal('user'), is_robot: z.boolean(), teams: z.array(z.strictObject({ name: z.string() })) })),
});

async function organizationJson(ctx: ApiContext, view: OrganizationView) {
  const member = view.role !== undefined || view.admin;
  const [teams, usage] = member ? await Promise.all([ctx.accounts.teams.listTeams(view.org.name), ctx.registry.quota.usage(view.org.name)]) : [];
  return {
    name: view.org.name,
    ...(view.admin ? { email: view.org.email ?? '', tag_expiration_s: await ctx.registry.timeMachine.windowOf(view.org.name) } : {}),
    is_admin: view.admin,
    is_member: view.role !== undefined,
    ...(teams ? { teams: Object.fromEntries(teams.map((t) => [t.name, teamView(t, t.memberCount)])), ordered_teams: teams.map((t) => t.name) } : {}),
    ...(usage ? namespaceQuotaFields(usage) : {}),
  };
}

export const organizationRoutes = [
  defineRoute({
    method: 'POST',
    path: '/organization/',
    summary: 'Create an organization; the caller becomes its administrator',
    tag: 'organization',
    status: 201,
    body: z.object({ name: z.string().min(1).max(255), email: Email.optional() }),
    response: OrganizationSchema,
    async handler(ctx, { body }) {
      const user = ctx.user('org:admin');
      const org = await ctx.accounts.accounts.createOrganization({ name: body.name, email: body.email, creator: user.name });
      await ctx.audit('org_create', { namespace: org.name, metadata: { email: org.email } });
      return organizationJson(ctx, await visibleOrganization(ctx, org.name));
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname',
    summary: 'An organization, with its teams for members',
    tag: 'organization',
    params: OrgParams,
    response: OrganizationSchema,
    async handler(ctx, { params }) {
      return organizationJson(ctx, await visibleOrganization(ctx, params.orgname));
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/organization/:orgname',
    summary: "Change an organization's email or time-machine window (`tag_expiration_s`, one of the configured `gc.time_machine_options`)",
    tag: 'organization',
    params: OrgParams,
    body: z.object({ email: Email.optional(), tag_expiration_s: z.int().min(0).optional() }),
    response: OrganizationSchema,
    async handler(ctx, { params, body }) {
      const view = await administeredOrganization(ctx, params.orgname);
      if (body.tag_expiration_s !== undefined) ctx.registry.timeMachine.assertOption(body.tag_expiration_s);
      let org = view.org;
      if (body.email !== undefined && body.email !== view.org.email) {
        org = await ctx.accounts.accounts.updateOrganization(view.org.name, { email: body.email });
        await ctx.audit('org_change_email', { namespace: org.name, metadata: { email: org.email, old_email: view.org.email } });
      }
      if (body.tag_expiration_s !== undefined) {
        const { previous } = await ctx.registry.timeMachine.setWindow(org.name, body.tag_expiration_s);
        if (previous !== body.tag_expiration_s) {
          await ctx.audit('org_change_tag_expiration', { namespace: org.name, metadata: { tag_expiration_s: body.tag_expiration_s, old_tag_expiration_s: previous } });
        }
      }
      return organizationJson(ctx, { ...view, org });
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname',
    summary: 'Delete an organization with its repositories, teams and robots',
    tag: 'organization',
    params: OrgParams,
    status: 204,
    async handler(ctx, { params }) {
      const view = await administeredOrganization(ctx, params.orgname);
      await ctx.accounts.accounts.deleteOrganization(view.org.name);
      await ctx.audit('org_delete', { namespace: view.org.name });
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/members',
    summary: "An organization's members and their teams",
    tag: 'organization',
    params: OrgParams,
    response: MembersSchema,
    async handler(ctx, { params }) {
      const view = await administeredOrganization(ctx, params.orgname);
      const members = new Map<string, string[]>();
      for (const team of await ctx.accounts.teams.listTeams(view.org.name)) {
        for (const name of await ctx.accounts.teams.listMembers(view.org.name, team.name)) {
          members.set(name, [...(members.get(name) ?? []), team.name]);
        }
      }
      return {
        members: [...members.keys()].sort().map((name) => ({ name, kind: 'user', is_robot: false, teams: members.get(name)!.map((t) => ({ name: t })) })),
      };
    },
  }),
];
