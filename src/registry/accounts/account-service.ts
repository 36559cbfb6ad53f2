/**
 * Users and organizations: creation with validated names, passwords, superuser and enabled flags,
 * deletion (which takes the namespace, its repositories, robots, teams and every grant with it).
 *
 * Services here do not decide *who* may call them: the caller asks PermissionService first
 * (e.g. `canAdminNamespace`) and records the change with AuditService.
 */
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { OrganizationRecord, OrganizationStore } from '../../db/organization-store.js';
import type { SessionStore } from '../../db/session-store.js';
import type { TeamStore } from '../../db/team-store.js';
import type { UserRecord, UserStore } from '../../db/user-store.js';
import type { Principal } from '../access.js';
import { AccountError } from './account-error.js';
import { isLookupName, validateEmail, validateNamespaceName } from './names.js';
import { hashPassword, MAX_PASSWORD_LENGTH, needsRehash, randomSecret, verifyPassword } from './passwords.js';

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/** A user as services hand it out: never the password hash. */
export interface UserInfo {
  id: number;
  name: string;
  email: string | null;
  enabled: boolean;
  superuser: boolean;
  /** Whether the account can log in with a password. */
  hasPassword: boolean;
  createdAt: number;
}

export type OrganizationInfo = OrganizationRecord;

export const MIN_PASSWORD_LENGTH = 8;

export interface AccountStores {
  namespaces: NamespaceStore;
  users: UserStore;
  organizations: OrganizationStore;
  teams: TeamStore;
  /** Signed-in sessions, ended when a user's password is set or the user is disabled. */
  sessions?: SessionStore;
}

export class AccountService {
  /** A hash of an unknowable password: unknown users are checked against it so that they cost the same time. */
  private readonly dummyHash: Promise<string>;

  constructor(
    private readonly stores: AccountStores,
    private readonly opts: { onPasswordSet?: (name: string) => void; userInitialize?: boolean } = {},
  ) {
    this.dummyHash = hashPassword(randomSecret());
  }

  /** Creates a user (and its namespace); conflict if the name is taken by a user or an organization. */
  async createUser(input: { name: string; password?: string | null; email?: string | null; superuser?: boolean }): Promise<UserInfo> {
    const name = validateNamespaceName(input.name);
    const email = validateEmail(input.email);
    const passwordHash = input.password === undefined || input.password === null ? null : await hashPassword(checkPassword(input.password));
    const user = await this.stores.users.create({ name, email, passwordHash, superuser: input.superuser === true });
    if (!user) throw new AccountError('conflict', `the name ${name} is already taken by a user or an organization`);
    return userInfo(user);
  }

  async getUser(name: string): Promise<UserInfo | undefined> {
    const user = isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    return user && userInfo(user);
  }

  /** Users by name, after `last`, at most `limit`. */
  async listUsers(opts: { last?: string; limit: number }): Promise<UserInfo[]> {
    return (await this.stores.users.list(opts)).map(userInfo);
  }

  /**
   * Creates the first user, a superuser, only while there is no user at all (atomically: of concurrent
   * calls, one succeeds); conflict when there are users already, not_found unless the registry was set
   * up for it (`userInitialize`: the first start then created no superuser itself).
   */
  async createFirstUser(input: { name: string; password: string; email?: string | null }): Promise<UserInfo> {
    if (!this.opts.userInitialize) {
      throw new AccountError('not_found', 'first-user initialization is off: the first start created the superuser (set auth.user_initialize to create it through this endpoint instead)');
    }
    const name = validateNamespaceName(input.name);
    const email = validateEmail(input.email);
    const passwordHash = await hashPassword(checkPassword(input.password));
    const user = await this.stores.users.createFirst({ name, email, passwordHash, superuser: true });
    if (!user) throw new AccountError('conflict', 'the registry has users already; the first user can be created only while it has none');
    return userInfo(user);
  }

  countUsers(): Promise<number> {
    return this.stores.users.count();
  }

  /**
   * Sets a new password (null: the account can no longer log in with one) and ends the user's sessions;
   * `onPasswordSet` hears of it once it is stored.
   */
  async setPassword(name: string, password: string | null): Promise<void> {
    const user = await this.requireUser(name);
    await this.stores.users.setPasswordHash(user.id, password === null ? null : await hashPassword(checkPassword(password)));
    // Whoever knew the old password may have signed in with it.
    await this.stores.sessions?.deleteForUser(user.id);
    this.opts.onPasswordSet?.(user.name);
  }

  async setSuperuser(name: string, superuser: boolean): Promise<void> {
    const user = await this.requireUser(name);
    await this.stores.users.setSuperuser(user.id, superuser);
  }

  /** Disables or re-enables a user: a disabled user, and every robot of their namespace, can do nothing; disabling ends the user's sessions. */
  async setEnabled(name: string, enabled: boolean): Promise<void> {
    const user = await this.requireUser(name);
    await this.stores.namespaces.setEnabled(user.namespaceId, enabled);
    // Re-enabling the user does not bring their sessions back.
    if (!enabled) await this.stores.sessions?.deleteForUser(user.id);
  }

  async setEmail(name: string, email: string | null): Promise<void> {
    const user = await this.requireUser(name);
    await this.stores.namespaces.setEmail(user.namespaceId, validateEmail(email));
  }

  /**
   * Deletes the user with their namespace: repositories, robots, API tokens, team memberships and every
   * permission granted to them, at once. Refused (conflict) while they are the only administrator of an
   * organization.
   */
  async deleteUser(name: string): Promise<void> {
    const user = await this.requireUser(name);
    const orgs = await this.stores.teams.soleAdminOrganizations(user.id);
    if (orgs.length) throw new AccountError('conflict', `${name} is the only administrator of ${orgs.join(', ')}; add another administrator or delete the organization first`);
    await this.stores.namespaces.delete(user.namespaceId);
  }

  /**
   * The user if the password is theirs and they are enabled, else undefined. Takes the same time whether
   * or not the user exists, has a password, or is disabled (one scrypt either way).
   */
  async verifyPassword(name: string, password: string): Promise<UserPrincipal | undefined> {
    const user = isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    const hash = user?.passwordHash ?? (await this.dummyHash);
    const ok = await verifyPassword(typeof password === 'string' ? password : '', hash);
    if (!ok || !user?.passwordHash || !user.enabled) return undefined;
    if (needsRehash(user.passwordHash)) await this.stores.users.setPasswordHash(user.id, await hashPassword(password));
    return { kind: 'user', id: user.id, name: user.name, superuser: user.superuser };
  }

  /**
   * Creates an organization whose `owners` team (role admin) holds the creator; conflict if the name is
   * taken, not_found if the creator does not exist or is disabled.
   */
  async createOrganization(input: { name: string; email?: string | null; creator: string }): Promise<OrganizationInfo> {
    const name = validateNamespaceName(input.name);
    const email = validateEmail(input.email);
    const creator = await this.stores.users.findByName(input.creator);
    if (!creator || !creator.enabled) throw new AccountError('not_found', `user ${input.creator} not found`);
    const org = await this.stores.organizations.create({ name, email, creatorUserId: creator.id });
    if (!org) throw new AccountError('conflict', `the name ${name} is already taken by a user or an organization`);
    return org;
  }

  async getOrganization(name: string): Promise<OrganizationInfo | undefined> {
    return isLookupName(name) ? this.stores.organizations.find(name) : undefined;
  }

  listOrganizations(opts: { last?: string; limit: number }): Promise<OrganizationInfo[]> {
    return this.stores.organizations.list(opts);
  }

  /** Organizations in which the user is on at least one team. */
  async organizationsOf(userName: string): Promise<OrganizationInfo[]> {
    const user = await this.requireUser(userName);
    return this.stores.organizations.listForMember(user.id);
  }

  async updateOrganization(name: string, changes: { email?: string | null }): Promise<OrganizationInfo> {
    const org = await this.requireOrganization(name);
    if (changes.email !== undefined) await this.stores.organizations.setEmail(org.id, validateEmail(changes.email));
    return (await this.stores.organizations.findById(org.id))!;
  }

  /**
   * Renames the organization; its repositories (and so their full names), teams, robots (`new+short`)
   * and grants follow. Conflict if the new name is taken by a user or an organization.
   */
  async renameOrganization(name: string, newName: string): Promise<OrganizationInfo> {
    const org = await this.requireOrganization(name);
    validateNamespaceName(newName);
    if (newName === org.name) return org;
    const res = await this.stores.organizations.rename(org.id, newName);
    if (res === 'taken') throw new AccountError('conflict', `the name ${newName} is already taken by a user or an organization`);
    if (res === 'not_found') throw new AccountError('not_found', `organization ${name} not found`);
    return (await this.stores.organizations.findById(org.id))!;
  }

  /** Deletes the organization with its repositories, teams, robots and every grant to them. */
  async deleteOrganization(name: string): Promise<void> {
    const org = await this.requireOrganization(name);
    await this.stores.namespaces.delete(org.id);
  }

  private async requireUser(name: string): Promise<UserRecord> {
    const user = isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    if (!user) throw new AccountError('not_found', `user ${String(name).slice(0, 100)} not found`);
    return user;
  }

  private async requireOrganization(name: string): Promise<OrganizationRecord> {
    const org = isLookupName(name) ? await this.stores.organizations.find(name) : undefined;
    if (!org) throw new AccountError('not_found', `organization ${String(name).slice(0, 100)} not found`);
    return org;
  }
}

function checkPassword(password: string): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw new AccountError('invalid_request', `a password must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`);
  }
  return password;
}

function userInfo(u: UserRecord): UserInfo {
  return { id: u.id, name: u.name, email: u.email, enabled: u.enabled, superuser: u.superuser, hasPassword: u.passwordHash !== null, createdAt: u.createdAt };
}
