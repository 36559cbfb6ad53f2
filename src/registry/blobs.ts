/**
 * Reading, linking and deleting blobs in a repository. Bytes live in the storage driver under
 * `blobKey(digest)`; the database says which repositories may read them.
 */
import type { Readable } from 'node:stream';
import type { BlobRecord, BlobStore } from '../db/blob-store.js';
import type { RepositoryRef } from '../db/repository-store.js';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { BlobNotFoundError, type BlobDriver } from '../storage/blob-driver.js';
import { blobKey } from '../storage/keys.js';

export interface BlobRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export class BlobService {
  constructor(
    private readonly store: BlobStore,
    private readonly storage: BlobDriver,
  ) {}

  /** The blob as linked into the repository, or BLOB_UNKNOWN. */
  async stat(repo: RepositoryRef, digest: Digest): Promise<BlobRecord> {
    const blob = await this.store.findInRepository(repo.id, digest);
    if (!blob) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found in ${repo.namespace}/${repo.name}`);
    return blob;
  }

  /** Streams the blob (or a range of it). */
  async open(repo: RepositoryRef, digest: Digest, range?: BlobRange): Promise<{ blob: BlobRecord; stream: Readable }> {
    const blob = await this.stat(repo, digest);
    try {
      const stream = await this.storage.reader(blobKey(digest), range ? { offset: range.start, length: range.end - range.start + 1 } : undefined);
      return { blob, stream };
    } catch (err) {
      if (err instanceof BlobNotFoundError) {
        throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is recorded but its bytes are missing from storage`, undefined, 404);
      }
      throw err;
    }
  }

  /** Links a blob that another repository already holds. True if the mount happened. */
  async mount(target: RepositoryRef, digest: Digest, source: RepositoryRef): Promise<boolean> {
    const blob = await this.store.findInRepository(source.id, digest);
    if (!blob) return false;
    await this.store.link(target.id, digest, blob.size);
    return true;
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
