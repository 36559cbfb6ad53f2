/**
 * Repository permissions of users (robots too: a name with `+`, as in Quay) and teams. Every endpoint
 * needs admin on the repository. Teams and robots must belong to the repository's namespace.
 */
import { z } from 'zod';
import type { SubjectRef } from '../../registry/accounts/grant-service.js';
import { REPOSITORY_ROLES } from '../../registry/accounts/roles.js';
import { notFound } from './errors.js';
import { repositoryPathName } from './params.js';
import { requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH } from './route.js';
import { RepositoryRoleSchema } from './schemas.js';

const repoParams = z.object({ repository: repositoryPathName });
const userParams = repoParams.extend({ username: z.string().min(1).max(512) });
const teamParams = repoParams.extend({ teamname: z.string().min(1).max(255) });
const roleBody = z.object({ role: z.enum(REPOSITORY_ROLES) });

/** A user name, or a robot's full name `<namespace>+<short>`. */
export const userOrRobot = (name: string): SubjectRef => (name.includes('+') ? { kind: 'robot', name } : { kind: 'user', name });

const userView = (name: string, role: string) => ({ role, name, is_robot: name.includes('+') });

const UserPermissionSchema = z.strictObject({ role: RepositoryRoleSchema, name: z.string(), is_robot: z.boolean() });
const TeamPermissionSchema = z.strictObject({ role: RepositoryRoleSchema, name: z.string() });

export const permissionRoutes = [
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/permissions/user/`,
    summary: 'Permissions of users and robots on the repository (admin)',
    tag: 'permission',
    params: repoParams,
    response: z.strictObject({ permissions: z.record(z.string(), UserPermissionSchema) }),
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      const all = await ctx.accounts.grants.listRepositoryPermissions(repo);
      return { permissions: Object.fromEntries(all.filter((p) => p.kind !== 'team').map((p) => [p.name, userView(p.name, p.role)])) };
    },
  }),
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/permissions/user/:username`,
    summary: "A user's or robot's own permission on the repository (admin)",
    tag: 'permission',
    params: userParams,
    response: UserPermissionSchema,
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      const role = await ctx.accounts.grants.getRepositoryPermission(repo, userOrRobot(params.username));
      if (!role) throw notFound(`permission of ${params.username.slice(0, 300)}`);
      return userView(params.username, role);
    },
  }),
  defineRoute({
    method: 'PUT',
    path: `${REPOSITORY_PATH}/permissions/user/:username`,
    summary: 'Give a user or robot a role on the repository (admin)',
    tag: 'permission',
    params: userParams,
    body: roleBody,
    response: UserPermissionSchema,
    async handler(ctx, { params, body }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await ctx.accounts.grants.setRepositoryPermission(repo, userOrRobot(params.username), body.role);
      await ctx.audit('change_repo_permission', { namespace: repo.namespace, repository: repo.name, metadata: { username: params.username, role: body.role } });
      return userView(params.username, body.role);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: `${REPOSITORY_PATH}/permissions/user/:username`,
    summary: "Remove a user's or robot's permission on the repository (admin)",
    tag: 'permission',
    status: 204,
    params: userParams,
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await ctx.accounts.grants.deleteRepositoryPermission(repo, userOrRobot(params.username));
      await ctx.audit('delete_repo_permission', { namespace: repo.namespace, repository: repo.name, metadata: { username: params.username } });
    },
  }),
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/permissions/team/`,
    summary: 'Permissions of teams on the repository (admin)',
    tag: 'permission',
    params: repoParams,
    response: z.strictObject({ permissions: z.record(z.string(), TeamPermissionSchema) }),
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      const all = await ctx.accounts.grants.listRepositoryPermissions(repo);
      return { permissions: Object.fromEntries(all.filter((p) => p.kind === 'team').map((p) => [p.name, { role: p.role, name: p.name }])) };
    },
  }),
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/permissions/team/:teamname`,
    summary: "A team's permission on the repository (admin)",
    tag: 'permission',
    params: teamParams,
    response: TeamPermissionSchema,
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      const role = await ctx.accounts.grants.getRepositoryPermission(repo, { kind: 'team', name: params.teamname });
      if (!role) throw notFound(`permission of team ${params.teamname.slice(0, 300)}`);
      return { role, name: params.teamname };
    },
  }),
  defineRoute({
    method: 'PUT',
    path: `${REPOSITORY_PATH}/permissions/team/:teamname`,
    summary: "Give a team of the repository's organization a role on it (admin)",
    tag: 'permission',
    params: teamParams,
    body: roleBody,
    response: TeamPermissionSchema,
    async handler(ctx, { params, body }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await ctx.accounts.grants.setRepositoryPermission(repo, { kind: 'team', name: params.teamname }, body.role);
      await ctx.audit('change_repo_permission', { namespace: repo.namespace, repository: repo.name, metadata: { team: params.teamname, role: body.role } });
      return { role: body.role, name: params.teamname };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: `${REPOSITORY_PATH}/permissions/team/:teamname`,
    summary: "Remove a team's permission on the repository (admin)",
    tag: 'permission',
    status: 204,
    params: teamParams,
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await ctx.accounts.grants.deleteRepositoryPermission(repo, { kind: 'team', name: params.teamname });
      await ctx.audit('delete_repo_permission', { namespace: repo.namespace, repository: repo.name, metadata: { team: params.teamname } });
    },
  }),
];
