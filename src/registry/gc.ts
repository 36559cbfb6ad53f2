/**
 * Online garbage collection: one pass removes, in this order,
 *
 *   1. tag rows no longer retained: history and expired tags past their namespace's time-machine window,
 *      hidden proxy-cache tags once ended or expired (an expired tag needs no write to become history:
 *      every live view reads `expires_at`, see db/tag-lifetime.ts);
 *   2. manifests that no tag row points at, no index lists as a child, that are not a referrer whose
 *      subject is still in the repository, and that were not pushed within `gc.grace_period`; an index
 *      goes first, then the children and referrers only it kept (re-examined until nothing changes).
 *      Referrer rule: a referrer (signature, SBOM…) lives as long as its subject; a subject is never kept
 *      by its referrers;
 *   3. links of blobs into repositories that no manifest of the repository uses, made before the grace
 *      period (a pushed layer waits that long for its manifest);
 *   4. blob rows nothing links or uses, then their bytes in storage;
 *   5. the storage sweep (gc-sweep.ts): bytes under blob keys that no blob row records, left by a crash,
 *      once written before the grace period; `sweepBatch` keys per scheduled pass, continuing where the
 *      last pass stopped (all of them with `sweepAll` and in a dry run).
 *
 * Every step works in batches of `gc.batch_size` rows, each in its own short transaction; no
 * transaction is open during storage I/O. On PostgreSQL batches are taken `FOR UPDATE SKIP LOCKED`, so
 * any number of GC workers (and pushes) run at once. Deleting bytes races with pushes of the same
 * digest; the per-digest guard settles it (db/blob-guard-store.ts): the blob row is deleted in a
 * transaction that also leaves a 'delete' guard, unless a writer's 'write' guard exists; the bytes are
 * deleted after that commit and before the guard expires; then the guard goes. A writer that meets the
 * guard waits for it before committing its bytes, so a re-upload during the deletion still ends with its
 * bytes present. A crash or storage error between the row and the bytes leaks bytes, never loses them;
 * the sweep finds them later, under the same guard.
 * Pushes (upload completion, monolithic uploads, mounts) take the guard; proxy-cache fills do not: a
 * cached blob whose bytes a concurrent deletion removed is fetched again on its next pull, since the
 * proxy checks storage before it serves a local copy.
 *
 * A pass reports counts, bytes and sample digests; a real pass that removed anything also writes one
 * `garbage_collection` audit entry (one per pass, not per manifest, so that large collections stay cheap).
 */
import type { BlobGuardStore } from '../db/blob-guard-store.js';
import type { GcPreviewStore } from '../db/gc-preview-store.js';
import type { GcClock, GcStore, LinkCursor, TagCursor } from '../db/gc-store.js';
import type { Digest } from '../oci/digest.js';
import type { Logger } from '../observability/logger.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { blobKey } from '../storage/keys.js';
import type { AuditService } from './accounts/audit-service.js';
import { StorageSweep } from './gc-sweep.js';

/** How long GC's 'delete' guard holds writers of a digest off while its bytes are deleted. */
export const DELETE_GUARD_MS = 5 * 60_000;
/** Bytes are not deleted once less than this is left of the guard (they leak instead). */
const GUARD_MARGIN_MS = 30_000;
const STORAGE_CONCURRENCY = 8;
const SAMPLE = 20;

export interface GcOptions {
  /** Manifests pushed, blobs linked or created this recently are never collected (ms). */
  gracePeriodMs: number;
  /** The time-machine window of namespaces without their own (ms). */
  timeMachineDefaultMs: number;
  /** Rows per batch. */
  batchSize: number;
  /** Blob keys in storage the sweep examines per pass (gc-sweep.ts); 0 or unset: no sweep. */
  sweepBatch?: number;
  now?: () => number;
  log?: Logger;
  audit?: AuditService;
}

export interface GcPart {
  count: number;
  bytes: number;
  /** Up to 20 of the digests. */
  sample: Digest[];
}

export interface GcReport {
  dryRun: boolean;
  /** Tag rows removed (history past the window, hidden tags expired). */
  tags: number;
  manifests: GcPart;
  /** Links of blobs into repositories removed. */
  links: number;
  blobs: GcPart;
  /** Blobs whose rows went but whose bytes could not be deleted (a storage error or a late pass). */
  bytesLeft: number;
  /** Bytes under blob keys that no blob row recorded (a crash left them), deleted by the storage sweep. */
  swept: GcPart;
  /** Blob keys in storage the sweep looked at. */
  sweptKeys: number;
  /** The pass stopped early (`signal`). */
  aborted: boolean;
  durationMs: number;
}

export interface GcStores {
  store: GcStore;
  preview: GcPreviewStore;
  guards: BlobGuardStore;
  storage: BlobDriver;
}

export class GarbageCollector {
  private readonly now: () => number;
  private readonly sweep: StorageSweep;

  constructor(
    private readonly deps: GcStores,
    private readonly opts: GcOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.sweep = new StorageSweep(deps, {
      keysPerPass: opts.sweepBatch ?? 0,
      batchSize: opts.batchSize,
      guardMs: DELETE_GUARD_MS,
      guardMarginMs: GUARD_MARGIN_MS,
      concurrency: STORAGE_CONCURRENCY,
      now: this.now,
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  /**
   * One pass (see the file comment); with `dryRun`, what it would remove, removing nothing. `sweepAll`
   * sweeps the whole storage listing instead of `sweepBatch` keys (when the sweep is on).
   */
  async run(o: { dryRun?: boolean; signal?: AbortSignal; sweepAll?: boolean } = {}): Promise<GcReport> {
    const started = this.now();
    const clock: GcClock = { now: started, graceCutoff: started - this.opts.gracePeriodMs, defaultWindowMs: this.opts.timeMachineDefaultMs };
    const report: GcReport = {
      dryRun: o.dryRun === true,
      tags: 0,
      manifests: part(),
      links: 0,
      blobs: part(),
      bytesLeft: 0,
      swept: part(),
      sweptKeys: 0,
      aborted: false,
      durationMs: 0,
    };
    const stop = () => (o.signal?.aborted ? (report.aborted = true) : false);
    report.tags = await this.collectTags(clock, report.dryRun, stop);
    if (report.dryRun) {
      const p = await this.deps.preview.preview(clock, SAMPLE);
      Object.assign(report, { manifests: p.manifests, links: p.links.count, blobs: p.blobs });
    } else {
      if (!stop()) await this.collectManifests(clock, report, stop);
      if (!stop()) await this.collectLinks(clock, report, stop);
      if (!stop()) await this.collectBlobs(clock, report, stop);
      await this.deps.guards.purgeExpired(this.now());
    }
    if (!stop()) {
      report.sweptKeys = await this.sweep.run({
        graceCutoff: clock.graceCutoff,
        dryRun: report.dryRun,
        all: o.sweepAll === true,
        stop,
        swept: (digest, size) => add(report.swept, digest, size),
      });
    }
    report.durationMs = this.now() - started;
    if (!report.dryRun) await this.record(report);
    return report;
  }

  private async collectTags(clock: GcClock, dryRun: boolean, stop: () => boolean): Promise<number> {
    let count = 0;
    for (const which of ['ended', 'expired'] as const) {
      let after: TagCursor | undefined;
      do {
        if (stop()) return count;
        const res = await this.deps.store.deleteTags(which, clock, after, this.opts.batchSize, dryRun);
        count += res.count;
        after = res.next;
      } while (after);
    }
    return count;
  }

  private async collectManifests(clock: GcClock, report: GcReport, stop: () => boolean): Promise<void> {
    const { store } = this.deps;
    let followUp = new Set<number>();
    const remove = async (ids: number[]) => {
      const { deleted, next } = await store.deleteManifests(ids, clock);
      for (const m of deleted) add(report.manifests, m.digest, m.size);
      for (const id of next) followUp.add(id);
    };
    for (let after = 0; ; ) {
      if (stop()) return;
      const ids = await store.manifestCandidates(clock, after, this.opts.batchSize);
      if (!ids.length) break;
      await remove(ids);
      after = ids[ids.length - 1]!;
    }
    // Children and referrers of what went may have lost the last thing that kept them.
    while (followUp.size && !stop()) {
      const ids = [...followUp];
      followUp = new Set();
      for (let i = 0; i < ids.length; i += this.opts.batchSize) await remove(ids.slice(i, i + this.opts.batchSize));
    }
  }

  private async collectLinks(clock: GcClock, report: GcReport, stop: () => boolean): Promise<void> {
    let after: LinkCursor | undefined;
    do {
      if (stop()) return;
      const res = await this.deps.store.unlinkUnused(clock, after, this.opts.batchSize);
      report.links += res.unlinked.length;
      after = res.next;
    } while (after);
  }

  private async collectBlobs(clock: GcClock, report: GcReport, stop: () => boolean): Promise<void> {
    let after: number | undefined = 0;
    do {
      if (stop()) return;
      const guardUntil = this.now() + DELETE_GUARD_MS;
      const res = await this.deps.store.deleteBlobs(clock, after, this.opts.batchSize, guardUntil);
      for (const b of res.blobs) add(report.blobs, b.digest, b.size);
      report.bytesLeft += await this.deleteBytes(res.blobs.map((b) => b.digest), guardUntil);
      await this.deps.guards.release(res.guards);
      after = res.next;
    } while (after !== undefined);
  }

  /** Deletes the bytes of blobs whose rows are gone, while their guards hold; returns how many were left. */
  private async deleteBytes(digests: Digest[], guardUntil: number): Promise<number> {
    let left = 0;
    let i = 0;
    const worker = async () => {
      while (i < digests.length) {
        const digest = digests[i++]!;
        if (this.now() > guardUntil - GUARD_MARGIN_MS) {
          left++;
          continue;
        }
        try {
          await this.deps.storage.delete(blobKey(digest));
        } catch (err) {
          left++;
          this.opts.log?.warn({ digest, err: (err as Error).message }, 'garbage collection could not delete blob bytes; they stay in storage');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(STORAGE_CONCURRENCY, digests.length) }, worker));
    return left;
  }

  private async record(r: GcReport): Promise<void> {
    if (!r.tags && !r.manifests.count && !r.links && !r.blobs.count && !r.swept.count) return;
    this.opts.log?.info(
      {
        tags: r.tags,
        manifests: r.manifests.count,
        links: r.links,
        blobs: r.blobs.count,
        bytes: r.blobs.bytes,
        bytes_left: r.bytesLeft,
        swept_blobs: r.swept.count,
        swept_bytes: r.swept.bytes,
        ms: r.durationMs,
      },
      'garbage collection removed unreferenced content',
    );
    await this.opts.audit
      ?.record('garbage_collection', {
        actor: { kind: 'system', name: 'gc' },
        metadata: {
          tags: r.tags,
          manifests: r.manifests.count,
          manifest_bytes: r.manifests.bytes,
          manifest_digests: r.manifests.sample,
          links: r.links,
          blobs: r.blobs.count,
          blob_bytes: r.blobs.bytes,
          blob_digests: r.blobs.sample,
          bytes_left_in_storage: r.bytesLeft,
          swept_blobs: r.swept.count,
          swept_bytes: r.swept.bytes,
          swept_digests: r.swept.sample,
          duration_ms: r.durationMs,
        },
      })
      .catch((err: unknown) => this.opts.log?.error({ err }, 'could not record the garbage-collection audit entry'));
  }
}

function part(): GcPart {
  return { count: 0, bytes: 0, sample: [] };
}

function add(p: GcPart, digest: Digest, size: number): void {
  p.count++;
  p.bytes += size;
  if (p.sample.length < SAMPLE) p.sample.push(digest);
}
