/**
 * The caller's starred repositories (Quay's `/user/starred`). Starring needs read access to the
 * repository; a repository's `is_starred` (GET /repository/{repository}) says whether the caller starred it.
 *
 *   GET    /user/starred                {repositories: [{namespace, name}]} that the caller can still read
 *   POST   /user/starred                {namespace, repository} → 201 {namespace, repository}; starring twice is no error
 *   DELETE /user/starred/{repository}   204; 404 when the caller had not starred it (nested names: org/team/app)
 */
import { z } from 'zod';
import type { RepositoryName } from '../../oci/reference.js';
import { notFound } from './errors.js';
import { repositoryPathName } from './params.js';
import { repositoryName, requireRepository } from './repository-access.js';
import { defineRoute } from './route.js';

const Starred = z.strictObject({ namespace: z.string(), repository: z.string() });

export const starRoutes = [
  defineRoute({
    method: 'GET',
    path: '/user/starred',
    summary: "The repositories the caller starred (those they can still read)",
    tag: 'user',
    response: z.strictObject({ repositories: z.array(z.strictObject({ namespace: z.string(), name: z.string() })) }),
    async handler(ctx) {
      const user = ctx.user('user:read');
      const repositories: Array<{ namespace: string; name: string }> = [];
      for (const full of await ctx.accounts.stars.starredBy(user)) {
        const repo = await ctx.registry.repositories.details(full as RepositoryName);
        if (repo && (await ctx.accounts.permissions.roleOn(user, repo))) repositories.push({ namespace: repo.namespace, name: repo.name });
      }
      return { repositories };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/user/starred',
    summary: 'Star a repository the caller can read',
    tag: 'user',
    status: 201,
    body: z.object({ namespace: z.string().min(1).max(255), repository: z.string().min(1).max(255) }),
    response: Starred,
    async handler(ctx, { body }) {
      const user = ctx.user('repo:read');
      const { repo } = await requireRepository(ctx, repositoryName(body.namespace, body.repository), 'read');
      if (await ctx.accounts.stars.star(user, repo)) await ctx.audit('star_repository', { namespace: repo.namespace, repository: repo.name });
      return { namespace: repo.namespace, repository: repo.name };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/user/starred/:repository+',
    summary: "Remove the caller's star from a repository",
    tag: 'user',
    status: 204,
    params: z.object({ repository: repositoryPathName }),
    async handler(ctx, { params }) {
      const user = ctx.user('repo:read');
      const { repo } = await requireRepository(ctx, params.repository, 'read');
      if (!(await ctx.accounts.stars.unstar(user, repo))) throw notFound(`a star of yours on ${params.repository}`);
      await ctx.audit('unstar_repository', { namespace: repo.namespace, repository: repo.name });
    },
  }),
];
