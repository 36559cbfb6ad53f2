/**
 * Resolving `/repository/{namespace}/{repository}` for a caller, with the refusals every repository
 * endpoint shares:
 *
 *   bad name                                   400
 *   missing, or private and not readable       401 for anonymous callers, 404 for everyone else —
 *                                              identical for both, so existence never leaks
 *   readable, but the role is too weak         401 anonymous, 403 otherwise
 *   writes (`write` needed) to a READ_ONLY or MIRROR repository follow the `/v2` rules (403 unless the
 *   caller is the mirror robot of a MIRROR repository).
 *
 * Repository names: Quay's `{repository}` is one path segment. Wharf's may have several components
 * (`team/app/api`); endpoints below a repository take it as one segment with `/` encoded as `%2F`
 * (`/repository/acme/team%2Fapp/tag/`), and `GET`/`DELETE /repository/{namespace}/{repository...}` also
 * accept it unencoded.
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

/** The validated full name `namespace/repository`; 400 with the reason otherwise. */
export function repositoryName(namespace: string, repository: string): RepositoryName {
  if (!namespace || namespace.includes('/')) throw invalid(`invalid namespace ${JSON.stringify(namespace.slice(0, 100))}`);
  const parsed = parseRepositoryName(`${namespace}/${repository}`);
  if (!parsed.ok) throw invalid(`${parsed.reason}${repository.includes('/') ? ' (below a repository, encode "/" in its name as %2F)' : ''}`);
  return parsed.name;
}

/** The repository if the caller holds at least `needed` on it (see the file comment for refusals). */
export async function requireRepository(ctx: ApiContext, namespace: string, repository: string, needed: RepositoryRole): Promise<ResolvedRepository> {
  const name = repositoryName(namespace, repository);
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
