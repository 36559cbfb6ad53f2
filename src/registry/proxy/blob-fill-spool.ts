/**
 * The local copy of a blob while it is being filled: a file under the spool directory that the fill
 * writes at increasing positions and any number of readers read positionally as it grows. Its name is
 * removed when the fill ends; the open file stays readable until the last reader lets go of it.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

const PREFIX = 'fill-';

export class BlobFillSpool {
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

  /** Removes the file's name; readers holding a reference keep reading. */
  async unlink(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
