/**
 * The replication worker: every poll it runs `concurrency` slots that copy due jobs until none is left,
 * then sleeps until the next poll. A slot that finds no claimed job waiting claims a batch for all of
 * them (registry/replication/replication-service.ts: many small blobs at once, a large one alone; one
 * claim at a time), so the database work of claiming is shared by several copies;
 * a copy this process queues (a push committed here) wakes it at once, so only copies queued by other
 * processes wait for the poll.
 * Any number of processes may run it: jobs are leased in the database, a lease is renewed while its job
 * waits or copies, and a job whose worker died is taken over once its lease expires. `stop()` aborts
 * the copies in progress (they commit nothing, and their jobs are released at once, as are the claimed
 * jobs not started) and waits for them.
 * Every poll also refreshes the backlog gauge.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ClaimedJob } from '../../registry/replication/claimed-batch.js';
import type { JobResult } from '../../registry/replication/job-runner.js';
import type { ReplicationService } from '../../registry/replication/replication-service.js';
import { Poller } from '../poller.js';

export interface ReplicationWorkerDeps {
  service: ReplicationService;
  /** Copies this process runs at once. */
  concurrency: number;
  /** Jobs claimed at once (within the service's byte limit per claim), shared by the slots; default twice `concurrency`. */
  claimBatch?: number;
  /** How long the worker sleeps when no job is due. */
  pollMs: number;
  /** The queue length per location, for the backlog gauge. */
  backlog?: () => Promise<Map<string, number>>;
  log?: Logger;
  metrics?: Pick<Metrics, 'replicationBacklog' | 'replicationBytes' | 'replicationFailures' | 'replicationCopySeconds'>;
  /** The lease holder's name; default host:pid:random. */
  owner?: string;
}

export class ReplicationWorker {
  readonly owner: string;
  private readonly abort = new AbortController();
  private readonly poller: Poller;
  private listening = false;

  constructor(private readonly deps: ReplicationWorkerDeps) {
    this.owner = deps.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.poller = new Poller(() => this.runOnce(), deps.pollMs, (err) => deps.log?.error({ err }, 'replication pass failed'));
  }

  /** Polls, and works at once what this process queues (ReplicationService.onQueued). */
  start(): void {
    if (!this.listening) {
      this.listening = true;
      this.deps.service.onQueued(() => this.poller.wake());
    }
    this.poller.start();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.poller.stop();
  }

  /** Works due jobs until none is left (or `stop()`); returns how the jobs it ran ended. */
  async runOnce(): Promise<JobResult[]> {
    const outcomes: JobResult[] = [];
    const waiting: ClaimedJob[] = [];
    let claiming: Promise<void> | undefined;
    const batch = this.deps.claimBatch ?? 2 * this.deps.concurrency;
    /** The last claim came back short: the queue is drained for now, so no claim ahead. */
    let drained = false;
    const claim = (): Promise<void> =>
      (claiming ??= this.deps.service
        .claim(this.owner, batch)
        .then((jobs) => {
          drained = jobs.length < batch;
          waiting.push(...jobs);
        })
        .finally(() => (claiming = undefined)));
    const next = async (): Promise<ClaimedJob | undefined> => {
      if (!waiting.length) await claim();
      const job = waiting.shift();
      // Fewer jobs waiting than slots: the next batch is claimed while the slots still have work, so
      // they do not all stop for the claim's round trips once this one runs out (a failure surfaces
      // when a slot waits for it).
      if (job && !drained && waiting.length < this.deps.concurrency) claim().catch(() => {});
      return job;
    };
    const slot = async () => {
      while (!this.abort.signal.aborted) {
        const job = await next();
        if (!job) return;
        if (this.abort.signal.aborted) {
          waiting.push(job);
          return;
        }
        const result = await this.deps.service.runJob(job, this.abort.signal);
        this.observe(result);
        outcomes.push(result);
      }
    };
    try {
      await Promise.all(Array.from({ length: this.deps.concurrency }, slot));
    } finally {
      // Stopping (or drained): jobs claimed but not started, a claim ahead's too, are released at once.
      await claiming?.catch(() => {});
      await this.deps.service.release(waiting.splice(0)).catch((err: unknown) => this.deps.log?.warn({ err }, 'could not release replication jobs'));
      await this.refreshBacklog();
    }
    return outcomes;
  }

  private observe(r: JobResult): void {
    const m = this.deps.metrics;
    if (!m) return;
    if (r.outcome === 'failed') m.replicationFailures.labels(r.location).inc();
    if (r.outcome !== 'copied') return;
    m.replicationBytes.labels(r.location, r.method).inc(r.bytes);
    m.replicationCopySeconds.labels(r.location).observe(r.seconds);
  }

  private async refreshBacklog(): Promise<void> {
    const { backlog, metrics } = this.deps;
    if (!backlog || !metrics) return;
    const counts = await backlog().catch(() => undefined);
    if (!counts) return;
    for (const location of this.deps.service.locations.preferred.map((l) => l.name)) metrics.replicationBacklog.labels(location).set(counts.get(location) ?? 0);
  }
}
