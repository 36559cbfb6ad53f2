/**
 * One blob fill: pumps an upstream body into storage through the verified write path (the one place
 * its digest and size are checked) while readers follow it. Readers follow the storage writer's
 * unfinished object when the driver can read one (WriterSpool: every byte is written once), or else a
 * spool file the fill writes as well (BlobFillSpool). Readers see a watermark (`releasable`) that never
 * passes bytes not yet written, and never reaches the blob's last byte before the digest and size are
 * verified: a reader of a wrong or truncated body can never deliver the complete content.
 *
 * Memory stays bounded: the source is read only while fewer than `PENDING_LIMIT` bytes wait to be
 * written, storage may lag at most one batch behind a spool file, and the last `RECENT_LIMIT` written
 * bytes stay in memory so that readers keeping up with the fill take them without a file read or a copy.
 */
import type { Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { VerifiedBlobWriter } from '../verified-write.js';
import { BlobFillSpool, WriterSpool, type FillSpool } from './blob-fill-spool.js';

/** Largest write to the spool and to storage; small chunks are coalesced up to it while a write runs. */
const BATCH_BYTES = 1024 * 1024;
/** Source bytes that may wait for the spool before the source is paused. */
const PENDING_LIMIT = 2 * BATCH_BYTES;
/** Spooled bytes kept in memory for readers at the head of the fill. */
const RECENT_LIMIT = 4 * BATCH_BYTES;

export interface FillSource {
  /** The body; a `Readable` is destroyed when the fill fails. */
  stream: AsyncIterable<Uint8Array>;
  /** The size the upstream announced, when it did. */
  size?: number;
}

export interface PumpOptions {
  digest: Digest;
  source: FillSource;
  storage: BlobDriver;
  spoolDir: string;
  maxBlobSize?: number;
  /** Called with the length of every chunk read from the source. */
  onBytes?: (n: number) => void;
}

export class BlobFillPump {
  /** Resolves after the blob is committed in storage; rejects when the fill failed. Never unhandled. */
  readonly done: Promise<{ size: number }>;
  /** Size when digest and size are verified; from then on every byte is releasable. */
  verifiedSize: number | undefined;
  /** Why the fill failed, once it did (possibly after verification, when the commit failed). */
  error: unknown;
  committed = false;

  private received = 0;
  /** Offset of the last chunk read from the source: held back while the size is unknown. */
  private lastChunkAt = 0;
  /** Bytes readers may take, from memory or the spool (short of the verified end, see `releasable`). */
  private spooled = 0;
  /** Bytes readable from the spool (when it follows storage, the writes lag `spooled` by a batch or two). */
  private written = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private sourceEnded = false;
  private sourceError: unknown;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;
  private waiters: Array<() => void> = [];
  /** The latest spooled batches, oldest first, at most `RECENT_LIMIT` bytes (plus the newest batch). */
  private recent: Array<{ at: number; bytes: Uint8Array }> = [];
  private recentBytes = 0;

  private constructor(
    private readonly opts: PumpOptions,
    readonly spool: FillSpool,
    private readonly writer: VerifiedBlobWriter,
  ) {
    this.done = this.run();
    this.done.catch(() => {});
  }

  /** Opens the spool and the storage writer and starts pumping; the source is the caller's on failure. */
  static async start(opts: PumpOptions): Promise<BlobFillPump> {
    const expected = { digest: opts.digest, size: opts.source.size };
    const writer = await VerifiedBlobWriter.open(opts.storage, expected);
    let spool: FillSpool;
    try {
      const follows = writer.canFollow;
      spool = follows ? new WriterSpool(() => writer.openReader()!) : await BlobFillSpool.create(opts.spoolDir);
    } catch (err) {
      await writer.cancel();
      throw err;
    }
    return new BlobFillPump(opts, spool, writer);
  }

  /** As `start`, with a spool file of its own whatever the driver offers (the path for drivers without BlobWriter.openReader). */
  static async startWithSpoolFile(opts: PumpOptions): Promise<BlobFillPump> {
    const expected = { digest: opts.digest, size: opts.source.size };
    const [spool, writer] = await Promise.allSettled([BlobFillSpool.create(opts.spoolDir), VerifiedBlobWriter.open(opts.storage, expected)]);
    if (spool.status === 'fulfilled' && writer.status === 'fulfilled') return new BlobFillPump(opts, spool.value, writer.value);
    if (spool.status === 'fulfilled') {
      await spool.value.unlink();
      spool.value.release();
    }
    if (writer.status === 'fulfilled') await writer.value.cancel();
    throw spool.status === 'rejected' ? spool.reason : (writer as PromiseRejectedResult).reason;
  }

  /** The announced size. */
  get size(): number | undefined {
    return this.opts.source.size;
  }

  /** Bytes readers may have: in the spool, and short of the blob's end until verified. */
  get releasable(): number {
    if (this.verifiedSize !== undefined) return this.verifiedSize;
    const size = this.opts.source.size;
    return Math.min(this.spooled, size !== undefined ? size - 1 : this.lastChunkAt);
  }

  /** Bytes readers may read from the spool; bytes past it and short of `releasable` are in memory (`peek`). */
  get readable(): number {
    return this.written;
  }

  /**
   * Bytes from `position` up to at most `end` (exclusive) when they are still in memory, without a copy;
   * undefined otherwise (read them from the spool). Never returns bytes past `releasable`.
   */
  peek(position: number, end: number): Uint8Array | undefined {
    const upTo = Math.min(end, this.releasable);
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const { at, bytes } = this.recent[i]!;
      if (position < at) continue;
      if (position >= at + bytes.byteLength || position >= upTo) return undefined;
      return bytes.subarray(position - at, Math.min(upTo, at + bytes.byteLength) - at);
    }
    return undefined;
  }

  /** Resolves at the next change of `releasable`, `verifiedSize` or `error`. */
  progress(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async run(): Promise<{ size: number }> {
    void this.produce();
    try {
      await this.consume();
      const result = this.writer.verify();
      this.verifiedSize = result.size;
      this.notify();
      await this.spool.opened();
      await this.writer.commit();
      this.committed = true;
      return result;
    } catch (err) {
      this.error = err ?? new Error('blob fill failed');
      this.notify();
      this.wakeProducer?.();
      destroySource(this.opts.source.stream);
      await this.writer.cancel().catch(() => {});
      throw this.error;
    } finally {
      this.recent = [];
      this.recentBytes = 0;
      this.notify();
      await this.spool.unlink().catch(() => {});
      this.spool.release();
    }
  }

  /** Reads the source into `pending`, pausing while the spool is `PENDING_LIMIT` behind. Never throws. */
  private async produce(): Promise<void> {
    const { size } = this.opts.source;
    const max = this.opts.maxBlobSize;
    try {
      for await (const chunk of this.opts.source.stream) {
        if (this.error !== undefined) break;
        if (chunk.byteLength === 0) continue;
        this.lastChunkAt = this.received;
        this.received += chunk.byteLength;
        this.opts.onBytes?.(chunk.byteLength);
        if (size !== undefined && this.received > size) {
          throw new RegistryError('SIZE_INVALID', `blob ${this.opts.digest}: upstream sent more than the ${size} bytes it announced`);
        }
        if (max !== undefined && this.received > max) {
          throw new RegistryError('DENIED', `blob ${this.opts.digest} is larger than the ${max} bytes the proxy cache accepts`);
        }
        this.pending.push(chunk);
        this.pendingBytes += chunk.byteLength;
        this.wakeConsumer?.();
        while (this.pendingBytes >= PENDING_LIMIT && this.error === undefined) {
          await new Promise<void>((resolve) => (this.wakeProducer = resolve));
        }
      }
    } catch (err) {
      this.sourceError = err ?? new Error('upstream body failed');
    } finally {
      this.sourceEnded = true;
      this.wakeConsumer?.();
    }
  }

  /** Writes pending batches to storage (and to a spool file of its own, when it keeps one). */
  private consume(): Promise<void> {
    return this.spool.followsStorage ? this.consumeFollowed() : this.consumeSpooled();
  }

  /**
   * Readers follow storage. A batch is theirs from memory as soon as it is hashed (in `write`), and
   * from storage once written there; at most two writes are in flight, far less than the memory
   * window, so every byte not yet written is still in memory. Every write settles before this returns.
   */
  private async consumeFollowed(): Promise<void> {
    const inflight: Array<Promise<void>> = [];
    try {
      for (let batch = await this.nextBatch(); batch; batch = await this.nextBatch()) {
        const at = this.spooled;
        const bytes = batch;
        const writing = this.writer.write(bytes).then(() => {
          this.written = at + bytes.byteLength;
          this.notify();
        });
        writing.catch(() => {}); // awaited below
        this.remember(at, bytes);
        this.spooled += bytes.byteLength;
        this.notify();
        // Opened once the first bytes went out, before anyone can fall behind the memory window.
        if (at === 0) void (this.spool as WriterSpool).open();
        inflight.push(writing);
        while (inflight.length >= 2) await inflight.shift();
      }
    } finally {
      await Promise.allSettled(inflight);
    }
    await Promise.all(inflight);
  }

  /** A spool file of its own: each batch goes to the spool and, one batch behind at most, to storage. */
  private async consumeSpooled(): Promise<void> {
    let stored: Promise<void> = Promise.resolve();
    try {
      for (let batch = await this.nextBatch(); batch; batch = await this.nextBatch()) {
        const spooling = this.spool.write(batch, this.spooled);
        const storing = this.writer.write(batch); // hashes now, while the spool write runs
        await spooling;
        this.remember(this.spooled, batch);
        this.spooled += batch.byteLength;
        this.written = this.spooled;
        this.notify();
        await stored;
        stored = storing;
      }
    } finally {
      await stored.catch(() => {});
    }
    await stored;
  }

  /** The next batch of pending source bytes; undefined once the source ended (throws its error). */
  private async nextBatch(): Promise<Uint8Array | undefined> {
    for (;;) {
      if (this.sourceError !== undefined) throw this.sourceError;
      if (this.pending.length) return this.takeBatch();
      if (this.sourceEnded) return undefined;
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
      this.wakeConsumer = undefined;
    }
  }

  private remember(at: number, bytes: Uint8Array): void {
    this.recent.push({ at, bytes });
    this.recentBytes += bytes.byteLength;
    while (this.recentBytes - this.recent[0]!.bytes.byteLength >= RECENT_LIMIT) {
      this.recentBytes -= this.recent.shift()!.bytes.byteLength;
    }
  }

  private takeBatch(): Uint8Array {
    let bytes = 0;
    let count = 0;
    while (count < this.pending.length && (count === 0 || bytes + this.pending[count]!.byteLength <= BATCH_BYTES)) {
      bytes += this.pending[count]!.byteLength;
      count++;
    }
    const parts = this.pending.splice(0, count);
    this.pendingBytes -= bytes;
    if (this.pendingBytes < PENDING_LIMIT) this.wakeProducer?.();
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
  }
}

/** Stops a `Readable` source (no error is emitted on it: nobody may be listening any more). */
export function destroySource(stream: AsyncIterable<Uint8Array>): void {
  const destroy = (stream as { destroy?: () => void }).destroy;
  if (typeof destroy === 'function') destroy.call(stream);
}
