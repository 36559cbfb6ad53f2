/**
 * Repository permissions: a role ('read' | 'write' | 'admin') for a user, a team or a robot on one
 * repository, at most one per subject. Rows go away with their repository (foreign key) and with their
 * subject (see grant-purge.ts).
 */
import type { Expression, ExpressionBuilder, Kysely, SqlBool } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { fullRepositoryName } from './full-name.js';
import { PreparedQuery } from './prepared-query.js';
import { namedEntries } from './subject-names.js';
import type { Database } from './tables.js';

export type SubjectKind = 'user' | 'team' | 'robot';

export interface Subject {
  kind: SubjectKind;
  id: number;
}

export interface PermissionEntry extends Subject {
  /** The user's name, the team's name, or the robot's full name. */
  name: string;
  role: string;
}

/** Whose readable repositories to list. */
export type Reader =
  | { kind: 'anonymous' }
  | { kind: 'everything' }
  | { kind: 'user'; userId: number; namespaceId: number }
  | { kind: 'robot'; robotId: number };

export class PermissionStore {
  // Access decisions read these on every request: compiled once.
  private readonly roleOf: PreparedQuery<{ role: string }, { repositoryId: number; kind: string; id: number }>;
  private readonly rolesOfUser: PreparedQuery<{ role: string }, { repositoryId: number; userId: number }>;
  private readonly rolesOfRobot: PreparedQuery<{ role: string }, { repositoryId: number; robotId: number }>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {
    this.roleOf = new PreparedQuery<{ role: string }, { repositoryId: number; kind: string; id: number }>(
      (p) =>
        this.db
          .selectFrom('repository_permissions')
          .select('role')
          .where('repository_id', '=', p.repositoryId)
          .where('subject_kind', '=', p.kind)
          .where('subject_id', '=', p.id),
      ['repositoryId', 'kind', 'id'],
    );
    this.rolesOfUser = new PreparedQuery<{ role: string }, { repositoryId: number; userId: number }>(
      (p) =>
        this.db
          .selectFrom('repository_permissions as p')
          .select('p.role')
          .where('p.repository_id', '=', p.repositoryId)
          .where((eb) =>
            eb.or([
              eb.and([eb('p.subject_kind', '=', 'user'), eb('p.subject_id', '=', p.userId)]),
              eb.and([eb('p.subject_kind', '=', 'team'), eb('p.subject_id', 'in', eb.selectFrom('team_members').select('team_id').where('user_id', '=', p.userId))]),
            ]),
          ),
      ['repositoryId', 'userId'],
    );
    this.rolesOfRobot = new PreparedQuery<{ role: string }, { repositoryId: number; robotId: number }>(
      (p) =>
        this.db
          .selectFrom('repository_permissions as p')
          .select('p.role')
          .where('p.repository_id', '=', p.repositoryId)
          .where((eb) =>
            eb.or([
              eb.and([eb('p.subject_kind', '=', 'robot'), eb('p.subject_id', '=', p.robotId)]),
              eb.and([eb('p.subject_kind', '=', 'team'), eb('p.subject_id', 'in', eb.selectFrom('team_robot_members').select('team_id').where('robot_id', '=', p.robotId))]),
            ]),
          ),
      ['repositoryId', 'robotId'],
    );
  }

  /** Grants `role` to the subject on the repository, replacing any role it had there. */
  async set(repositoryId: number, subject: Subject, role: string): Promise<void> {
    await this.db
      .insertInto('repository_permissions')
      .values({ repository_id: repositoryId, subject_kind: subject.kind, subject_id: subject.id, role })
      .onConflict((oc) => oc.columns(['repository_id', 'subject_kind', 'subject_id']).doUpdateSet({ role }))
      .execute();
  }

  /** The subject's own role on the repository (not counting teams), or undefined. */
  async get(repositoryId: number, subject: Subject): Promise<string | undefined> {
    const row = await this.roleOf.first(this.db, { repositoryId, kind: subject.kind, id: subject.id });
    return row?.role;
  }

  /** Removes the subject's permission; false if it had none. */
  async delete(repositoryId: number, subject: Subject): Promise<boolean> {
    const res = await this.db
      .deleteFrom('repository_permissions')
      .where('repository_id', '=', repositoryId)
      .where('subject_kind', '=', subject.kind)
      .where('subject_id', '=', subject.id)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Every permission on the repository with its subject's name, users then teams then robots, by name. */
  async listForRepository(repositoryId: number): Promise<PermissionEntry[]> {
    const rows = await this.db.selectFrom('repository_permissions').select(['subject_kind', 'subject_id', 'role']).where('repository_id', '=', repositoryId).execute();
    return namedEntries(this.db, rows);
  }

  /** The roles the user holds on the repository directly and through every team they belong to. */
  async userRoles(repositoryId: number, userId: number): Promise<string[]> {
    const rows = await this.rolesOfUser.execute(this.db, { repositoryId, userId });
    return rows.map((r) => r.role);
  }

  /** The roles the robot holds on the repository directly and through every team it belongs to. */
  async robotRoles(repositoryId: number, robotId: number): Promise<string[]> {
    const rows = await this.rolesOfRobot.execute(this.db, { repositoryId, robotId });
    return rows.map((r) => r.role);
  }

  /**
   * Full names (`namespace/name`) of the repositories the reader can read, in byte order, after `last`,
   * at most `limit`: public repositories, plus for a user those of their own namespace, of organizations
   * where they are in an admin team, and those granted to them or their teams; for a robot, those granted
   * to it or its teams. The caller decides who is `everything` (superusers) and checks that the account is enabled.
   */
  async readableNames(reader: Reader, opts: { last?: string; limit: number }): Promise<string[]> {
    const full = this.fullName();
    let q = this.db
      .selectFrom('repositories as r')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select(full.as('full_name'))
      .orderBy(full)
      .limit(opts.limit);
    if (opts.last !== undefined) q = q.where(full, '>', opts.last);
    if (reader.kind !== 'everything') q = q.where((eb) => eb.or(readableBy(eb, reader, true)));
    return (await q.execute()).map((r) => r.full_name);
  }

  /**
   * The repositories the reader can read (as readableNames), with their details, in byte order of the
   * full name after `last`, at most `limit`; only of `namespace` when given. Without `includePublic`,
   * public repositories count only when the reader can read them otherwise (as for the catalog of
   * Quay's `GET /api/v1/repository` without `public=true`); `everything` readers see all.
   */
  async readableRepositories(reader: Reader, opts: { namespace?: string; includePublic: boolean; last?: string; limit: number }): Promise<ReadableRepository[]> {
    const full = this.fullName();
    let q = this.db
      .selectFrom('repositories as r')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select([full.as('full_name'), 'n.name as namespace', 'r.name', 'r.description', 'r.visibility', 'r.state'])
      .select((eb) => eb.selectFrom('tags as t').select((e) => e.fn.max('t.lifetime_start').as('m')).whereRef('t.repository_id', '=', 'r.id').as('last_modified'))
      .orderBy(full)
      .limit(opts.limit);
    if (opts.last !== undefined) q = q.where(full, '>', opts.last);
    if (opts.namespace !== undefined) q = q.where('n.name', '=', opts.namespace);
    if (reader.kind !== 'everything') {
      // eb.or([]) is false: an anonymous reader without public repositories reads nothing.
      q = q.where((eb) => eb.or(readableBy(eb, reader, opts.includePublic)));
    }
    const rows = await q.execute();
    return rows.map((r) => ({
      fullName: r.full_name,
      namespace: r.namespace,
      name: r.name,
      description: r.description,
      visibility: r.visibility,
      state: r.state,
      lastModified: r.last_modified === null || r.last_modified === undefined ? null : Number(r.last_modified),
    }));
  }

  private fullName() {
    return fullRepositoryName(this.dialect);
  }
}

export interface ReadableRepository {
  fullName: string;
  namespace: string;
  name: string;
  description: string | null;
  visibility: string;
  state: string;
  /** The newest tag change (ms), or null for a repository without tags. */
  lastModified: number | null;
}

/** The conditions (any of which suffices) under which `reader` reads repository `r` (see readableNames). */
// The builder is typed loosely: it runs inside queries that alias repositories as `r`.
function readableBy(eb: ExpressionBuilder<any, any>, reader: Exclude<Reader, { kind: 'everything' }>, includePublic: boolean): Expression<SqlBool>[] {
  const grants = () => eb.selectFrom('repository_permissions as p').select('p.role').whereRef('p.repository_id', '=', 'r.id');
  const alternatives: Expression<SqlBool>[] = includePublic ? [eb('r.visibility', '=', 'public')] : [];
  if (reader.kind === 'user') {
    const teams = eb.selectFrom('team_members').select('team_id').where('user_id', '=', reader.userId);
    const adminTeams = eb
      .selectFrom('teams as t')
      .innerJoin('team_members as m', 'm.team_id', 't.id')
      .select('t.id')
      .whereRef('t.namespace_id', '=', 'r.namespace_id')
      .where('t.role', '=', 'admin')
      .where('m.user_id', '=', reader.userId);
    alternatives.push(
      eb('r.namespace_id', '=', reader.namespaceId),
      eb.exists(grants().where('p.subject_kind', '=', 'user').where('p.subject_id', '=', reader.userId)),
      eb.exists(grants().where('p.subject_kind', '=', 'team').where('p.subject_id', 'in', teams)),
      eb.exists(adminTeams),
    );
  } else if (reader.kind === 'robot') {
    const teams = eb.selectFrom('team_robot_members').select('team_id').where('robot_id', '=', reader.robotId);
    alternatives.push(
      eb.exists(grants().where('p.subject_kind', '=', 'robot').where('p.subject_id', '=', reader.robotId)),
      eb.exists(grants().where('p.subject_kind', '=', 'team').where('p.subject_id', 'in', teams)),
    );
  }
  return alternatives;
}
