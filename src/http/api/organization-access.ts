/**
 * Who may see and who may administer an organization through `/api/v1`. An organization is visible to
 * its members (any team) and to superusers; to anyone else it does not exist (404, never 403), so that
 * a private organization's existence does not leak. Administering it is `canAdminNamespace` (an admin
 * team member with `org:admin`, or a superuser with `super:user`); a member who may not gets 403.
 */
import type { OrganizationInfo } from '../../registry/accounts/account-service.js';
import { hasScope } from '../../registry/accounts/api-scopes.js';
import type { TeamRole } from '../../registry/accounts/roles.js';
import type { ApiContext, UserPrincipal } from './context.js';
import { forbidden, notFound } from './errors.js';

export interface OrganizationView {
  user: UserPrincipal;
  org: OrganizationInfo;
  /** The caller's strongest team role, undefined when they are on no team (a superuser). */
  role: TeamRole | undefined;
  admin: boolean;
}

/**
 * The organization as the caller may see it: 401 anonymous, 403 robots and tokens with none of
 * user:read, org:admin, super:user; 404 when it does not exist or the caller is neither member nor superuser.
 */
export async function visibleOrganization(ctx: ApiContext, name: string): Promise<OrganizationView> {
  const user = ctx.user();
  // Checked before the lookup, so that a token's scopes never reveal whether the organization exists.
  if (!hasScope(user, 'user:read') && !hasScope(user, 'org:admin') && !hasScope(user, 'super:user')) throw forbidden('the API token lacks the user:read or org:admin scope');
  const org = await ctx.accounts.accounts.getOrganization(name);
  if (!org) throw notFound(`organization ${name.slice(0, 100)}`);
  const [role, superuser, admin] = await Promise.all([
    ctx.accounts.permissions.organizationRole(user, org.name),
    ctx.accounts.permissions.isSuperuser(user),
    ctx.accounts.permissions.canAdminNamespace(user, org.name),
  ]);
  if (role === undefined && !superuser) throw notFound(`organization ${name.slice(0, 100)}`);
  return { user, org, role, admin };
}

/** The organization if the caller administers it; 404 when they cannot see it, 403 when they only see it. */
export async function administeredOrganization(ctx: ApiContext, name: string): Promise<OrganizationView> {
  const view = await visibleOrganization(ctx, name);
  if (!view.admin) throw forbidden(`administering organization ${view.org.name} requires an admin team and the org:admin scope`);
  return view;
}
