/**
 * Organizations: a namespace of kind 'org' with teams. Creating one also creates its `owners` team
 * (role admin) with the creator as its only member, as Quay does, so an organization always starts with
 * an administrator.
 */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export interface OrganizationRecord {
  /** The namespace id. */
  id: number;
  name: string;
  email: string | null;
  enabled: boolean;
  createdAt: number;
}

export const OWNERS_TEAM = 'owners';

export class OrganizationStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  private select() {
    return this.db.selectFrom('namespaces').select(['id', 'name', 'email', 'enabled', 'created_at']).where('kind', '=', 'org');
  }

  /**
   * Creates the organization, its `owners` team (role admin) and the creator's membership in one
   * transaction; undefined when the name is taken by a user or an organization.
   */
  async create(org: { name: string; email: string | null; creatorUserId: number }): Promise<OrganizationRecord | undefined> {
    const now = Date.now();
    try {
      await this.db.transaction().execute(async (tx) => {
        const ns = await tx
          .insertInto('namespaces')
          .values({ name: org.name, kind: 'org', email: org.email, enabled: 1, created_at: now })
          .returning('id')
          .executeTakeFirstOrThrow();
        const team = await tx
          .insertInto('teams')
          .values({ namespace_id: ns.id, name: OWNERS_TEAM, role: 'admin', description: 'Administrators of the organization', created_at: now })
          .returning('id')
          .executeTakeFirstOrThrow();
        await tx.insertInto('team_members').values({ team_id: team.id, user_id: org.creatorUserId }).execute();
      });
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
    return this.find(org.name);
  }

  async find(name: string): Promise<OrganizationRecord | undefined> {
    const row = await this.select().where('name', '=', name).executeTakeFirst();
    return row && toRecord(row);
  }

  async findById(id: number): Promise<OrganizationRecord | undefined> {
    const row = await this.select().where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Organizations by name in byte order, after `last`, at most `limit`. */
  async list(opts: { last?: string; limit: number }): Promise<OrganizationRecord[]> {
    let q = this.select().orderBy('name').limit(opts.limit);
    if (opts.last !== undefined) q = q.where('name', '>', opts.last);
    return (await q.execute()).map(toRecord);
  }

  /** Organizations in which the user belongs to at least one team, by name. */
  async listForMember(userId: number): Promise<OrganizationRecord[]> {
    const rows = await this.select()
      .where((eb) =>
        eb.exists(
          eb
            .selectFrom('teams as t')
            .innerJoin('team_members as m', 'm.team_id', 't.id')
            .select('t.id')
            .whereRef('t.namespace_id', '=', 'namespaces.id')
            .where('m.user_id', '=', userId),
        ),
      )
      .orderBy('name')
      .execute();
    return rows.map(toRecord);
  }

  async setEmail(id: number, email: string | null): Promise<boolean> {
    const res = await this.db.updateTable('namespaces').set({ email }).where('id', '=', id).where('kind', '=', 'org').executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * Renames the organization: its repositories, robots and teams follow (they hang on its id). 'taken'
   * when a user or organization already has the name, 'not_found' when the organization is gone.
   */
  async rename(id: number, name: string): Promise<'ok' | 'taken' | 'not_found'> {
    try {
      const res = await this.db.updateTable('namespaces').set({ name }).where('id', '=', id).where('kind', '=', 'org').executeTakeFirst();
      return Number(res.numUpdatedRows) > 0 ? 'ok' : 'not_found';
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return 'taken';
      throw err;
    }
  }
}

function toRecord(row: { id: number; name: string; email: string | null; enabled: number; created_at: number }): OrganizationRecord {
  return { id: row.id, name: row.name, email: row.email, enabled: row.enabled === 1, createdAt: row.created_at };
}
