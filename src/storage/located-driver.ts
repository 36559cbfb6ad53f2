/**
 * Several named storage locations behind one BlobDriver (geo-replication; locations.ts has the
 * contract replication relies on). The registry sees one driver:
 *
 *   writer(key)            the first preferred location that is up (a cached `check()` verdict, see
 *                          location-health.ts); a location that fails while the writer is opened is
 *                          passed over for the next one
 *   writer(key, append)    the location that holds `key`; a key no reachable location holds is new and
 *   move(from, to)         placed as a write is (move: the location holding `from`)
 *   stat, reader,          the first preferred location that holds `key`; a location that does not, or
 *   openPositional,        fails, is passed over for the next. Every location failing →
 *   redirectUrl            StorageUnavailableError; `key` absent from every location that answered →
 *                          not found (stat: undefined), except that a reader or a move whose key may
 *                          be in a failed location is unavailable (503)
 *                          (redirectUrl: the holder found is remembered for a while, see holder-cache.ts,
 *                          so a pull costs no stat; a delete forgets it)
 *   delete, sweepStaging   every location; a failed location does not stop the others, then throws
 *   list                   the union of every location's keys, each once, in key order (a merge of
 *                          the locations' ordered listings: constant memory)
 *   check                  resolves while at least one location can take writes
 *
 * A blob key that becomes visible in a location through this driver (a committed writer, a move onto
 * it) is reported to the `onCommitted` listeners with that location's name, after it is visible.
 *
 * A location "fails" when its driver throws StorageUnavailableError or a system error (an errno code:
 * EACCES, ENOTDIR, EIO...); the error is relabelled StorageUnavailableError naming the location, and
 * the location counts as down until its next check (`cacheMs` later) finds it back: meanwhile it is
 * not asked again, and counts as failed (an unreachable bucket costs its timeouts once, not on every
 * request). The verdicts and the relabelling are kept in locations-health.ts.
 *
 * With `requireIdentity` (wharf serve and the CLI commands, registry/location-identity.ts) a location
 * down at start, or marked down since, counts as up again only once its identity was verified: storage
 * that comes back as other storage is never read, written or deleted from.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import { assertValidKey, BlobNotFoundError, StorageUnavailableError, type BlobDriver, type BlobStat, type BlobWriter, type PositionalReader, type WriterOptions } from './blob-driver.js';
import { HolderCache, type HolderCacheOptions } from './holder-cache.js';
import { blobKeyDigest } from './keys.js';
import type { LocationHealthOptions } from './location-health.js';
import { combined, isLocationFailure, LocationsHealth } from './locations-health.js';
import { mergedListing } from './merged-listing.js';
import type { LocationHolders, StorageLocation, StorageLocations } from './locations.js';

export interface LocatedDriverOptions extends LocationHealthOptions {
  /** The redirects' cache of holders (holder-cache.ts). */
  holders?: HolderCacheOptions;
}

export class LocatedBlobDriver implements BlobDriver, StorageLocations {
  readonly name: string;
  readonly preferred: readonly StorageLocation[];
  /** Present when every location offers positional reads. */
  readonly openPositional?: (key: string, range?: { offset: number; length: number }) => Promise<PositionalReader>;
  /** Present when some location gives URLs of its own (the holder's URL, or none when it has none). */
  readonly redirectUrl?: (key: string) => Promise<string | undefined>;
  private readonly health: LocationsHealth;
  private readonly listeners: Array<(digest: Digest, location: string) => void> = [];
  private readonly holderCache: HolderCache;

  /** `locations` most preferred first; names are unique. */
  constructor(locations: readonly StorageLocation[], opts: LocatedDriverOptions = {}) {
    if (locations.length === 0) throw new Error('a located driver needs at least one location');
    const names = locations.map((l) => l.name);
    const repeated = names.find((n, i) => names.indexOf(n) !== i);
    if (repeated !== undefined) throw new Error(`storage location ${JSON.stringify(repeated)} is named twice`);
    this.preferred = Object.freeze(locations.map((l) => Object.freeze({ name: l.name, driver: l.driver })));
    this.health = new LocationsHealth(this.preferred, opts);
    this.name = `locations (${names.join(', ')})`;
    this.holderCache = new HolderCache(opts.holders);
    if (this.preferred.every((l) => l.driver.openPositional)) {
      this.openPositional = (key, range) => this.fromHolder(key, (l) => l.driver.openPositional!(key, range));
    }
    if (this.preferred.some((l) => l.driver.redirectUrl)) {
      this.redirectUrl = async (key) => {
        const holder = await this.rememberedHolder(key);
        return holder ? holder.driver.redirectUrl?.(key) : undefined;
      };
    }
  }

  get(name: string): StorageLocation | undefined {
    return this.preferred.find((l) => l.name === name);
  }

  onCommitted(listener: (digest: Digest, location: string) => void): void {
    this.listeners.push(listener);
  }

  /**
   * From now on a location counts as up only once `verify` resolved for it (an identity check: is it
   * the storage the other processes know under its name?): at once for the locations not named in
   * `verified`, and again each time it comes back after being down. Until then it is passed over as a
   * location that is down, by reads, writes, deletes and `holders` alike; a failed verification keeps
   * it down and is tried again at its next check.
   */
  requireIdentity(verify: (l: StorageLocation, signal: AbortSignal) => Promise<void>, verified: readonly string[]): void {
    this.health.requireIdentity(verify, verified);
  }

  async unusable(name: string): Promise<Error | undefined> {
    const l = this.preferred.find((x) => x.name === name);
    return l && this.health.knownDown(l);
  }

  async holders(key: string): Promise<LocationHolders> {
    assertValidKey(key);
    const answers = await Promise.all(
      this.preferred.map(async (l) => {
        // Other locations are all asked (replication wants every holder), but not one awaiting its identity check.
        if (await this.health.unconfirmed(l)) return 'failed';
        try {
          return (await l.driver.stat(key)) ? 'holds' : 'absent';
        } catch (err) {
          this.health.failure(l, err);
          return 'failed';
        }
      }),
    );
    const named = (what: string) => this.preferred.filter((_, i) => answers[i] === what).map((l) => l.name);
    return { holders: named('holds'), failed: named('failed') };
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    assertValidKey(key);
    const failed: StorageUnavailableError[] = [];
    for (const l of this.preferred) {
      const down = await this.health.knownDown(l);
      if (down) {
        failed.push(down);
        continue;
      }
      try {
        const s = await l.driver.stat(key);
        if (s) return s;
      } catch (err) {
        failed.push(this.health.failure(l, err));
      }
    }
    if (failed.length === this.preferred.length) throw combined(failed);
    return undefined;
  }

  reader(key: string, range?: { offset: number; length?: number }): Promise<Readable> {
    return this.fromHolder(key, (l) => l.driver.reader(key, range));
  }

  async writer(key: string, opts: WriterOptions = {}): Promise<BlobWriter> {
    assertValidKey(key);
    if (opts.append) {
      const holder = await this.holder(key);
      if (holder) return this.wrap(holder, key, await this.guard(holder, holder.driver.writer(key, opts)));
    }
    return this.place(key, opts);
  }

  async move(from: string, to: string): Promise<void> {
    assertValidKey(from);
    assertValidKey(to);
    await this.fromHolder(from, async (l) => {
      await l.driver.move(from, to);
      this.committed(to, l);
    });
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.holderCache.forget(key);
    const failed = await this.everywhere((l) => l.driver.delete(key));
    // Again: a redirect looking the key up while it was deleted may have remembered it.
    this.holderCache.forget(key);
    if (failed.length) throw combined(failed);
  }

  /** The union of the locations' keys in key order, each once (merged-listing.ts: constant memory). */
  async *list(prefix: string): AsyncIterable<string> {
    for (const l of this.preferred) {
      const down = await this.health.knownDown(l);
      if (down) throw down;
    }
    yield* mergedListing(
      this.preferred.map((l) => ({ name: `storage location "${l.name}"`, keys: l.driver.list(prefix), failed: (err: unknown) => this.health.failure(l, err) })),
    );
  }

  async check(): Promise<void> {
    return this.health.check();
  }

  async sweepStaging(olderThanMs: number): Promise<number> {
    let removed = 0;
    const failed = await this.everywhere(async (l) => {
      removed += (await l.driver.sweepStaging?.(olderThanMs)) ?? 0;
    });
    if (failed.length) throw combined(failed);
    return removed;
  }

  /** Runs `op` in every location not known to be down, one after another; the failures, named by location. */
  private async everywhere(op: (l: StorageLocation) => Promise<void>): Promise<StorageUnavailableError[]> {
    const failed: StorageUnavailableError[] = [];
    for (const l of this.preferred) {
      const down = await this.health.knownDown(l);
      if (down) {
        failed.push(down);
        continue;
      }
      try {
        await op(l);
      } catch (err) {
        failed.push(this.health.failure(l, err));
      }
    }
    return failed;
  }

  /** The location a new object goes to: the first preferred one that is up and opens the writer. */
  private async place(key: string, opts: WriterOptions): Promise<BlobWriter> {
    const refused: string[] = [];
    for (const l of this.preferred) {
      const verdict = await this.health.verdict(l);
      if (!verdict.up) {
        refused.push(`${l.name}: ${verdict.failure}`);
        continue;
      }
      try {
        return this.wrap(l, key, await l.driver.writer(key, opts));
      } catch (err) {
        if (!isLocationFailure(err)) throw err;
        refused.push(`${l.name}: ${this.health.failure(l, err).message}`);
      }
    }
    throw new StorageUnavailableError('every storage location', `no location can take writes (${refused.join('; ')})`);
  }

  /** The first location (in read order) that holds `key`; failed locations are passed over. */
  private async holder(key: string): Promise<StorageLocation | undefined> {
    for (const l of this.preferred) {
      if (await this.health.knownDown(l)) continue;
      try {
        if (await l.driver.stat(key)) return l;
      } catch (err) {
        this.health.failure(l, err);
      }
    }
    return undefined;
  }

  /**
   * The holder a redirect points at: the remembered one (holder-cache.ts) while its health verdict says
   * it is up (a check at most every `cacheMs`, not one per pull), otherwise the first holder in read
   * order, remembered.
   */
  private async rememberedHolder(key: string): Promise<StorageLocation | undefined> {
    const remembered = this.holderCache.get(key);
    const l = remembered === undefined ? undefined : this.get(remembered);
    if (l && (await this.health.verdict(l)).up) return l;
    const found = await this.holder(key);
    if (found) this.holderCache.set(key, found.name);
    return found;
  }

  /** `op` in the first location where it finds `key` (BlobNotFoundError: the next; a failure: the next). */
  private async fromHolder<T>(key: string, op: (l: StorageLocation) => Promise<T>): Promise<T> {
    assertValidKey(key);
    const failed: StorageUnavailableError[] = [];
    for (const l of this.preferred) {
      const down = await this.health.knownDown(l);
      if (down) {
        failed.push(down);
        continue;
      }
      try {
        return await op(l);
      } catch (err) {
        if (err instanceof BlobNotFoundError) continue;
        if (!isLocationFailure(err)) throw err;
        failed.push(this.health.failure(l, err));
      }
    }
    // Absent from every location that answered: it may be in one that did not.
    if (failed.length) throw combined(failed, `${key} may be in a location that failed`);
    throw new BlobNotFoundError(key);
  }

  private wrap(l: StorageLocation, key: string, w: BlobWriter): BlobWriter {
    const guard = <T>(p: Promise<T>) => this.guard(l, p);
    const wrapped: BlobWriter = {
      get size() {
        return w.size;
      },
      write: (chunk) => guard(w.write(chunk)),
      commit: async () => {
        await guard(w.commit());
        this.committed(key, l);
      },
      cancel: () => w.cancel(),
    };
    if (w.openReader) wrapped.openReader = () => w.openReader!();
    return wrapped;
  }

  /** Relabels a location's failure (and marks it down); other errors pass unchanged. */
  private async guard<T>(l: StorageLocation, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw isLocationFailure(err) ? this.health.failure(l, err) : err;
    }
  }

  private committed(key: string, l: StorageLocation): void {
    const digest = blobKeyDigest(key);
    if (digest === undefined) return;
    for (const listener of this.listeners) {
      try {
        listener(digest, l.name);
      } catch {
        // A listener's failure is its own; the blob is committed either way.
      }
    }
  }

}
