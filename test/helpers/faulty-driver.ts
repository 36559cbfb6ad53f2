/**
 * Fault injection for storage locations: a BlobDriver that passes everything to a real driver until it
 * is switched down, then throws StorageUnavailableError from every call (and from writers opened before,
 * on their next write or commit), as a bucket that stopped answering does.
 */
import type { Readable } from 'node:stream';
import { StorageUnavailableError, type BlobDriver, type BlobStat, type BlobWriter, type PositionalReader } from '../../src/storage/blob-driver.js';

export class FaultyDriver implements BlobDriver {
  readonly name: string;
  down = false;
  /** Calls of `check()` so far. */
  checks = 0;
  /** Calls of every other method (and of writers' write and commit) so far. */
  calls = 0;
  readonly openPositional?: (key: string) => Promise<PositionalReader>;

  constructor(
    readonly inner: BlobDriver,
    private readonly label = inner.name,
  ) {
    this.name = inner.name;
    if (inner.openPositional) this.openPositional = (key) => this.call(() => inner.openPositional!(key));
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    this.calls++;
    this.fail();
    return fn();
  }

  private fail(): void {
    if (this.down) throw new StorageUnavailableError(this.label, 'switched down by the test');
  }

  async check(): Promise<void> {
    this.checks++;
    this.fail();
    return this.inner.check();
  }
  stat(key: string): Promise<BlobStat | undefined> {
    return this.call(() => this.inner.stat(key));
  }
  reader(key: string, range?: { offset: number; length?: number }): Promise<Readable> {
    return this.call(() => this.inner.reader(key, range));
  }
  async writer(key: string, opts?: { append?: boolean }): Promise<BlobWriter> {
    const w = await this.call(() => this.inner.writer(key, opts));
    const wrapped: BlobWriter = {
      get size() {
        return w.size;
      },
      write: (chunk) => this.call(() => w.write(chunk)),
      commit: () => this.call(() => w.commit()),
      cancel: () => w.cancel(),
    };
    if (w.openReader) wrapped.openReader = () => w.openReader!();
    return wrapped;
  }
  delete(key: string): Promise<void> {
    return this.call(() => this.inner.delete(key));
  }
  async *list(prefix: string): AsyncIterable<string> {
    this.calls++;
    this.fail();
    yield* this.inner.list(prefix);
  }
  move(from: string, to: string): Promise<void> {
    return this.call(() => this.inner.move(from, to));
  }
  sweepStaging(olderThanMs: number): Promise<number> {
    return this.call(async () => (await this.inner.sweepStaging?.(olderThanMs)) ?? 0);
  }
}
