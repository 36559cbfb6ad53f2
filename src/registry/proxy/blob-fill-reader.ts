/**
 * A reader of a fill in progress: streams bytes from the spool as the watermark passes them, ends only
 * once the fill verified the blob, and errors when the fill fails before that. It holds back the last
 * byte it was asked for until verification, so a ranged read never completes on unverified content
 * either. Destroying it (a client hung up) only lets go of the spool; the fill goes on.
 */
import { Readable } from 'node:stream';
import { RegistryError } from '../../oci/errors.js';
import type { BlobFillPump } from './blob-fill-pump.js';

/** Largest read from the spool, and the reader's read-ahead. */
const READ_BYTES = 512 * 1024;

export class BlobFillReader extends Readable {
  private position: number;
  /** Exclusive end; undefined: the end of a blob whose size is not known yet. */
  private readonly end: number | undefined;
  private busy = false;
  private released = false;

  /** The caller has taken a spool reference (`spool.acquire()`) for this reader. */
  constructor(
    private readonly fill: BlobFillPump,
    range?: { start: number; end: number },
  ) {
    super({ highWaterMark: READ_BYTES });
    this.position = range?.start ?? 0;
    this.end = range ? range.end + 1 : fill.size;
  }

  override _read(): void {
    if (!this.busy) void this.pump();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    try {
      for (;;) {
        if (this.destroyed) return;
        const fill = this.fill;
        const verified = fill.verifiedSize;
        if (verified === undefined && fill.error !== undefined) {
          this.destroy(fill.error instanceof Error ? fill.error : new Error(String(fill.error)));
          return;
        }
        const end = this.end ?? verified ?? Infinity;
        if (verified !== undefined && end > verified) {
          this.destroy(new RegistryError('RANGE_INVALID', `range ends past the blob's ${verified} bytes`));
          return;
        }
        if (verified !== undefined && this.position >= end) {
          this.release();
          this.push(null);
          return;
        }
        const upTo = Math.min(verified === undefined ? end - 1 : end, fill.releasable);
        if (upTo <= this.position) {
          await fill.progress();
          continue;
        }
        const length = Math.min(upTo - this.position, READ_BYTES);
        const recent = fill.peek(this.position, this.position + length);
        if (recent) {
          this.position += recent.byteLength;
          if (!this.push(recent)) return;
          continue;
        }
        // Not in memory: from the spool, as far as it has been written.
        const inSpool = Math.min(length, fill.readable - this.position);
        if (inSpool <= 0) {
          await fill.progress();
          continue;
        }
        const buffer = Buffer.allocUnsafe(inSpool);
        const n = await fill.spool.read(buffer, this.position, inSpool);
        if (this.destroyed) return;
        if (n === 0) throw new Error('blob fill spool is shorter than its watermark');
        this.position += n;
        if (!this.push(n === inSpool ? buffer : buffer.subarray(0, n))) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.busy = false;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.release();
    callback(err);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.fill.spool.release();
  }
}
