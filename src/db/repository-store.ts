/** Namespaces and repositories. */
import { sql, type Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export interface RepositoryRef {
  id: number;
  namespace: string;
  name: string;
}

export class RepositoryStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  /** The repository `namespace/name`, or undefined. */
  async find(namespace: string, name: string): Promise<RepositoryRef | undefined> {
    const row = await this.db
      .selectFrom('repositories as r')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select(['r.id'])
      .where('n.name', '=', namespace)
      .where('r.name', '=', name)
      .executeTakeFirst();
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

  /** Full repository names in byte order, after `last`, at most `limit`. */
  async listNames(opts: { last?: string; limit: number }): Promise<string[]> {
    const full = this.dialect.name === 'postgres' ? sql<string>`(n.name || '/' || r.name) collate "C"` : sql<string>`(n.name || '/' || r.name)`;
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
