/**
 * Repositories: create, list (only what the caller can read, paged by an opaque cursor), get, change
 * the description, delete, change visibility and state. Quay's paths and fields; a repository's name
 * in a path may have any number of components (see repository-router.ts).
 */
import { z } from 'zod';
import { REPOSITORY_STATES } from '../../registry/repositories.js';
import { roleAtLeast } from '../../registry/accounts/roles.js';
import { ApiError, conflict, forbidden, invalid, notFound } from './errors.js';
import { decodeCursor, encodeCursor, queryBool, queryInt, repositoryPathName, seconds } from './params.js';
import { repositoryQuotaReport, RepositoryQuotaReportSchema } from './quota-views.js';
import { repositoryName, requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH } from './route.js';
import { RepositoryStateSchema, SuccessSchema } from './schemas.js';

const MAX_DESCRIPTION = 100_000;
const one = z.object({ repository: repositoryPathName });
const visibility = z.enum(['public', 'private']);

const CreatedSchema = z.strictObject({ namespace: z.string(), name: z.string(), kind: z.literal('image') });
/** `last_modified` (seconds, null without tags) only with `last_modified=true`; `next_page` when there is more. */
const ListSchema = z.strictObject({
  repositories: z.array(
    z.strictObject({
      namespace: z.string(),
      name: z.string(),
      description: z.string().nullable(),
      is_public: z.boolean(),
      kind: z.literal('image'),
      state: RepositoryStateSchema,
      last_modified: z.int().nullable().optional(),
      /** Storage the repository uses, and its namespace's quota limit (null without a quota). */
      quota_report: RepositoryQuotaReportSchema,
    }),
  ),
  next_page: z.string().optional(),
});
const RepositorySchema = z.strictObject({
  namespace: z.string(),
  name: z.string(),
  kind: z.literal('image'),
  description: z.string().nullable(),
  is_public: z.boolean(),
  is_organization: z.boolean(),
  state: RepositoryStateSchema,
  can_write: z.boolean(),
  can_admin: z.boolean(),
  /** Whether the calling user starred it (always false for anonymous callers and robots). */
  is_starred: z.boolean(),
  tag_count: z.int(),
  quota_report: RepositoryQuotaReportSchema,
});

export const repositoryRoutes = [
  defineRoute({
    method: 'POST',
    path: '/repository',
    summary: 'Create a repository in a namespace where the caller may create repositories',
    tag: 'repository',
    status: 201,
    body: z.object({
      namespace: z.string().min(1).max(255),
      repository: z.string().min(1).max(255),
      visibility,
      description: z.string().max(MAX_DESCRIPTION).nullish(),
      repo_kind: z.literal('image').nullish(),
    }),
    response: CreatedSchema,
    async handler(ctx, { body }) {
      const principal = ctx.authenticated();
      const name = repositoryName(body.namespace, body.repository);
      if (!(await ctx.accounts.permissions.canCreateRepository(principal, body.namespace))) {
        if (!(await ctx.accounts.permissions.isSuperuser(principal))) throw forbidden(`you may not create repositories in namespace ${body.namespace}`);
      }
      const creator = principal.kind === 'user' && principal.name !== body.namespace ? { kind: 'user' as const, id: principal.id } : undefined;
      const { repository, created } = await ctx.registry.repositories.create(name, { visibility: body.visibility, description: body.description ?? null, creator });
      if (!created) throw new ApiError(409, 'conflict', `repository ${name} already exists`);
      await ctx.audit('create_repo', { namespace: repository.namespace, repository: repository.name, metadata: { visibility: body.visibility } });
      return { namespace: repository.namespace, name: repository.name, kind: 'image' };
    },
  }),

  defineRoute({
    method: 'GET',
    path: '/repository',
    summary:
      'Repositories the caller can read, by full name, one page at a time. With `namespace`, those of that namespace (public ones included); otherwise those the caller can read by permission, plus every public repository when `public=true`.',
    tag: 'repository',
    query: z.object({
      namespace: z.string().min(1).max(255).optional(),
      public: queryBool(false),
      last_modified: queryBool(false),
      next_page: z.string().max(2048).optional(),
      limit: queryInt(1, 100, 100),
    }),
    response: ListSchema,
    async handler(ctx, { query }) {
      const last = query.next_page === undefined ? undefined : decodeCursor(query.next_page);
      if (query.next_page !== undefined && last === undefined) throw invalid('next_page: not a cursor this server handed out');
      const includePublic = query.public || query.namespace !== undefined || ctx.principal.kind === 'anonymous';
      const rows = await ctx.accounts.permissions.listReadableRepositories(ctx.principal, { namespace: query.namespace, includePublic, last, limit: query.limit + 1 });
      const page = rows.slice(0, query.limit);
      const usage = await ctx.registry.quota.repositoryUsage(page);
      return {
        repositories: page.map((r) => ({
          namespace: r.namespace,
          name: r.name,
          description: r.description,
          is_public: r.visibility === 'public',
          kind: 'image',
          state: r.state,
          ...(query.last_modified ? { last_modified: r.lastModified === null ? null : seconds(r.lastModified) } : {}),
          quota_report: repositoryQuotaReport(usage.get(`${r.namespace}/${r.name}`)),
        })),
        ...(rows.length > query.limit ? { next_page: encodeCursor(page[page.length - 1]!.fullName) } : {}),
      };
    },
  }),

  defineRoute({
    method: 'GET',
    path: REPOSITORY_PATH,
    summary: 'One repository',
    tag: 'repository',
    params: one,
    response: RepositorySchema,
    async handler(ctx, { params }) {
      const { repo, role } = await requireRepository(ctx, params.repository, 'read');
      return {
        namespace: repo.namespace,
        name: repo.name,
        kind: 'image',
        description: repo.description,
        is_public: repo.visibility === 'public',
        is_organization: repo.namespaceKind === 'org',
        state: repo.state,
        can_write: roleAtLeast(role, 'write'),
        can_admin: roleAtLeast(role, 'admin'),
        is_starred: ctx.principal.kind === 'user' ? await ctx.accounts.stars.isStarred(ctx.principal, repo) : false,
        tag_count: await ctx.registry.tags.countLive(repo),
        quota_report: repositoryQuotaReport((await ctx.registry.quota.repositoryUsage([repo])).get(`${repo.namespace}/${repo.name}`)),
      };
    },
  }),

  defineRoute({
    method: 'PUT',
    path: REPOSITORY_PATH,
    summary: "Change a repository's description (write permission; allowed in every state, as it changes no content)",
    tag: 'repository',
    params: one,
    body: z.object({ description: z.string().max(MAX_DESCRIPTION).nullable() }),
    response: SuccessSchema,
    async handler(ctx, { params, body }) {
      // Metadata, not content: a READ_ONLY or MIRROR repository's description may change too (as in Quay).
      const { repo, role } = await requireRepository(ctx, params.repository, 'read');
      if (!roleAtLeast(role, 'write')) throw forbidden(`write permission on ${params.repository} required`);
      const description = body.description;
      if (description !== repo.description) {
        await ctx.registry.repositories.setDescription(repo, description);
        await ctx.audit('set_repo_description', { namespace: repo.namespace, repository: repo.name, metadata: { description } });
      }
      return { success: true };
    },
  }),

  defineRoute({
    method: 'DELETE',
    path: REPOSITORY_PATH,
    summary: 'Delete a repository with its manifests, tags and tag history (admin). Blob bytes are removed later by garbage collection.',
    tag: 'repository',
    status: 204,
    params: one,
    async handler(ctx, { params }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      // A read-only repository is protected from every change, its deletion included; a mirror may be
      // deleted by its admins (that also ends the mirroring).
      if (repo.state === 'READ_ONLY') throw conflict(`repository ${repo.namespace}/${repo.name} is read-only; change its state to NORMAL before deleting it`);
      if (!(await ctx.registry.repositories.delete(repo))) throw notFound(`repository ${repo.namespace}/${repo.name}`);
      await ctx.audit('delete_repo', { namespace: repo.namespace, repository: repo.name });
    },
  }),

  defineRoute({
    method: 'POST',
    path: `${REPOSITORY_PATH}/changevisibility`,
    summary: 'Make a repository public or private (admin)',
    tag: 'repository',
    params: one,
    body: z.object({ visibility }),
    response: SuccessSchema,
    async handler(ctx, { params, body }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await ctx.registry.repositories.setVisibility(repo, body.visibility);
      await ctx.audit('change_repo_visibility', { namespace: repo.namespace, repository: repo.name, metadata: { visibility: body.visibility, previous_visibility: repo.visibility } });
      return { success: true };
    },
  }),

  defineRoute({
    method: 'PUT',
    path: `${REPOSITORY_PATH}/changestate`,
    summary:
      'Set a repository state: NORMAL, READ_ONLY or MIRROR (superuser or repository admin). A MIRROR repository accepts writes only from its mirror robot: `robot` (full name, same namespace) sets it and grants it write; without one set, as Quay allows, it accepts writes from nobody until a robot is set.',
    tag: 'repository',
    params: one,
    body: z.object({ state: z.enum(REPOSITORY_STATES as ['NORMAL', 'READ_ONLY', 'MIRROR']), robot: z.string().min(1).max(512).optional() }),
    response: SuccessSchema,
    async handler(ctx, { params, body }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      if (body.robot !== undefined && body.state !== 'MIRROR') throw invalid('robot: only a MIRROR repository has a mirror robot');
      let robotName: string | undefined;
      if (body.state === 'MIRROR') {
        if (body.robot !== undefined) {
          const robot = await ctx.accounts.robots.get(body.robot);
          if (!robot) throw invalid(`robot: no robot ${body.robot.slice(0, 300)}`);
          if (robot.namespace !== repo.namespace) throw invalid(`robot: ${robot.name} belongs to another namespace than ${repo.namespace}`);
          const held = await ctx.accounts.grants.getRepositoryPermission(repo, { kind: 'robot', name: robot.name });
          if (!roleAtLeast(held, 'write')) await ctx.accounts.grants.setRepositoryPermission(repo, { kind: 'robot', name: robot.name }, 'write');
          await ctx.registry.repositories.setMirrorRobot(repo, robot.id);
          robotName = robot.name;
        }
      }
      await ctx.registry.repositories.setState(repo, body.state);
      await ctx.audit('change_repo_state', {
        namespace: repo.namespace,
        repository: repo.name,
        metadata: { state: body.state, previous_state: repo.state, ...(robotName ? { robot: robotName } : {}) },
      });
      return { success: true };
    },
  }),
];
