/**
 * Teams of an organization and their members (org admins change them; a team's members may list it).
 *
 *   PUT    /organization/{orgname}/team/{teamname}                        create or update {role, description}
 *   DELETE /organization/{orgname}/team/{teamname}                        its permissions go with it
 *   GET    /organization/{orgname}/team/{teamname}/members                admins and the team's members
 *   PUT    /organization/{orgname}/team/{teamname}/members/{membername}
 *   DELETE /organization/{orgname}/team/{teamname}/members/{membername}   access ends at once
 *
 * A member is a user or a robot of the organization (`org+short`); a robot gets the team's repository
 * permissions but not its organization role.
 *
 * An organization always keeps an administrator: a change that would leave none is 409.
 */
import { z } from 'zod';
import { TEAM_ROLES } from '../../registry/accounts/roles.js';
import { memberView, teamView } from './account-views.js';
import { forbidden, notFound } from './errors.js';
import { administeredOrganization, visibleOrganization } from './organization-access.js';
import { defineRoute } from './route.js';
import { MemberSchema, TeamSchema } from './schemas.js';

const TeamParams = z.object({ orgname: z.string().max(255), teamname: z.string().max(255) });
const MemberParams = TeamParams.extend({ membername: z.string().max(512) });

export const teamRoutes = [
  defineRoute({
    method: 'PUT',
    path: '/organization/:orgname/team/:teamname',
    summary: "Create a team or change its role and description",
    tag: 'team',
    params: TeamParams,
    body: z.object({ role: z.enum(TEAM_ROLES), description: z.string().max(4096).nullable().optional() }),
    response: TeamSchema,
    async handler(ctx, { params, body }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      const teams = ctx.accounts.teams;
      const existing = await teams.getTeam(org.name, params.teamname);
      let team;
      if (!existing) {
        team = await teams.createTeam(org.name, params.teamname, { role: body.role, description: body.description });
        await ctx.audit('org_create_team', { namespace: org.name, metadata: { team: team.name, role: team.role } });
      } else {
        team = await teams.updateTeam(org.name, existing.name, { role: body.role, description: body.description });
        if (team.role !== existing.role) await ctx.audit('org_set_team_role', { namespace: org.name, metadata: { team: team.name, role: team.role, old_role: existing.role } });
        if (team.description !== existing.description) await ctx.audit('org_set_team_description', { namespace: org.name, metadata: { team: team.name, description: team.description } });
      }
      return teamView(team, (await teams.listMembers(org.name, team.name)).length);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname/team/:teamname',
    summary: 'Delete a team and every permission granted to it',
    tag: 'team',
    params: TeamParams,
    status: 204,
    async handler(ctx, { params }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      await ctx.accounts.teams.deleteTeam(org.name, params.teamname);
      await ctx.audit('org_delete_team', { namespace: org.name, metadata: { team: params.teamname } });
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/team/:teamname/members',
    summary: "A team's members",
    tag: 'team',
    params: TeamParams,
    response: z.strictObject({ name: z.string(), members: z.array(MemberSchema), can_edit: z.boolean() }),
    async handler(ctx, { params }) {
      const { org, user, admin } = await visibleOrganization(ctx, params.orgname);
      const team = await ctx.accounts.teams.getTeam(org.name, params.teamname);
      if (!team) throw notFound(`team ${params.teamname.slice(0, 100)}`);
      const members = await ctx.accounts.teams.listAllMembers(org.name, team.name);
      if (!admin && !members.some((m) => !m.isRobot && m.name === user.name)) throw forbidden(`only administrators of ${org.name} and members of the team may list its members`);
      return { name: team.name, members: members.map((m) => memberView(m.name, m.isRobot)), can_edit: admin };
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/organization/:orgname/team/:teamname/members/:membername',
    summary: 'Add a user, or a robot of the organization (`org+short`), to a team',
    tag: 'team',
    params: MemberParams,
    response: MemberSchema,
    async handler(ctx, { params }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      const added = await ctx.accounts.teams.addMember(org.name, params.teamname, params.membername);
      if (added) await ctx.audit('org_add_team_member', { namespace: org.name, metadata: { team: params.teamname, member: params.membername } });
      return memberView(params.membername, params.membername.includes('+'));
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname/team/:teamname/members/:membername',
    summary: 'Remove a user or robot from a team',
    tag: 'team',
    params: MemberParams,
    status: 204,
    async handler(ctx, { params }) {
      const { org } = await administeredOrganization(ctx, params.orgname);
      await ctx.accounts.teams.removeMember(org.name, params.teamname, params.membername);
      await ctx.audit('org_remove_team_member', { namespace: org.name, metadata: { team: params.teamname, member: params.membername } });
    },
  }),
];
