/**
 * The local copy of a blob while it is being filled, which any number of readers read positionally as
 * it grows, and which stays readable until the last reader lets go of it:
 *
 *   WriterSpool     the storage writer's own unfinished object (BlobWriter.openReader): every byte is
 *                   written once, and readers follow it
 *   BlobFillSpool   for drivers that cannot read an unfinished object: a file under the spool
 *                   directory that the fill writes as well; its name is removed when the fill ends
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { PositionalReader } from '../../storage/blob-driver.js';

const PREFIX = 'fill-';

export interface FillSpool {
  /** The spool file, when the fill keeps one of its own (the crash sweep spares it). */
  readonly path: string | undefined;
  /** True when the spool is the storage writer's object: the fill writes each byte once, to storage. */
  readonly followsStorage: boolean;
  /** Writes all of `chunk` at `position` (only a spool of its own is written to). */
  write(chunk: Uint8Array, position: number): Promise<void>;
  /** Reads up to `length` bytes at `position` into `buffer`; resolves to the count. */
  read(buffer: Uint8Array, position: number, length: number): Promise<number>;
  /** Takes a reference for a reader; false when the spool is already closed. */
  acquire(): boolean;
  /** Drops a reference; the last one closes it. */
  release(): void;
  /** Removes the spool's name (readers holding a reference keep reading). */
  unlink(): Promise<void>;
  /** Settles once the spool is open (the fill commits only then: a commit renames the object). */
  opened(): Promise<unknown>;
}

/** Readers follow the storage writer's unfinished object; the fill's reference is the first. */
export class WriterSpool implements FillSpool {
  readonly path = undefined;
  readonly followsStorage = true;
  private refs = 1;
  private opening: Promise<PositionalReader> | undefined;

  /**
   * `openReader` is called at the first `open()` or read: only readers that fall behind the fill's
   * memory window read the object, so the fill opens it after its first bytes went out.
   */
  constructor(private readonly openReader: () => Promise<PositionalReader>) {}

  /** Starts opening the reader (once). */
  open(): Promise<PositionalReader> {
    if (!this.opening) {
      this.opening = this.openReader();
      this.opening.catch(() => {}); // reported to the reads that need it
    }
    return this.opening;
  }

  private get reader(): Promise<PositionalReader> {
    return this.open();
  }

  async write(): Promise<void> {
    throw new Error('a spool that follows storage is not written to');
  }

  async read(buffer: Uint8Array, position: number, length: number): Promise<number> {
    return (await this.reader).read(buffer, position, length);
  }

  acquire(): boolean {
    if (this.refs === 0) return false;
    this.refs++;
    return true;
  }

  release(): void {
    if (this.refs === 0) return;
    this.refs--;
    if (this.refs === 0 && this.opening) void this.opening.then((r) => r.close()).catch(() => {});
  }

  async unlink(): Promise<void> {}

  opened(): Promise<unknown> {
    return this.reader.catch(() => undefined);
  }
}

export class BlobFillSpool implements FillSpool {
  readonly followsStorage = false;
  /** The fill's own reference plus one per reader; the file closes at zero. */
  private refs = 1;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  /** Creates an empty spool file with a name no other fill uses. */
  static async create(dir: string): Promise<BlobFillSpool> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${PREFIX}${randomUUID()}`);
    return new BlobFillSpool(path, await open(path, 'wx+'));
  }

  /** Removes spool files of this naming scheme under `dir` that are not in `active` (left by a crash). */
  static async sweep(dir: string, active: ReadonlySet<string>): Promise<number> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const path = join(dir, name);
      if (!name.startsWith(PREFIX) || active.has(path)) continue;
      await rm(path, { force: true });
      removed++;
    }
    return removed;
  }

  /** Writes all of `chunk` at `position`. */
  async write(chunk: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < chunk.byteLength) {
      const { bytesWritten } = await this.fh.write(chunk, done, chunk.byteLength - done, position + done);
      done += bytesWritten;
    }
  }

  /** Reads up to `length` bytes at `position` into `buffer`; resolves to the count. */
  async read(buffer: Uint8Array, position: number, length: number): Promise<number> {
    return (await this.fh.read(buffer, 0, length, position)).bytesRead;
  }

  /** Takes a reference for a reader; false when the file is already closed. */
  acquire(): boolean {
    if (this.refs === 0) return false;
    this.refs++;
    return true;
  }

  /** Drops a reference; the last one closes the file (after reads in progress, as FileHandle does). */
  release(): void {
    if (this.refs === 0) return;
    this.refs--;
    if (this.refs === 0) void this.fh.close().catch(() => {});
  }

  async opened(): Promise<unknown> {
    return undefined;
  }

  /** Removes the file's name; readers holding a reference keep reading. */
  async unlink(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
