/**
 * Which storage locations hold each blob's bytes (`blob_placements`), and the replication status built
 * from it and the queue: how much of a scope (the registry, a namespace, a repository) each location
 * holds, the backlog and the failing jobs per location. A placement is recorded after the bytes are
 * visible in the location; GC deletes the rows with the blob's (gc-store.ts).
 */
import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import type { Database } from './tables.js';

/** Blobs linked into a namespace, or into one repository of it; undefined: every blob. */
export interface PlacementScope {
  namespaceId: number;
  repositoryId?: number;
}

export interface LocationStatus {
  location: string;
  /** Blobs of the scope the location holds, and their bytes. */
  blobs: number;
  bytes: number;
  /** Copies to the location still queued. */
  backlog: number;
  /** Of those, the ones whose last attempt failed. */
  failing: number;
  /** The error of the most recent failure, if any. */
  lastError: string | null;
}

export interface ReplicationStatus {
  /** Blobs recorded in the scope, and their bytes. */
  blobs: number;
  bytes: number;
  /** Every location in `locations` order, then any other location the tables name. */
  locations: LocationStatus[];
}

export class BlobPlacementStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records that `location` holds `digest` (idempotent). */
  async add(digest: string, location: string, now: number): Promise<void> {
    await this.db.insertInto('blob_placements').values({ digest, location, created_at: now }).onConflict((oc) => oc.columns(['digest', 'location']).doNothing()).execute();
  }

  /** Forgets that `location` holds `digest` (its bytes are gone there). */
  async remove(digest: string, location: string): Promise<void> {
    await this.db.deleteFrom('blob_placements').where('digest', '=', digest).where('location', '=', location).execute();
  }

  /** Forgets every placement in `location` (its storage was replaced); returns how many. */
  async removeLocation(location: string): Promise<number> {
    const r = await this.db.deleteFrom('blob_placements').where('location', '=', location).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** The locations recorded as holding `digest`, sorted by name. */
  async list(digest: string): Promise<string[]> {
    const rows = await this.db.selectFrom('blob_placements').select('location').where('digest', '=', digest).orderBy('location').execute();
    return rows.map((r) => r.location);
  }

  /** `list` for several digests in one statement (a digest no location holds is absent). */
  async listAll(digests: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (!digests.length) return out;
    const rows = await this.db.selectFrom('blob_placements').select(['digest', 'location']).where('digest', 'in', [...new Set(digests)]).orderBy('location').execute();
    for (const r of rows) out.set(r.digest, [...(out.get(r.digest) ?? []), r.location]);
    return out;
  }

  /** How much of the scope each location holds, the backlog and the failures (see ReplicationStatus). */
  async status(locations: readonly string[], scope?: PlacementScope): Promise<ReplicationStatus> {
    const inScope = (eb: ExpressionBuilder<Database & { b: Database['blobs'] }, 'b'>) => {
      let sub = eb.selectFrom('repository_blobs as rb').innerJoin('repositories as r', 'r.id', 'rb.repository_id').select('rb.blob_id').whereRef('rb.blob_id', '=', 'b.id').where('r.namespace_id', '=', scope!.namespaceId);
      if (scope!.repositoryId !== undefined) sub = sub.where('r.id', '=', scope!.repositoryId);
      return eb.exists(sub);
    };
    let total = this.db.selectFrom('blobs as b').select([(eb) => eb.fn.countAll<string | number>().as('n'), (eb) => eb.fn.coalesce(eb.fn.sum<string | number>('b.size'), sql<number>`0`).as('bytes')]);
    if (scope) total = total.where(inScope as never);
    let placed = this.db
      .selectFrom('blob_placements as p')
      .innerJoin('blobs as b', 'b.digest', 'p.digest')
      .select(['p.location', (eb) => eb.fn.countAll<string | number>().as('n'), (eb) => eb.fn.coalesce(eb.fn.sum<string | number>('b.size'), sql<number>`0`).as('bytes')])
      .groupBy('p.location');
    if (scope) placed = placed.where(inScope as never);
    const queued = scope
      ? this.db.selectFrom('replication_jobs as j').innerJoin('blobs as b', 'b.digest', 'j.digest').where(inScope as never)
      : this.db.selectFrom('replication_jobs as j');
    const jobs = await queued
      .select([
        'j.location',
        (eb) => eb.fn.countAll<string | number>().as('n'),
        sql<string | number>`sum(case when j.attempts > 0 then 1 else 0 end)`.as('failing'),
      ])
      .groupBy('j.location')
      .execute();
    const errors = await (scope ? this.db.selectFrom('replication_jobs as j').innerJoin('blobs as b', 'b.digest', 'j.digest').where(inScope as never) : this.db.selectFrom('replication_jobs as j'))
      .select(['j.location', 'j.last_error', 'j.next_attempt_at'])
      .where('j.attempts', '>', 0)
      .orderBy('j.next_attempt_at', 'desc')
      .execute();
    const [t] = await total.execute();
    const placedRows = await placed.execute();
    const names = [...locations];
    for (const r of [...placedRows, ...jobs]) if (!names.includes(r.location)) names.push(r.location);
    return {
      blobs: Number(t?.n ?? 0),
      bytes: Number(t?.bytes ?? 0),
      locations: names.map((location) => {
        const p = placedRows.find((r) => r.location === location);
        const j = jobs.find((r) => r.location === location);
        return {
          location,
          blobs: Number(p?.n ?? 0),
          bytes: Number(p?.bytes ?? 0),
          backlog: Number(j?.n ?? 0),
          failing: Number(j?.failing ?? 0),
          lastError: errors.find((e) => e.location === location)?.last_error ?? null,
        };
      }),
    };
  }
}
