/** Users' stars on repositories: at most one per user and repository; they go with either. */
import type { Kysely } from 'kysely';
import { fullRepositoryName } from './full-name.js';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export class StarStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  /** Stars the repository for the user; false if it was starred already. */
  async star(userId: number, repositoryId: number): Promise<boolean> {
    const res = await this.db
      .insertInto('repository_stars')
      .values({ user_id: userId, repository_id: repositoryId, created_at: Date.now() })
      .onConflict((oc) => oc.columns(['user_id', 'repository_id']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /** Removes the star; false if there was none. */
  async unstar(userId: number, repositoryId: number): Promise<boolean> {
    const res = await this.db.deleteFrom('repository_stars').where('user_id', '=', userId).where('repository_id', '=', repositoryId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async isStarred(userId: number, repositoryId: number): Promise<boolean> {
    const row = await this.db.selectFrom('repository_stars').select('user_id').where('user_id', '=', userId).where('repository_id', '=', repositoryId).executeTakeFirst();
    return row !== undefined;
  }

  /** Full names (`namespace/name`) of the repositories the user starred, in byte order. */
  async starredBy(userId: number): Promise<string[]> {
    const full = fullRepositoryName(this.dialect);
    const rows = await this.db
      .selectFrom('repository_stars as s')
      .innerJoin('repositories as r', 'r.id', 's.repository_id')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select(full.as('full_name'))
      .where('s.user_id', '=', userId)
      .orderBy(full)
      .execute();
    return rows.map((r) => r.full_name);
  }
}
