/**
 * Teams of an organization and their members. Every change that could leave an organization without
 * an administrator (removing the last admin, demoting or deleting the last admin team) is refused
 * inside its own transaction, with the organization's row locked on PostgreSQL so that two concurrent
 * removals cannot both pass the check. An organization that has no administrator to begin with (one
 * created by pushes before accounts existed) is not held to this.
 */
import type { Kysely, Transaction } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { purgeGrants } from './grant-purge.js';
import { PreparedQuery } from './prepared-query.js';
import type { Database } from './tables.js';

export interface TeamRecord {
  id: number;
  namespaceId: number;
  name: string;
  /** 'member' | 'creator' | 'admin' */
  role: string;
  description: string | null;
  createdAt: number;
}

export type GuardedResult = 'ok' | 'not_found' | 'last_admin';

class LastAdmin extends Error {}

export class TeamStore {
  /** Access decisions on organization repositories read the user's team roles on every request: compiled once. */
  private readonly teamRoles: PreparedQuery<{ role: string }, { namespaceId: number; userId: number }>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {
    this.teamRoles = new PreparedQuery<{ role: string }, { namespaceId: number; userId: number }>(
      (p) =>
        this.db
          .selectFrom('teams as t')
          .innerJoin('team_members as m', 'm.team_id', 't.id')
          .select('t.role')
          .where('t.namespace_id', '=', p.namespaceId)
          .where('m.user_id', '=', p.userId),
      ['namespaceId', 'userId'],
    );
  }

  private select(db: Kysely<Database> = this.db) {
    return db.selectFrom('teams').select(['id', 'namespace_id', 'name', 'role', 'description', 'created_at']);
  }

  /** Creates a team; undefined when the organization already has a team of that name. */
  async create(namespaceId: number, team: { name: string; role: string; description: string | null }): Promise<TeamRecord | undefined> {
    try {
      await this.db
        .insertInto('teams')
        .values({ namespace_id: namespaceId, name: team.name, role: team.role, description: team.description, created_at: Date.now() })
        .execute();
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
    return this.find(namespaceId, team.name);
  }

  async find(namespaceId: number, name: string): Promise<TeamRecord | undefined> {
    const row = await this.select().where('namespace_id', '=', namespaceId).where('name', '=', name).executeTakeFirst();
    return row && toRecord(row);
  }

  async findById(id: number): Promise<TeamRecord | undefined> {
    const row = await this.select().where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  /** The organization's teams by name, with their member counts. */
  async list(namespaceId: number): Promise<Array<TeamRecord & { memberCount: number }>> {
    const rows = await this.db
      .selectFrom('teams as t')
      .leftJoin('team_members as m', 'm.team_id', 't.id')
      .select(['t.id', 't.namespace_id', 't.name', 't.role', 't.description', 't.created_at'])
      .select((eb) => eb.fn.count<number>('m.user_id').as('member_count'))
      .where('t.namespace_id', '=', namespaceId)
      .groupBy(['t.id', 't.namespace_id', 't.name', 't.role', 't.description', 't.created_at'])
      .orderBy('t.name')
      .execute();
    return rows.map((r) => ({ ...toRecord(r), memberCount: Number(r.member_count) }));
  }

  /** Changes the role and/or description; refuses to demote the organization's last admin team. */
  async update(id: number, changes: { role?: string; description?: string | null }): Promise<GuardedResult> {
    return this.guarded(id, async (tx) => {
      const set: { role?: string; description?: string | null } = {};
      if (changes.role !== undefined) set.role = changes.role;
      if (changes.description !== undefined) set.description = changes.description;
      if (Object.keys(set).length) await tx.updateTable('teams').set(set).where('id', '=', id).execute();
    });
  }

  /** Deletes the team, its memberships and every permission granted to it; refuses to delete the last admin team. */
  async delete(id: number): Promise<GuardedResult> {
    return this.guarded(id, async (tx) => {
      await purgeGrants(tx, 'team', [id]);
      await tx.deleteFrom('teams').where('id', '=', id).execute();
    });
  }

  /** Adds the user to the team; false if they were a member already. */
  async addMember(teamId: number, userId: number): Promise<boolean> {
    const res = await this.db
      .insertInto('team_members')
      .values({ team_id: teamId, user_id: userId })
      .onConflict((oc) => oc.columns(['team_id', 'user_id']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /** Removes the user from the team ('not_found' if not a member); refuses to remove the organization's last admin. */
  async removeMember(teamId: number, userId: number): Promise<GuardedResult> {
    return this.guarded(teamId, async (tx) => {
      const res = await tx.deleteFrom('team_members').where('team_id', '=', teamId).where('user_id', '=', userId).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }

  /** Adds the robot to the team; false if it was a member already. */
  async addRobotMember(teamId: number, robotId: number): Promise<boolean> {
    const res = await this.db
      .insertInto('team_robot_members')
      .values({ team_id: teamId, robot_id: robotId })
      .onConflict((oc) => oc.columns(['team_id', 'robot_id']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /** Removes the robot from the team; false if it was not a member. */
  async removeRobotMember(teamId: number, robotId: number): Promise<boolean> {
    const res = await this.db.deleteFrom('team_robot_members').where('team_id', '=', teamId).where('robot_id', '=', robotId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Robot members of the team by full name (`namespace+short`). */
  async robotMembers(teamId: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('team_robot_members as m')
      .innerJoin('robots as r', 'r.id', 'm.robot_id')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select(['r.name', 'n.name as ns'])
      .where('m.team_id', '=', teamId)
      .orderBy('r.name')
      .execute();
    return rows.map((r) => `${r.ns}+${r.name}`);
  }

  /** Members of the team by name. */
  async members(teamId: number): Promise<Array<{ userId: number; name: string }>> {
    const rows = await this.db
      .selectFrom('team_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .innerJoin('namespaces as n', 'n.id', 'u.namespace_id')
      .select(['u.id', 'n.name'])
      .where('m.team_id', '=', teamId)
      .orderBy('n.name')
      .execute();
    return rows.map((r) => ({ userId: r.id, name: r.name }));
  }

  /** The teams the user belongs to, with their organization's name, by organization then team. */
  async teamsOfUser(userId: number): Promise<Array<TeamRecord & { organization: string }>> {
    const rows = await this.db
      .selectFrom('teams as t')
      .innerJoin('team_members as m', 'm.team_id', 't.id')
      .innerJoin('namespaces as n', 'n.id', 't.namespace_id')
      .select(['t.id', 't.namespace_id', 't.name', 't.role', 't.description', 't.created_at', 'n.name as organization'])
      .where('m.user_id', '=', userId)
      .orderBy('n.name')
      .orderBy('t.name')
      .execute();
    return rows.map((r) => ({ ...toRecord(r), organization: r.organization }));
  }

  /** The roles of the teams the user belongs to in the organization (empty if none). */
  async rolesIn(namespaceId: number, userId: number): Promise<string[]> {
    const rows = await this.teamRoles.execute(this.db, { namespaceId, userId });
    return rows.map((r) => r.role);
  }

  /** Names of the organizations whose only administrator is this user. */
  async soleAdminOrganizations(userId: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('teams as t')
      .innerJoin('team_members as m', 'm.team_id', 't.id')
      .innerJoin('namespaces as n', 'n.id', 't.namespace_id')
      .select('n.name')
      .where('t.role', '=', 'admin')
      .where('t.namespace_id', 'in', (eb) =>
        eb
          .selectFrom('teams as t2')
          .innerJoin('team_members as m2', 'm2.team_id', 't2.id')
          .select('t2.namespace_id')
          .where('t2.role', '=', 'admin')
          .where('m2.user_id', '=', userId),
      )
      .groupBy('n.name')
      .having((eb) => eb.fn.count('m.user_id').distinct(), '=', 1)
      .orderBy('n.name')
      .execute();
    return rows.map((r) => r.name);
  }

  /**
   * Runs `change` on the team in a transaction and rolls it back if the organization had administrators
   * before and has none after. `change` may return false to report that there was nothing to change.
   */
  private async guarded(teamId: number, change: (tx: Transaction<Database>) => Promise<boolean | void>): Promise<GuardedResult> {
    try {
      return await this.db.transaction().execute(async (tx) => {
        const team = await this.select(tx).where('id', '=', teamId).executeTakeFirst();
        if (!team) return 'not_found';
        if (this.dialect.supportsRowLocks) await tx.selectFrom('namespaces').select('id').where('id', '=', team.namespace_id).forUpdate().execute();
        const before = await countAdmins(tx, team.namespace_id);
        if ((await change(tx)) === false) return 'not_found';
        if (before > 0 && (await countAdmins(tx, team.namespace_id)) === 0) throw new LastAdmin();
        return 'ok';
      });
    } catch (err) {
      if (err instanceof LastAdmin) return 'last_admin';
      throw err;
    }
  }
}

async function countAdmins(tx: Kysely<Database>, namespaceId: number): Promise<number> {
  const row = await tx
    .selectFrom('teams as t')
    .innerJoin('team_members as m', 'm.team_id', 't.id')
    .select((eb) => eb.fn.count<number>('m.user_id').distinct().as('n'))
    .where('t.namespace_id', '=', namespaceId)
    .where('t.role', '=', 'admin')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function toRecord(row: { id: number; namespace_id: number; name: string; role: string; description: string | null; created_at: number }): TeamRecord {
  return { id: row.id, namespaceId: row.namespace_id, name: row.name, role: row.role, description: row.description, createdAt: row.created_at };
}
