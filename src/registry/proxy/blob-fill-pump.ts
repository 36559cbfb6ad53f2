/**
 * One blob fill: pumps an upstream body into storage through the verified write path (the one place
 * its digest and size are checked) while readers follow it.
 *
 *   upstream chunk ──copy──► slot (1 MiB, recycled) ──► readers copy from it at once
 *                               └─ full ──► VerifiedBlobWriter.write: hash, write ──► storage (+ spool file)
 *
 * Bytes are copied into a few recycled slots (blob-fill-slots.ts) as they arrive, and readers take them
 * from there at once; a full slot is hashed and written to storage in one piece. A slot is reused once
 * storage holds its bytes and it is older than the latest `RECENT_LIMIT` bytes: readers further behind
 * read the storage writer's unfinished object (WriterSpool), or a spool file the fill writes as well
 * (BlobFillSpool) when the driver cannot read one. Every byte is in a slot or written, so readers always
 * find it. Readers see a watermark (`releasable`) that never reaches the blob's last byte before digest
 * and size are verified: a reader of a wrong or truncated body can never deliver the complete content.
 *
 * Why slots: keeping the upstream's chunks (or concatenations of them) until they were written and read
 * made every byte of a fill an ArrayBuffer that outlived V8's young generation, and that external memory
 * drove V8 into a major collection every few MiB: more CPU than hashing, writing and sending together.
 *
 * Memory stays bounded: the source is paused while `UNSTORED_LIMIT` bytes wait for storage, so a fill
 * holds at most about `RECENT_LIMIT + UNSTORED_LIMIT` bytes in slots.
 */
import type { Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { VerifiedBlobWriter } from '../verified-write.js';
import { BlobFillSpool, WriterSpool, type FillSpool } from './blob-fill-spool.js';
import type { FillSlots } from './blob-fill-slots.js';

/** Bytes received but not yet in storage (nor in the spool) before the source is paused. */
const UNSTORED_LIMIT = 3 * 1024 * 1024;
/** Stored bytes kept in slots for readers near the head of the fill. */
const RECENT_LIMIT = 4 * 1024 * 1024;

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
  /** The buffers bytes are copied into; shared by the fills of one process. */
  slots: FillSlots;
  maxBlobSize?: number;
  /** Called with the length of every chunk read from the source. */
  onBytes?: (n: number) => void;
}

interface Slot {
  /** Blob offset of the slot's first byte. */
  at: number;
  bytes: Buffer;
  filled: number;
  /** Storage (and the spool file, if any) hold the slot's bytes. */
  stored: boolean;
}

export class BlobFillPump {
  /** Resolves after the blob is committed in storage; rejects when the fill failed. Never unhandled. */
  readonly done: Promise<{ size: number }>;
  /** Size when digest and size are verified; from then on every byte is releasable. */
  verifiedSize: number | undefined;
  /** Why the fill failed, once it did (possibly after verification, when the commit failed). */
  error: unknown;
  committed = false;

  /** Bytes read from the source, all in slots or stored. */
  private received = 0;
  /** Offset of the last chunk read from the source: held back while the size is unknown. */
  private lastChunkAt = 0;
  /** Bytes readable from the spool: the stored prefix. */
  private written = 0;
  /** Live slots in blob order: the recent stored ones, those being written, and the one being filled. */
  private slots: Slot[] = [];
  private filling: Slot | undefined;
  private readonly writes = new Set<Promise<void>>();
  private writeError: unknown;
  private wakeProducer: (() => void) | undefined;
  private waiters: Array<() => void> = [];
  private notifyScheduled = false;

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

  /** The announced size. */
  get size(): number | undefined {
    return this.opts.source.size;
  }

  /** Bytes readers may have: received, and short of the blob's end until verified. */
  get releasable(): number {
    if (this.verifiedSize !== undefined) return this.verifiedSize;
    const size = this.opts.source.size;
    return Math.min(this.received, size !== undefined ? size - 1 : this.lastChunkAt);
  }

  /** Bytes readers may read from the spool; bytes past it and short of `releasable` are in slots (`peek`). */
  get readable(): number {
    return this.written;
  }

  /**
   * A view of the bytes from `position` up to at most `end` (exclusive) when they are still in a slot,
   * undefined otherwise (read them from the spool). Never past `releasable`. The view is only valid
   * until the caller yields to the event loop (the slot is then recycled): copy it at once.
   */
  peek(position: number, end: number): Uint8Array | undefined {
    const upTo = Math.min(end, this.releasable);
    const slots = this.slots;
    if (position >= upTo || !slots.length) return undefined;
    const first = slots[0]!;
    if (position < first.at) return undefined;
    const slot = slots[Math.floor((position - first.at) / this.opts.slots.slotBytes)];
    if (!slot || position >= slot.at + slot.filled) return undefined;
    return slot.bytes.subarray(position - slot.at, Math.min(upTo, slot.at + slot.filled) - slot.at);
  }

  /** Resolves at the next change of `releasable`, `readable`, `verifiedSize` or `error`. */
  progress(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    if (!waiters.length) return;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Wakes the readers once the chunks read from the socket in this turn of the event loop are all in:
   * a reader then copies them in one piece and sends them in one write.
   */
  private notifySoon(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      this.notify();
    });
  }

  private async run(): Promise<{ size: number }> {
    try {
      await this.pumpSource();
      if (this.filling) this.seal(this.filling);
      await this.settleWrites();
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
      destroySource(this.opts.source.stream);
      await this.writer.cancel().catch(() => {});
      throw this.error;
    } finally {
      // No write uses a slot any more (the cancel above awaited storage's; the spool's are settled here).
      await Promise.allSettled(this.writes);
      for (const slot of this.slots) this.opts.slots.give(slot.bytes);
      this.slots = [];
      this.filling = undefined;
      this.notify();
      await this.spool.unlink().catch(() => {});
      this.spool.release();
    }
  }

  /** Copies the source into slots, pausing while `UNSTORED_LIMIT` bytes wait for storage. */
  private async pumpSource(): Promise<void> {
    const { size } = this.opts.source;
    const max = this.opts.maxBlobSize;
    for await (const chunk of this.opts.source.stream) {
      if (chunk.byteLength === 0) continue;
      const total = this.received + chunk.byteLength;
      this.opts.onBytes?.(chunk.byteLength);
      if (size !== undefined && total > size) {
        throw new RegistryError('SIZE_INVALID', `blob ${this.opts.digest}: upstream sent more than the ${size} bytes it announced`);
      }
      if (max !== undefined && total > max) {
        throw new RegistryError('DENIED', `blob ${this.opts.digest} is larger than the ${max} bytes the proxy cache accepts`);
      }
      const first = this.received === 0;
      this.lastChunkAt = this.received;
      this.copyIn(chunk);
      this.notifySoon();
      // Opened once the first bytes went out, before anyone can fall behind the slots.
      if (first && this.spool.followsStorage) void (this.spool as WriterSpool).open();
      while (this.writeError === undefined && this.received - this.written >= UNSTORED_LIMIT) {
        await new Promise<void>((resolve) => (this.wakeProducer = resolve));
        this.wakeProducer = undefined;
      }
      if (this.writeError !== undefined) throw this.writeError;
    }
  }

  private copyIn(chunk: Uint8Array): void {
    let from = 0;
    while (from < chunk.byteLength) {
      let slot = this.filling;
      if (!slot) {
        slot = this.filling = { at: this.received, bytes: this.opts.slots.take(), filled: 0, stored: false };
        this.slots.push(slot);
      }
      const n = Math.min(chunk.byteLength - from, slot.bytes.byteLength - slot.filled);
      slot.bytes.set(n === chunk.byteLength ? chunk : chunk.subarray(from, from + n), slot.filled);
      slot.filled += n;
      from += n;
      this.received += n;
      if (slot.filled === slot.bytes.byteLength) this.seal(slot);
    }
  }

  /** Hashes a slot's bytes and writes them to storage (and to the spool file, when the fill keeps one). */
  private seal(slot: Slot): void {
    this.filling = undefined;
    const bytes = slot.bytes.subarray(0, slot.filled);
    const storing = this.writer.write(bytes);
    const writing = this.spool.followsStorage ? storing : Promise.all([storing, this.spool.write(bytes, slot.at)]);
    const settled: Promise<void> = writing.then(
      () => {
        slot.stored = true;
        this.advance();
      },
      (err: unknown) => {
        this.writeError ??= err ?? new Error('blob fill write failed');
        this.wakeProducer?.();
      },
    );
    this.writes.add(settled);
    void settled.then(() => this.writes.delete(settled));
  }

  /** Moves the stored watermark over the slots written in order, and recycles those readers no longer need. */
  private advance(): void {
    for (const slot of this.slots) {
      if (slot.at + slot.filled <= this.written) continue;
      if (!slot.stored || slot.at !== this.written) break;
      this.written = slot.at + slot.filled;
    }
    let drop = 0;
    while (drop < this.slots.length) {
      const slot = this.slots[drop]!;
      if (!slot.stored || slot.at + slot.filled > this.written || this.received - (slot.at + slot.filled) < RECENT_LIMIT) break;
      this.opts.slots.give(slot.bytes);
      drop++;
    }
    if (drop) this.slots.splice(0, drop);
    this.notify();
    this.wakeProducer?.();
  }

  /** Waits for every write; throws the first failure. */
  private async settleWrites(): Promise<void> {
    while (this.writes.size) await Promise.all(this.writes);
    if (this.writeError !== undefined) throw this.writeError;
  }
}

/** Stops a `Readable` source (no error is emitted on it: nobody may be listening any more). */
export function destroySource(stream: AsyncIterable<Uint8Array>): void {
  const destroy = (stream as { destroy?: () => void }).destroy;
  if (typeof destroy === 'function') destroy.call(stream);
}
