/**
 * Filesystem driver: each key is a file under `root`. New objects are written to `root/.tmp/` and
 * renamed into place on commit (same filesystem, so the rename is atomic); appends write in place and
 * roll back with a truncate on cancel. Large writes of a new object go around the page cache where the
 * filesystem allows it (direct-writes.ts).
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { DIRECT_BLOCK } from '../aligned-buffers.js';
import { DirectWrites } from './direct-writes.js';
import { assertValidKey, BlobNotFoundError, StorageUnavailableError, type BlobDriver, type BlobStat, type BlobWriter, type PositionalReader, type WriterOptions, heldToSize } from '../blob-driver.js';

const READ_CHUNK = 1024 * 1024;
const TMP_DIR = '.tmp';

export class FsBlobDriver implements BlobDriver {
  readonly name = 'filesystem';
  /** Off by configuration, or once the filesystem refused a direct write. */
  private directIo: boolean;

  constructor(
    private readonly root: string,
    private readonly opts: { fsync?: boolean; directIo?: boolean } = {},
  ) {
    this.directIo = opts.directIo !== false;
  }

  /** The root directory exists (it is created if missing) and this process may read and write it. */
  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      await access(this.root, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new StorageUnavailableError(`directory ${this.root}`, e.code ?? e.message, err);
    }
  }

  private path(key: string): string {
    assertValidKey(key);
    return join(this.root, key);
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { size: s.size, modifiedAt: s.mtimeMs } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async reader(key: string, range?: { offset: number; length?: number }): Promise<Readable> {
    const fh = await this.openForRead(key);
    const start = range?.offset ?? 0;
    const end = range?.length === undefined ? undefined : start + range.length - 1;
    if (end !== undefined && end < start) {
      await fh.close();
      return Readable.from([]);
    }
    return fh.createReadStream({ start, end, highWaterMark: READ_CHUNK, autoClose: true });
  }

  private async openForRead(key: string): Promise<FileHandle> {
    try {
      return await open(this.path(key), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(key);
      throw err;
    }
  }

  async openPositional(key: string): Promise<PositionalReader> {
    const fh = await this.openForRead(key);
    const { size } = await fh.stat();
    return {
      size,
      read: async (buffer, position, length) => (await fh.read(buffer, 0, length, position)).bytesRead,
      close: () => fh.close(),
    };
  }

  async writer(key: string, opts: WriterOptions = {}): Promise<BlobWriter> {
    const finalPath = this.path(key);
    const fsync = this.opts.fsync !== false;
    if (opts.append) {
      await mkdir(dirname(finalPath), { recursive: true });
      const fh = await open(finalPath, 'a');
      const startSize = (await fh.stat()).size;
      return new FileWriter(fh, finalPath, startSize, fsync, async () => {}, async (w) => {
        await w.fh.truncate(startSize);
      });
    }
    const tmpDir = join(this.root, TMP_DIR);
    await mkdir(tmpDir, { recursive: true });
    const tmpPath = join(tmpDir, randomUUID());
    const fh = await open(tmpPath, 'wx');
    let direct: DirectWrites | undefined;
    try {
      direct = this.directIo ? await DirectWrites.open(tmpPath) : undefined;
    } catch (err) {
      await fh.close();
      await rm(tmpPath, { force: true });
      throw err;
    }
    if (!direct) this.directIo = false;
    const w = new FileWriter(
      fh,
      tmpPath,
      0,
      fsync,
      async () => {
        await mkdir(dirname(finalPath), { recursive: true });
        await rename(tmpPath, finalPath);
      },
      async () => {
        await rm(tmpPath, { force: true });
      },
      direct && {
        writes: direct,
        refused: () => {
          this.directIo = false;
        },
      },
    );
    return heldToSize(w, opts.size);
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async *list(prefix: string): AsyncIterable<string> {
    const trimmed = prefix.replace(/\/+$/, '');
    const base = trimmed === '' ? this.root : this.path(trimmed);
    yield* walk(base, trimmed);
  }

  async sweepStaging(olderThanMs: number): Promise<number> {
    const dir = join(this.root, TMP_DIR);
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
    for (const name of names) {
      const p = join(dir, name);
      const s = await stat(p).catch(() => undefined);
      if (s && s.mtimeMs < cutoff) {
        await rm(p, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async move(from: string, to: string): Promise<void> {
    const src = this.path(from);
    const dst = this.path(to);
    await mkdir(dirname(dst), { recursive: true });
    try {
      await rename(src, dst);
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(from);
      throw err;
    }
  }
}

class FileWriter implements BlobWriter {
  private done = false;
  size: number;
  /** Settles once every write so far has (direct writes may be in flight several at once). */
  private last: Promise<void> = Promise.resolve();
  /** The first failed write's error: the writes after it fail too. */
  private failed: unknown;

  constructor(
    readonly fh: FileHandle,
    /** Where the bytes are until commit (a rename keeps an open file readable). */
    private readonly path: string,
    startSize: number,
    private readonly fsync: boolean,
    private readonly onCommit: () => Promise<void>,
    private readonly onCancel: (w: FileWriter) => Promise<void>,
    /** A new object's writes around the page cache; never for an append. */
    private readonly direct?: { writes: DirectWrites; refused: () => void },
  ) {
    this.size = startSize;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.done) return Promise.reject(new Error('write after commit or cancel'));
    const at = this.size;
    this.size += chunk.byteLength;
    if (!this.direct) return this.writeCached(chunk, at);
    const direct = this.direct;
    const run = () => direct.writes.write(chunk, at, (bytes, position) => this.writeCached(bytes, position));
    // A write that starts on a block boundary shares no block with the writes before it and runs at
    // once; one that starts inside a block rewrites that block whole, after the write that ended there.
    const writing = at % DIRECT_BLOCK === 0 ? run() : this.last.then(run);
    const before = this.last;
    this.last = writing.then(
      () => before,
      (err: unknown) => {
        this.failed ??= err ?? new Error('write failed');
        return before;
      },
    );
    return writing
      .then(() => before)
      .then(() => {
        if (this.failed !== undefined) throw this.failed;
      });
  }

  /** Direct writes are placed by position, several at once. */
  get concurrentWrites(): boolean {
    return this.direct !== undefined;
  }

  /** Through the page cache; an append's handle writes at the end whatever the position. */
  private async writeCached(chunk: Uint8Array, at: number): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.fh.write(chunk, offset, chunk.byteLength - offset, at + offset);
      offset += bytesWritten;
    }
  }

  async openReader(): Promise<PositionalReader> {
    if (this.done) throw new Error('openReader after commit or cancel');
    const fh = await open(this.path, 'r');
    const writer = this;
    return {
      get size() {
        return writer.size;
      },
      read: async (buffer, position, length) => (await fh.read(buffer, 0, length, position)).bytesRead,
      close: () => fh.close(),
    };
  }

  async commit(): Promise<void> {
    if (this.done) throw new Error('commit after commit or cancel');
    this.done = true;
    try {
      await this.last;
      if (this.fsync) await this.fh.datasync();
    } finally {
      await this.closeDirect();
      await this.fh.close();
    }
    await this.onCommit();
  }

  async cancel(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await this.last;
      await this.onCancel(this);
    } finally {
      await this.closeDirect().catch(() => {});
      await this.fh.close().catch(() => {});
    }
  }

  private async closeDirect(): Promise<void> {
    if (!this.direct) return;
    if (this.direct.writes.unsupported) this.direct.refused();
    await this.direct.writes.close();
  }
}

async function* walk(dir: string, keyPrefix: string): AsyncIterable<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
    throw err;
  }
  // Key order: a directory's keys all start with `name/`, so it sorts as `name/` among its siblings.
  const sortName = (e: { name: string; isDirectory(): boolean }) => (e.isDirectory() ? `${e.name}/` : e.name);
  entries.sort((x, y) => (sortName(x) < sortName(y) ? -1 : sortName(x) > sortName(y) ? 1 : 0));
  for (const e of entries) {
    if (keyPrefix === '' && e.name === TMP_DIR) continue;
    const key = keyPrefix === '' ? e.name : `${keyPrefix}/${e.name}`;
    if (e.isDirectory()) yield* walk(join(dir, e.name), key);
    else if (e.isFile()) yield key;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}
