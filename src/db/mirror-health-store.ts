/**
 * What the mirroring health view reads from `repository_mirrors`: counts by status, tags still to copy
 * and live leases, over the enabled mirrors of repositories in state MIRROR (as Quay counts them),
 * optionally of one namespace; and pages of those mirrors, in name order.
 */
import { sql, type Kysely } from 'kysely';
import { selectMirrors, toMirrorRecord, type MirrorRecord, type MirrorSyncStatus } from './mirror-store.js';
import type { Database } from './tables.js';

export interface MirrorHealthCounts {
  total: number;
  byStatus: Record<MirrorSyncStatus, number>;
  /** Sum over SYNCING mirrors of the tags their run has still to copy. */
  tagsPending: number;
  /** SYNCING mirrors whose lease has not expired: runs in flight. */
  activeRuns: number;
}

export interface MirrorHealthFilter {
  /** A namespace name; all namespaces when absent. */
  namespace?: string;
  /** Only these statuses. */
  statuses?: readonly MirrorSyncStatus[];
  /** Only mirrors with no retries left. */
  exhausted?: boolean;
  /** Only mirrors whose last run finished before this time (epoch ms). */
  lastFinishedBefore?: number;
}

export class MirrorHealthStore {
  constructor(private readonly db: Kysely<Database>) {}

  async counts(namespace: string | undefined, now: number): Promise<MirrorHealthCounts> {
    const rows = await this.monitored({ namespace })
      .clearSelect()
      .select((eb) => [
        'm.sync_status',
        eb.fn.countAll<number | string>().as('n'),
        // A run that has not counted its tags yet has none pending; one that counted them, total − done.
        sql<number | string | null>`sum(case when ${eb.ref('m.sync_status')} = 'SYNCING' and ${eb.ref('m.run_tags_total')} > coalesce(${eb.ref('m.run_tags_done')}, 0) then ${eb.ref('m.run_tags_total')} - coalesce(${eb.ref('m.run_tags_done')}, 0) else 0 end)`.as('pending'),
        eb.fn
          .sum<number | string | null>(
            eb
              .case()
              .when(eb.and([eb('m.sync_status', '=', 'SYNCING'), eb('m.sync_expires_at', '>', now)]))
              .then(1)
              .else(0)
              .end(),
          )
          .as('live'),
      ])
      .groupBy('m.sync_status')
      .execute();
    const byStatus: Record<MirrorSyncStatus, number> = { NEVER_RUN: 0, SYNC_NOW: 0, SYNCING: 0, SUCCESS: 0, FAIL: 0, CANCEL: 0 };
    let total = 0;
    let tagsPending = 0;
    let activeRuns = 0;
    for (const r of rows) {
      const n = Number(r.n);
      total += n;
      if (r.sync_status in byStatus) byStatus[r.sync_status as MirrorSyncStatus] += n;
      tagsPending += Number(r.pending ?? 0);
      activeRuns += Number(r.live ?? 0);
    }
    return { total, byStatus, tagsPending, activeRuns };
  }

  /** The monitored mirrors that pass `filter`, ordered by full name, `limit` from `offset`. */
  async list(filter: MirrorHealthFilter, page: { limit: number; offset: number }): Promise<MirrorRecord[]> {
    const rows = await this.monitored(filter).orderBy('n.name').orderBy('r.name').limit(page.limit).offset(page.offset).execute();
    return rows.map(toMirrorRecord);
  }

  private monitored(filter: MirrorHealthFilter) {
    let q = selectMirrors(this.db).where('r.state', '=', 'MIRROR').where('m.is_enabled', '=', 1);
    if (filter.namespace !== undefined) q = q.where('n.name', '=', filter.namespace);
    if (filter.statuses) q = q.where('m.sync_status', 'in', [...filter.statuses]);
    if (filter.exhausted) q = q.where('m.sync_retries_remaining', '<=', 0);
    if (filter.lastFinishedBefore !== undefined) q = q.where('m.last_finished_at', '<', filter.lastFinishedBefore);
    return q;
  }
}
