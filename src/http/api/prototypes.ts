/**
 * Organization default permissions ("prototypes" in Quay): a role for a user, robot or team, copied onto
 * every repository created in the organization from then on, or, with `activating_user`, onto every
 * repository that one user creates there. Organization admins (and superusers) only.
 *
 * A prototype's id is stable and readable: `<kind>:<name>` with kind `user` (robots too) or `team`, and
 * `<kind>:<name>@<creator>` for one that applies to `creator`'s repositories (names never contain `@`).
 */
import { z } from 'zod';
import type { ApiContext } from './context.js';
import type { DefaultPermissionInfo, SubjectRef } from '../../registry/accounts/grant-service.js';
import { REPOSITORY_ROLES } from '../../registry/accounts/roles.js';
import { invalid, notFound } from './errors.js';
import { administeredOrganization } from './organization-access.js';
import { userOrRobot } from './permissions.js';
import { defineRoute } from './route.js';
import { RepositoryRoleSchema } from './schemas.js';

const orgParams = z.object({ orgname: z.string().min(1).max(255) });
const idParams = orgParams.extend({ prototypeid: z.string().min(1).max(600) });

/** 401 anonymous; 404 when the caller cannot see the organization (whether or not it exists); 403 a member who is not an admin. */
async function requireOrgAdmin(ctx: ApiContext, orgname: string): Promise<void> {
  await administeredOrganization(ctx, orgname);
}

const PrototypeSchema = z.strictObject({
  id: z.string(),
  role: RepositoryRoleSchema,
  /** The user whose new repositories get this permission; null: every new repository. */
  activating_user: z.strictObject({ name: z.string(), kind: z.literal('user'), is_robot: z.literal(false) }).nullable(),
  delegate: z.strictObject({ kind: z.enum(['user', 'team']), name: z.string(), is_robot: z.boolean() }),
});

function view(p: Pick<DefaultPermissionInfo, 'kind' | 'name' | 'role' | 'creator'>) {
  const kind = p.kind === 'team' ? 'team' : 'user';
  return {
    id: `${kind}:${p.name}${p.creator === undefined ? '' : `@${p.creator}`}`,
    role: p.role,
    activating_user: p.creator === undefined ? null : { name: p.creator, kind: 'user' as const, is_robot: false as const },
    delegate: { kind, name: p.name, is_robot: p.kind === 'robot' },
  };
}

/** The subject and creator a prototype id names; 400 for anything that is not such an id. */
function parseId(id: string): { subject: SubjectRef; creator?: string } {
  const at = id.indexOf('@');
  const [head, creator] = at < 0 ? [id, undefined] : [id.slice(0, at), id.slice(at + 1)];
  const i = head.indexOf(':');
  const kind = head.slice(0, i);
  const name = head.slice(i + 1);
  if (i <= 0 || !name || creator === '' || (kind !== 'team' && kind !== 'user')) throw invalid('prototypeid: expected user:<name> or team:<name>, followed by @<creator> for a per-creator default');
  return { subject: kind === 'team' ? { kind: 'team', name } : userOrRobot(name), creator };
}

export const prototypeRoutes = [
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/prototypes',
    summary: "The organization's default permissions for new repositories (organization admin): the general ones, then those for one creator's repositories",
    tag: 'prototype',
    params: orgParams,
    response: z.strictObject({ prototypes: z.array(PrototypeSchema) }),
    async handler(ctx, { params }) {
      await requireOrgAdmin(ctx, params.orgname);
      return { prototypes: (await ctx.accounts.grants.listDefaultPermissions(params.orgname)).map(view) };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/organization/:orgname/prototypes',
    summary:
      'Add (or change the role of) a default permission: `delegate` is a user, robot (`org+name`, kind user) or team of the organization; with `activating_user` (a user) it applies only to the repositories that user creates',
    tag: 'prototype',
    status: 201,
    params: orgParams,
    body: z.object({
      role: z.enum(REPOSITORY_ROLES),
      delegate: z.object({ kind: z.enum(['user', 'team']), name: z.string().min(1).max(512) }),
      activating_user: z.object({ name: z.string().min(1).max(255) }).nullish(),
    }),
    response: PrototypeSchema,
    async handler(ctx, { params, body }) {
      await requireOrgAdmin(ctx, params.orgname);
      const subject: SubjectRef = body.delegate.kind === 'team' ? { kind: 'team', name: body.delegate.name } : userOrRobot(body.delegate.name);
      const creator = body.activating_user?.name;
      if (creator !== undefined && creator.includes('+')) throw invalid('activating_user: a robot creates no repositories through the API; name a user');
      await ctx.accounts.grants.setDefaultPermission(params.orgname, subject, body.role, creator);
      const created = view({ kind: subject.kind, name: subject.name, role: body.role, creator });
      await ctx.audit('create_prototype_permission', { namespace: params.orgname, metadata: { prototype_id: created.id, role: body.role, delegate: created.delegate, activating_user: created.activating_user } });
      return created;
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/organization/:orgname/prototypes/:prototypeid',
    summary: "Change a default permission's role",
    tag: 'prototype',
    params: idParams,
    body: z.object({ role: z.enum(REPOSITORY_ROLES) }),
    response: PrototypeSchema,
    async handler(ctx, { params, body }) {
      await requireOrgAdmin(ctx, params.orgname);
      const { subject, creator } = parseId(params.prototypeid);
      const current = (await ctx.accounts.grants.listDefaultPermissions(params.orgname)).find((p) => view(p).id === params.prototypeid);
      if (!current) throw notFound(`default permission ${params.prototypeid.slice(0, 300)}`);
      await ctx.accounts.grants.setDefaultPermission(params.orgname, subject, body.role, creator);
      const changed = view({ ...current, role: body.role });
      if (current.role !== body.role) await ctx.audit('modify_prototype_permission', { namespace: params.orgname, metadata: { prototype_id: changed.id, role: body.role, original_role: current.role } });
      return changed;
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname/prototypes/:prototypeid',
    summary: 'Remove a default permission by id (`user:<name>` or `team:<name>`, with `@<creator>` for a per-creator one)',
    tag: 'prototype',
    status: 204,
    params: idParams,
    async handler(ctx, { params }) {
      await requireOrgAdmin(ctx, params.orgname);
      const { subject, creator } = parseId(params.prototypeid);
      await ctx.accounts.grants.deleteDefaultPermission(params.orgname, subject, creator);
      await ctx.audit('delete_prototype_permission', { namespace: params.orgname, metadata: { prototype_id: params.prototypeid } });
    },
  }),
];
