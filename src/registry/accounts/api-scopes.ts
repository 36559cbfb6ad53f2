/**
 * API token scopes, named as Quay names its OAuth scopes so that Quay automation can ask for the same
 * ones. A principal without `tokenScopes` (password, robot, registry bearer token) is not capped.
 *
 *   repo:read    pull and view repositories the user can read
 *   repo:write   also push, delete tags and manifests
 *   repo:admin   also administer repositories (permissions, visibility, state, deletion)
 *   repo:create  create repositories where the user may
 *   user:read    read the user's own account
 *   user:admin   administer the user's own account and namespace (robots, tokens, password)
 *   org:admin    administer organizations the user administers (teams, members, robots, defaults)
 *   super:user   use superuser powers, when the user is a superuser
 */
import type { Principal } from '../access.js';
import { AccountError } from './account-error.js';
import type { RepositoryRole } from './roles.js';

export const API_SCOPES = ['repo:read', 'repo:write', 'repo:admin', 'repo:create', 'user:read', 'user:admin', 'org:admin', 'super:user'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

/** The scopes, deduplicated and in canonical order; AccountError for an unknown or empty list. */
export function validateScopes(scopes: readonly string[]): ApiScope[] {
  if (!Array.isArray(scopes) || scopes.length === 0) throw new AccountError('invalid_request', `at least one scope is required (${API_SCOPES.join(', ')})`);
  for (const s of scopes) {
    if (!(API_SCOPES as readonly string[]).includes(s)) throw new AccountError('invalid_request', `unknown scope ${JSON.stringify(String(s).slice(0, 50))}; known scopes: ${API_SCOPES.join(', ')}`);
  }
  return API_SCOPES.filter((s) => scopes.includes(s));
}

/** Whether the principal's credentials allow `scope` (true for anything but a scoped API token). */
export function hasScope(principal: Principal, scope: ApiScope): boolean {
  if (principal.kind !== 'user' || principal.tokenScopes === undefined) return true;
  if (principal.tokenScopes.includes(scope)) return true;
  // Wider scopes include narrower ones of the same family, as in Quay.
  if (scope === 'repo:read') return principal.tokenScopes.includes('repo:write') || principal.tokenScopes.includes('repo:admin');
  if (scope === 'repo:write') return principal.tokenScopes.includes('repo:admin');
  if (scope === 'user:read') return principal.tokenScopes.includes('user:admin');
  return false;
}

/** The strongest repository role the principal's credentials allow (admin when not a scoped token). */
export function repositoryRoleCap(principal: Principal): RepositoryRole | undefined {
  if (hasScope(principal, 'repo:admin')) return 'admin';
  if (hasScope(principal, 'repo:write')) return 'write';
  if (hasScope(principal, 'repo:read')) return 'read';
  return undefined;
}
