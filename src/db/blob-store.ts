/** Blobs (global, content-addressed) and their links to repositories. */
import type { Kysely } from 'kysely';
import type { Digest } from '../oci/digest.js';
import type { Database } from './tables.js';

export interface BlobRecord {
  id: number;
  digest: Digest;
  size: number;
}

/**
 * Hears of a blob linked into a repository (`link`), after the link's transaction committed; `link`
 * waits for it. A listener handles its own failures (the link is made either way): it must not reject.
 */
export type BlobLinkListener = (repositoryId: number, digest: Digest) => Promise<void>;

export class BlobStore {
  private readonly linkListeners: BlobLinkListener[] = [];

  constructor(private readonly db: Kysely<Database>) {}

  /** Adds a listener every `link` (an upload, a mount, a proxy fill, a mirror sync) awaits once it committed. */
  onLinked(listener: BlobLinkListener): void {
    this.linkListeners.push(listener);
  }

  /** The blob if it is linked into the repository. */
  async findInRepository(repositoryId: number, digest: Digest): Promise<BlobRecord | undefined> {
    const row = await this.db
      .selectFrom('blobs as b')
      .innerJoin('repository_blobs as rb', 'rb.blob_id', 'b.id')
      .select(['b.id', 'b.digest', 'b.size'])
      .where('rb.repository_id', '=', repositoryId)
      .where('b.digest', '=', digest)
      .executeTakeFirst();
    return row as BlobRecord | undefined;
  }

  async find(digest: Digest): Promise<BlobRecord | undefined> {
    const row = await this.db.selectFrom('blobs').select(['id', 'digest', 'size']).where('digest', '=', digest).executeTakeFirst();
    return row as BlobRecord | undefined;
  }

  /**
   * Records a verified blob (if new) and links it into the repository, in one transaction, then tells
   * the `onLinked` listeners. A link that exists is renewed (`created_at` = now), so GC's grace period
   * starts again for it. The blob row is upserted (and so row-locked on PostgreSQL): a GC deletion of
   * the same row either finished before (the row is created anew) or waits for this link and then sees it.
   */
  async link(repositoryId: number, digest: Digest, size: number): Promise<BlobRecord> {
    const now = Date.now();
    const linked = await this.db.transaction().execute(async (tx) => {
      const blob = await tx
        .insertInto('blobs')
        .values({ digest, size, created_at: now })
        // A placeholder row (a proxy-cache manifest's blob not fetched yet) takes the verified size.
        .onConflict((oc) => oc.column('digest').doUpdateSet({ size }))
        .returning(['id', 'digest', 'size'])
        .executeTakeFirstOrThrow();
      await tx
        .insertInto('repository_blobs')
        .values({ repository_id: repositoryId, blob_id: blob.id, created_at: now })
        .onConflict((oc) => oc.columns(['repository_id', 'blob_id']).doUpdateSet({ created_at: now }))
        .execute();
      return { id: Number(blob.id), digest: blob.digest as Digest, size: Number(blob.size) };
    });
    for (const listener of this.linkListeners) await listener(repositoryId, digest);
    return linked;
  }

  /** Removes the blob's link from the repository; true if there was one. */
  async unlink(repositoryId: number, blobId: number): Promise<boolean> {
    const res = await this.db.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).where('blob_id', '=', blobId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Full names of repositories that link the blob, for mounts without `from`. */
  async repositoriesLinking(digest: Digest, limit = 50): Promise<Array<{ repositoryId: number; name: string }>> {
    const rows = await this.db
      .selectFrom('repository_blobs as rb')
      .innerJoin('blobs as b', 'b.id', 'rb.blob_id')
      .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select(['r.id as repositoryId', 'n.name as ns', 'r.name as repo'])
      .where('b.digest', '=', digest)
      .limit(limit)
      .execute();
    return rows.map((r) => ({ repositoryId: r.repositoryId, name: `${r.ns}/${r.repo}` }));
  }
}
