/**
 * The repository a route names, for a caller, with the refusals every repository endpoint shares:
 *
 *   bad name                                   400 (the route's params schema)
 *   missing, or private and not readable       401 for anonymous callers, 404 for everyone else —
 *                                              identical for both, so existence never leaks
 *   readable, but the role is too weak         401 anonymous, 403 otherwise
 *   writes (`write` needed) to a READ_ONLY or MIRROR repository follow the `/v2` rules (403 unless the
 *   caller is the mirror robot of a MIRROR repository).
 *
 * How a path names the repository (its `/` raw or as `%2F`) is repository-router.ts's business.
 */
import { parseRepositoryName, type RepositoryName } from '../../oci/reference.js';
import type { RepositoryDetails } from '../../registry/repositories.js';
import { roleAtLeast, type RepositoryRole } from '../../registry/accounts/roles.js';
import type { ApiContext } from './context.js';
import { forbidden, invalid, notFound, unauthorized } from './errors.js';

export interface ResolvedRepository {
  name: RepositoryName;
  repo: RepositoryDetails;
  /** The caller's effective role (at least `read`). */
  role: RepositoryRole;
}

/** The validated full name `namespace/repository` of a request body; 400 with the reason otherwise. */
export function repositoryName(namespace: string, repository: string): RepositoryName {
  if (!namespace || namespace.includes('/')) throw invalid(`invalid namespace ${JSON.stringify(namespace.slice(0, 100))}`);
  const parsed = parseRepositoryName(`${namespace}/${repository}`);
  if (!parsed.ok) throw invalid(parsed.reason);
  return parsed.name;
}

/** The repository if the caller holds at least `needed` on it (see the file comment for refusals). */
export async function requireRepository(ctx: ApiContext, name: RepositoryName, needed: RepositoryRole): Promise<ResolvedRepository> {
  const repo = await ctx.registry.repositories.details(name);
  const role = repo && (await ctx.accounts.permissions.roleOn(ctx.principal, repo));
  if (!repo || !role) {
    if (ctx.principal.kind === 'anonymous') throw unauthorized();
    throw notFound(`repository ${name}`);
  }
  if (!roleAtLeast(role, needed)) {
    if (ctx.principal.kind === 'anonymous') throw unauthorized();
    throw forbidden(`${needed} permission on ${name} required`);
  }
  // Writes also obey the repository's state, exactly as on /v2.
  if (needed === 'write') await ctx.registry.access.authorize(ctx.principal, name, ['push']);
  return { name, repo, role };
}
