/**
 * The health of repository mirroring, in the shape of Quay's `/repository/mirror/health`, computed
 * from the mirror rows alone (so every replica answers the same): enabled mirrors of repositories in
 * state MIRROR, optionally of one namespace.
 *
 *   unhealthy   more than 20 % of the mirrors that have run are FAIL (Quay's threshold)
 *   issues      up to 5 each: mirrors with no retries left (error), never run, last run over 24 h ago (warning)
 *   workers     active = runs in flight (SYNCING with a lease that has not expired)
 *   tags_pending  tags the runs in flight still have to copy
 */
import type { MirrorHealthStore } from '../../db/mirror-health-store.js';
import type { MirrorRecord } from '../../db/mirror-store.js';

export const FAILURE_THRESHOLD = 0.2;
export const STALE_AFTER_MS = 24 * 3600_000;
const ISSUE_SAMPLE = 5;
export const MAX_DETAIL_PAGE = 1000;

export interface MirrorHealthQuery {
  namespace?: string;
  detailed?: boolean;
  /** Page of `details` (clamped to 1..1000, default 100) and its offset. */
  limit?: number;
  offset?: number;
}

export interface MirrorHealthIssue {
  severity: 'critical' | 'error' | 'warning';
  message: string;
  timestamp: string;
}

export interface MirrorHealthView {
  healthy: boolean;
  workers: { active: number; configured: number; status: 'healthy' | 'degraded' };
  repositories: {
    total: number;
    syncing: number;
    completed: number;
    failed: number;
    never_run: number;
    details?: Array<{ namespace: string; repository: string; sync_status: string; is_enabled: boolean; last_sync: string | null; retries_remaining: number }>;
    pagination?: { limit: number; offset: number; has_more: boolean };
  };
  tags_pending: number;
  last_check: string;
  issues: MirrorHealthIssue[];
}

export interface MirrorHealthDeps {
  store: Pick<MirrorHealthStore, 'counts' | 'list'>;
  now: () => number;
}

export class MirrorHealthReport {
  constructor(private readonly deps: MirrorHealthDeps) {}

  async build(q: MirrorHealthQuery): Promise<MirrorHealthView> {
    const now = this.deps.now();
    const stamp = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const { store } = this.deps;
    const counts = await store.counts(q.namespace, now);
    const sample = { limit: ISSUE_SAMPLE, offset: 0 };
    const [exhausted, neverRun, stale] = await Promise.all([
      store.list({ namespace: q.namespace, statuses: ['FAIL'], exhausted: true }, sample),
      store.list({ namespace: q.namespace, statuses: ['NEVER_RUN'] }, sample),
      store.list({ namespace: q.namespace, lastFinishedBefore: now - STALE_AFTER_MS }, sample),
    ]);
    const name = (r: MirrorRecord) => `${r.namespace}/${r.repository}`;
    const issues: MirrorHealthIssue[] = [
      ...stale.map((r) => ({ severity: 'warning' as const, message: `Repository ${name(r)} hasn't synced in over 24 hours`, timestamp: stamp })),
      ...neverRun.map((r) => ({ severity: 'warning' as const, message: `Repository ${name(r)} has never been synced`, timestamp: stamp })),
      ...exhausted.map((r) => ({ severity: 'error' as const, message: `Repository ${name(r)} has exhausted all retry attempts`, timestamp: stamp })),
    ];
    const failed = counts.byStatus.FAIL;
    const ran = counts.total - counts.byStatus.NEVER_RUN;
    let healthy = true;
    if (ran > 0 && failed / ran > FAILURE_THRESHOLD) {
      healthy = false;
      issues.unshift({ severity: 'critical', message: `${((failed / ran) * 100).toFixed(1)}% of repositories are failing (threshold: ${(FAILURE_THRESHOLD * 100).toFixed(1)}%)`, timestamp: stamp });
    }
    const view: MirrorHealthView = {
      healthy,
      workers: { active: counts.activeRuns, configured: counts.activeRuns, status: healthy ? 'healthy' : 'degraded' },
      repositories: { total: counts.total, syncing: counts.byStatus.SYNCING, completed: counts.byStatus.SUCCESS, failed, never_run: counts.byStatus.NEVER_RUN },
      tags_pending: counts.tagsPending,
      last_check: stamp,
      issues,
    };
    if (q.detailed) {
      const limit = Math.max(1, Math.min(q.limit ?? 100, MAX_DETAIL_PAGE));
      const offset = Math.max(0, q.offset ?? 0);
      const rows = await store.list({ namespace: q.namespace }, { limit: limit + 1, offset });
      view.repositories.details = rows.slice(0, limit).map((r) => ({
        namespace: r.namespace,
        repository: r.repository,
        sync_status: r.sync.status,
        is_enabled: r.enabled,
        last_sync: r.sync.last ? new Date(r.sync.last.finishedAt).toISOString().replace(/\.\d{3}Z$/, 'Z') : null,
        retries_remaining: r.sync.retriesRemaining,
      }));
      view.repositories.pagination = { limit, offset, has_more: rows.length > limit };
    }
    return view;
  }
}
