/**
 * The auto-prune worker (seed chapter 9). Every poll (at most every 30 s) it takes due namespaces from
 * `autoprune_tasks` one at a time — leased with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number
 * of Wharf processes may run it and each namespace is pruned by one of them — and applies their
 * policies through the NamespacePruner. A namespace is due when its task never ran (a policy was just
 * created or changed) or last ran `interval` ago. A namespace left without policies (and without
 * registry-wide defaults) loses its task; with defaults configured, every namespace gets one.
 */
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { Poller } from '../poller.js';
import type { AutopruneTasks, TaskLease } from '../../registry/autoprune/autoprune-tasks.js';
import type { NamespacePruner, NamespaceRun } from '../../registry/autoprune/namespace-pruner.js';

export const MAX_POLL_MS = 30_000;

export interface PassSummary {
  runs: NamespaceRun[];
  /** Tags pruned (or that would be, in a dry run). */
  pruned: number;
  /** Namespaces whose run failed in part. */
  failed: number;
}

export interface AutopruneWorkerDeps {
  /** The task table (the worker's lease). */
  store: AutopruneTasks;
  pruner: NamespacePruner;
  /** How long after its last run a namespace is due again. */
  intervalMs: number;
  /** How often to look for due namespaces; default min(interval, 30 s). */
  pollMs?: number;
  now?: () => number;
  log?: Logger;
  metrics?: Pick<Metrics, 'autopruneTags'>;
}

export class AutopruneWorker {
  private readonly now: () => number;
  private readonly poller: Poller;
  private lastQueued = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: AutopruneWorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.poller = new Poller(() => this.runOnce(), deps.pollMs ?? Math.min(deps.intervalMs, MAX_POLL_MS), (err) => deps.log?.error({ err }, 'auto-prune pass failed'));
  }

  private get stopping(): boolean {
    return this.poller.stopped;
  }

  /** Polls until `stop()`; the first poll comes after one poll period. */
  start(): void {
    this.poller.start();
  }

  /** Stops polling and waits for the namespace in progress (if any) to finish. */
  stop(): Promise<void> {
    return this.poller.stop();
  }

  /**
   * One pass: prunes due namespaces until none is left (with `all`, every namespace with a task, once,
   * whenever it last ran). Returns what each namespace run did.
   */
  async runOnce(opts: { all?: boolean } = {}): Promise<PassSummary> {
    const { store, pruner } = this.deps;
    const start = this.now();
    // Tasks lost to a race with a policy change come back; defaults give every namespace one.
    if (!pruner.hasDefaults) {
      await store.queueMissing({ all: false });
    } else if (opts.all || start - this.lastQueued >= this.deps.intervalMs) {
      await store.queueMissing({ all: true });
      this.lastQueued = start;
    }
    const dueBefore = opts.all ? start - 1 : start - this.deps.intervalMs;
    const summary: PassSummary = { runs: [], pruned: 0, failed: 0 };
    while (!this.stopping) {
      const nowMs = this.now();
      const lease = await store.lease(nowMs, dueBefore);
      if (!lease) break;
      const run = await this.pruneLeased(lease, nowMs);
      summary.runs.push(run);
      summary.pruned += run.pruned.length;
      if (run.errors.length) summary.failed++;
    }
    return summary;
  }

  /** What a pass over every namespace with policies would prune now; changes nothing (not even the task table). */
  async dryRun(): Promise<PassSummary> {
    const nowMs = this.now();
    const summary: PassSummary = { runs: [], pruned: 0, failed: 0 };
    for (const ns of await this.deps.store.namespaces({ all: this.deps.pruner.hasDefaults })) {
      const run = await this.deps.pruner.prune(ns, { nowMs, dryRun: true });
      if (!run.hadPolicies) continue;
      summary.runs.push(run);
      summary.pruned += run.pruned.length;
      if (run.errors.length) summary.failed++;
    }
    return summary;
  }

  private async pruneLeased(lease: TaskLease, nowMs: number): Promise<NamespaceRun> {
    const { store, pruner, log } = this.deps;
    let run: NamespaceRun;
    try {
      run = await pruner.prune(lease, { nowMs });
    } catch (err) {
      run = { namespace: lease.namespace, hadPolicies: true, repositories: 0, skipped: [], pruned: [], errors: [(err as Error)?.message ?? String(err)] };
    }
    for (const t of run.pruned) this.deps.metrics?.autopruneTags.labels(t.method).inc();
    try {
      if (!run.hadPolicies) await store.dropTask(lease.namespaceId);
      else await store.finish(lease.namespaceId, run.errors.length ? `failure: ${run.errors.join('; ')}` : 'success');
    } catch (err) {
      log?.error({ err, namespace: lease.namespace }, 'could not record the auto-prune status');
    }
    if (run.errors.length) log?.warn({ namespace: lease.namespace, errors: run.errors, pruned: run.pruned.length }, 'auto-prune failed in part');
    else if (run.pruned.length) log?.info({ namespace: lease.namespace, pruned: run.pruned.length, repositories: run.repositories }, 'auto-pruned tags');
    return run;
  }
}
