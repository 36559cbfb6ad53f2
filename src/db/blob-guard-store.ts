/**
 * Per-digest guards between the writers of blob bytes and garbage collection (`blob_guards`).
 *
 * A writer (upload completion, monolithic push, mount) registers a 'write' guard before it commits the
 * bytes under `blobKey(digest)` and links the blob, and drops it afterwards. GC, in the short
 * transaction that deletes an unreferenced blob row, refuses when a live 'write' guard exists and
 * otherwise leaves a 'delete' guard (a tombstone) that lives until the bytes are gone. A writer that
 * finds a live 'delete' guard waits and tries again, so it never commits bytes that GC is about to
 * delete; GC never deletes bytes a registered writer is committing.
 *
 * The two sides are serialised per digest: on PostgreSQL the writer share-locks the digest's blob row
 * (if there is one) while GC holds it `FOR UPDATE SKIP LOCKED`, and each side checks the other's guard
 * in a statement that runs after that lock, so whichever commits first is seen by the other; a blob
 * without a row cannot be in the middle of a GC deletion. SQLite runs one write transaction at a time.
 * Guards expire (their holder died): an expired guard is ignored and purged by GC.
 */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export class BlobGuardStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  /**
   * Registers a writer of `digest` until `expiresAt`; returns the guard's id, or undefined while GC is
   * deleting that digest's bytes (try again shortly).
   */
  async beginWrite(digest: string, now: number, expiresAt: number): Promise<number | undefined> {
    return this.db.transaction().execute(async (tx) => {
      if (this.dialect.supportsRowLocks) await tx.selectFrom('blobs').select('id').where('digest', '=', digest).forShare().execute();
      const deleting = await tx
        .selectFrom('blob_guards')
        .select('id')
        .where('digest', '=', digest)
        .where('kind', '=', 'delete')
        .where('expires_at', '>', now)
        .limit(1)
        .executeTakeFirst();
      if (deleting) return undefined;
      const row = await tx.insertInto('blob_guards').values({ digest, kind: 'write', expires_at: expiresAt }).returning('id').executeTakeFirstOrThrow();
      return Number(row.id);
    });
  }

  /** Drops guards (a writer's when it is done, GC's once the bytes are deleted). */
  async release(ids: readonly number[]): Promise<void> {
    if (ids.length) await this.db.deleteFrom('blob_guards').where('id', 'in', [...ids]).execute();
  }

  /** Removes guards whose holder died; returns how many. */
  async purgeExpired(now: number): Promise<number> {
    const res = await this.db.deleteFrom('blob_guards').where('expires_at', '<=', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
