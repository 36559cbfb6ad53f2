/**
 * Who may do what. Every answer re-reads the accounts involved, so disabling or deleting a user, robot
 * or team, or demoting a superuser, takes effect on the next request.
 *
 * The effective role of a principal on a repository is the strongest of:
 *   - read, if the repository is public (for everyone, anonymous included);
 *   - admin, for an enabled superuser;
 *   - admin, for the user whose own namespace it is;
 *   - admin, for a member of a team with role admin in the repository's organization;
 *   - the user's own permission and those of every team they belong to;
 *   - the robot's own permission and those of every team it belongs to (a team's role — admin,
 *     creator — gives a robot nothing more).
 * then capped by an API token's scopes. A disabled user, or a robot of a disabled namespace, gets
 * nothing, not even public read. Team role `creator` grants no repository access by itself; it lets
 * members create repositories, and the creator is made admin of what they create.
 */
import type { NamespaceRecord, NamespaceStore } from '../../db/namespace-store.js';
import type { PermissionStore, ReadableRepository } from '../../db/permission-store.js';
import type { RepositoryDetails } from '../../db/repository-store.js';
import type { RobotStore } from '../../db/robot-store.js';
import type { TeamStore } from '../../db/team-store.js';
import type { UserRecord, UserStore } from '../../db/user-store.js';
import type { Principal } from '../access.js';
import { hasScope, repositoryRoleCap } from './api-scopes.js';
import { isLookupName } from './names.js';
import { maxRole, maxTeamRole, minRole, type RepositoryRole, type TeamRole } from './roles.js';

export interface PermissionStores {
  users: UserStore;
  robots: RobotStore;
  namespaces: NamespaceStore;
  teams: TeamStore;
  permissions: PermissionStore;
}

export class PermissionService {
  constructor(private readonly stores: PermissionStores) {}

  /** The principal's effective role on the repository, or undefined for none (see the file comment). */
  async roleOn(principal: Principal, repo: RepositoryDetails): Promise<RepositoryRole | undefined> {
    const publicRead: RepositoryRole | undefined = repo.visibility === 'public' ? 'read' : undefined;
    if (principal.kind === 'anonymous') return publicRead;
    if (principal.kind === 'robot') {
      const robot = await this.stores.robots.findById(principal.id);
      if (!robot || !robot.namespaceEnabled) return undefined;
      return maxRole(publicRead, ...(await this.stores.permissions.robotRoles(repo.id, robot.id)));
    }
    const user = await this.activeUser(principal);
    if (!user) return undefined;
    const cap = repositoryRoleCap(principal);
    if (user.superuser && hasScope(principal, 'super:user')) return minRole('admin', cap);
    if (user.namespaceId === repo.namespaceId) return minRole('admin', cap);
    if (repo.namespaceKind === 'org' && maxTeamRole(await this.stores.teams.rolesIn(repo.namespaceId, user.id)) === 'admin') return minRole('admin', cap);
    return minRole(maxRole(publicRead, ...(await this.stores.permissions.userRoles(repo.id, user.id))), cap);
  }

  /**
   * Whether the principal may create repositories in the (existing) namespace: an enabled superuser, the
   * namespace's own user, or a member of an admin or creator team of the organization. Robots cannot
   * create repositories (in Quay they can through a creator team; on a Wharf team a robot gets only the
   * team's repository permissions).
   */
  async canCreateRepository(principal: Principal, namespace: string): Promise<boolean> {
    if (principal.kind !== 'user' || !hasScope(principal, 'repo:create')) return false;
    const [user, ns] = await Promise.all([this.activeUser(principal), this.namespace(namespace)]);
    if (!user || !ns) return false;
    if (user.superuser && hasScope(principal, 'super:user')) return true;
    if (user.namespaceId === ns.id) return true;
    if (ns.kind !== 'org') return false;
    const role = maxTeamRole(await this.stores.teams.rolesIn(ns.id, user.id));
    return role === 'admin' || role === 'creator';
  }

  /**
   * Whether the principal administers the namespace (its robots, teams, default permissions and every
   * repository in it): an enabled superuser, the namespace's own user, or a member of an admin team.
   */
  async canAdminNamespace(principal: Principal, namespace: string): Promise<boolean> {
    if (principal.kind !== 'user') return false;
    const [user, ns] = await Promise.all([this.activeUser(principal), this.namespace(namespace)]);
    if (!user || !ns) return false;
    if (user.superuser && hasScope(principal, 'super:user')) return true;
    if (user.namespaceId === ns.id) return hasScope(principal, 'user:admin');
    if (ns.kind !== 'org' || !hasScope(principal, 'org:admin')) return false;
    return maxTeamRole(await this.stores.teams.rolesIn(ns.id, user.id)) === 'admin';
  }

  /** The user's strongest team role in the organization (membership, not superuser power), or undefined. */
  async organizationRole(principal: Principal, organization: string): Promise<TeamRole | undefined> {
    if (principal.kind !== 'user') return undefined;
    const [user, ns] = await Promise.all([this.activeUser(principal), this.namespace(organization)]);
    if (!user || !ns || ns.kind !== 'org') return undefined;
    return maxTeamRole(await this.stores.teams.rolesIn(ns.id, user.id));
  }

  /**
   * Whether the principal belongs to the namespace: an enabled superuser, a member of one of its teams,
   * or one of its robots (who may pull through a proxy organization and fill its cache, as in Quay).
   */
  async belongsTo(principal: Principal, namespaceId: number): Promise<boolean> {
    if (principal.kind === 'robot') {
      const robot = await this.stores.robots.findById(principal.id);
      return robot !== undefined && robot.namespaceEnabled && robot.namespaceId === namespaceId;
    }
    if (principal.kind !== 'user') return false;
    const user = await this.activeUser(principal);
    if (!user) return false;
    if (user.superuser && hasScope(principal, 'super:user')) return true;
    if (principal.tokenScopes && !hasScope(principal, 'repo:read')) return false;
    return (await this.stores.teams.rolesIn(namespaceId, user.id)).length > 0;
  }

  /** Whether the principal is an enabled superuser whose credentials allow superuser powers. */
  async isSuperuser(principal: Principal): Promise<boolean> {
    const user = await this.activeUser(principal);
    return user !== undefined && user.superuser && hasScope(principal, 'super:user');
  }

  /**
   * Full names of the repositories the principal can read, in byte order, after `last`, at most
   * `limit`: what the catalog shows them.
   */
  async listReadable(principal: Principal, opts: { last?: string; limit: number }): Promise<string[]> {
    if (principal.kind === 'anonymous') return this.stores.permissions.readableNames({ kind: 'anonymous' }, opts);
    if (principal.kind === 'robot') {
      const robot = await this.stores.robots.findById(principal.id);
      if (!robot || !robot.namespaceEnabled) return [];
      return this.stores.permissions.readableNames({ kind: 'robot', robotId: robot.id }, opts);
    }
    const user = await this.activeUser(principal);
    if (!user || !hasScope(principal, 'repo:read')) return [];
    if (user.superuser && hasScope(principal, 'super:user')) return this.stores.permissions.readableNames({ kind: 'everything' }, opts);
    return this.stores.permissions.readableNames({ kind: 'user', userId: user.id, namespaceId: user.namespaceId }, opts);
  }

  /**
   * The repositories the principal can read, with their details, in byte order of the full name after
   * `last`, at most `limit`; only of `namespace` when given. Public repositories of others are included
   * only with `includePublic` (superusers see everything either way).
   */
  async listReadableRepositories(principal: Principal, opts: { namespace?: string; includePublic: boolean; last?: string; limit: number }): Promise<ReadableRepository[]> {
    if (principal.kind === 'anonymous') return this.stores.permissions.readableRepositories({ kind: 'anonymous' }, opts);
    if (principal.kind === 'robot') {
      const robot = await this.stores.robots.findById(principal.id);
      if (!robot || !robot.namespaceEnabled) return [];
      return this.stores.permissions.readableRepositories({ kind: 'robot', robotId: robot.id }, opts);
    }
    const user = await this.activeUser(principal);
    if (!user || !hasScope(principal, 'repo:read')) return [];
    if (user.superuser && hasScope(principal, 'super:user')) return this.stores.permissions.readableRepositories({ kind: 'everything' }, opts);
    return this.stores.permissions.readableRepositories({ kind: 'user', userId: user.id, namespaceId: user.namespaceId }, opts);
  }

  private async activeUser(principal: Principal): Promise<UserRecord | undefined> {
    if (principal.kind !== 'user') return undefined;
    const user = await this.stores.users.findById(principal.id);
    return user?.enabled ? user : undefined;
  }

  private async namespace(name: string): Promise<NamespaceRecord | undefined> {
    return isLookupName(name) ? this.stores.namespaces.findByName(name) : undefined;
  }
}
