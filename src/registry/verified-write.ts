/**
 * The one verified write path for blob bytes. Pushes, proxy-cache fills and mirror syncs all store a
 * blob through `storeVerified` (or, when they need to act between chunks, `VerifiedBlobWriter`): bytes
 * stream into a writer while being hashed, and the writer commits under `blobKey(digest)` only if digest
 * (and size, when known) match. Otherwise nothing is visible.
 */
import { Digester, digestAlgorithm, type Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobDriver, BlobWriter, PositionalReader } from '../storage/blob-driver.js';
import { blobKey } from '../storage/keys.js';

export async function storeVerified(
  storage: BlobDriver,
  body: AsyncIterable<Uint8Array>,
  expected: { digest: Digest; size?: number },
): Promise<{ size: number }> {
  const writer = await VerifiedBlobWriter.open(storage, expected);
  try {
    for await (const chunk of body) await writer.write(chunk);
    return await writer.commit();
  } catch (err) {
    await writer.cancel();
    throw err;
  }
}

/**
 * A storage writer for `blobKey(digest)` that hashes every chunk it accepts and commits only when the
 * digest and size match. Chunks are hashed when `write` is called and written in call order, so a caller
 * may hash the next chunk while the previous one is still being written (and, with a driver that takes
 * concurrent writes, have several written at once).
 */
export class VerifiedBlobWriter {
  private readonly digester: Digester;
  private received = 0;
  private tail: Promise<void> = Promise.resolve();
  private verdict: { size: number } | Error | undefined;

  private constructor(
    private readonly writer: BlobWriter,
    private readonly expected: { digest: Digest; size?: number },
  ) {
    this.digester = new Digester(digestAlgorithm(expected.digest));
  }

  static async open(storage: BlobDriver, expected: { digest: Digest; size?: number }): Promise<VerifiedBlobWriter> {
    // With the size known, a driver may stream the bytes in one request (S3: one PutObject).
    return new VerifiedBlobWriter(await storage.writer(blobKey(expected.digest), expected.size === undefined ? {} : { size: expected.size }), expected);
  }

  /**
   * A positional reader of the bytes written so far, when the driver's writer offers one
   * (BlobWriter.openReader); undefined otherwise.
   */
  openReader(): Promise<PositionalReader> | undefined {
    return this.writer.openReader?.();
  }

  /** Whether the driver's writer can be followed (`openReader` gives a reader). */
  get canFollow(): boolean {
    return typeof this.writer.openReader === 'function';
  }

  /** Bytes accepted so far (hashed, possibly still being written). */
  get size(): number {
    return this.received;
  }

  /**
   * Hashes `chunk` now and writes it after the chunks before it. Rejects when the content grows past the
   * expected size or the storage write fails; every later write and `commit` then reject too.
   */
  write(chunk: Uint8Array): Promise<void> {
    if (this.verdict) return Promise.reject(new Error('write after verification'));
    const size = this.received + chunk.byteLength;
    if (this.expected.size !== undefined && size > this.expected.size) {
      this.tail = this.tail.then(() => {
        throw new RegistryError('SIZE_INVALID', `content is longer than the expected ${this.expected.size} bytes`);
      });
    } else {
      this.received = size;
      this.digester.update(chunk);
      if (this.writer.concurrentWrites) {
        // The driver places the bytes in call order itself: start the write now, so that several
        // are in flight (a disk takes them in parallel), and resolve when those before are in too.
        const writing = this.writer.write(chunk);
        this.tail = Promise.all([this.tail, writing]).then(() => {});
      } else {
        this.tail = this.tail.then(() => this.writer.write(chunk));
      }
    }
    this.tail.catch(() => {}); // the caller may await this write later; a failure is reported then
    return this.tail;
  }

  /**
   * Checks size and digest of everything accepted so far, without waiting for the writes; throws
   * `SIZE_INVALID` or `DIGEST_INVALID` on a mismatch. Ends the writing: only `commit` or `cancel` follow.
   */
  verify(): { size: number } {
    this.verdict ??= this.check();
    if (this.verdict instanceof Error) throw this.verdict;
    return this.verdict;
  }

  private check(): { size: number } | Error {
    if (this.expected.size !== undefined && this.received !== this.expected.size) {
      return new RegistryError('SIZE_INVALID', `content is ${this.received} bytes, expected ${this.expected.size}`);
    }
    const actual = this.digester.digest();
    if (actual !== this.expected.digest) {
      return new RegistryError('DIGEST_INVALID', `content digest ${actual} does not match ${this.expected.digest}`);
    }
    return { size: this.received };
  }

  /** Waits for the writes, verifies, and makes the blob visible; on any failure cancels and rethrows. */
  async commit(): Promise<{ size: number }> {
    try {
      await this.tail;
      const result = this.verify();
      await this.writer.commit();
      return result;
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  /** Discards everything written; a no-op after commit. */
  async cancel(): Promise<void> {
    await this.tail.catch(() => {});
    await this.writer.cancel();
  }
}
