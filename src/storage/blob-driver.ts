/**
 * The storage driver contract: a flat key space of immutable byte objects. Drivers know nothing of
 * registries; `keys.ts` draws the layout Wharf uses. Every driver passes `driver-test-suite.ts`.
 *
 * Guarantees every driver gives:
 * - an object written with `writer(key)` is readable under `key` only after `commit()` resolves, and
 *   then completely; `cancel()` (or a crash before commit) leaves no trace under `key`;
 * - `writer(key, { append: true })` continues an object (readers may see appended bytes before commit:
 *   appends are for upload areas that are never served); `cancel()` drops only what that writer wrote;
 * - `move` is atomic: readers see the old key or the new one, never a partial object;
 * - `reader` streams with bounded memory whatever the object size.
 */
import type { Readable } from 'node:stream';
import { RegistryError } from '../oci/errors.js';

export interface BlobStat {
  size: number;
  /**
   * When the object's bytes were last written, in ms since the epoch (a commit or an append sets it;
   * a move keeps the source's time, as a rename does, or sets the time of the move, as a copy does).
   */
  modifiedAt: number;
}

export interface BlobWriter {
  /** Bytes this writer holds so far, including those of an appended-to object. */
  readonly size: number;
  /**
   * Resolves once the chunk is accepted (back-pressure). The writer keeps no reference to `chunk` after
   * that: the caller may reuse its memory (proxy fills recycle their buffers).
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * True when `write` may be called again before the previous write resolved: each call's bytes go
   * after those of the call before, and a write resolves only once those before it are in too.
   * Otherwise the caller waits for each write before the next.
   */
  readonly concurrentWrites?: boolean;
  /** Makes the bytes durable and visible under the key. */
  commit(): Promise<void>;
  /** Discards what this writer wrote. Safe to call after a failed write; a no-op after commit. */
  cancel(): Promise<void>;
  /**
   * Positional reads of the bytes written so far (a write's bytes once it resolved), for readers that
   * follow an object while it is being written. The reader stays usable after `commit` or `cancel`
   * until it is closed; its `size` is the bytes written (or, with `concurrentWrites`, accepted) at the
   * time of reading. Optional: drivers
   * whose unfinished objects cannot be read locally leave it out.
   */
  openReader?(): Promise<PositionalReader>;
}

export interface WriterOptions {
  /** Continue the object under the key (see the contract above). */
  append?: boolean;
  /**
   * The object's final size, when the caller knows it (a new object, not an append): a driver may send
   * the bytes in one request as they come instead of gathering them. The writer must then be given
   * exactly that many bytes; a commit after fewer fails, and nothing becomes visible.
   */
  size?: number;
}

/**
 * `w` held to a size given in WriterOptions (for drivers that have no use for it): a write past it fails,
 * and so does a commit short of it (cancelling the writer), as for a driver that sends the bytes in one
 * request.
 */
export function heldToSize(w: BlobWriter, size: number | undefined): BlobWriter {
  if (size === undefined) return w;
  const held: BlobWriter = {
    get size() {
      return w.size;
    },
    async write(chunk) {
      if (w.size + chunk.byteLength > size) throw new Error(`more bytes than the ${size} announced`);
      await w.write(chunk);
    },
    async commit() {
      if (w.size !== size) {
        await w.cancel();
        throw new Error(`${w.size} bytes written of the ${size} announced`);
      }
      await w.commit();
    },
    cancel: () => w.cancel(),
    concurrentWrites: w.concurrentWrites,
  };
  if (w.openReader) held.openReader = () => w.openReader!();
  return held;
}

/** Reads at positions into buffers the caller owns, so a server can recycle a few buffers per transfer. */
export interface PositionalReader {
  readonly size: number;
  /** Reads up to `length` bytes at `position` into `buffer`; resolves to the count (0 at the end). */
  read(buffer: Uint8Array, position: number, length: number): Promise<number>;
  close(): Promise<void>;
}

export interface BlobDriver {
  readonly name: string;
  /** Size and modification time of the object, or undefined when there is none. */
  stat(key: string): Promise<BlobStat | undefined>;
  /** A stream of `length` bytes (default: to the end) from `offset`; throws BlobNotFoundError. */
  reader(key: string, range?: { offset: number; length?: number }): Promise<Readable>;
  writer(key: string, opts?: WriterOptions): Promise<BlobWriter>;
  /** Removes the object; absent objects are not an error. */
  delete(key: string): Promise<void>;
  /**
   * Keys under a prefix, each once, in ascending key order (byte order of the key, as S3's ListObjectsV2
   * gives it), so that several listings can be merged with constant memory.
   */
  list(prefix: string): AsyncIterable<string>;
  /** Atomically renames an object, replacing any object at `to`. */
  move(from: string, to: string): Promise<void>;
  /**
   * Positional access with buffers the caller owns; throws BlobNotFoundError. `range` names the bytes the
   * caller will read (a hint: a driver that fetches over the network asks for those only, and may require
   * reads in order within them). Optional.
   */
  openPositional?(key: string, range?: { offset: number; length: number }): Promise<PositionalReader>;
  /**
   * A URL a client may fetch the object from directly (a presigned GET, valid for a short time), so
   * its bytes need not pass through Wharf. Undefined when the driver is configured to serve through
   * Wharf (redirects off). Does not check that the object exists. Optional: drivers whose objects have
   * no URL of their own leave it out.
   */
  redirectUrl?(key: string): Promise<string | undefined>;
  /**
   * Copies the object under `key` in `source` (another driver) to `key` here inside the store, without
   * its bytes passing through this process (an S3 CopyObject between buckets or prefixes of one
   * endpoint). Only for blob keys whose source object was verified when it was committed, with
   * `expected.size` the size the registry recorded for the blob: the copy becomes visible at once,
   * complete (never partly), and the driver checks what the store tells it without reading the bytes
   * (S3: an object copied in one request is trusted on the store's answer, a larger one's sizes are
   * checked, see s3-copy.ts), removing a copy that fails a check. Resolves 'unsupported', having
   * written nothing, when it cannot copy from `source` (another kind of driver, another endpoint or
   * other credentials, or the store refuses the copy as not supported): the caller then streams the
   * bytes. Throws BlobNotFoundError when the source has no such object; other failures as any
   * request's. Optional: drivers with no server-side copy leave it out.
   */
  copyFrom?(source: BlobDriver, key: string, expected: { size: number }, signal?: AbortSignal): Promise<'copied' | 'unsupported'>;
  /**
   * Whether `copyFrom(source, …)` can copy inside the store (the same kind of driver, endpoint and
   * credentials), decided without a request: a caller choosing among several sources prefers such a
   * one. True does not promise the store accepts the copy (`copyFrom` may still say 'unsupported').
   * Present exactly when `copyFrom` is.
   */
  canCopyFrom?(source: BlobDriver): boolean;
  /**
   * Resolves when the storage can serve: the bucket answers with the credentials, the directory is
   * readable and writable. Throws StorageUnavailableError otherwise, or when `signal` aborts first.
   */
  check(signal?: AbortSignal): Promise<void>;
  /**
   * Removes staged, never-committed writes older than `olderThanMs` (left by a crash); returns how
   * many. Drivers that stage nothing omit it.
   */
  sweepStaging?(olderThanMs: number): Promise<number>;
}

export class BlobNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`storage object not found: ${key}`);
    this.name = 'BlobNotFoundError';
  }
}

/**
 * The storage did not answer, or failed in a way the request cannot help (a network error, a timeout,
 * a 5xx, refused credentials). On `/v2` it is UNAVAILABLE (503), with a message naming the storage.
 */
export class StorageUnavailableError extends RegistryError {
  constructor(
    /** The storage as an operator knows it, e.g. `S3 bucket "registry" at http://rgw:7480`. */
    readonly storage: string,
    readonly reason: string,
    override readonly cause?: unknown,
  ) {
    super('UNAVAILABLE', `storage unavailable: ${storage}: ${reason}`);
    this.name = 'StorageUnavailableError';
  }
}

const KEY_RE = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** Keys are relative paths of safe characters; `.` and `..` segments are refused. */
export function assertValidKey(key: string): void {
  if (!KEY_RE.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
    throw new Error(`invalid storage key: ${JSON.stringify(key)}`);
  }
}
