/**
 * Granting and revoking repository permissions and organization default permissions. Subjects are
 * named as the API names them: a user by name, a team by name within the repository's organization,
 * a robot by its full name `<namespace>+<short>`. Teams and robots may only be granted access to
 * repositories of their own namespace (as in Quay); users may be granted access anywhere.
 */
import type { DefaultPermissionStore } from '../../db/default-permission-store.js';
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { PermissionStore, Subject } from '../../db/permission-store.js';
import type { RepositoryDetails } from '../../db/repository-store.js';
import type { RobotStore } from '../../db/robot-store.js';
import type { TeamStore } from '../../db/team-store.js';
import type { UserStore } from '../../db/user-store.js';
import { AccountError } from './account-error.js';
import { isLookupName, parseRobotName } from './names.js';
import { isRepositoryRole, REPOSITORY_ROLES, type RepositoryRole } from './roles.js';

export type SubjectRef = { kind: 'user'; name: string } | { kind: 'team'; name: string } | { kind: 'robot'; name: string };

export interface PermissionInfo {
  kind: 'user' | 'team' | 'robot';
  name: string;
  role: RepositoryRole;
}

/** A default permission; `creator` when it applies only to the repositories that user creates. */
export interface DefaultPermissionInfo extends PermissionInfo {
  creator?: string;
}

export interface GrantStores {
  namespaces: NamespaceStore;
  users: UserStore;
  teams: TeamStore;
  robots: RobotStore;
  permissions: PermissionStore;
  defaults: DefaultPermissionStore;
}

export class GrantService {
  constructor(private readonly stores: GrantStores) {}

  /** Gives the subject `role` on the repository, replacing its previous role there. */
  async setRepositoryPermission(repo: RepositoryDetails, subject: SubjectRef, role: RepositoryRole): Promise<void> {
    const s = await this.resolve(repo.namespaceId, repo.namespace, subject);
    await this.stores.permissions.set(repo.id, s, checkRole(role));
  }

  /** The subject's own role on the repository (not counting its teams), or undefined. */
  async getRepositoryPermission(repo: RepositoryDetails, subject: SubjectRef): Promise<RepositoryRole | undefined> {
    const s = await this.resolve(repo.namespaceId, repo.namespace, subject);
    return (await this.stores.permissions.get(repo.id, s)) as RepositoryRole | undefined;
  }

  /** Removes the subject's permission; not_found if it had none. */
  async deleteRepositoryPermission(repo: RepositoryDetails, subject: SubjectRef): Promise<void> {
    const s = await this.resolve(repo.namespaceId, repo.namespace, subject);
    if (!(await this.stores.permissions.delete(repo.id, s))) throw new AccountError('not_found', `${subject.kind} ${subject.name} has no permission on ${repo.namespace}/${repo.name}`);
  }

  /** Every permission on the repository: users, then teams, then robots, each by name. */
  async listRepositoryPermissions(repo: RepositoryDetails): Promise<PermissionInfo[]> {
    return (await this.stores.permissions.listForRepository(repo.id)).map((p) => ({ kind: p.kind, name: p.name, role: p.role as RepositoryRole }));
  }

  /**
   * Sets a default permission of the organization, copied onto every repository created in it from now
   * on, or with `creator` (a user name) onto every repository that user creates in it.
   */
  async setDefaultPermission(organization: string, subject: SubjectRef, role: RepositoryRole, creator?: string): Promise<void> {
    const org = await this.requireOrganization(organization);
    const s = await this.resolve(org.id, org.name, subject);
    if (creator === undefined) await this.stores.defaults.set(org.id, s, checkRole(role));
    else await this.stores.defaults.setForCreator(org.id, (await this.requireUser(creator)).id, s, checkRole(role));
  }

  /** Removes a default permission (the one for `creator`'s repositories when given); not_found if there is none. */
  async deleteDefaultPermission(organization: string, subject: SubjectRef, creator?: string): Promise<void> {
    const org = await this.requireOrganization(organization);
    const s = await this.resolve(org.id, org.name, subject);
    const deleted = creator === undefined ? await this.stores.defaults.delete(org.id, s) : await this.stores.defaults.deleteForCreator(org.id, (await this.requireUser(creator)).id, s);
    if (!deleted) throw new AccountError('not_found', `${subject.kind} ${subject.name} has no default permission in ${org.name}${creator === undefined ? '' : ` for ${creator}`}`);
  }

  /** The organization's default permissions: the general ones, then those for one creator's repositories (by creator). */
  async listDefaultPermissions(organization: string): Promise<DefaultPermissionInfo[]> {
    const org = await this.requireOrganization(organization);
    const general = (await this.stores.defaults.list(org.id)).map((p) => ({ kind: p.kind, name: p.name, role: p.role as RepositoryRole }));
    const perCreator = (await this.stores.defaults.listForCreators(org.id)).map((p) => ({ kind: p.kind, name: p.name, role: p.role as RepositoryRole, creator: p.creator }));
    return [...general, ...perCreator];
  }

  private async requireUser(name: string) {
    const user = isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    if (!user) throw new AccountError('not_found', `user ${String(name).slice(0, 100)} not found`);
    return user;
  }

  private async resolve(namespaceId: number, namespace: string, subject: SubjectRef): Promise<Subject> {
    const missing = () => new AccountError('not_found', `${subject.kind} ${String(subject.name).slice(0, 300)} not found in ${namespace}`);
    if (subject.kind === 'user') {
      const user = isLookupName(subject.name) ? await this.stores.users.findByName(subject.name) : undefined;
      if (!user) throw new AccountError('not_found', `user ${String(subject.name).slice(0, 100)} not found`);
      return { kind: 'user', id: user.id };
    }
    if (subject.kind === 'team') {
      const team = typeof subject.name === 'string' ? await this.stores.teams.find(namespaceId, subject.name) : undefined;
      if (!team) throw missing();
      return { kind: 'team', id: team.id };
    }
    if (subject.kind === 'robot') {
      const parsed = typeof subject.name === 'string' ? parseRobotName(subject.name) : undefined;
      if (parsed && parsed.namespace !== namespace) throw new AccountError('invalid_request', `robot ${subject.name} belongs to another namespace than ${namespace}`);
      const robot = parsed && (await this.stores.robots.find(parsed.namespace, parsed.short));
      if (!robot) throw missing();
      return { kind: 'robot', id: robot.id };
    }
    throw new AccountError('invalid_request', `invalid subject kind ${JSON.stringify(String((subject as { kind: unknown }).kind).slice(0, 20))}; one of user, team, robot`);
  }

  private async requireOrganization(name: string) {
    const ns = isLookupName(name) ? await this.stores.namespaces.findByName(name) : undefined;
    if (!ns || ns.kind !== 'org') throw new AccountError('not_found', `organization ${String(name).slice(0, 100)} not found`);
    return ns;
  }
}

function checkRole(role: unknown): RepositoryRole {
  if (!isRepositoryRole(role)) throw new AccountError('invalid_request', `invalid role ${JSON.stringify(String(role).slice(0, 50))}; one of ${REPOSITORY_ROLES.join(', ')}`);
  return role;
}
