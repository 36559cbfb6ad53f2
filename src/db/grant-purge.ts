/**
 * Permission rows name their subject by kind and id without a foreign key (one column serves users,
 * teams and robots), so whoever deletes a subject must delete its grants in the same transaction.
 * This is that one place.
 */
import type { Kysely } from 'kysely';
import type { SubjectKind } from './permission-store.js';
import type { Database } from './tables.js';

/** Deletes every repository and default permission of the subjects, and unsets them as mirror robots. */
export async function purgeGrants(tx: Kysely<Database>, kind: SubjectKind, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await tx.deleteFrom('repository_permissions').where('subject_kind', '=', kind).where('subject_id', 'in', ids).execute();
  await tx.deleteFrom('default_permissions').where('subject_kind', '=', kind).where('subject_id', 'in', ids).execute();
  await tx.deleteFrom('creator_default_permissions').where('subject_kind', '=', kind).where('subject_id', 'in', ids).execute();
  if (kind === 'robot') await tx.updateTable('repositories').set({ mirror_robot_id: null }).where('mirror_robot_id', 'in', ids).execute();
}
