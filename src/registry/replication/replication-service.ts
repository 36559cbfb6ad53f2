/**
 * Background replication of blobs between storage locations (storage/locations.ts).
 *
 * When a blob becomes visible in a location (`onCommitted`) the placement is recorded and a copy job is
 * queued for every target location that does not hold it yet. When a blob is linked into a repository
 * (`onLinked`: a mount or a push of a blob the registry holds already links bytes committed long ago),
 * copies to the organization's own targets that lack it are queued. A blob's targets are
 * `replication.targets` (default: every location) together with the targets of the organizations whose
 * repositories link it; they are computed again when a job is claimed, so a blob linked after its bytes were
 * committed is still covered (when the commit queued no copy because no other location was a target
 * yet, it queues a job for its own location, which only records the placement and looks again).
 *
 * Jobs are claimed in batches (`claim`: up to the worker's limit, many small blobs or one large one):
 * one transaction leases them, one takes their guards against garbage collection
 * (db/blob-guard-store.ts) and reads the blobs' sizes under them, and three statements read where the
 * blobs are placed or queued and their organizations' targets. While a job waits for a slot and while
 * it copies, its lease and its guard are renewed with the rest of its batch (claimed-batch.ts), so GC
 * never deletes a blob whose copy is about to appear, a blob GC is deleting is not copied (no guard is
 * given while GC holds its own), and a worker that dies holds GC off the blob no longer than its lease;
 * a copy that loses either one stops.
 *
 * A claimed job is run by job-runner.ts: a copy from a holder, its placement recorded, a failure
 * released with a backoff.
 */
import type { BlobGuardStore } from '../../db/blob-guard-store.js';
import type { BlobPlacementStore } from '../../db/blob-placement-store.js';
import type { BlobLinkListener, BlobStore } from '../../db/blob-store.js';
import type { Backoff, ReplicationJobStore } from '../../db/replication-job-store.js';
import type { ReplicationTargetStore } from '../../db/replication-target-store.js';
import type { Digest } from '../../oci/digest.js';
import type { Logger } from '../../observability/logger.js';
import type { StorageLocations } from '../../storage/locations.js';
import { ClaimedBatch, type ClaimedJob } from './claimed-batch.js';
import { JobRunner, type JobResult } from './job-runner.js';

/** Where blobs are linked into repositories (db/blob-store.ts): every link is reported to the listener. */
export interface BlobLinks {
  onLinked(listener: BlobLinkListener): void;
}

/**
 * The bytes of blobs one claim may take together: many small copies are leased at once (their database
 * work shared), a large one alone, so that it does not hold other jobs from idle workers.
 */
const CLAIM_BYTES = 16 * 1024 * 1024;

export interface ReplicationStores {
  jobs: ReplicationJobStore;
  placements: BlobPlacementStore;
  targets: ReplicationTargetStore;
  blobs: Pick<BlobStore, 'find'>;
  guards: Pick<BlobGuardStore, 'beginWrites' | 'extendAll' | 'release'>;
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

export class ReplicationService {
  private readonly now: () => number;
  private readonly queuedListeners: Array<() => void> = [];
  private readonly runner: JobRunner;

  constructor(
    readonly locations: StorageLocations,
    private readonly stores: ReplicationStores,
    private readonly opts: ReplicationOptions,
  ) {
    this.now = opts.now ?? Date.now;
    const { jobs, placements, blobs } = stores;
    this.runner = new JobRunner({ locations, jobs, placements, blobs, backoff: opts.backoff, orphanMs: opts.orphanMs, now: this.now, ...(opts.log ? { log: opts.log } : {}), queued: (added) => this.queued(added) });
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
    return this.withDefaults(await this.stores.targets.forDigest(digest));
  }

  /** The registry-wide targets and `org` (organizations' targets), those that are configured locations. */
  private withDefaults(org: readonly string[]): string[] {
    return [...new Set([...this.defaultTargets, ...org])].filter((name) => this.locations.get(name));
  }

  /**
   * Leases up to `limit` due jobs to `owner` (together no more than CLAIM_BYTES of blobs, one job
   * whatever its size), takes their guards against GC, and reads what running them needs — the blobs'
   * sizes under the guards, where they are placed or queued, their targets — in a few statements for the
   * whole batch. Each job must then be run (`runJob`) or released (`release`).
   */
  async claim(owner: string, limit: number): Promise<ClaimedJob[]> {
    const { jobs, guards, placements, targets } = this.stores;
    const now = this.now();
    const claimed = await jobs.claim(owner, limit, now, this.opts.leaseMs, CLAIM_BYTES);
    if (!claimed.length) return [];
    const digests = claimed.map((j) => j.digest);
    let taken;
    try {
      taken = await guards.beginWrites(digests, now, now + this.opts.leaseMs);
    } catch (err) {
      await jobs.release(claimed.map((j) => j.id), owner).catch(() => {});
      throw err;
    }
    const batch = new ClaimedBatch({ jobs, guards, owner, leaseMs: this.opts.leaseMs, now: this.now, ...(this.opts.log ? { log: this.opts.log } : {}) }, claimed.map((j) => ({ id: j.id, guard: taken.guards.get(j.digest) })));
    let placed, queued, org;
    try {
      [placed, queued, org] = await Promise.all([placements.listAll(digests), jobs.queuedFor(digests), targets.forDigests(digests)]);
    } catch (err) {
      await this.release(claimed.map((j) => ({ ...j, batch }) as ClaimedJob));
      throw err;
    }
    return claimed.map((j) => ({
      ...j,
      batch,
      guarded: taken.guards.has(j.digest),
      size: taken.sizes.get(j.digest),
      placed: placed.get(j.digest) ?? [],
      queued: queued.get(j.digest) ?? [],
      targets: this.withDefaults(org.get(j.digest) ?? []),
    }));
  }

  /** Releases claimed jobs that will not be run (the worker is stopping). */
  async release(jobs: readonly ClaimedJob[]): Promise<void> {
    if (!jobs.length) return;
    try {
      await this.stores.jobs.release(jobs.map((j) => j.id), jobs[0]!.leaseOwner);
    } finally {
      for (const j of jobs) await j.batch.end(j.id);
    }
  }

  /** Runs one claimed job (job-runner.ts); `signal` stops a copy in progress (the job is released). */
  runJob(job: ClaimedJob, signal?: AbortSignal): Promise<JobResult> {
    return this.runner.run(job, signal);
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
