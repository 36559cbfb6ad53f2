/**
 * Teams of organizations and their members. An organization always keeps at least one administrator:
 * removing the last one, demoting or deleting the last admin team is refused (conflict). Deleting a team
 * deletes every permission granted to it in the same transaction, so its members lose that access at once.
 */
import type { OrganizationRecord, OrganizationStore } from '../../db/organization-store.js';
import type { RobotStore } from '../../db/robot-store.js';
import type { GuardedResult, TeamRecord, TeamStore } from '../../db/team-store.js';
import type { UserStore } from '../../db/user-store.js';
import { AccountError } from './account-error.js';
import { isLookupName, parseRobotName, validateTeamName } from './names.js';
import { isTeamRole, TEAM_ROLES, type TeamRole } from './roles.js';

export interface TeamInfo {
  id: number;
  organization: string;
  name: string;
  role: TeamRole;
  description: string | null;
  createdAt: number;
}

export interface TeamStores {
  organizations: OrganizationStore;
  teams: TeamStore;
  users: UserStore;
  robots: RobotStore;
}

/** A team member: a user, or a robot (`namespace+short`) of the team's organization. */
export interface TeamMember {
  name: string;
  isRobot: boolean;
}

const MAX_DESCRIPTION = 4096;

export class TeamService {
  constructor(private readonly stores: TeamStores) {}

  /** Creates a team in the organization; conflict if it has one of that name already. */
  async createTeam(organization: string, name: string, opts: { role: TeamRole; description?: string | null }): Promise<TeamInfo> {
    const org = await this.requireOrganization(organization);
    validateTeamName(name);
    const team = await this.stores.teams.create(org.id, { name, role: checkRole(opts.role), description: checkDescription(opts.description) });
    if (!team) throw new AccountError('conflict', `organization ${org.name} already has a team named ${name}`);
    return teamInfo(team, org.name);
  }

  async getTeam(organization: string, name: string): Promise<TeamInfo | undefined> {
    const org = isLookupName(organization) ? await this.stores.organizations.find(organization) : undefined;
    const team = org && (await this.stores.teams.find(org.id, name));
    return team && teamInfo(team, org.name);
  }

  /** The organization's teams by name, with member counts. */
  async listTeams(organization: string): Promise<Array<TeamInfo & { memberCount: number }>> {
    const org = await this.requireOrganization(organization);
    return (await this.stores.teams.list(org.id)).map((t) => ({ ...teamInfo(t, org.name), memberCount: t.memberCount }));
  }

  /** Changes role and/or description; conflict if that would leave the organization without an administrator. */
  async updateTeam(organization: string, name: string, changes: { role?: TeamRole; description?: string | null }): Promise<TeamInfo> {
    const { org, team } = await this.requireTeam(organization, name);
    const role = changes.role === undefined ? undefined : checkRole(changes.role);
    const description = changes.description === undefined ? undefined : checkDescription(changes.description);
    this.check(await this.stores.teams.update(team.id, { role, description }), org, `demoting team ${name}`);
    return teamInfo((await this.stores.teams.findById(team.id))!, org.name);
  }

  /** Deletes the team, its memberships and its permissions; conflict if it is the last admin team. */
  async deleteTeam(organization: string, name: string): Promise<void> {
    const { org, team } = await this.requireTeam(organization, name);
    this.check(await this.stores.teams.delete(team.id), org, `deleting team ${name}`);
  }

  /**
   * Adds a user, or a robot of the organization (`org+short`: it gets the team's repository permissions,
   * not its organization role), to the team; false if they were a member already.
   */
  async addMember(organization: string, teamName: string, userName: string): Promise<boolean> {
    const { org, team } = await this.requireTeam(organization, teamName);
    if (typeof userName === 'string' && userName.includes('+')) return this.stores.teams.addRobotMember(team.id, (await this.requireRobot(org, userName)).id);
    const user = await this.requireUser(userName);
    return this.stores.teams.addMember(team.id, user.id);
  }

  /** Removes a user or robot from the team; not_found if not a member, conflict if they are the last administrator. */
  async removeMember(organization: string, teamName: string, userName: string): Promise<void> {
    const { org, team } = await this.requireTeam(organization, teamName);
    if (typeof userName === 'string' && userName.includes('+')) {
      const robot = await this.requireRobot(org, userName);
      if (!(await this.stores.teams.removeRobotMember(team.id, robot.id))) throw new AccountError('not_found', `${userName} is not a member of team ${teamName}`);
      return;
    }
    const user = await this.requireUser(userName);
    const res = await this.stores.teams.removeMember(team.id, user.id);
    if (res === 'not_found') throw new AccountError('not_found', `${userName} is not a member of team ${teamName}`);
    this.check(res, org, `removing ${userName}`);
  }

  /** Names of the team's user members, in byte order. */
  async listMembers(organization: string, teamName: string): Promise<string[]> {
    const { team } = await this.requireTeam(organization, teamName);
    return (await this.stores.teams.members(team.id)).map((m) => m.name);
  }

  /** The team's users, then its robots, each in byte order. */
  async listAllMembers(organization: string, teamName: string): Promise<TeamMember[]> {
    const { team } = await this.requireTeam(organization, teamName);
    const [users, robots] = await Promise.all([this.stores.teams.members(team.id), this.stores.teams.robotMembers(team.id)]);
    return [...users.map((m) => ({ name: m.name, isRobot: false })), ...robots.map((name) => ({ name, isRobot: true }))];
  }

  /** Every team the user belongs to, across organizations. */
  async teamsOf(userName: string): Promise<TeamInfo[]> {
    const user = await this.requireUser(userName);
    return (await this.stores.teams.teamsOfUser(user.id)).map((t) => teamInfo(t, t.organization));
  }

  private check(res: GuardedResult, org: OrganizationRecord, what: string): void {
    if (res === 'last_admin') throw new AccountError('conflict', `${what} would leave organization ${org.name} without an administrator`);
    if (res === 'not_found') throw new AccountError('not_found', `team not found in organization ${org.name}`);
  }

  private async requireOrganization(name: string): Promise<OrganizationRecord> {
    const org = isLookupName(name) ? await this.stores.organizations.find(name) : undefined;
    if (!org) throw new AccountError('not_found', `organization ${String(name).slice(0, 100)} not found`);
    return org;
  }

  private async requireTeam(organization: string, name: string): Promise<{ org: OrganizationRecord; team: TeamRecord }> {
    const org = await this.requireOrganization(organization);
    const team = typeof name === 'string' ? await this.stores.teams.find(org.id, name) : undefined;
    if (!team) throw new AccountError('not_found', `team ${String(name).slice(0, 100)} not found in organization ${org.name}`);
    return { org, team };
  }

  /** A robot of the organization by full name; a robot of another namespace is invalid, an unknown one not_found. */
  private async requireRobot(org: OrganizationRecord, fullName: string) {
    const parsed = parseRobotName(fullName);
    if (parsed && parsed.namespace !== org.name) throw new AccountError('invalid_request', `robot ${fullName.slice(0, 300)} belongs to another namespace than ${org.name}`);
    const robot = parsed && (await this.stores.robots.find(parsed.namespace, parsed.short));
    if (!robot) throw new AccountError('not_found', `robot ${String(fullName).slice(0, 300)} not found`);
    return robot;
  }

  private async requireUser(name: string) {
    const user = isLookupName(name) ? await this.stores.users.findByName(name) : undefined;
    if (!user) throw new AccountError('not_found', `user ${String(name).slice(0, 100)} not found`);
    return user;
  }
}

function checkRole(role: unknown): TeamRole {
  if (!isTeamRole(role)) throw new AccountError('invalid_request', `invalid team role ${JSON.stringify(String(role).slice(0, 50))}; one of ${TEAM_ROLES.join(', ')}`);
  return role;
}

function checkDescription(description: string | null | undefined): string | null {
  if (description === undefined || description === null) return null;
  if (typeof description !== 'string' || description.length > MAX_DESCRIPTION) throw new AccountError('invalid_request', `a description is at most ${MAX_DESCRIPTION} characters`);
  return description;
}

function teamInfo(t: TeamRecord, organization: string): TeamInfo {
  return { id: t.id, organization, name: t.name, role: t.role as TeamRole, description: t.description, createdAt: t.createdAt };
}
