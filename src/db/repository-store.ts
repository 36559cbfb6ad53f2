/** Namespaces and repositories. */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { fullRepositoryName } from './full-name.js';
import { PreparedQuery } from './prepared-query.js';
import { QuotaAccounting } from './quota-accounting.js';
import type { Database } from './tables.js';

export interface RepositoryRef {
  id: number;
  namespace: string;
  name: string;
}

/** What access decisions need to know about a repository. */
export interface RepositoryDetails extends RepositoryRef {
  namespaceId: number;
  /** 'user' | 'org' */
  namespaceKind: string;
  /** 'private' | 'public' */
  visibility: string;
  /** 'NORMAL' | 'READ_ONLY' | 'MIRROR' */
  state: string;
  /** The robot whose writes a MIRROR repository accepts. */
  mirrorRobotId: number | null;
  description: string | null;
  createdAt: number;
}

interface DetailsRow {
  id: number;
  namespace_id: number;
  kind: string;
  visibility: string;
  state: string;
  mirror_robot_id: number | null;
  description: string | null;
  created_at: number;
}

export class RepositoryStore {
  // Every access decision reads the repository's details, and blob requests find it by name: compiled once.
  private readonly byName: PreparedQuery<{ id: number }, { namespace: string; name: string }>;
  private readonly detailsByName: PreparedQuery<DetailsRow, { namespace: string; name: string }>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {
    const byName = (p: { namespace: string; name: string }) =>
      this.db.selectFrom('repositories as r').innerJoin('namespaces as n', 'n.id', 'r.namespace_id').where('n.name', '=', p.namespace).where('r.name', '=', p.name);
    this.byName = new PreparedQuery<{ id: number }, { namespace: string; name: string }>((p) => byName(p).select(['r.id']), ['namespace', 'name']);
    this.detailsByName = new PreparedQuery<DetailsRow, { namespace: string; name: string }>(
      (p) => byName(p).select(['r.id', 'r.namespace_id', 'n.kind', 'r.visibility', 'r.state', 'r.mirror_robot_id', 'r.description', 'r.created_at']),
      ['namespace', 'name'],
    );
  }

  /** The repository `namespace/name`, or undefined. */
  async find(namespace: string, name: string): Promise<RepositoryRef | undefined> {
    const row = await this.byName.first(this.db, { namespace, name });
    return row ? { id: row.id, namespace, name } : undefined;
  }

  /** Finds or creates the repository (and its namespace); safe under concurrent callers. */
  async ensure(namespace: string, name: string): Promise<RepositoryRef> {
    const existing = await this.find(namespace, name);
    if (existing) return existing;
    const now = Date.now();
    await this.db
      .insertInto('namespaces')
      .values({ name: namespace, created_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const ns = await this.db.selectFrom('namespaces').select('id').where('name', '=', namespace).executeTakeFirstOrThrow();
    await this.db
      .insertInto('repositories')
      .values({ namespace_id: ns.id, name, created_at: now })
      .onConflict((oc) => oc.columns(['namespace_id', 'name']).doNothing())
      .execute();
    const repo = await this.find(namespace, name);
    if (!repo) throw new Error(`repository ${namespace}/${name} vanished while being created`);
    return repo;
  }

  /** The repository with its namespace, visibility, state and mirror robot, or undefined. */
  async findDetails(namespace: string, name: string): Promise<RepositoryDetails | undefined> {
    const row = await this.detailsByName.first(this.db, { namespace, name });
    if (!row) return undefined;
    return {
      id: row.id,
      namespace,
      name,
      namespaceId: row.namespace_id,
      namespaceKind: row.kind,
      visibility: row.visibility,
      state: row.state,
      mirrorRobotId: row.mirror_robot_id,
      description: row.description,
      createdAt: row.created_at,
    };
  }

  /**
   * Creates a repository in an existing namespace and, in the same transaction, copies the namespace's
   * default permissions onto it, then those for repositories a user `creator` creates, and grants
   * `creator` admin (over any default for the same subject).
   * When the repository exists already (also when a concurrent caller created it first) nothing changes
   * and `created` is false. Undefined when the namespace does not exist.
   */
  async create(
    namespace: string,
    name: string,
    opts: { visibility: string; description?: string | null; creator?: { kind: 'user' | 'robot'; id: number } },
  ): Promise<{ repository: RepositoryDetails; created: boolean } | undefined> {
    const ns = await this.db.selectFrom('namespaces').select('id').where('name', '=', namespace).executeTakeFirst();
    if (!ns) return undefined;
    try {
      await this.db.transaction().execute(async (tx) => {
        const repo = await tx
          .insertInto('repositories')
          .values({ namespace_id: ns.id, name, visibility: opts.visibility, description: opts.description ?? null, created_at: Date.now() })
          .returning('id')
          .executeTakeFirstOrThrow();
        await tx
          .insertInto('repository_permissions')
          .columns(['repository_id', 'subject_kind', 'subject_id', 'role'])
          .expression((eb) =>
            eb
              .selectFrom('default_permissions')
              .select([eb.val(repo.id).as('repository_id'), 'subject_kind', 'subject_id', 'role'])
              .where('namespace_id', '=', ns.id),
          )
          .execute();
        if (opts.creator?.kind === 'user') {
          // Defaults for what this user creates override the organization's general ones.
          const rows = await tx
            .selectFrom('creator_default_permissions')
            .select(['subject_kind', 'subject_id', 'role'])
            .where('namespace_id', '=', ns.id)
            .where('creator_user_id', '=', opts.creator.id)
            .execute();
          for (const r of rows) {
            await tx
              .insertInto('repository_permissions')
              .values({ repository_id: repo.id, subject_kind: r.subject_kind, subject_id: r.subject_id, role: r.role })
              .onConflict((oc) => oc.columns(['repository_id', 'subject_kind', 'subject_id']).doUpdateSet({ role: r.role }))
              .execute();
          }
        }
        if (opts.creator) {
          const c = opts.creator;
          await tx
            .insertInto('repository_permissions')
            .values({ repository_id: repo.id, subject_kind: c.kind, subject_id: c.id, role: 'admin' })
            .onConflict((oc) => oc.columns(['repository_id', 'subject_kind', 'subject_id']).doUpdateSet({ role: 'admin' }))
            .execute();
        }
      });
    } catch (err) {
      if (!this.dialect.isUniqueViolation(err)) throw err;
      const existing = await this.findDetails(namespace, name);
      if (!existing) throw err;
      return { repository: existing, created: false };
    }
    const repository = await this.findDetails(namespace, name);
    if (!repository) throw new Error(`repository ${namespace}/${name} vanished while being created`);
    return { repository, created: true };
  }

  /** Sets 'private' or 'public'; false if the repository does not exist. */
  async setVisibility(id: number, visibility: string): Promise<boolean> {
    const res = await this.db.updateTable('repositories').set({ visibility }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Sets the description (null clears it); false if the repository does not exist. */
  async setDescription(id: number, description: string | null): Promise<boolean> {
    const res = await this.db.updateTable('repositories').set({ description }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Sets 'NORMAL', 'READ_ONLY' or 'MIRROR'; false if the repository does not exist. */
  async setState(id: number, state: string): Promise<boolean> {
    const res = await this.db.updateTable('repositories').set({ state }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Sets (or clears, with null) the robot whose writes a MIRROR repository accepts. */
  async setMirrorRobot(id: number, robotId: number | null): Promise<boolean> {
    const res = await this.db.updateTable('repositories').set({ mirror_robot_id: robotId }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * Deletes the repository with (by foreign-key cascade) its manifests, tags and their history, blob
   * links, uploads, permissions and sizes; the blobs themselves stay for garbage collection. False if
   * it did not exist.
   */
  async delete(id: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      // Its blobs leave its namespace's size with it (quota-accounting.ts).
      await new QuotaAccounting(this.db, this.dialect).releaseRepository(tx, id);
      const res = await tx.deleteFrom('repositories').where('id', '=', id).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }

  /** Full repository names in byte order, after `last`, at most `limit`. */
  async listNames(opts: { last?: string; limit: number }): Promise<string[]> {
    const full = fullRepositoryName(this.dialect);
    let q = this.db
      .selectFrom('repositories as r')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select(full.as('full_name'))
      .orderBy(full)
      .limit(opts.limit);
    if (opts.last !== undefined) q = q.where(full, '>', opts.last);
    const rows = await q.execute();
    return rows.map((r) => r.full_name);
  }
}
