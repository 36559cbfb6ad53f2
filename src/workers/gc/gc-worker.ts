/**
 * The garbage-collection worker: every poll (at most every minute) it tries to take the `gc` lease
 * (db/worker-lease-store.ts), which is free once the last pass finished `gc.interval` ago; the process
 * that gets it runs one pass (registry/gc.ts) and records it in the metrics. Any number of Wharf
 * processes may run the worker: one of them runs each scheduled pass, and passes started by hand
 * (`wharf gc`) are safe alongside, since every batch is leased row by row. The lease is renewed while
 * the pass runs and expires if its holder dies (on PostgreSQL another process takes it over at once).
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { WorkerLeaseStore } from '../../db/worker-lease-store.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { Poller } from '../poller.js';
import type { GarbageCollector, GcReport } from '../../registry/gc.js';

export const LEASE = 'gc';
const DEFAULT_LEASE_MS = 10 * 60_000;
const MAX_POLL_MS = 60_000;

export interface GcWorkerDeps {
  leases: WorkerLeaseStore;
  gc: GarbageCollector;
  /** Time between the end of one pass and the start of the next. */
  intervalMs: number;
  /** How long the lease lasts without renewal (renewed every quarter of it); default 10 min. */
  leaseMs?: number;
  /** How often to look whether a pass is due; default min(interval, 1 min). */
  pollMs?: number;
  now?: () => number;
  log?: Logger;
  metrics?: Pick<Metrics, 'gcRemoved' | 'gcFreedBytes' | 'gcSweptBlobs' | 'gcSweptBytes' | 'gcPasses' | 'gcPassDuration'>;
}

export class GcWorker {
  private readonly now: () => number;
  private readonly holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly abort = new AbortController();
  private readonly poller: Poller;
  private readonly leaseMs: number;

  constructor(private readonly deps: GcWorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;
    this.poller = new Poller(() => this.runOnce(), deps.pollMs ?? Math.min(deps.intervalMs, MAX_POLL_MS), (err) => deps.log?.error({ err }, 'garbage-collection pass failed'));
  }

  /** Polls until `stop()`; the first poll comes after one poll period. */
  start(): void {
    this.poller.start();
  }

  /** Stops polling, asks a pass in progress to stop after its current batch, and waits for it. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.poller.stop();
  }

  /** Runs a pass if one is due and no other process runs it; its report, or undefined when not due. */
  async runOnce(): Promise<GcReport | undefined> {
    const { leases, log, metrics } = this.deps;
    if (!(await leases.tryAcquire(LEASE, this.holder, this.now(), this.leaseMs, this.deps.intervalMs))) return undefined;
    const startedAt = this.now();
    const renew = setInterval(() => {
      void leases.renew(LEASE, this.holder, this.now(), this.leaseMs).catch((err: unknown) => log?.warn({ err }, 'could not renew the garbage-collection lease'));
    }, this.leaseMs / 4);
    renew.unref();
    let report: GcReport | undefined;
    try {
      report = await this.deps.gc.run({ signal: this.abort.signal });
      return report;
    } catch (err) {
      metrics?.gcPasses.labels('failed').inc();
      throw err;
    } finally {
      clearInterval(renew);
      // An aborted or failed pass is not a finished one: the next process to poll takes it up.
      await leases.release(LEASE, this.holder, this.now(), report !== undefined && !report.aborted).catch(() => {});
      if (report) {
        this.observe(report);
        log?.info({ holder: this.holder, startedAt, durationMs: report.durationMs, aborted: report.aborted, manifests: report.manifests.count, blobs: report.blobs.count }, 'garbage-collection pass finished');
      }
    }
  }

  private observe(r: GcReport): void {
    const m = this.deps.metrics;
    if (!m) return;
    m.gcPasses.labels(r.aborted ? 'aborted' : 'ok').inc();
    m.gcPassDuration.observe(r.durationMs / 1000);
    m.gcRemoved.labels('tag').inc(r.tags);
    m.gcRemoved.labels('manifest').inc(r.manifests.count);
    m.gcRemoved.labels('link').inc(r.links);
    m.gcRemoved.labels('blob').inc(r.blobs.count);
    m.gcFreedBytes.inc(r.blobs.bytes);
    m.gcSweptBlobs.inc(r.swept.count);
    m.gcSweptBytes.inc(r.swept.bytes);
  }
}
