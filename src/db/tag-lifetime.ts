/**
 * A tag row's lifetime, written once for the live views, the time machine and garbage collection:
 *
 *   live         lifetime_end is null and (expires_at is null or expires_at > now)
 *   end          lifetime_end; for a row still open whose expiry has passed, expires_at (an expired tag
 *                is history from the moment it expired, without any write)
 *   retained     live, or not hidden and end >= now - window, where window is the namespace's
 *                `time_machine_s` (null: the registry default). Only retained rows can be restored or
 *                keep a manifest alive; GC deletes the others. Hidden tags have no history.
 *
 * `t` and `n` are the aliases of `tags` and `namespaces` in the query.
 */
import { sql, type RawBuilder } from 'kysely';

const col = (alias: string, column: string) => sql.ref(`${alias}.${column}`);

export function liveTag(t: string, now: unknown): RawBuilder<boolean> {
  return sql<boolean>`(${col(t, 'lifetime_end')} is null and (${col(t, 'expires_at')} is null or ${col(t, 'expires_at')} > ${now}))`;
}

export function tagEnd(t: string, now: unknown): RawBuilder<number | null> {
  return sql<number | null>`coalesce(${col(t, 'lifetime_end')}, case when ${col(t, 'expires_at')} <= ${now} then ${col(t, 'expires_at')} end)`;
}

/** The namespace's time-machine window in milliseconds. */
export function windowMs(n: string, defaultMs: number): RawBuilder<number> {
  return sql<number>`coalesce(${col(n, 'time_machine_s')} * 1000, ${defaultMs})`;
}

export function retainedTag(t: string, n: string, now: number, defaultWindowMs: number): RawBuilder<boolean> {
  return sql<boolean>`(${liveTag(t, now)} or (${col(t, 'hidden')} = 0 and ${tagEnd(t, now)} >= ${now} - ${windowMs(n, defaultWindowMs)}))`;
}
