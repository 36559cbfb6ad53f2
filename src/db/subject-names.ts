/** Resolves permission subjects (kind + id) to display names: user names, team names, `ns+robot`. */
import type { Kysely } from 'kysely';
import type { SubjectKind } from './permission-store.js';
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
