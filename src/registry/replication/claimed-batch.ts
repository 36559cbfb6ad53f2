/**
 * Replication jobs claimed together (ReplicationService.claim) and what keeps them: each job's lease and
 * its guard against garbage collection (db/blob-guard-store.ts) are renewed together — one statement for
 * the leases and one for the guards, every third of the lease — for as long as any job of the batch has
 * not ended, so a job waiting for a free slot keeps its lease and guard as one being copied does. A
 * worker that dies stops renewing: its jobs and guards lapse with the lease.
 *
 * A job whose lease another worker took over, or whose guard expired before its renewal (GC may have
 * considered the blob since), has its signal aborted: a copy in progress stops without committing. The
 * guards are released together when the batch's last job ends (a finished job's guard outlives its
 * copy by no more than the batch's other copies, and is no longer renewed meanwhile).
 */
import type { BlobGuardStore } from '../../db/blob-guard-store.js';
import type { ReplicationJob, ReplicationJobStore } from '../../db/replication-job-store.js';
import type { Logger } from '../../observability/logger.js';

/** A job leased by ReplicationService.claim, with what running it needs, read for its whole batch when it was claimed. */
export interface ClaimedJob extends ReplicationJob {
  /** Keeps the job's lease and guard (claimed-batch.ts). */
  readonly batch: ClaimedBatch;
  /** Whether the job holds a guard against GC (none: GC is deleting the blob). */
  readonly guarded: boolean;
  /** The blob's size, read once the guard held; undefined: no row (yet). */
  readonly size: number | undefined;
  /** The locations recorded as holding the blob, and those with a copy of it queued (this one included). */
  readonly placed: readonly string[];
  readonly queued: readonly string[];
  /** The locations the blob should be in (ReplicationService.targetsFor). */
  readonly targets: readonly string[];
}

export interface ClaimedBatchDeps {
  jobs: Pick<ReplicationJobStore, 'renewAll'>;
  guards: Pick<BlobGuardStore, 'extendAll' | 'release'>;
  owner: string;
  leaseMs: number;
  now: () => number;
  log?: Logger;
}

interface Held {
  guard: number | undefined;
  abort: AbortController;
  /** Why the job lost its guard while its lease is still held (a failed attempt, retried after the backoff). */
  guardLost?: string;
}

export class ClaimedBatch {
  private readonly open = new Map<number, Held>();
  private readonly guards: number[] = [];
  private readonly renewal: NodeJS.Timeout;

  /** `jobs`: the claimed job ids with their guards (undefined: none was taken, GC is deleting the blob). */
  constructor(
    private readonly deps: ClaimedBatchDeps,
    jobs: ReadonlyArray<{ id: number; guard: number | undefined }>,
  ) {
    for (const j of jobs) {
      this.open.set(j.id, { guard: j.guard, abort: new AbortController() });
      if (j.guard !== undefined) this.guards.push(j.guard);
    }
    this.renewal = setInterval(() => void this.renew(), deps.leaseMs / 3);
    this.renewal.unref();
  }

  /** Aborted when job `id` loses its lease or its guard, or `stop` is called for it. */
  signal(id: number): AbortSignal {
    return this.held(id).abort.signal;
  }

  /** Why job `id`'s guard was lost while its lease was still held, if it was. */
  guardLost(id: number): string | undefined {
    return this.held(id).guardLost;
  }

  /** Stops job `id`'s copy (the worker is stopping). */
  stop(id: number, reason: Error): void {
    this.held(id).abort.abort(reason);
  }

  /** Job `id` has ended (whatever its outcome): no longer renewed; the last one releases the guards. */
  async end(id: number): Promise<void> {
    if (!this.open.delete(id) || this.open.size) return;
    clearInterval(this.renewal);
    await this.deps.guards.release(this.guards).catch((err: unknown) => this.deps.log?.warn({ err }, 'could not release the guards of replication copies (they expire with their lease)'));
  }

  private held(id: number): Held {
    const h = this.open.get(id);
    if (!h) throw new Error(`replication job ${id} is not open in this batch`);
    return h;
  }

  private async renew(): Promise<void> {
    const { jobs, guards, owner, leaseMs, now } = this.deps;
    const open = [...this.open];
    const at = now();
    try {
      const [held, live] = await Promise.all([
        jobs.renewAll(open.map(([id]) => id), owner, at, leaseMs),
        guards.extendAll(open.flatMap(([, h]) => (h.guard === undefined ? [] : [h.guard])), at, at + leaseMs),
      ]);
      for (const [id, h] of open) {
        if (!held.has(id)) h.abort.abort(new Error('the job lease was lost'));
        else if (h.guard !== undefined && !live.has(h.guard)) h.abort.abort(new Error((h.guardLost = "the copy's guard against garbage collection expired before its renewal")));
      }
    } catch (err) {
      this.deps.log?.warn({ err }, 'could not renew replication leases');
    }
  }
}
