/**
 * Background replication of blobs between storage locations (storage/locations.ts).
 *
 * When a blob becomes visible in a location (`onCommitted`) the placement is recorded and a copy job is
 * queued for every target location that does not hold it yet. When a blob is linked into a repository
 * (`onLinked`: a mount or a push of a blob the registry holds already links bytes committed long ago),
 * copies to the organization's own targets that lack it are queued. A blob's targets are
 * `replication.targets` (default: every location) together with the targets of the organizations whose
 * repositories link it; they are computed again when a job runs, so a blob linked after its bytes were
 * committed is still covered (when the commit queued no copy because no other location was a target
 * yet, it queues a job for its own location, which only records the placement and looks again).
 *
 * A job (`runJob`, under the lease `claim` gave it) copies the bytes from a location that holds them —
 * the most preferred one first, then the others — to the target (blob-copy.ts: inside the store when
 * both are S3 on one endpoint, else through the target driver's verified writer), and then records the
 * placement. It is idempotent: a target that already holds the blob only
 * gets its placement recorded. While it copies, the job holds a 'write' guard against garbage
 * collection (db/blob-guard-store.ts), so GC never deletes a blob whose copy is about to appear, and a
 * blob GC is deleting is not copied. The guard lives as long as the job's lease and is renewed with it:
 * a worker that dies mid-copy holds GC off the blob no longer than its lease, and a copy that loses
 * either one stops.
 * A failure (no holder reachable, a storage error, a mismatch) releases the job with an exponential
 * backoff; a job whose blob has no row is retried until it is older than `orphanMs`, then dropped.
 */
import type { BlobGuardStore } from '../../db/blob-guard-store.js';
import type { BlobPlacementStore } from '../../db/blob-placement-store.js';
import type { BlobLinkListener, BlobStore } from '../../db/blob-store.js';
import type { Backoff, ReplicationJob, ReplicationJobStore } from '../../db/replication-job-store.js';
import type { ReplicationTargetStore } from '../../db/replication-target-store.js';
import type { Digest } from '../../oci/digest.js';
import type { Logger } from '../../observability/logger.js';
import { blobKey } from '../../storage/keys.js';
import type { StorageLocations } from '../../storage/locations.js';
import { copyBlob, type CopyMethod } from './blob-copy.js';

/** Where blobs are linked into repositories (db/blob-store.ts): every link is reported to the listener. */
export interface BlobLinks {
  onLinked(listener: BlobLinkListener): void;
}

/** How long a job just queued waits for its blob's row (a push records it right after the commit). */
const RECORD_WAIT_MS = 2000;

export interface ReplicationStores {
  jobs: ReplicationJobStore;
  placements: BlobPlacementStore;
  targets: ReplicationTargetStore;
  blobs: Pick<BlobStore, 'find'>;
  guards: Pick<BlobGuardStore, 'beginWrite' | 'extend' | 'release'>;
}

export interface ReplicationOptions {
  /** Registry-wide targets (`replication.targets`); empty: every location. */
  targets: readonly string[];
  /** How long a claimed job stays leased without a renewal (renewed every third of it). */
  leaseMs: number;
  backoff: Backoff;
  /** A job whose blob has no row is dropped once this old (a push that never recorded its blob). */
  orphanMs: number;
  now?: () => number;
  log?: Logger;
}

/**
 * How a job ended: copied (`bytes` in `seconds`, server side or streamed), present already, failed
 * (retried later), dropped (its blob or location is gone), or lost (its lease went to another worker,
 * or the worker stopped).
 */
export type JobResult = { outcome: 'copied'; location: string; bytes: number; seconds: number; method: CopyMethod } | { outcome: 'present' | 'failed' | 'dropped' | 'lost'; location: string };
export type JobOutcome = JobResult['outcome'];

export class ReplicationService {
  private readonly now: () => number;
  private readonly queuedListeners: Array<() => void> = [];

  constructor(
    readonly locations: StorageLocations,
    private readonly stores: ReplicationStores,
    private readonly opts: ReplicationOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Registry-wide targets: `replication.targets`, or every location when none are configured. */
  get defaultTargets(): string[] {
    return this.opts.targets.length ? [...this.opts.targets] : this.locations.preferred.map((l) => l.name);
  }

  /**
   * Listens to the locations' commits and, with `links`, to blobs linked into repositories (call once,
   * at start).
   */
  listen(links?: BlobLinks): void {
    this.locations.onCommitted((digest, location) => {
      this.onCommitted(digest, location).catch((err: unknown) => this.opts.log?.error({ err, digest, location }, 'could not queue the replication of a blob'));
    });
    links?.onLinked((repositoryId, digest) =>
      this.onLinked(repositoryId, digest).then(
        () => undefined,
        (err: unknown) => this.opts.log?.error({ err, digest, repositoryId }, 'could not queue the replication of a linked blob'),
      ),
    );
  }

  /**
   * A blob was linked into a repository (an upload, a mount, a proxy fill, a mirror sync): queues a copy
   * to each of the repository's organization's own targets that does not hold it (one statement, which
   * queues nothing for an organization without targets). The registry-wide targets were queued when the
   * bytes were committed. Returns how many jobs were added.
   */
  onLinked(repositoryId: number, digest: Digest): Promise<number> {
    return this.stores.jobs.enqueueNamespaceTargets(digest, repositoryId, this.locations.preferred.map((l) => l.name), this.now());
  }

  /**
   * Calls `listener` whenever this service queued copies (a commit in this process, a finished copy that
   * found further targets), so that a worker of this process can start them without waiting for its poll.
   */
  onQueued(listener: () => void): void {
    this.queuedListeners.push(listener);
  }

  /** Records that `location` holds `digest` and queues a copy to every target that does not. */
  async onCommitted(digest: Digest, location: string): Promise<void> {
    const now = this.now();
    await this.stores.placements.add(digest, location, now);
    const queued = await this.queueMissing(digest, [location]);
    if (!queued && this.defaultTargets.length < this.locations.preferred.length) this.queued(await this.stores.jobs.enqueue(digest, [location], now, { evenIfPlaced: true }));
  }

  /** The locations `digest` should be in: the registry-wide targets and those of the organizations linking it. */
  async targetsFor(digest: string): Promise<string[]> {
    const org = await this.stores.targets.forDigest(digest);
    return [...new Set([...this.defaultTargets, ...org])].filter((name) => this.locations.get(name));
  }

  /** Leases up to `limit` due jobs to `owner`. */
  claim(owner: string, limit: number): Promise<ReplicationJob[]> {
    return this.stores.jobs.claim(owner, limit, this.now(), this.opts.leaseMs);
  }

  /** Releases a claimed job that will not be run (the worker is stopping). */
  release(job: ReplicationJob): Promise<void> {
    return this.stores.jobs.release(job.id, job.leaseOwner);
  }

  /** Runs one claimed job (see the file comment); `signal` stops a copy in progress (the job is released). */
  async runJob(job: ReplicationJob, signal?: AbortSignal): Promise<JobResult> {
    const digest = job.digest as Digest;
    const target = this.locations.get(job.location);
    if (!target) {
      this.opts.log?.warn({ digest, location: job.location }, 'replication job for a location that is not configured; dropped');
      await this.stores.jobs.drop(job.id);
      return { outcome: 'dropped', location: job.location };
    }
    const { guards } = this.stores;
    const guard = await guards.beginWrite(digest, this.now(), this.now() + this.opts.leaseMs);
    if (guard === undefined) return this.fail(job, 'garbage collection is deleting the blob');
    const lease = new AbortController();
    const stop = () => lease.abort(new Error('the worker is stopping'));
    signal?.addEventListener('abort', stop, { once: true });
    /** Set when the guard lapsed while the job is still ours: a failed attempt, retried after the backoff. */
    let guardLost: string | undefined;
    const renew = setInterval(() => {
      const now = this.now();
      Promise.all([this.stores.jobs.renew(job.id, job.leaseOwner, now, this.opts.leaseMs), guards.extend(guard, now, now + this.opts.leaseMs)]).then(
        ([held, guarded]) => {
          if (!held) lease.abort(new Error('the job lease was lost'));
          else if (!guarded) lease.abort(new Error((guardLost = "the copy's guard against garbage collection expired before its renewal")));
        },
        (err: unknown) => this.opts.log?.warn({ err, digest }, 'could not renew a replication lease'),
      );
    }, this.opts.leaseMs / 3);
    renew.unref();
    try {
      const blob = await this.recorded(digest, job, lease.signal);
      if (!blob) {
        if (this.now() - job.createdAt < this.opts.orphanMs) return await this.fail(job, 'the blob is not recorded (yet)');
        await this.stores.jobs.drop(job.id);
        return { outcome: 'dropped', location: job.location };
      }
      const size = Number(blob.size);
      const key = blobKey(digest);
      const { holders, failed } = await this.locations.holders(key);
      if (holders.includes(job.location)) {
        await this.done(job);
        return { outcome: 'present', location: job.location };
      }
      // A target that is down (or awaiting its identity check: it may be other storage) is not written.
      if (failed.includes(job.location)) return await this.fail(job, `the target location ${job.location} is down`);
      const sources = holders.filter((h) => h !== job.location);
      if (!sources.length) return await this.fail(job, failed.length ? `no reachable location holds the blob (down: ${failed.join(', ')})` : 'no location holds the blob');
      let lastError = '';
      for (const source of sources) {
        if (lease.signal.aborted) break;
        const started = this.now();
        let method: CopyMethod;
        try {
          method = await copyBlob(this.locations.get(source)!.driver, target.driver, { digest, size }, lease.signal);
        } catch (err) {
          lastError = `copy from ${source}: ${(err as Error).message}`;
          continue;
        }
        const seconds = (this.now() - started) / 1000;
        this.opts.log?.debug({ digest, from: source, to: job.location, size, method }, 'blob replicated');
        await this.done(job);
        return { outcome: 'copied', location: job.location, bytes: size, seconds, method };
      }
      if (lease.signal.aborted) {
        if (signal?.aborted) await this.release(job);
        else if (guardLost !== undefined) return await this.fail(job, guardLost);
        return { outcome: 'lost', location: job.location };
      }
      return await this.fail(job, lastError);
    } catch (err) {
      return await this.fail(job, (err as Error).message);
    } finally {
      clearInterval(renew);
      signal?.removeEventListener('abort', stop);
      await guards.release([guard]).catch(() => {});
    }
  }

  /**
   * The blob's row. A push commits the bytes (which queues the copies and wakes this process's worker)
   * and records the row just after; a job that finds no row within RECORD_WAIT_MS of being queued looks
   * again for up to that long before it counts as a failed attempt (with its backoff).
   */
  private async recorded(digest: Digest, job: ReplicationJob, signal: AbortSignal) {
    const until = Date.now() + RECORD_WAIT_MS;
    for (let young = this.now() - job.createdAt < RECORD_WAIT_MS; ; young = Date.now() < until) {
      const blob = await this.stores.blobs.find(digest);
      if (blob || !young || signal.aborted) return blob;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async done(job: ReplicationJob): Promise<void> {
    await this.stores.jobs.finish(job.id, job.digest, job.location, this.now());
    await this.queueMissing(job.digest, []);
  }

  private async fail(job: ReplicationJob, error: string): Promise<JobResult> {
    this.opts.log?.warn({ digest: job.digest, location: job.location, attempts: job.attempts + 1, err: error }, 'replication attempt failed; retried later');
    await this.stores.jobs.fail(job.id, job.leaseOwner, error, this.now(), this.opts.backoff);
    return { outcome: 'failed', location: job.location };
  }

  /** Queues copies of `digest` to its targets that no placement records, besides `holding`; returns how many were added. */
  private async queueMissing(digest: string, holding: readonly string[]): Promise<number> {
    const placed = new Set([...(await this.stores.placements.list(digest)), ...holding]);
    const missing = (await this.targetsFor(digest)).filter((t) => !placed.has(t));
    return this.queued(await this.stores.jobs.enqueue(digest, missing, this.now()));
  }

  private queued(added: number): number {
    if (added > 0) for (const listener of this.queuedListeners) listener();
    return added;
  }
}
