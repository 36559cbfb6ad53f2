/**
 * Blob uploads: monolithic, chunked and streamed. Bytes of an upload in progress accumulate under
 * `uploadKey(id)`; a chunk the client aborts or mis-sizes is rolled back; the blob becomes visible only
 * when the final PUT's digest matches what was received.
 *
 * One chunk of an upload is written at a time, across every process sharing the database: a chunk (and
 * the final PUT) claims the upload's row first (`claimChunk`), and a request that finds another one
 * writing is refused with 416 and the `Range` of the bytes stored, before it writes anything. Two
 * PATCHes of one upload that reach two processes at once (a retry racing the original) therefore never
 * both complete onto the same offset, and the final digest check sees the bytes one of them wrote.
 *
 * The storage object's size is the upload's offset. After a crash mid-chunk the bytes that reached
 * storage are kept and reported by the status endpoint, so a client resumes from there; nothing
 * committed is ever lost. The row's size (the bytes at the last chunk) is never more than the stored
 * bytes; when the storage holds fewer, they cannot be reached (a storage location is down) and the
 * upload answers BLOB_UPLOAD_UNKNOWN until they can, so that clients start the upload again. The
 * running sha256 of each upload is kept in memory so completing a large upload does not re-read it;
 * after a restart it is rebuilt from storage.
 *
 * Committing a verified blob (the move out of `uploads/`, or a monolithic writer's commit) and linking
 * it run under the per-digest guard (blob-write-guard.ts), so garbage collection never deletes the
 * bytes of a blob a push is completing. Bytes of uploads in progress are never GC's: they live under
 * `uploads/`, which only cancellation and the upload sweep remove.
 *
 * With a quota gate, an upload into a namespace at its Reject limit is refused at start, and one whose
 * chunk (or monolithic body) takes it over the limit is cancelled, so its bytes never count.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { BlobStore } from '../db/blob-store.js';
import type { RepositoryRef } from '../db/repository-store.js';
import type { UploadStore } from '../db/upload-store.js';
import { digestAlgorithm, type Digest, type DigestAlgorithm } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobDriver, BlobWriter } from '../storage/blob-driver.js';
import { blobKey, uploadKey } from '../storage/keys.js';
import type { BlobWriteGuard } from './blob-write-guard.js';
import { KeyedMutex } from './keyed-mutex.js';
import { VerifiedBlobWriter } from './verified-write.js';

export interface UploadState {
  id: string;
  /** Bytes received so far. */
  size: number;
}

/** A `Content-Range: start-end` of a chunk, end inclusive. */
export interface ChunkRange {
  start: number;
  end: number;
}

/** Refuses uploads over a namespace's quota (quota/quota-gate.ts). */
export interface UploadQuota {
  admitUpload(repo: RepositoryRef, stage: 'upload_start' | 'upload_chunk', incoming?: number): Promise<void>;
}

/**
 * How long a chunk's claim holds without renewal (its writer renews it every third of that while it
 * runs). A claim whose process died is taken over before that on PostgreSQL when the process held its
 * liveness lock (db/process-liveness.ts); otherwise this is how long its upload answers 416. On SQLite
 * a starting server releases every claim (`releaseChunkClaims`).
 */
const CHUNK_CLAIM_MS = 15_000;

export class UploadService {
  private readonly hashes = new Map<string, { size: number; hash: Hash }>();
  /** Offset at which a chunk is being written, per upload: status reports it, not uncommitted bytes. */
  private readonly inflight = new Map<string, number>();
  private readonly locks = new KeyedMutex();

  constructor(
    private readonly uploads: UploadStore,
    private readonly blobs: BlobStore,
    private readonly storage: BlobDriver,
    private readonly guard?: BlobWriteGuard,
    private readonly quota?: UploadQuota,
  ) {}

  async start(repo: RepositoryRef): Promise<UploadState> {
    await this.quota?.admitUpload(repo, 'upload_start');
    const up = await this.uploads.create(randomUUID(), repo.id);
    return { id: up.id, size: 0 };
  }

  async status(repo: RepositoryRef, id: string): Promise<UploadState> {
    const up = await this.find(repo, id);
    const inflight = this.inflight.get(id);
    if (inflight !== undefined) return { id, size: inflight };
    const size = await this.offset(id);
    if (size < up.size) throw unreachable(id, up.size);
    return { id, size };
  }

  /** Appends one chunk. With a range, it must start at the current offset (416 otherwise). */
  async append(repo: RepositoryRef, id: string, body: AsyncIterable<Uint8Array>, range?: ChunkRange): Promise<UploadState> {
    const up = await this.find(repo, id);
    await this.admitChunk(repo, id, range);
    return this.exclusive(id, async (writer) => {
      const state = await this.appendLocked(id, up.size, body, writer, range);
      await this.admitReceived(repo, id);
      return state;
    });
  }

  /** Refuses a chunk of announced size that would take the namespace over its quota. */
  private async admitChunk(repo: RepositoryRef, id: string, range: ChunkRange | undefined): Promise<void> {
    if (!this.quota) return;
    try {
      await this.quota.admitUpload(repo, 'upload_chunk', range ? range.end - range.start + 1 : 0);
    } catch (err) {
      await this.locks.run(id, () => this.drop(id));
      throw err;
    }
  }

  /** After a chunk of unannounced size: cancels the upload if what it received took the namespace over its quota. */
  private async admitReceived(repo: RepositoryRef, id: string): Promise<void> {
    if (!this.quota) return;
    try {
      await this.quota.admitUpload(repo, 'upload_chunk');
    } catch (err) {
      await this.drop(id);
      throw err;
    }
  }

  /** Completes the upload: appends a final chunk if given, verifies the digest, links the blob. */
  async complete(repo: RepositoryRef, id: string, digest: Digest, body?: AsyncIterable<Uint8Array>, range?: ChunkRange): Promise<{ size: number }> {
    const up = await this.find(repo, id);
    if (body) await this.admitChunk(repo, id, range);
    return this.exclusive(id, async (writer) => {
      if (body) {
        await this.appendLocked(id, up.size, body, writer, range);
        await this.admitReceived(repo, id);
      }
      const size = await this.offset(id);
      if (size < up.size) throw unreachable(id, up.size);
      const actual = await this.digestOf(id, size, digestAlgorithm(digest));
      if (actual !== digest) {
        throw new RegistryError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`);
      }
      await this.guarded(digest, async () => {
        if (size === 0) {
          const w = await this.storage.writer(blobKey(digest));
          await w.commit();
        } else {
          await this.storage.move(uploadKey(id), blobKey(digest));
        }
        await this.blobs.link(repo.id, digest, size);
      });
      await this.uploads.delete(id);
      this.hashes.delete(id);
      return { size };
    });
  }

  /** Stores a whole blob sent in one request (`POST ?digest=`). */
  async monolithic(repo: RepositoryRef, digest: Digest, body: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<{ size: number }> {
    await this.quota?.admitUpload(repo, 'upload_start', expectedSize);
    const writer = await VerifiedBlobWriter.open(this.storage, { digest, size: expectedSize });
    try {
      for await (const chunk of body) await writer.write(chunk);
      writer.verify();
      if (expectedSize === undefined) await this.quota?.admitUpload(repo, 'upload_chunk', writer.size);
    } catch (err) {
      await writer.cancel();
      throw err;
    }
    return this.guarded(digest, async () => {
      const { size } = await writer.commit();
      await this.blobs.link(repo.id, digest, size);
      return { size };
    }).catch(async (err: unknown) => {
      await writer.cancel();
      throw err;
    });
  }

  /** Runs `fn` under the blob's write guard (when the registry has one). */
  private guarded<T>(digest: Digest, fn: () => Promise<T>): Promise<T> {
    return this.guard ? this.guard.run(digest, fn) : fn();
  }

  async cancel(repo: RepositoryRef, id: string): Promise<void> {
    await this.find(repo, id);
    await this.locks.run(id, () => this.drop(id));
  }

  /**
   * Releases the chunk claims of every upload: for a server that is the only one on its database
   * (SQLite's instance lock), at its start, where any claim is left by a process that died mid-chunk.
   * Returns how many.
   */
  releaseChunkClaims(): Promise<number> {
    return this.uploads.releaseAllChunks();
  }

  /** Cancels uploads untouched since `before`; returns how many. */
  async expire(before: number): Promise<number> {
    let count = 0;
    for (;;) {
      const stale = await this.uploads.stale(before);
      if (stale.length === 0) return count;
      for (const up of stale) {
        // Claimed only if still untouched: a chunk may have arrived since the listing, on any process.
        if (await this.locks.run(up.id, async () => (await this.uploads.claimStale(up.id, before)) && (await this.drop(up.id), true))) count++;
      }
    }
  }

  private async drop(id: string): Promise<void> {
    await this.storage.delete(uploadKey(id));
    await this.uploads.delete(id);
    this.hashes.delete(id);
  }

  private async find(repo: RepositoryRef, id: string) {
    const up = /^[0-9a-f-]{36}$/.test(id) ? await this.uploads.find(id, repo.id) : undefined;
    if (!up) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 64)} not found in ${repo.namespace}/${repo.name}`);
    return up;
  }

  private async offset(id: string): Promise<number> {
    return (await this.storage.stat(uploadKey(id)))?.size ?? 0;
  }

  /**
   * Runs `fn` holding the upload in this process (a mutex) and across processes (the row's chunk claim,
   * renewed while `fn` runs, released after it). 416 with the stored range when another request holds it.
   */
  private exclusive<T>(id: string, fn: (writer: string) => Promise<T>): Promise<T> {
    return this.locks.run(id, async () => {
      const writer = randomUUID();
      const claim = await this.uploads.claimChunk(id, writer, Date.now(), CHUNK_CLAIM_MS);
      if (claim === 'gone') throw expired(id);
      if (claim === 'busy') throw busy(await this.offset(id));
      const renew = setInterval(() => void this.uploads.renewChunk(id, writer, Date.now(), CHUNK_CLAIM_MS).catch(() => {}), CHUNK_CLAIM_MS / 3);
      renew.unref();
      try {
        return await fn(writer);
      } finally {
        clearInterval(renew);
        await this.uploads.releaseChunk(id, writer).catch(() => {});
      }
    });
  }

  /** Appends a chunk to upload `id`, which had `recorded` bytes when it was last touched; `claim` holds its row. */
  private async appendLocked(id: string, recorded: number, body: AsyncIterable<Uint8Array>, claim: string, range?: ChunkRange): Promise<UploadState> {
    const writer = await this.storage.writer(uploadKey(id), { append: true });
    const start = writer.size;
    if (start < recorded) {
      await writer.cancel();
      throw unreachable(id, recorded);
    }
    if (range && range.start !== start) {
      await writer.cancel();
      throw outOfOrder(start, range);
    }
    // A chunk is activity: the upload sweep of any process leaves the upload alone while it arrives.
    if (!(await this.uploads.touch(id, start))) {
      await writer.cancel();
      throw expired(id);
    }
    this.inflight.set(id, start);
    try {
      return await this.writeChunk(id, writer, body, start, claim, range);
    } finally {
      this.inflight.delete(id);
    }
  }

  private async writeChunk(id: string, writer: BlobWriter, body: AsyncIterable<Uint8Array>, start: number, claim: string, range?: ChunkRange): Promise<UploadState> {
    const state = await this.hashState(id, start);
    const hash = state.hash.copy();
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        await writer.write(chunk);
      }
    } catch (err) {
      await writer.cancel();
      if (err instanceof RegistryError) throw err;
      throw new RegistryError('BLOB_UPLOAD_INVALID', `chunk aborted after ${writer.size - start} bytes: ${(err as Error).message}`);
    }
    const received = writer.size - start;
    if (range && received !== range.end - range.start + 1) {
      await writer.cancel();
      throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range announced ${range.end - range.start + 1} bytes but ${received} arrived`, undefined, 416).withHeaders(
        rangeHeader(start),
      );
    }
    // A claim that lapsed while the chunk arrived (this process stalled, or lost its liveness lock and
    // was taken for dead) may be another writer's now.
    if (!(await this.uploads.renewChunk(id, claim, Date.now(), CHUNK_CLAIM_MS))) {
      await writer.cancel();
      throw busy(start);
    }
    await writer.commit();
    if (!(await this.uploads.touch(id, writer.size))) {
      // Expired or cancelled while the chunk arrived (by another process): its bytes go too.
      await this.storage.delete(uploadKey(id));
      this.hashes.delete(id);
      throw expired(id);
    }
    this.hashes.set(id, { size: writer.size, hash });
    return { id, size: writer.size };
  }

  /** The running sha256 at `size` bytes, rebuilt from storage when not in memory. */
  private async hashState(id: string, size: number): Promise<{ size: number; hash: Hash }> {
    const known = this.hashes.get(id);
    if (known && known.size === size) return known;
    const hash = await this.hashStored(id, size, 'sha256');
    const state = { size, hash };
    this.hashes.set(id, state);
    return state;
  }

  private async digestOf(id: string, size: number, algorithm: DigestAlgorithm): Promise<Digest> {
    const hash = algorithm === 'sha256' ? (await this.hashState(id, size)).hash.copy() : await this.hashStored(id, size, algorithm);
    return `${algorithm}:${hash.digest('hex')}` as Digest;
  }

  private async hashStored(id: string, size: number, algorithm: DigestAlgorithm): Promise<Hash> {
    const hash = createHash(algorithm);
    if (size === 0) return hash;
    for await (const chunk of await this.storage.reader(uploadKey(id), { offset: 0, length: size })) hash.update(chunk as Uint8Array);
    return hash;
  }
}

export function rangeHeader(size: number): Record<string, string> {
  return { Range: `0-${Math.max(size - 1, 0)}` };
}

function expired(id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${id} expired or was cancelled while the chunk arrived`);
}

function busy(size: number): RegistryError {
  return new RegistryError(
    'BLOB_UPLOAD_INVALID',
    `another chunk of this upload is being written; the upload has ${size} bytes: ask for its status (GET) and send what follows`,
    undefined,
    416,
  ).withHeaders(rangeHeader(size));
}

/**
 * The storage holds fewer bytes of the upload than it had received (the stored bytes only grow): they
 * are in a storage location that is down (with several locations, the next chunk would otherwise start
 * a new object elsewhere) or gone. The upload cannot go on; BLOB_UPLOAD_UNKNOWN (404) makes clients
 * start the blob's upload again, and a new upload goes to a location that is up. Should the bytes come
 * back (the location returns), the upload can be resumed.
 */
function unreachable(id: string, recorded: number): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${id} cannot go on: the storage cannot reach the ${recorded} bytes it received (a storage location is unavailable); start the upload again`);
}

function outOfOrder(size: number, range: ChunkRange): RegistryError {
  return new RegistryError(
    'BLOB_UPLOAD_INVALID',
    `chunk starts at byte ${range.start} but the upload has ${size} bytes; send the chunk that starts at ${size}`,
    undefined,
    416,
  ).withHeaders(rangeHeader(size));
}
