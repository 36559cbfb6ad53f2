/**
 * Large writes of a new blob file around the page cache (O_DIRECT).
 *
 * A blob is written once, in order, and often read later by other processes or not at all; through the
 * page cache each byte is first copied into freshly allocated cache pages. That copy is the writing
 * thread's CPU, and on virtual machines whose memory the host backs lazily (microVMs, ballooned guests)
 * every new page also exits to the host: a 256 MiB proxy fill measured 250–500 MB/s there, slower than
 * the network it came from, so the fill (and the client it feeds) waited for its own storage. A direct
 * write hands the bytes to the device from the writer's buffer: the time is spent waiting for the disk,
 * not on a core (650–700 MB/s on the same machine).
 *
 * Direct I/O needs aligned memory, positions and lengths (DIRECT_BLOCK). A write of at least DIRECT_MIN
 * bytes that starts on a block boundary from page-aligned memory (a proxy fill's slot) is written as it
 * is; any other is copied into a page-aligned staging buffer (aligned-buffers.ts) after the bytes of
 * the file's last, partial block (kept in `pending`), and its whole blocks are written directly; the
 * remainder (less than a block) goes through the page cache, so every byte written is readable when
 * `write` resolves, and the next direct write rewrites that block whole. Small writes, and any write
 * when no staging buffer is free, go through the page cache as before. A filesystem that refuses
 * direct I/O (tmpfs, some FUSE and network filesystems) is found out on the first attempt and written
 * through the page cache from then on.
 *
 * Writes of one file may overlap in time only when the later one starts on a block boundary (the
 * caller chains the others): the partial block is written by one write and rewritten by the next.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { AlignedBuffers, DIRECT_BLOCK, isPageAligned } from '../aligned-buffers.js';

/** Writes smaller than this go through the page cache (a direct write waits for the device). */
export const DIRECT_MIN = 256 * 1024;
/** A proxy fill's 1 MiB slot plus the partial block before it fits one staging buffer. */
const STAGING_BYTES = 1024 * 1024 + DIRECT_BLOCK;

/** Shared by every file being written in this process. */
const staging = new AlignedBuffers(STAGING_BYTES, 4, 4);

/** Writes through the page cache at a position. */
export type CachedWrite = (bytes: Uint8Array, position: number) => Promise<void>;

export class DirectWrites {
  /** The first `position % DIRECT_BLOCK` bytes of the file's last block, as written. */
  private readonly pending = Buffer.alloc(DIRECT_BLOCK);
  private refused = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly buffers: AlignedBuffers,
  ) {}

  /**
   * A second handle on `path` for direct writes; undefined when the filesystem refuses O_DIRECT
   * (`open` fails with EINVAL there).
   */
  static async open(path: string, buffers: AlignedBuffers = staging): Promise<DirectWrites | undefined> {
    try {
      return new DirectWrites(await open(path, constants.O_WRONLY | constants.O_DIRECT), buffers);
    } catch (err) {
      if (refusesDirect(err)) return undefined;
      throw err;
    }
  }

  /** Whether a direct write failed as unsupported (later files need not try). */
  get unsupported(): boolean {
    return this.refused;
  }

  /** Writes `chunk` at `at`, the file's end: its whole blocks directly when it is large enough. */
  async write(chunk: Uint8Array, at: number, cached: CachedWrite): Promise<void> {
    if (this.refused || chunk.byteLength < DIRECT_MIN) {
      await cached(chunk, at);
      this.keepTail(chunk, at);
      return;
    }
    let from = 0;
    let carry = at % DIRECT_BLOCK;
    let blockStart = at - carry;
    if (carry === 0 && isPageAligned(chunk)) {
      // Already in aligned memory (a proxy fill's slot): its whole blocks go as they are.
      const whole = chunk.byteLength - (chunk.byteLength % DIRECT_BLOCK);
      if (await this.writeDirect(chunk, whole, at)) from = whole;
      if (from === chunk.byteLength) return;
      const rest = chunk.subarray(from);
      await cached(rest, at + from);
      this.keepTail(rest, at + from);
      return;
    }
    while (from < chunk.byteLength) {
      const buffer = this.refused ? undefined : this.buffers.take();
      if (!buffer) {
        const rest = chunk.subarray(from);
        await cached(rest, at + from);
        this.keepTail(rest, at + from);
        return;
      }
      try {
        buffer.set(this.pending.subarray(0, carry), 0);
        const n = Math.min(chunk.byteLength - from, buffer.byteLength - carry);
        buffer.set(from === 0 && n === chunk.byteLength ? chunk : chunk.subarray(from, from + n), carry);
        const total = carry + n;
        const whole = total - (total % DIRECT_BLOCK);
        // n >= DIRECT_MIN > DIRECT_BLOCK, except for a last piece, so `whole` covers the carried bytes.
        if (whole > 0 && !(await this.writeDirect(buffer, whole, blockStart))) await cached(buffer.subarray(0, whole), blockStart);
        const left = total - whole;
        if (left > 0) {
          const tail = buffer.subarray(whole, total);
          await cached(tail, blockStart + whole);
          this.pending.set(tail, 0);
        }
        from += n;
        blockStart += whole;
        carry = left;
      } finally {
        this.buffers.give(buffer);
      }
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** False when the filesystem refused the direct write (nothing was written). */
  private async writeDirect(buffer: Uint8Array, length: number, position: number): Promise<boolean> {
    let done = 0;
    while (done < length) {
      let written: number;
      try {
        ({ bytesWritten: written } = await this.fh.write(buffer, done, length - done, position + done));
      } catch (err) {
        if (done === 0 && refusesDirect(err)) {
          this.refused = true;
          return false;
        }
        throw err;
      }
      if (written <= 0) throw new Error(`direct write at ${position + done} wrote nothing`);
      done += written;
      if (done < length && done % DIRECT_BLOCK !== 0) {
        // A short write that ends inside a block: the rest cannot be written directly.
        this.refused = true;
        throw new Error(`direct write at ${position} stopped after ${done} of ${length} bytes`);
      }
    }
    return true;
  }

  /** After `chunk` was written at `at` through the page cache: remember the file's partial last block. */
  private keepTail(chunk: Uint8Array, at: number): void {
    const end = at + chunk.byteLength;
    const start = end - (end % DIRECT_BLOCK);
    if (start >= at) this.pending.set(chunk.subarray(start - at), 0);
    else this.pending.set(chunk, at - start);
  }
}

function refusesDirect(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'EINVAL' || code === 'EOPNOTSUPP' || code === 'ENOTSUP';
}
