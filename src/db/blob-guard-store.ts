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
 * GC's storage sweep deletes bytes that no blob row records (a crash left them behind) the same way:
 * `beginSweep` leaves the 'delete' guard only while the digest still has no row and no live guard of
 * either kind; the sweep deletes the bytes, then releases it.
 *
 * The two sides are serialised per digest: on PostgreSQL the writer share-locks the digest's blob row
 * (if there is one) while GC holds it `FOR UPDATE SKIP LOCKED`, and the writer and the sweep both take
 * the digest's key lock (dialect.ts `keyLock`; a batch of writers takes its keys' locks in one fixed
 * order), which a digest without a row still has; each side checks
 * the other's guard in a statement that runs after those locks, so whichever commits first is seen by
 * the other. SQLite runs one write transaction at a time. Guards expire (their holder died): an expired
 * guard is ignored and purged by GC.
 *
 * A 'write' guard names its writer's process (when that holds a liveness lock, process-liveness.ts), to
 * tell whose it is; it holds GC off until it expires whether or not that process lives. Unlike a lease
 * on work another process can redo, a guard protects bytes being written: a writer that only lost its
 * liveness connection (a network blip to the database) is still writing, and GC taking its blob then
 * would lose the push. A dead writer's guard costs only a later collection of that blob.
 */
import type { ExpressionBuilder, Kysely, Transaction } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export class BlobGuardStore {
  /** `processId`: this process's id when it holds its liveness lock, recorded on its 'write' guards. */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
    private readonly processId?: string,
  ) {}

  /**
   * Registers a writer of `digest` until `expiresAt`; returns the guard's id, or undefined while GC is
   * deleting that digest's bytes (try again shortly).
   */
  async beginWrite(digest: string, now: number, expiresAt: number): Promise<number | undefined> {
    return (await this.beginWrites([digest], now, expiresAt)).guards.get(digest);
  }

  /**
   * `beginWrite` for several digests in one transaction (a batch of replication copies): the guards by
   * digest, none for a digest GC is deleting; and the sizes of the digests' blob rows as they stand
   * once the guards hold (a digest without a row has none: GC may have deleted it before).
   */
  async beginWrites(digests: readonly string[], now: number, expiresAt: number): Promise<{ guards: Map<string, number>; sizes: Map<string, number> }> {
    const list = [...new Set(digests)];
    if (!list.length) return { guards: new Map(), sizes: new Map() };
    return this.db.transaction().execute(async (tx) => {
      const locks = this.dialect.keyLocks(list.map((d) => `blob:${d}`));
      if (locks) await locks.execute(tx);
      let rows = tx.selectFrom('blobs').select(['digest', 'size']).where('digest', 'in', list);
      if (this.dialect.supportsRowLocks) rows = rows.forShare();
      const sizes = new Map((await rows.execute()).map((r) => [r.digest, Number(r.size)]));
      const deleting = await tx.selectFrom('blob_guards').select('digest').distinct().where('digest', 'in', list).where('kind', '=', 'delete').where('expires_at', '>', now).execute();
      const writable = list.filter((d) => !deleting.some((r) => r.digest === d));
      const guards = new Map<string, number>();
      if (writable.length) {
        const inserted = await tx.insertInto('blob_guards').values(writable.map((digest) => ({ digest, kind: 'write', expires_at: expiresAt, owner_process: this.processId ?? null }))).returning(['id', 'digest']).execute();
        for (const g of inserted) guards.set(g.digest, Number(g.id));
      }
      return { guards, sizes };
    });
  }

  /**
   * Of `digests`, those with no blob row and no live guard (as `beginSweep` counts them): bytes nothing
   * records and nobody is writing or deleting, as far as a plain read tells (the storage sweep's
   * candidates; `beginSweep` decides).
   */
  async unrecorded<D extends string>(digests: readonly D[], now: number): Promise<D[]> {
    if (!digests.length) return [];
    const list: string[] = [...digests];
    const rows = await this.db.selectFrom('blobs').select('digest').where('digest', 'in', list).execute();
    const guarded = await this.db.selectFrom('blob_guards').select('digest').where('digest', 'in', list).where((eb) => this.holding(eb, now)).execute();
    const known = new Set([...rows, ...guarded].map((r) => r.digest));
    return digests.filter((d) => !known.has(d));
  }

  /**
   * Claims `digest`, whose bytes no blob row records, for GC's storage sweep: leaves a 'delete' guard
   * until `expiresAt` and returns its id, or undefined when the digest has a row or a live guard of
   * either kind (leave its bytes alone; expired guards are dropped here). Writers of the digest wait
   * until the guard is released.
   */
  async beginSweep(digest: string, now: number, expiresAt: number): Promise<number | undefined> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockDigest(tx, digest);
      const row = await tx.selectFrom('blobs').select('id').where('digest', '=', digest).executeTakeFirst();
      if (row) return undefined;
      const guarded = await tx.selectFrom('blob_guards').select('id').where('digest', '=', digest).where((eb) => this.holding(eb, now)).limit(1).executeTakeFirst();
      if (guarded) return undefined;
      // The guards left are expired: the sweep takes the digest over.
      await tx.deleteFrom('blob_guards').where('digest', '=', digest).execute();
      const guard = await tx.insertInto('blob_guards').values({ digest, kind: 'delete', expires_at: expiresAt }).returning('id').executeTakeFirstOrThrow();
      return Number(guard.id);
    });
  }

  /**
   * Extends a live guard to `expiresAt` (a long writer, such as a replication copy, renewing it with its
   * lease); false when it expired or is gone (GC may have considered the digest since: stop writing).
   */
  async extend(id: number, now: number, expiresAt: number): Promise<boolean> {
    return (await this.extendAll([id], now, expiresAt)).has(id);
  }

  /** `extend` for several guards in one statement; returns those still live (now extended). */
  async extendAll(ids: readonly number[], now: number, expiresAt: number): Promise<Set<number>> {
    if (!ids.length) return new Set();
    const rows = await this.db.updateTable('blob_guards').set({ expires_at: expiresAt }).where('id', 'in', [...ids]).where('expires_at', '>', now).returning('id').execute();
    return new Set(rows.map((r) => Number(r.id)));
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

  /** A guard that holds the storage sweep off: one not expired (see the file comment). */
  private holding(eb: ExpressionBuilder<Database, 'blob_guards'>, now: number) {
    return eb('expires_at', '>', now);
  }

  /** Holds the digest's key lock until `tx` ends (PostgreSQL; SQLite serialises write transactions). */
  private async lockDigest(tx: Transaction<Database>, digest: string): Promise<void> {
    const lock = this.dialect.keyLock(`blob:${digest}`);
    if (lock) await lock.execute(tx);
  }
}
