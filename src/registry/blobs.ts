/**
 * Reading, linking and deleting blobs in a repository. Bytes live in the storage driver under
 * `blobKey(digest)`; the database says which repositories may read them.
 */
import type { Readable } from 'node:stream';
import type { BlobRecord, BlobStore } from '../db/blob-store.js';
import type { RepositoryRef } from '../db/repository-store.js';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { BlobNotFoundError, type BlobDriver, type PositionalReader } from '../storage/blob-driver.js';
import { blobKey } from '../storage/keys.js';
import type { BlobWriteGuard } from './blob-write-guard.js';

/** Where a blob's bytes come from when they are read here. */
export type BlobBody =
  | { kind: 'positional'; reader: PositionalReader; offset: number; length: number }
  | { kind: 'stream'; stream: Readable };

/**
 * How a pull gets a blob: its bytes through Wharf, or a URL where the storage serves them itself
 * (`redirect`; the client sends its `Range` there).
 */
export type ServedBody = BlobBody | { kind: 'redirect'; url: string };

export interface BlobRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export class BlobService {
  constructor(
    private readonly store: BlobStore,
    private readonly storage: BlobDriver,
    private readonly guard?: BlobWriteGuard,
  ) {}

  /** The blob as linked into the repository, or BLOB_UNKNOWN. */
  async stat(repo: RepositoryRef, digest: Digest): Promise<BlobRecord> {
    const blob = await this.store.findInRepository(repo.id, digest);
    if (!blob) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found in ${repo.namespace}/${repo.name}`);
    return blob;
  }

  /**
   * A blob already looked up with `stat` (or a range of it) for a pull: a URL of the storage when the
   * driver gives one (redirects on), its bytes otherwise (`open`).
   */
  async serve(blob: BlobRecord, range?: BlobRange): Promise<ServedBody> {
    const url = await this.storage.redirectUrl?.(blobKey(blob.digest));
    if (url) return { kind: 'redirect', url };
    return this.open(blob, range);
  }

  /**
   * The bytes of a blob already looked up with `stat` (or a range of them): positional access when the
   * driver has it (the HTTP layer recycles its buffers), a stream otherwise.
   */
  async open(blob: BlobRecord, range?: BlobRange): Promise<BlobBody> {
    const key = blobKey(blob.digest);
    const offset = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : blob.size;
    try {
      if (this.storage.openPositional) return { kind: 'positional', reader: await this.storage.openPositional(key, { offset, length }), offset, length };
      return { kind: 'stream', stream: await this.storage.reader(key, { offset, length }) };
    } catch (err) {
      if (err instanceof BlobNotFoundError) {
        throw new RegistryError('BLOB_UNKNOWN', `blob ${blob.digest} is recorded but its bytes are missing from storage`, undefined, 404);
      }
      throw err;
    }
  }

  /**
   * Links a blob that another repository already holds. True if the mount happened. Under the blob's
   * write guard: GC cannot be deleting its bytes between the lookup and the link.
   */
  async mount(target: RepositoryRef, digest: Digest, source: RepositoryRef): Promise<boolean> {
    const mount = async () => {
      const blob = await this.store.findInRepository(source.id, digest);
      if (!blob) return false;
      await this.store.link(target.id, digest, blob.size);
      return true;
    };
    return this.guard ? this.guard.run(digest, mount) : mount();
  }

  /** Repositories that hold the blob, for a mount without `from`. */
  holders(digest: Digest): Promise<Array<{ repositoryId: number; name: string }>> {
    return this.store.repositoriesLinking(digest);
  }

  /**
   * Unlinks the blob from the repository. As in Distribution (and the conformance suite's
   * blobs-before-manifests teardown), this is allowed while a manifest still references the blob: the
   * client asked for it explicitly; such a manifest can then no longer be pulled completely.
   */
  async delete(repo: RepositoryRef, digest: Digest): Promise<void> {
    const blob = await this.stat(repo, digest);
    await this.store.unlink(repo.id, blob.id);
  }
}
