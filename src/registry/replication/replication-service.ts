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
 * A job (`runJob`) copies the bytes to the target from a location that holds them (blob-copy.ts: inside
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
import type { BlobGuardStore } from '../../db/blob-guard-store.js';
import type { BlobPlacementStore } from '../../db/blob-placement-store.js';
import type { BlobLinkListener, BlobStore } from '../../db/blob-store.js';
import type { Backoff, ReplicationJob, ReplicationJobStore } from '../../db/replication-job-store.js';
import type { ReplicationTargetStore } from '../../db/replication-target-store.js';
import type { Digest } from '../../oci/digest.js';
import type { Logger } from '../../observability/logger.js';
import { blobKey } from '../../storage/keys.js';
import type { StorageLocation, StorageLocations } from '../../storage/locations.js';
import { copyBlob, copyOrder, type CopyMethod } from './blob-copy.js';
import { ClaimedBatch } from './claimed-batch.js';

/** Where blobs are linked into repositories (db/blob-store.ts): every link is reported to the listener. */
export interface BlobLinks {
  onLinked(listener: BlobLinkListener): void;
}

/** How long a job just queued waits for its blob's row (a push records it right after the commit). */
const RECORD_WAIT_MS = 2000;

/**
 * The bytes of blobs one claim may take together: many small copies are leased at once (their database
 * work shared), a large one alone, so that it does not hold other jobs from idle workers.
 */
const CLAIM_BYTES = 16 * 1024 * 1024;

/** Blobs up to this size are copied without asking the target first when no placement records it there (`asksTargetFirst`). */
const ASK_TARGET_ABOVE = 1024 * 1024;

export interface ReplicationStores {
  jobs: ReplicationJobStore;
  placements: BlobPlacementStore;
  targets: ReplicationTargetStore;
  blobs: Pick<BlobStore, 'find'>;
  guards: Pick<BlobGuardStore, 'beginWrites' | 'extendAll' | 'release'>;
}

/** A job leased by `claim`, with what running it needs, read for its whole batch when it was claimed. */
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
  /** The locations the blob should be in (`targetsFor`). */
  readonly targets: readonly string[];
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

  /** Runs one claimed job (see the file comment); `signal` stops a copy in progress (the job is released). */
  async runJob(job: ClaimedJob, signal?: AbortSignal): Promise<JobResult> {
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
      this.opts.log?.warn({ digest, location: job.location }, 'replication job for a location that is not configured; dropped');
      await this.stores.jobs.drop(job.id);
      return { outcome: 'dropped', location: job.location };
    }
    if (lease.aborted) return this.interrupted(job, signal);
    if (!job.guarded) return this.fail(job, 'garbage collection is deleting the blob');
    const size = job.size ?? (await this.recorded(digest, job, lease));
    if (size === undefined) {
      if (lease.aborted) return this.interrupted(job, signal);
      if (this.now() - job.createdAt < this.opts.orphanMs) return this.fail(job, 'the blob is not recorded (yet)');
      await this.stores.jobs.drop(job.id);
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
        this.opts.log?.debug({ digest, from: source.name, to: job.location, size, method }, 'blob replicated');
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
    return this.stores.placements.list(job.digest);
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
    if (signal?.aborted) await this.stores.jobs.release([job.id], job.leaseOwner);
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
      const blob = await this.stores.blobs.find(digest);
      if (blob) return Number(blob.size);
    }
    return undefined;
  }

  /**
   * Records the placement and queues copies to the blob's targets that were neither placed nor queued
   * when the job was claimed (usually none: then no further statement).
   */
  private async done(job: ClaimedJob): Promise<void> {
    await this.stores.jobs.finish(job.id, job.digest, job.location, this.now());
    const covered = new Set([...job.placed, ...job.queued, job.location]);
    const missing = job.targets.filter((t) => !covered.has(t));
    if (missing.length) this.queued(await this.stores.jobs.enqueue(job.digest, missing, this.now()));
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
