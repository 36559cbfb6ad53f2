/**
 * Single-flight blob fills for the proxy cache. A cache miss starts one upstream fetch per digest; the
 * body is written to storage through the verified write path, and every request for that digest reads
 * it while it grows: the latest bytes from the fill's recycled buffers, older ones from storage's
 * unfinished object — or from a spool file the fill writes too, for drivers that cannot read an
 * unfinished object (blob-fill-spool.ts). The fill outlives clients that hang up, commits only verified
 * bytes, and a reader never ends on bytes that failed verification.
 *
 *   join(d) ──► start() once ──► BlobFillPump ──► VerifiedBlobWriter ──► storage blobKey(d) (on match)
 *   join(d) ─┐                      │  └──► the writer's object (or a spool file) ─┐
 *   join(d) ─┘ (joined: same pump)  └──► slots (recent bytes) ────────────────────┴─► FillReader
 *                                                                                   (one per request)
 *
 * Callers check storage first: a blob committed by an earlier fill is read from storage, not joined.
 */
import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import type { BlobBody } from '../blobs.js';
import { BlobFillPump, destroySource, type FillSource } from './blob-fill-pump.js';
import { BlobFillReader, FillReader } from './blob-fill-reader.js';
import { FillSlots, type SlotPool } from './blob-fill-slots.js';
import { BlobFillSpool } from './blob-fill-spool.js';

/** Size of the buffers fills copy upstream bytes into, and how many idle ones stay for the next fill. */
const SLOT_BYTES = 1024 * 1024;
const IDLE_SLOTS = 8;
/** Size of the buffers fills copy upstream bytes into (an `alignedSlots` pool must have this size). */
export const FILL_SLOT_BYTES = SLOT_BYTES;

export type { FillSource } from './blob-fill-pump.js';

export interface BlobFillsOptions {
  storage: BlobDriver;
  /** Directory for the growing local copies (one file per fill, removed when it ends); created if missing. */
  spoolDir: string;
  /** A fill whose announced or received size exceeds this fails with `DENIED`. */
  maxBlobSize?: number;
  log?: { warn(obj: object, msg: string): void };
  /** Page-aligned buffers of FILL_SLOT_BYTES taken as slots first (blob-fill-slots.ts). */
  alignedSlots?: SlotPool;
}

/** Byte range, `end` inclusive, as in an HTTP `Range` header. */
export interface FillRange {
  start: number;
  end: number;
}

export interface FillHandle {
  /** The size the upstream announced, when it did. */
  readonly size: number | undefined;
  /** True when this request joined a fill another request started. */
  readonly joined: boolean;
  /**
   * The blob's bytes (or `range` of them) as they arrive. Ends only after digest and size are verified;
   * errors when the fill fails before that. Consume or destroy it: it holds the spool file open.
   * Throws `RANGE_INVALID` for a range outside the announced size.
   */
  open(range?: FillRange): Readable;
  /**
   * The same bytes as a body to send: positional reads into the sender's recycled buffers when the
   * size is known (the reads wait for the bytes, the last one for verification, and reject when the
   * fill fails), else `open`'s stream. Close the reader (or consume the stream) when done.
   */
  body(range?: FillRange): Promise<BlobBody>;
  /** Resolves after the blob is committed in storage; rejects when the fill failed. */
  readonly done: Promise<{ size: number }>;
}

export interface BlobFillStats {
  /** Upstream fetches started (calls of `start`). */
  started: number;
  /** Requests that joined a fill instead of starting one. */
  joined: number;
  /** Fills that failed, including failed starts. */
  failed: number;
  committed: number;
  bytesFromUpstream: number;
  inFlight: number;
}

export class BlobFills {
  private readonly fills = new Map<Digest, Promise<BlobFillPump>>();
  private readonly spools = new Set<string>();
  private readonly counts = { started: 0, joined: 0, failed: 0, committed: 0, bytesFromUpstream: 0 };
  private readonly opts: BlobFillsOptions;
  private readonly slots: FillSlots;

  constructor(opts: BlobFillsOptions) {
    this.opts = opts;
    this.slots = new FillSlots(SLOT_BYTES, IDLE_SLOTS, opts.alignedSlots);
  }

  /**
   * Joins the fill of `digest` in flight, or calls `start` and begins one. Every caller waiting on one
   * `start` gets its rejection; the next `join` after that calls `start` again.
   */
  async join(digest: Digest, start: () => Promise<FillSource>): Promise<FillHandle> {
    let entry = this.fills.get(digest);
    const joined = entry !== undefined;
    if (entry) {
      this.counts.joined++;
    } else {
      const begun = this.begin(digest, start);
      entry = begun;
      this.fills.set(digest, begun);
      const forget = () => {
        if (this.fills.get(digest) === begun) this.fills.delete(digest);
      };
      begun.then((pump) => pump.done.then(forget, forget), forget);
    }
    const pump = await entry;
    if (joined && pump.error !== undefined && pump.verifiedSize === undefined) {
      // The fill failed and is on its way out of the map: start a new one instead of joining a failure.
      if (this.fills.get(digest) === entry) this.fills.delete(digest);
      return this.join(digest, start);
    }
    return {
      size: pump.size,
      joined,
      done: pump.done,
      open: (range) => this.open(digest, pump, range),
      body: (range) => this.body(digest, pump, range),
    };
  }

  /**
   * The fill of `digest` in flight, joined without starting one: undefined when there is none, or when
   * it failed (to start, or before verification).
   */
  async follow(digest: Digest): Promise<FillHandle | undefined> {
    const entry = this.fills.get(digest);
    if (!entry) return undefined;
    const pump = await entry.catch(() => undefined);
    if (!pump || (pump.error !== undefined && pump.verifiedSize === undefined)) return undefined;
    return {
      size: pump.size,
      joined: true,
      done: pump.done,
      open: (range) => this.open(digest, pump, range),
      body: (range) => this.body(digest, pump, range),
    };
  }

  /** Whether a fill of `digest` is starting or running. */
  inFlight(digest: Digest): boolean {
    return this.fills.has(digest);
  }

  stats(): BlobFillStats {
    return { ...this.counts, inFlight: this.fills.size };
  }

  /** Removes spool files a crashed process left behind; call before serving. Returns how many. */
  sweepSpool(): Promise<number> {
    return BlobFillSpool.sweep(this.opts.spoolDir, this.spools);
  }

  private async begin(digest: Digest, start: () => Promise<FillSource>): Promise<BlobFillPump> {
    this.counts.started++;
    let source: FillSource;
    try {
      source = await start();
    } catch (err) {
      this.counts.failed++; // the caller's upstream error: the caller reports it
      throw err;
    }
    // Until the pump iterates it, an error on the body must not go unheard (it would crash the process);
    // the iteration still sees it.
    (source.stream as Partial<Readable>).on?.('error', () => {});
    let pump: BlobFillPump;
    try {
      const max = this.opts.maxBlobSize;
      if (max !== undefined && source.size !== undefined && source.size > max) {
        throw new RegistryError('DENIED', `blob ${digest} has ${source.size} bytes, more than the ${max} the proxy cache accepts`);
      }
      pump = await BlobFillPump.start({
        digest,
        source,
        storage: this.opts.storage,
        spoolDir: this.opts.spoolDir,
        slots: this.slots,
        maxBlobSize: max,
        onBytes: (n) => (this.counts.bytesFromUpstream += n),
      });
    } catch (err) {
      destroySource(source.stream);
      this.counts.failed++;
      this.opts.log?.warn({ digest, err }, 'blob fill could not start');
      throw err;
    }
    const spoolPath = pump.spool.path;
    if (spoolPath !== undefined) this.spools.add(spoolPath);
    pump.done.then(
      () => this.counts.committed++,
      (err) => {
        this.counts.failed++;
        this.opts.log?.warn({ digest, err }, 'blob fill failed; nothing was cached');
      },
    ).finally(() => {
      if (spoolPath !== undefined) this.spools.delete(spoolPath);
    });
    return pump;
  }

  private open(digest: Digest, pump: BlobFillPump, range?: FillRange): Readable {
    checkRange(pump, range);
    if (pump.spool.acquire()) return new BlobFillReader(pump, range);
    // The fill ended and its last reader let go of the spool: a committed blob is read from storage.
    if (pump.committed) return fromStorage(this.opts.storage, blobKey(digest), range);
    const err = failure(pump);
    return new Readable({ read() { this.destroy(err); } });
  }

  private async body(digest: Digest, pump: BlobFillPump, range?: FillRange): Promise<BlobBody> {
    const size = pump.size;
    if (size === undefined) return { kind: 'stream', stream: this.open(digest, pump, range) };
    checkRange(pump, range);
    const offset = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : size;
    if (pump.spool.acquire()) return { kind: 'positional', reader: new FillReader(pump, offset + length), offset, length };
    const storage = this.opts.storage;
    if (pump.committed && storage.openPositional) return { kind: 'positional', reader: await storage.openPositional(blobKey(digest), { offset, length }), offset, length };
    if (pump.committed) return { kind: 'stream', stream: fromStorage(storage, blobKey(digest), range) };
    const err = failure(pump);
    return { kind: 'positional', reader: { size, read: () => Promise.reject(err), close: async () => {} }, offset, length };
  }
}

function checkRange(pump: BlobFillPump, range?: FillRange): void {
  if (range && (range.start < 0 || range.end < range.start || (pump.size !== undefined && range.end >= pump.size))) {
    throw new RegistryError('RANGE_INVALID', `range ${range.start}-${range.end} is outside the blob's ${pump.size ?? 'unknown'} bytes`);
  }
}

function failure(pump: BlobFillPump): Error {
  return pump.error instanceof Error ? pump.error : new Error('blob fill failed');
}

function fromStorage(storage: BlobDriver, key: string, range?: FillRange): Readable {
  const window = range && { offset: range.start, length: range.end - range.start + 1 };
  return Readable.from(
    (async function* () {
      yield* await storage.reader(key, window);
    })(),
    { objectMode: false },
  );
}
