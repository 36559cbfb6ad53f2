/**
 * Running one claimed replication job (ReplicationService.runJob; the queue and the claims are in
 * replication-service.ts).
 *
 * A job copies the bytes to the target from a location that holds them (blob-copy.ts: inside
 * the store when both are S3 on one endpoint, else through the target driver's verified writer). It
 * tries the holders the placements name (read again when another location the target could copy from
 * inside the store may hold it by now), those the target can copy from inside the store first
 * (BlobDriver.canCopyFrom), then the rest in preference order; when they all fail (down, bytes missing
 * or corrupt) it asks every location which holds the bytes (a stat in each) and tries the others. It is
 * idempotent: a target that holds the blob already only gets its placement recorded, when the
 * placements say so or the blob is large (one stat of the target, before any copy); a small blob the
 * placements do not place there is copied without asking (the copy costs what the question would, and
 * rewrites the same bytes under a content-addressed key). After the copy it records the placement
 * (only then: the bytes are visible) and queues the blob's targets that were neither placed nor queued
 * when it was claimed.
 * A failure (no holder reachable, a storage error, a mismatch) releases the job with an exponential
 * backoff; a job whose blob has no row is retried until it is older than `orphanMs`, then dropped.
 */
import type { BlobPlacementStore } from '../../db/blob-placement-store.js';
import type { BlobStore } from '../../db/blob-store.js';
import type { Backoff, ReplicationJob, ReplicationJobStore } from '../../db/replication-job-store.js';
import type { Digest } from '../../oci/digest.js';
import type { Logger } from '../../observability/logger.js';
import { blobKey } from '../../storage/keys.js';
import type { StorageLocation, StorageLocations } from '../../storage/locations.js';
import { copyBlob, copyOrder, type CopyMethod } from './blob-copy.js';
import type { ClaimedJob } from './claimed-batch.js';

/** How long a job just queued waits for its blob's row (a push records it right after the commit). */
const RECORD_WAIT_MS = 2000;

/** Blobs up to this size are copied without asking the target first when no placement records it there (`asksTargetFirst`). */
const ASK_TARGET_ABOVE = 1024 * 1024;

/**
 * How a job ended: copied (`bytes` in `seconds`, server side or streamed), present already, failed
 * (retried later), dropped (its blob or location is gone), or lost (its lease went to another worker,
 * or the worker stopped).
 */
export type JobResult = { outcome: 'copied'; location: string; bytes: number; seconds: number; method: CopyMethod } | { outcome: 'present' | 'failed' | 'dropped' | 'lost'; location: string };
export type JobOutcome = JobResult['outcome'];

export interface JobRunnerDeps {
  locations: StorageLocations;
  jobs: ReplicationJobStore;
  placements: BlobPlacementStore;
  blobs: Pick<BlobStore, 'find'>;
  backoff: Backoff;
  /** A job whose blob has no row is dropped once this old (a push that never recorded its blob). */
  orphanMs: number;
  now: () => number;
  log?: Logger;
  /** Told how many copies a finished job queued (its listeners start them). */
  queued: (added: number) => number;
}

export class JobRunner {
  private readonly locations: StorageLocations;
  private readonly now: () => number;

  constructor(private readonly deps: JobRunnerDeps) {
    this.locations = deps.locations;
    this.now = deps.now;
  }

  /** Runs one claimed job (see the file comment); `signal` stops a copy in progress (the job is released). */
  async run(job: ClaimedJob, signal?: AbortSignal): Promise<JobResult> {
    const stop = () => job.batch.stop(job.id, new Error('the worker is stopping'));
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    try {
      return await this.attempt(job, job.batch.signal(job.id), signal);
    } catch (err) {
      return await this.fail(job, (err as Error).message);
    } finally {
      signal?.removeEventListener('abort', stop);
      await job.batch.end(job.id);
    }
  }

  private async attempt(job: ClaimedJob, lease: AbortSignal, signal?: AbortSignal): Promise<JobResult> {
    const digest = job.digest as Digest;
    const target = this.locations.get(job.location);
    if (!target) {
      this.deps.log?.warn({ digest, location: job.location }, 'replication job for a location that is not configured; dropped');
      await this.deps.jobs.drop(job.id);
      return { outcome: 'dropped', location: job.location };
    }
    if (lease.aborted) return this.interrupted(job, signal);
    if (!job.guarded) return this.fail(job, 'garbage collection is deleting the blob');
    const size = job.size ?? (await this.recorded(digest, job, lease));
    if (size === undefined) {
      if (lease.aborted) return this.interrupted(job, signal);
      if (this.now() - job.createdAt < this.deps.orphanMs) return this.fail(job, 'the blob is not recorded (yet)');
      await this.deps.jobs.drop(job.id);
      return { outcome: 'dropped', location: job.location };
    }
    // A target that is down, or awaiting its identity check (it may be other storage), is not written.
    if (await this.locations.unusable(job.location)) return this.fail(job, `the target location ${job.location} is down`);
    const key = blobKey(digest);
    if (this.asksTargetFirst(job, size) && (await target.driver.stat(key))) return this.present(job);
    const tried = new Set<string>();
    let lastError = '';
    const copyFromEach = async (sources: readonly string[]): Promise<JobResult | undefined> => {
      const { inStore, streamed } = copyOrder(target, this.others(sources, job.location).filter((l) => !tried.has(l.name)));
      for (const source of [...inStore, ...streamed]) {
        if (lease.aborted) return undefined;
        tried.add(source.name);
        const started = this.now();
        let method: CopyMethod;
        try {
          method = await copyBlob(source.driver, target.driver, { digest, size }, lease);
        } catch (err) {
          lastError = `copy from ${source.name}: ${(err as Error).message}`;
          continue;
        }
        const seconds = (this.now() - started) / 1000;
        this.deps.log?.debug({ digest, from: source.name, to: job.location, size, method }, 'blob replicated');
        await this.done(job);
        return { outcome: 'copied', location: job.location, bytes: size, seconds, method };
      }
      return undefined;
    };
    const copied = await copyFromEach(await this.holdersToTry(job, target));
    if (copied) return copied;
    if (!lease.aborted) {
      // A recorded holder failed or lacks the bytes, or none is recorded: ask every location.
      const { holders, failed } = await this.locations.holders(key);
      if (holders.includes(job.location)) return this.present(job);
      const again = await copyFromEach(holders);
      if (again) return again;
      if (!lease.aborted && !holders.some((h) => h !== job.location)) {
        return this.fail(job, failed.length ? `no reachable location holds the blob (down: ${failed.join(', ')})` : 'no location holds the blob');
      }
    }
    if (lease.aborted) return this.interrupted(job, signal);
    return this.fail(job, lastError);
  }

  /**
   * The holders the placements name. They were read when the job was claimed; when none of them can be
   * copied from inside the store but another location could be, they are read again (a copy to that
   * location may have finished since, e.g. a job of the same blob earlier in the batch).
   */
  private async holdersToTry(job: ClaimedJob, target: StorageLocation): Promise<readonly string[]> {
    const inStore = (names: readonly string[]) => copyOrder(target, this.others(names, job.location)).inStore.length > 0;
    if (inStore(job.placed) || !inStore(this.locations.preferred.map((l) => l.name).filter((n) => !job.placed.includes(n)))) return job.placed;
    return this.deps.placements.list(job.digest);
  }

  /**
   * Whether the target is asked (one stat) whether it holds the bytes before they are copied. The
   * placements name the holders, so only the target could hold them unrecorded. Not asked: a small blob
   * the placements do not place in the target, whose copy costs about what the question does (a copy
   * inside the store is one request, a streamed one a single PUT of at most ASK_TARGET_ABOVE bytes) and
   * which, the key being content addressed, only rewrites the same bytes if the target held them after
   * all.
   */
  private asksTargetFirst(job: ClaimedJob, size: number): boolean {
    return job.placed.includes(job.location) || size > ASK_TARGET_ABOVE;
  }

  /** The configured locations among `names` but `except`, in this process's preference order. */
  private others(names: readonly string[], except: string): StorageLocation[] {
    return this.locations.preferred.filter((l) => l.name !== except && names.includes(l.name));
  }

  /** A job whose lease or guard was lost, or whose worker is stopping. */
  private async interrupted(job: ClaimedJob, signal?: AbortSignal): Promise<JobResult> {
    const guardLost = job.batch.guardLost(job.id);
    if (signal?.aborted) await this.deps.jobs.release([job.id], job.leaseOwner);
    else if (guardLost !== undefined) return this.fail(job, guardLost);
    return { outcome: 'lost', location: job.location };
  }

  private async present(job: ClaimedJob): Promise<JobResult> {
    await this.done(job);
    return { outcome: 'present', location: job.location };
  }

  /**
   * The blob's row. A push commits the bytes (which queues the copies and wakes this process's worker)
   * and records the row just after; a job that finds no row within RECORD_WAIT_MS of being queued looks
   * again for up to that long before it counts as a failed attempt (with its backoff).
   */
  private async recorded(digest: Digest, job: ReplicationJob, signal: AbortSignal): Promise<number | undefined> {
    const until = Date.now() + RECORD_WAIT_MS;
    for (let young = this.now() - job.createdAt < RECORD_WAIT_MS; young && !signal.aborted; young = Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      const blob = await this.deps.blobs.find(digest);
      if (blob) return Number(blob.size);
    }
    return undefined;
  }

  /**
   * Records the placement and queues copies to the blob's targets that were neither placed nor queued
   * when the job was claimed (usually none: then no further statement).
   */
  private async done(job: ClaimedJob): Promise<void> {
    await this.deps.jobs.finish(job.id, job.digest, job.location, this.now());
    const covered = new Set([...job.placed, ...job.queued, job.location]);
    const missing = job.targets.filter((t) => !covered.has(t));
    if (missing.length) this.deps.queued(await this.deps.jobs.enqueue(job.digest, missing, this.now()));
  }

  private async fail(job: ReplicationJob, error: string): Promise<JobResult> {
    this.deps.log?.warn({ digest: job.digest, location: job.location, attempts: job.attempts + 1, err: error }, 'replication attempt failed; retried later');
    await this.deps.jobs.fail(job.id, job.leaseOwner, error, this.now(), this.deps.backoff);
    return { outcome: 'failed', location: job.location };
  }
}
