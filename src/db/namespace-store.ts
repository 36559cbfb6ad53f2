/**
 * Namespaces: the first component of every repository name, owned by a user (`kind` 'user', one users
 * row) or an organization (`kind` 'org', with teams). Users and organizations share this one table, so a
 * name is taken by at most one of them.
 */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { purgeGrants } from './grant-purge.js';
import type { Database } from './tables.js';

export type NamespaceKind = 'user' | 'org';

export interface NamespaceRecord {
  id: number;
  name: string;
  kind: NamespaceKind;
  email: string | null;
  enabled: boolean;
  createdAt: number;
}

export class NamespaceStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  async findByName(name: string): Promise<NamespaceRecord | undefined> {
    const row = await this.db.selectFrom('namespaces').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toRecord(row);
  }

  async findById(id: number): Promise<NamespaceRecord | undefined> {
    const row = await this.db.selectFrom('namespaces').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Enables or disables the namespace (and so its user or organization, and its robots); false if missing. */
  async setEnabled(id: number, enabled: boolean): Promise<boolean> {
    const res = await this.db.updateTable('namespaces').set({ enabled: enabled ? 1 : 0 }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async setEmail(id: number, email: string | null): Promise<boolean> {
    const res = await this.db.updateTable('namespaces').set({ email }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * Deletes the namespace with everything in it, in one transaction: its user (and the user's team
   * memberships and API tokens), teams, robots, repositories and their content rows, and every
   * permission granted to its user, teams or robots anywhere. False if it did not exist.
   */
  async delete(id: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      if (this.dialect.supportsRowLocks) await tx.selectFrom('namespaces').select('id').where('id', '=', id).forUpdate().execute();
      const users = await tx.selectFrom('users').select('id').where('namespace_id', '=', id).execute();
      const teams = await tx.selectFrom('teams').select('id').where('namespace_id', '=', id).execute();
      const robots = await tx.selectFrom('robots').select('id').where('namespace_id', '=', id).execute();
      await purgeGrants(tx, 'user', users.map((u) => u.id));
      await purgeGrants(tx, 'team', teams.map((t) => t.id));
      await purgeGrants(tx, 'robot', robots.map((r) => r.id));
      // manifest_children.child_id has no ON DELETE action, and PostgreSQL checks it while the cascade
      // runs: unlink every index in the namespace from its children before the cascade deletes both.
      const repositories = tx.selectFrom('repositories').select('id').where('namespace_id', '=', id);
      const manifests = tx.selectFrom('manifests').select('id').where('repository_id', 'in', repositories);
      await tx.deleteFrom('manifest_children').where('manifest_id', 'in', manifests).execute();
      const res = await tx.deleteFrom('namespaces').where('id', '=', id).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }
}

function toRecord(row: { id: number; name: string; kind: string; email: string | null; enabled: number; created_at: number }): NamespaceRecord {
  return { id: row.id, name: row.name, kind: row.kind as NamespaceKind, email: row.email, enabled: row.enabled === 1, createdAt: row.created_at };
}
