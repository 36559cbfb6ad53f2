/**
 * The storage sweep of garbage collection: deletes blob bytes that no `blobs` row records, which a crash
 * left behind (GC died between deleting a blob's row and its bytes; a writer died between committing
 * bytes under `blobKey(digest)` and recording the blob). Uploads in progress (`uploads/`) are not its
 * business: it lists blob keys only.
 *
 * For each listed digest with no row and no live guard (one query per `batchSize` keys) whose bytes were
 * written before the grace period, the sweep claims the digest with a 'delete' guard
 * (db/blob-guard-store.ts `beginSweep`, which re-checks under the digest's lock that there is still no
 * row and no guard), looks at the bytes again, deletes them, and releases the guard: the protocol of
 * GC's own deletions. A push of the same digest either registered its 'write' guard first (the sweep
 * leaves the digest alone) or waits for the sweep's guard and then writes its bytes, so it never ends
 * with a row whose bytes are gone.
 *
 * Scheduled passes examine at most `keysPerPass` keys each, continuing the listing where the previous
 * pass of this process stopped; the position lives in memory, and a new listing starts once one ends or
 * after a restart. A pass asked for `all` (`wharf gc`) and a dry run walk the whole listing from its
 * start and leave that position alone. A failure of the listing ends the sweep of that pass (logged);
 * a failure on one digest leaves its bytes for a later pass.
 */
import type { BlobGuardStore } from '../db/blob-guard-store.js';
import type { Digest } from '../oci/digest.js';
import type { Logger } from '../observability/logger.js';
import type { BlobDriver, BlobStat } from '../storage/blob-driver.js';
import { BLOBS_PREFIX, blobKey, blobKeyDigest } from '../storage/keys.js';

export interface SweepOptions {
  /** Keys a scheduled pass examines; 0 turns the sweep off. */
  keysPerPass: number;
  /** Digests looked up in the database at once. */
  batchSize: number;
  /** How long the sweep's 'delete' guard holds writers off (ms). */
  guardMs: number;
  /** Bytes are not deleted once less than this is left of the guard (ms). */
  guardMarginMs: number;
  /** Digests handled at once (storage round trips). */
  concurrency: number;
  now: () => number;
  log?: Logger;
}

export interface SweepPass {
  /** Bytes written at or after this are kept (ms since the epoch). */
  graceCutoff: number;
  dryRun: boolean;
  /** The whole listing from its start, instead of `keysPerPass` keys from where the last pass stopped. */
  all: boolean;
  stop: () => boolean;
  /** Told of every blob whose bytes were deleted (in a dry run: would be). */
  swept: (digest: Digest, size: number) => void;
}

export class StorageSweep {
  private cursor: AsyncIterator<string> | undefined;

  constructor(
    private readonly deps: { guards: BlobGuardStore; storage: BlobDriver },
    private readonly opts: SweepOptions,
  ) {}

  /** One pass (see the file comment); returns how many keys it examined. */
  async run(p: SweepPass): Promise<number> {
    if (this.opts.keysPerPass <= 0) return 0;
    const own = p.all || p.dryRun;
    const keys = own ? this.listing() : (this.cursor ??= this.listing());
    const limit = own ? Infinity : this.opts.keysPerPass;
    let examined = 0;
    let ended = false;
    try {
      while (examined < limit && !ended && !p.stop()) {
        const digests: Digest[] = [];
        while (digests.length < this.opts.batchSize && examined < limit) {
          const next = await keys.next();
          if (next.done) {
            ended = true;
            break;
          }
          examined++;
          const digest = blobKeyDigest(next.value);
          if (digest) digests.push(digest);
        }
        await this.sweepBatch(digests, p);
      }
    } catch (err) {
      ended = true;
      this.opts.log?.warn({ err: (err as Error).message, examined }, 'the storage sweep stopped early; it starts over at the next pass');
    } finally {
      if (own) await keys.return?.().catch(() => undefined);
      else if (ended && this.cursor === keys) this.cursor = undefined;
    }
    return examined;
  }

  private listing(): AsyncIterator<string> {
    return this.deps.storage.list(BLOBS_PREFIX)[Symbol.asyncIterator]();
  }

  private async sweepBatch(digests: Digest[], p: SweepPass): Promise<void> {
    if (!digests.length) return;
    const stray = await this.deps.guards.unrecorded(digests, this.opts.now());
    let i = 0;
    const worker = async () => {
      while (i < stray.length && !p.stop()) await this.sweepOne(stray[i++]!, p);
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, stray.length) }, worker));
  }

  private async sweepOne(digest: Digest, p: SweepPass): Promise<void> {
    const key = blobKey(digest);
    const old = (s: BlobStat | undefined): s is BlobStat => s !== undefined && s.modifiedAt < p.graceCutoff;
    let guard: number | undefined;
    try {
      const seen = await this.deps.storage.stat(key);
      if (!old(seen)) return;
      if (p.dryRun) return p.swept(digest, seen.size);
      const guardUntil = this.opts.now() + this.opts.guardMs;
      guard = await this.deps.guards.beginSweep(digest, this.opts.now(), guardUntil);
      if (guard === undefined) return;
      // No registered writer commits while the guard holds; bytes written since the first look stay.
      const again = await this.deps.storage.stat(key);
      if (!old(again) || this.opts.now() > guardUntil - this.opts.guardMarginMs) return;
      await this.deps.storage.delete(key);
      p.swept(digest, again.size);
    } catch (err) {
      this.opts.log?.warn({ digest, err: (err as Error).message }, 'the storage sweep could not delete blob bytes; they stay in storage');
    } finally {
      // A guard that cannot be released expires; writers of the digest wait until then.
      if (guard !== undefined) await this.deps.guards.release([guard]).catch(() => undefined);
    }
  }
}
