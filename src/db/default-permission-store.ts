/**
 * Default permissions of an organization: grants copied onto every repository created in it (see
 * RepositoryStore.create), or, with a creator, onto every repository that one user creates in it.
 * Changing them later does not touch existing repositories.
 */
import type { Kysely } from 'kysely';
import type { PermissionEntry, Subject } from './permission-store.js';
import { namedEntries } from './subject-names.js';
import type { Database } from './tables.js';

export class DefaultPermissionStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Sets the subject's default role in the namespace, replacing any it had. */
  async set(namespaceId: number, subject: Subject, role: string): Promise<void> {
    await this.db
      .insertInto('default_permissions')
      .values({ namespace_id: namespaceId, subject_kind: subject.kind, subject_id: subject.id, role })
      .onConflict((oc) => oc.columns(['namespace_id', 'subject_kind', 'subject_id']).doUpdateSet({ role }))
      .execute();
  }

  async delete(namespaceId: number, subject: Subject): Promise<boolean> {
    const res = await this.db
      .deleteFrom('default_permissions')
      .where('namespace_id', '=', namespaceId)
      .where('subject_kind', '=', subject.kind)
      .where('subject_id', '=', subject.id)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** The namespace's default permissions with subject names, users then teams then robots, by name. */
  async list(namespaceId: number): Promise<PermissionEntry[]> {
    const rows = await this.db.selectFrom('default_permissions').select(['subject_kind', 'subject_id', 'role']).where('namespace_id', '=', namespaceId).execute();
    return namedEntries(this.db, rows);
  }

  /** Sets the subject's default role on the repositories `creatorUserId` creates in the namespace. */
  async setForCreator(namespaceId: number, creatorUserId: number, subject: Subject, role: string): Promise<void> {
    await this.db
      .insertInto('creator_default_permissions')
      .values({ namespace_id: namespaceId, creator_user_id: creatorUserId, subject_kind: subject.kind, subject_id: subject.id, role })
      .onConflict((oc) => oc.columns(['namespace_id', 'creator_user_id', 'subject_kind', 'subject_id']).doUpdateSet({ role }))
      .execute();
  }

  async deleteForCreator(namespaceId: number, creatorUserId: number, subject: Subject): Promise<boolean> {
    const res = await this.db
      .deleteFrom('creator_default_permissions')
      .where('namespace_id', '=', namespaceId)
      .where('creator_user_id', '=', creatorUserId)
      .where('subject_kind', '=', subject.kind)
      .where('subject_id', '=', subject.id)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** The namespace's per-creator default permissions with subject and creator names, by creator then as `list`. */
  async listForCreators(namespaceId: number): Promise<Array<PermissionEntry & { creator: string }>> {
    const rows = await this.db
      .selectFrom('creator_default_permissions as d')
      .innerJoin('users as u', 'u.id', 'd.creator_user_id')
      .innerJoin('namespaces as n', 'n.id', 'u.namespace_id')
      .select(['d.subject_kind', 'd.subject_id', 'd.role', 'n.name as creator'])
      .where('d.namespace_id', '=', namespaceId)
      .orderBy('n.name')
      .execute();
    const out: Array<PermissionEntry & { creator: string }> = [];
    for (const creator of [...new Set(rows.map((r) => r.creator))]) {
      const entries = await namedEntries(this.db, rows.filter((r) => r.creator === creator));
      out.push(...entries.map((e) => ({ ...e, creator })));
    }
    return out;
  }
}
