/** In-memory driver for tests: same contract as the others, nothing on disk. */
import { Readable } from 'node:stream';
import { assertValidKey, BlobNotFoundError, type BlobDriver, type BlobStat, type BlobWriter, type WriterOptions, heldToSize } from '../blob-driver.js';

const CHUNK = 64 * 1024;

export class MemoryBlobDriver implements BlobDriver {
  readonly name = 'memory';
  private readonly objects = new Map<string, { bytes: Buffer; modifiedAt: number }>();

  /** Memory is always there. */
  async check(): Promise<void> {}

  async stat(key: string): Promise<BlobStat | undefined> {
    assertValidKey(key);
    const o = this.objects.get(key);
    return o ? { size: o.bytes.byteLength, modifiedAt: o.modifiedAt } : undefined;
  }

  async reader(key: string, range?: { offset: number; length?: number }): Promise<Readable> {
    assertValidKey(key);
    const b = this.objects.get(key)?.bytes;
    if (!b) throw new BlobNotFoundError(key);
    const start = Math.min(range?.offset ?? 0, b.byteLength);
    const end = range?.length === undefined ? b.byteLength : Math.min(b.byteLength, start + range.length);
    const view = b.subarray(start, end);
    return Readable.from(
      (function* () {
        for (let i = 0; i < view.byteLength; i += CHUNK) yield view.subarray(i, i + CHUNK);
      })(),
    );
  }

  async writer(key: string, opts: WriterOptions = {}): Promise<BlobWriter> {
    assertValidKey(key);
    const objects = this.objects;
    const base = opts.append ? (objects.get(key)?.bytes ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let done = false;
    let size = base.byteLength;
    const w: BlobWriter = {
      get size() {
        return size;
      },
      async write(chunk) {
        if (done) throw new Error('write after commit or cancel');
        chunks.push(Buffer.from(chunk));
        size += chunk.byteLength;
      },
      async commit() {
        if (done) throw new Error('commit after commit or cancel');
        done = true;
        objects.set(key, { bytes: Buffer.concat([base, ...chunks]), modifiedAt: Date.now() });
      },
      async cancel() {
        done = true;
      },
      async openReader() {
        if (done) throw new Error('openReader after commit or cancel');
        return {
          get size() {
            return size;
          },
          async read(buffer: Uint8Array, position: number, length: number) {
            // `base` then `chunks`, as they were written.
            let at = 0;
            let copied = 0;
            for (const part of [base, ...chunks]) {
              const end = at + part.byteLength;
              if (position + copied < end && copied < length) {
                const from = position + copied - at;
                const n = Math.min(part.byteLength - from, length - copied);
                buffer.set(part.subarray(from, from + n), copied);
                copied += n;
              }
              at = end;
              if (copied >= length) break;
            }
            return copied;
          },
          async close() {},
        };
      },
    };
    return heldToSize(w, opts.append ? undefined : opts.size);
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.objects.delete(key);
  }

  async *list(prefix: string): AsyncIterable<string> {
    const p = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    for (const key of [...this.objects.keys()].filter((k) => k.startsWith(p)).sort()) yield key;
  }

  async move(from: string, to: string): Promise<void> {
    assertValidKey(from);
    assertValidKey(to);
    const o = this.objects.get(from);
    if (!o) throw new BlobNotFoundError(from);
    this.objects.set(to, o);
    this.objects.delete(from);
  }
}
