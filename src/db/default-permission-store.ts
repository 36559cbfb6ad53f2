/**
 * Default permissions of an organization: grants copied onto every repository created in it (see
 * RepositoryStore.create). Changing them later does not touch existing repositories.
 */
import type { Kysely } from 'kysely';
import type { PermissionEntry, Subject, SubjectKind } from './permission-store.js';
import { subjectNames } from './subject-names.js';
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
    const subjects = rows.map((r) => ({ kind: r.subject_kind as SubjectKind, id: r.subject_id, role: r.role }));
    const names = await subjectNames(this.db, subjects);
    const order: SubjectKind[] = ['user', 'team', 'robot'];
    return subjects
      .filter((s) => names.has(`${s.kind}:${s.id}`))
      .map((s) => ({ ...s, name: names.get(`${s.kind}:${s.id}`)! }))
      .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
