/**
 * Default permissions of an organization: grants copied onto every repository created in it (see
 * RepositoryStore.create). Changing them later does not touch existing repositories.
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
}
