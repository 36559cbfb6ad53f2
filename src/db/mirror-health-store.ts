/**
 * What the mirroring health view reads from `repository_mirrors`: counts by status, tags still to copy
 * and live leases, over the enabled mirrors of repositories in state MIRROR (as Quay counts them),
 * optionally of one namespace; and pages of those mirrors, in name order.
 */
import type { Kysely } from 'kysely';
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
        eb.fn.sum<number | string | null>(eb.case().when('m.sync_status', '=', 'SYNCING').then(eb.fn.coalesce('m.run_tags_total', eb.val(0))).else(0).end()).as('total_tags'),
        eb.fn.sum<number | string | null>(eb.case().when('m.sync_status', '=', 'SYNCING').then(eb.fn.coalesce('m.run_tags_done', eb.val(0))).else(0).end()).as('done_tags'),
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
      tagsPending += Math.max(0, Number(r.total_tags ?? 0) - Number(r.done_tags ?? 0));
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
