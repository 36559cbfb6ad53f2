/** Uploads in progress: which repository they belong to and how many bytes were accepted. */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export interface UploadRecord {
  id: string;
  repositoryId: number;
  size: number;
  createdAt: number;
  updatedAt: number;
}

/** `updated_at` of an upload claimed for expiry (see claimStale). */
const EXPIRING = 0;

export class UploadStore {
  /**
   * `dialect` tells a chunk claim whose process died (taken over at once, not when it expires);
   * `processId` is this process's id when it holds its liveness lock, stamped on its claims.
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect?: DialectAdapter,
    private readonly processId?: string,
  ) {}

  async create(id: string, repositoryId: number): Promise<UploadRecord> {
    const now = Date.now();
    await this.db.insertInto('uploads').values({ id, repository_id: repositoryId, size: 0, created_at: now, updated_at: now }).execute();
    return { id, repositoryId, size: 0, createdAt: now, updatedAt: now };
  }

  async find(id: string, repositoryId: number): Promise<UploadRecord | undefined> {
    const row = await this.db
      .selectFrom('uploads')
      .select(['id', 'repository_id as repositoryId', 'size', 'created_at as createdAt', 'updated_at as updatedAt'])
      .where('id', '=', id)
      .where('repository_id', '=', repositoryId)
      .executeTakeFirst();
    return row;
  }

  /**
   * Records the upload's size after a chunk and marks it active. The stored bytes are the truth; this
   * row mirrors them for listings and expiry.
   */
  async touch(id: string, size: number): Promise<boolean> {
    const res = await this.db.updateTable('uploads').set({ size, updated_at: Date.now() }).where('id', '=', id).where('updated_at', '>', EXPIRING).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Claims an upload for expiry if it is still untouched since `before` (another process may have
   * received a chunk since it was listed as stale); true when claimed. A claimed upload can no longer
   * be touched, so a chunk that arrives meanwhile fails rather than writing bytes nobody removes; the
   * claim survives a crash (the row stays stale and is claimed again).
   */
  async claimStale(id: string, before: number): Promise<boolean> {
    const res = await this.db.updateTable('uploads').set({ updated_at: EXPIRING }).where('id', '=', id).where('updated_at', '<', before).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Claims the upload for writing one chunk until `now + leaseMs`, for `writer` (an id of the request):
   * one chunk at a time across every process. 'busy' when another writer holds an unexpired claim and
   * its process lives; 'gone' when the upload no longer exists or is being expired.
   */
  async claimChunk(id: string, writer: string, now: number, leaseMs: number): Promise<'claimed' | 'busy' | 'gone'> {
    const gone = this.dialect?.processGone('chunk_process');
    const res = await this.db
      .updateTable('uploads')
      .set({ chunk_writer: writer, chunk_expires_at: now + leaseMs, chunk_process: this.processId ?? null })
      .where('id', '=', id)
      .where('updated_at', '>', EXPIRING)
      .where((eb) => eb.or([eb('chunk_writer', 'is', null), eb('chunk_expires_at', '<=', now), ...(gone ? [gone] : [])]))
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 1) return 'claimed';
    const row = await this.db.selectFrom('uploads').select('id').where('id', '=', id).where('updated_at', '>', EXPIRING).executeTakeFirst();
    return row ? 'busy' : 'gone';
  }

  /** Extends `writer`'s claim; false when it no longer holds it (another writer took it: it expired, or its process was taken for dead). */
  async renewChunk(id: string, writer: string, now: number, leaseMs: number): Promise<boolean> {
    const res = await this.db
      .updateTable('uploads')
      .set({ chunk_expires_at: now + leaseMs })
      .where('id', '=', id)
      .where('chunk_writer', '=', writer)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Ends `writer`'s claim (nothing when it no longer holds it). */
  async releaseChunk(id: string, writer: string): Promise<void> {
    await this.db.updateTable('uploads').set({ chunk_writer: null, chunk_expires_at: 0, chunk_process: null }).where('id', '=', id).where('chunk_writer', '=', writer).execute();
  }

  /** Ends every chunk claim (their writers are known to be gone); returns how many there were. */
  async releaseAllChunks(): Promise<number> {
    const res = await this.db.updateTable('uploads').set({ chunk_writer: null, chunk_expires_at: 0, chunk_process: null }).where('chunk_writer', 'is not', null).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('uploads').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Uploads not touched since `before`, oldest first. */
  async stale(before: number, limit = 100): Promise<UploadRecord[]> {
    return this.db
      .selectFrom('uploads')
      .select(['id', 'repository_id as repositoryId', 'size', 'created_at as createdAt', 'updated_at as updatedAt'])
      .where('updated_at', '<', before)
      .orderBy('updated_at')
      .limit(limit)
      .execute();
  }
}
