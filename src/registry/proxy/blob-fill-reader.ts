/**
 * Readers of a fill in progress. Each reads bytes as the fill's watermark passes them (from the fill's
 * slots while they hold them, else from the spool), ends only once the fill verified the blob, and
 * errors when the fill fails before that. Each holds back the last byte it was asked for until
 * verification, so a ranged read never completes on unverified content either. Closing one (a client
 * hung up) only lets go of the spool; the fill goes on.
 *
 *   FillReader       positional reads into the caller's buffers (send-blob.ts recycles a few per
 *                    transfer): what a route sends a fill with when the size is known
 *   BlobFillReader   a Readable, for fills of unknown size; every chunk it pushes is a new buffer
 */
import { Readable } from 'node:stream';
import { RegistryError } from '../../oci/errors.js';
import type { PositionalReader } from '../../storage/blob-driver.js';
import type { BlobFillPump } from './blob-fill-pump.js';

/** Largest chunk a BlobFillReader pushes, and its read-ahead. */
const READ_BYTES = 512 * 1024;

/**
 * Positional reads of the bytes `[0, end)` of a fill (`end` undefined: the whole blob, of a size not
 * known yet). The caller has taken a spool reference (`spool.acquire()`) for it; `close` lets go of it.
 */
export class FillReader implements PositionalReader {
  private closed = false;

  constructor(
    private readonly fill: BlobFillPump,
    private readonly end: number | undefined,
  ) {}

  get size(): number {
    return this.fill.verifiedSize ?? this.fill.size ?? this.fill.releasable;
  }

  /**
   * Reads up to `length` bytes at `position` into `buffer` once the fill has them; resolves to the count
   * (0 only at the verified end). Rejects when the fill fails before verification, or when the range
   * ends past the verified size.
   */
  async read(buffer: Uint8Array, position: number, length: number): Promise<number> {
    for (;;) {
      const upTo = this.readableUpTo(position, length);
      if (upTo === undefined) return 0;
      if (upTo <= position) {
        await this.fill.progress();
        continue;
      }
      const inSlot = this.fill.peek(position, upTo);
      if (inSlot) {
        buffer.set(inSlot);
        return inSlot.byteLength;
      }
      // Not in a slot: from the spool, as far as it has been written.
      const inSpool = Math.min(upTo, this.fill.readable) - position;
      if (inSpool <= 0) {
        await this.fill.progress();
        continue;
      }
      const n = await this.fill.spool.read(buffer, position, inSpool);
      if (n === 0) throw new Error('blob fill spool is shorter than its watermark');
      return n;
    }
  }

  /**
   * How far a read at `position` of at most `length` bytes may go now (exclusive): at or below
   * `position` when it must wait (`progress`), undefined at the verified end. Throws the fill's failure.
   */
  readableUpTo(position: number, length: number): number | undefined {
    const fill = this.fill;
    const verified = fill.verifiedSize;
    if (verified === undefined && fill.error !== undefined) throw fill.error instanceof Error ? fill.error : new Error(String(fill.error));
    const end = this.end ?? verified ?? Infinity;
    if (verified !== undefined && end > verified) throw new RegistryError('RANGE_INVALID', `range ends past the blob's ${verified} bytes`);
    if (verified !== undefined && position >= end) return undefined;
    return Math.min(verified === undefined ? end - 1 : end, fill.releasable, position + length);
  }

  /** Resolves at the fill's next change. */
  progress(): Promise<void> {
    return this.fill.progress();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fill.spool.release();
  }
}

export class BlobFillReader extends Readable {
  private position: number;
  private readonly reader: FillReader;
  private busy = false;

  /** The caller has taken a spool reference (`spool.acquire()`) for this reader. */
  constructor(fill: BlobFillPump, range?: { start: number; end: number }) {
    super({ highWaterMark: READ_BYTES });
    this.position = range?.start ?? 0;
    this.reader = new FillReader(fill, range ? range.end + 1 : fill.size);
  }

  override _read(): void {
    if (!this.busy) void this.pump();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    try {
      for (;;) {
        if (this.destroyed) return;
        const upTo = this.reader.readableUpTo(this.position, READ_BYTES);
        if (upTo === undefined) {
          void this.reader.close();
          this.push(null);
          return;
        }
        if (upTo <= this.position) {
          await this.reader.progress();
          continue;
        }
        // What is there, copied out (a slot is reused once the fill moves on).
        const buffer = Buffer.allocUnsafe(upTo - this.position);
        const n = await this.reader.read(buffer, this.position, buffer.byteLength);
        if (this.destroyed) return;
        if (n === 0) continue;
        this.position += n;
        if (!this.push(n === buffer.byteLength ? buffer : buffer.subarray(0, n))) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.busy = false;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    void this.reader.close();
    callback(err);
  }
}
