/**
 * The repository-mirror worker: every poll it claims due mirrors (the schedule, mirror-schedule.ts) up to
 * its free run slots, runs each (registry/mirror/mirror-run.ts) in the background, renews the claims
 * while they run and releases each with its outcome. Any number of processes may run the worker: a
 * claim is a compare-and-swap (with `FOR UPDATE SKIP LOCKED` on PostgreSQL), so each due mirror runs
 * once; a claim its worker stopped renewing (the process died) expires and another worker takes the
 * mirror over. On `stop()` runs end after the tags in flight and their claims are handed on at once.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { MirrorRun, MirrorRunReport, MirrorRunSignal } from '../../registry/mirror/mirror-run.js';
import type { MirrorClaim, MirrorProgress, MirrorSchedule } from '../../registry/mirror/mirror-schedule.js';
import { Poller } from '../poller.js';

export interface MirrorWorkerDeps {
  schedule: MirrorSchedule;
  run: Pick<MirrorRun, 'run'>;
  /** How often to look for due mirrors. */
  pollMs: number;
  /** Runs at once in this process. */
  concurrentRuns: number;
  /** How long a claim lasts unless renewed (renewed every third of it). */
  leaseMs: number;
  /** Names this worker in the claims it holds; default host:pid:random. */
  holder?: string;
  now?: () => number;
  log?: Pick<Logger, 'info' | 'warn' | 'error'>;
  metrics?: Pick<Metrics, 'mirrorSyncs' | 'mirrorSyncDuration' | 'mirrorFailures' | 'mirrorLastStatus' | 'mirrorLastSync' | 'mirrorPendingTags' | 'mirrorWorkersActive' | 'mirrorUpstreamBytes'>;
}

export class MirrorWorker {
  readonly holder: string;
  private readonly now: () => number;
  private readonly poller: Poller;
  private readonly active = new Map<number, Promise<MirrorRunReport | undefined>>();
  private stopping = false;

  constructor(private readonly deps: MirrorWorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.holder = deps.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.poller = new Poller(() => this.poll(), deps.pollMs, (err) => deps.log?.error({ err }, 'mirror poll failed'));
  }

  /** Polls until `stop()`; the first poll comes after one poll period. */
  start(): void {
    this.stopping = false;
    this.poller.start();
  }

  /** Stops polling; runs in progress stop after their tags in flight and hand their mirrors on. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.poller.stop();
    await Promise.all(this.active.values());
  }

  /** Claims due mirrors for the free run slots and starts them; the runs go on in the background. */
  async poll(): Promise<Array<Promise<MirrorRunReport | undefined>>> {
    const free = this.deps.concurrentRuns - this.active.size;
    if (free <= 0 || this.stopping) return [];
    const claims = await this.deps.schedule.claimDue(this.holder, this.now(), this.deps.leaseMs, free);
    return claims.map((claim) => {
      const id = claim.record.repositoryId;
      const p = this.runClaim(claim).finally(() => {
        this.active.delete(id);
        this.deps.metrics?.mirrorWorkersActive.set(this.active.size);
      });
      this.active.set(id, p);
      this.deps.metrics?.mirrorWorkersActive.set(this.active.size);
      return p;
    });
  }

  /** Claims what is due now and waits for those runs to end; their reports. */
  async runOnce(): Promise<MirrorRunReport[]> {
    const runs = await Promise.all(await this.poll());
    return runs.filter((r): r is MirrorRunReport => r !== undefined);
  }

  private async runClaim(claim: MirrorClaim): Promise<MirrorRunReport | undefined> {
    const { schedule, log, metrics } = this.deps;
    const { record, txn } = claim;
    const id = record.repositoryId;
    const repository = `${record.namespace}/${record.repository}`;
    let total = 0;
    let lost = false;
    const renew = setInterval(() => {
      void schedule.renew(id, txn, this.now(), this.deps.leaseMs).then(
        (ok) => {
          if (!ok) lost = true;
        },
        (err: unknown) => log?.warn({ err, repository }, 'could not renew the claim on a mirror'),
      );
    }, Math.max(100, Math.floor(this.deps.leaseMs / 3)));
    renew.unref();
    metrics?.mirrorLastStatus.labels(repository).set(2);
    let report: MirrorRunReport | undefined;
    try {
      report = await this.deps.run.run(record, {
        progress: async (p: MirrorProgress): Promise<MirrorRunSignal> => {
          if (p.tagsTotal) total = p.tagsTotal;
          if (p.tagsDone !== undefined) metrics?.mirrorPendingTags.labels(repository).set(Math.max(0, total - p.tagsDone));
          if (this.stopping || lost) return 'lost';
          const status = await schedule.progress(id, txn, p);
          if (status === undefined) return 'lost';
          return status === 'CANCEL' ? 'cancel' : 'go';
        },
        interrupted: () => this.stopping || lost,
      });
    } catch (err) {
      log?.error({ err, repository }, 'mirror run failed');
    } finally {
      clearInterval(renew);
    }
    metrics?.mirrorPendingTags.labels(repository).set(0);
    try {
      if (this.stopping && (!report || report.lost)) {
        await schedule.abandon(id, txn, this.now());
        return report;
      }
      const finished = report ?? { outcome: 'FAIL' as const, message: 'the run failed unexpectedly (see the log)', bytes: 0, startedAt: record.sync.run?.startedAt ?? this.now() };
      const released = await schedule.release(id, txn, { outcome: finished.outcome, message: finished.message, bytes: finished.bytes, startedAt: finished.startedAt }, this.now());
      if (!released.released) log?.warn({ repository }, 'a mirror run ended after another worker took the mirror over; its outcome is not recorded');
    } catch (err) {
      log?.error({ err, repository }, 'could not release a mirror');
    }
    if (report) this.observe(repository, report);
    return report;
  }

  private observe(repository: string, r: MirrorRunReport): void {
    const m = this.deps.metrics;
    this.deps.log?.info({ repository, outcome: r.outcome, bytes: r.bytes, changed: r.tags.changed.length, failed: r.tags.failed.length, deleted: r.tags.deleted.length }, 'mirror run finished');
    if (!m) return;
    m.mirrorSyncs.labels(r.outcome).inc();
    m.mirrorSyncDuration.observe((r.finishedAt - r.startedAt) / 1000);
    if (r.reason && r.outcome !== 'SUCCESS' && r.outcome !== 'CANCEL') m.mirrorFailures.labels(r.reason).inc();
    m.mirrorLastStatus.labels(repository).set(r.outcome === 'SUCCESS' ? 1 : 0);
    m.mirrorLastSync.labels(repository).set(r.finishedAt / 1000);
    m.mirrorUpstreamBytes.inc(r.bytes);
  }
}
