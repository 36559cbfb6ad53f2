/**
 * Organization default permissions ("prototypes" in Quay): a role for a user, robot or team, copied onto
 * every repository created in the organization from then on. Organization admins (and superusers) only.
 * A prototype's id is stable and readable: `<kind>:<name>` with kind `user` (robots too) or `team`.
 * Quay's `activating_user` (defaults that apply only to repositories one user creates) is not supported.
 */
import { z } from 'zod';
import type { ApiContext } from './context.js';
import type { PermissionInfo, SubjectRef } from '../../registry/accounts/grant-service.js';
import { REPOSITORY_ROLES } from '../../registry/accounts/roles.js';
import { invalid, notFound } from './errors.js';
import { administeredOrganization } from './organization-access.js';
import { userOrRobot } from './permissions.js';
import { defineRoute } from './route.js';
import { RepositoryRoleSchema } from './schemas.js';

const orgParams = z.object({ orgname: z.string().min(1).max(255) });

/** 401 anonymous; 404 when the caller cannot see the organization (whether or not it exists); 403 a member who is not an admin. */
async function requireOrgAdmin(ctx: ApiContext, orgname: string): Promise<void> {
  await administeredOrganization(ctx, orgname);
}

/** `activating_user` is always null: Wharf does not support per-creator defaults. */
const PrototypeSchema = z.strictObject({
  id: z.string(),
  role: RepositoryRoleSchema,
  activating_user: z.null(),
  delegate: z.strictObject({ kind: z.enum(['user', 'team']), name: z.string(), is_robot: z.boolean() }),
});

function view(p: Pick<PermissionInfo, 'kind' | 'name' | 'role'>) {
  const kind = p.kind === 'team' ? 'team' : 'user';
  return { id: `${kind}:${p.name}`, role: p.role, activating_user: null, delegate: { kind, name: p.name, is_robot: p.kind === 'robot' } };
}

function subjectOfId(id: string): SubjectRef | undefined {
  const i = id.indexOf(':');
  const kind = id.slice(0, i);
  const name = id.slice(i + 1);
  if (i <= 0 || !name) return undefined;
  if (kind === 'team') return { kind: 'team', name };
  return kind === 'user' ? userOrRobot(name) : undefined;
}

export const prototypeRoutes = [
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/prototypes',
    summary: "The organization's default permissions for new repositories (organization admin)",
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
    summary: 'Add (or change the role of) a default permission: `delegate` is a user, robot (`org+name`, kind user) or team of the organization',
    tag: 'prototype',
    status: 201,
    params: orgParams,
    body: z.object({
      role: z.enum(REPOSITORY_ROLES),
      delegate: z.object({ kind: z.enum(['user', 'team']), name: z.string().min(1).max(512) }),
      activating_user: z.null().optional(),
    }),
    response: PrototypeSchema,
    async handler(ctx, { params, body }) {
      await requireOrgAdmin(ctx, params.orgname);
      const subject: SubjectRef = body.delegate.kind === 'team' ? { kind: 'team', name: body.delegate.name } : userOrRobot(body.delegate.name);
      await ctx.accounts.grants.setDefaultPermission(params.orgname, subject, body.role);
      const created = view({ kind: subject.kind, name: subject.name, role: body.role });
      await ctx.audit('create_prototype_permission', { namespace: params.orgname, metadata: { prototype_id: created.id, role: body.role, delegate: created.delegate } });
      return created;
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname/prototypes/:prototypeid',
    summary: 'Remove a default permission by id (`user:<name>` or `team:<name>`)',
    tag: 'prototype',
    status: 204,
    params: orgParams.extend({ prototypeid: z.string().min(1).max(600) }),
    async handler(ctx, { params }) {
      await requireOrgAdmin(ctx, params.orgname);
      const subject = subjectOfId(params.prototypeid);
      if (!subject) throw invalid('prototypeid: expected user:<name> or team:<name>');
      await ctx.accounts.grants.deleteDefaultPermission(params.orgname, subject);
      await ctx.audit('delete_prototype_permission', { namespace: params.orgname, metadata: { prototype_id: params.prototypeid } });
    },
  }),
];
