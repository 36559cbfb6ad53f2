/** Resolves permission subjects (kind + id) to display names: user names, team names, `ns+robot`. */
import type { Kysely } from 'kysely';
import type { PermissionEntry, SubjectKind } from './permission-store.js';
import type { Database } from './tables.js';

/** A map from `${kind}:${id}` to the subject's name; subjects that no longer exist are absent. */
export async function subjectNames(db: Kysely<Database>, subjects: ReadonlyArray<{ kind: SubjectKind; id: number }>): Promise<Map<string, string>> {
  const ids = (kind: SubjectKind) => [...new Set(subjects.filter((s) => s.kind === kind).map((s) => s.id))];
  const names = new Map<string, string>();
  const users = ids('user');
  if (users.length) {
    const rows = await db.selectFrom('users as u').innerJoin('namespaces as n', 'n.id', 'u.namespace_id').select(['u.id', 'n.name']).where('u.id', 'in', users).execute();
    for (const r of rows) names.set(`user:${r.id}`, r.name);
  }
  const teams = ids('team');
  if (teams.length) {
    const rows = await db.selectFrom('teams').select(['id', 'name']).where('id', 'in', teams).execute();
    for (const r of rows) names.set(`team:${r.id}`, r.name);
  }
  const robots = ids('robot');
  if (robots.length) {
    const rows = await db.selectFrom('robots as r').innerJoin('namespaces as n', 'n.id', 'r.namespace_id').select(['r.id', 'r.name', 'n.name as ns']).where('r.id', 'in', robots).execute();
    for (const r of rows) names.set(`robot:${r.id}`, `${r.ns}+${r.name}`);
  }
  return names;
}

/**
 * Permission rows with their subjects' names, users then teams then robots, each by name; rows whose
 * subject no longer exists are dropped.
 */
export async function namedEntries(
  db: Kysely<Database>,
  rows: ReadonlyArray<{ subject_kind: string; subject_id: number; role: string }>,
): Promise<PermissionEntry[]> {
  const subjects = rows.map((r) => ({ kind: r.subject_kind as SubjectKind, id: r.subject_id, role: r.role }));
  const names = await subjectNames(db, subjects);
  const order: SubjectKind[] = ['user', 'team', 'robot'];
  return subjects
    .filter((s) => names.has(`${s.kind}:${s.id}`))
    .map((s) => ({ ...s, name: names.get(`${s.kind}:${s.id}`)! }))
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
