/**
 * Prefix search over account names, for Quay's entity lookup (`GET /api/v1/entities/{prefix}`): users,
 * the robots of one namespace, the teams of one organization. Prefixes are compared as exact byte
 * prefixes (`substr`, never LIKE, so `_` and `%` are not wildcards); an exact match always comes first.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './tables.js';

export interface MatchingAccount {
  /** A user's name, or a robot's full name `namespace+short`. */
  name: string;
  isRobot: boolean;
  /** With an organization: whether the user is on one of its teams (robots: whether it is the organization's). */
  isOrgMember?: boolean;
}

const prefixOf = (column: string, prefix: string) => sql<boolean>`substr(${sql.ref(column)}, 1, ${prefix.length}) = ${prefix}`;

export class EntitySearchStore {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Users whose name starts with `prefix` and, with `robotNamespace`, that namespace's robots whose full
   * name starts with `namespace+prefix`; robots first, then users, each by name with an exact match
   * first; at most `limit` of each. With `organizationId`, each result says whether it is a member.
   */
  async matchingAccounts(prefix: string, opts: { robotNamespace?: { id: number; name: string }; organizationId?: number; limit: number }): Promise<MatchingAccount[]> {
    const users = await this.db
      .selectFrom('users as u')
      .innerJoin('namespaces as n', 'n.id', 'u.namespace_id')
      .select(['u.id', 'n.name'])
      .where(prefixOf('n.name', prefix))
      .orderBy(sql`case when ${sql.ref('n.name')} = ${prefix} then 0 else 1 end`)
      .orderBy('n.name')
      .limit(opts.limit)
      .execute();
    const members = new Set<number>();
    if (opts.organizationId !== undefined && users.length) {
      const rows = await this.db
        .selectFrom('team_members as m')
        .innerJoin('teams as t', 't.id', 'm.team_id')
        .select('m.user_id')
        .where('t.namespace_id', '=', opts.organizationId)
        .where(
          'm.user_id',
          'in',
          users.map((u) => u.id),
        )
        .execute();
      for (const r of rows) members.add(r.user_id);
    }
    let robots: MatchingAccount[] = [];
    if (opts.robotNamespace) {
      const rows = await this.db
        .selectFrom('robots')
        .select('name')
        .where('namespace_id', '=', opts.robotNamespace.id)
        .where(prefixOf('name', prefix))
        .orderBy(sql`case when ${sql.ref('name')} = ${prefix} then 0 else 1 end`)
        .orderBy('name')
        .limit(opts.limit)
        .execute();
      robots = rows.map((r) => ({ name: `${opts.robotNamespace!.name}+${r.name}`, isRobot: true, ...(opts.organizationId !== undefined ? { isOrgMember: true } : {}) }));
    }
    return [
      ...robots,
      ...users.map((u) => ({ name: u.name, isRobot: false, ...(opts.organizationId !== undefined ? { isOrgMember: members.has(u.id) } : {}) })),
    ];
  }

  /** The organization's teams whose name starts with `prefix`, by name (exact match first), at most `limit`. */
  async matchingTeams(organizationId: number, prefix: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('teams')
      .select('name')
      .where('namespace_id', '=', organizationId)
      .where(prefixOf('name', prefix))
      .orderBy(sql`case when ${sql.ref('name')} = ${prefix} then 0 else 1 end`)
      .orderBy('name')
      .limit(limit)
      .execute();
    return rows.map((r) => r.name);
  }
}
