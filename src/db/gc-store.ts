/**
 * The SQL of garbage collection, in bounded batches (each a short transaction; none spans storage I/O):
 *
 *   tags        rows no longer retained (tag-lifetime.ts): history and expired tags past their
 *               namespace's window, hidden tags once ended or expired
 *   manifests   no tag row of any kind points at it, no index lists it as a child, it is not a referrer
 *               whose subject exists in its repository, and it was not pushed within the grace period
 *   links       `repository_blobs` rows older than the grace period that no manifest of the repository uses
 *   blobs       rows no repository links and no manifest uses, older than the grace period, that no
 *               writer is committing (blob-guard-store.ts); a 'delete' guard is left for each; their
 *               placements and queued replication jobs go in the same transaction
 *
 * Batches are keyset-paged and, on PostgreSQL, taken `FOR UPDATE SKIP LOCKED`, so any number of GC
 * workers share the work and a row that a push holds is skipped, not waited for. Manifest, link and blob
 * candidates are re-checked in a statement that runs after their locks are held (a later snapshot than
 * the scan): a reference committed in between is seen, and writers that would add one (tag, child,
 * manifest_blobs and link inserts, which lock the row by foreign key or `FOR SHARE`) wait and then find
 * the row gone. Repository and namespace sizes (quota-accounting.ts) drop in the transaction that
 * deletes the manifests; ContentReleaseHook tells anything else, inside the deleting transaction and
 * before the rows go, what GC releases.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Digest } from '../oci/digest.js';
import type { DialectAdapter } from './dialect.js';
import { QuotaAccounting } from './quota-accounting.js';
import { pairValues } from './row-values.js';
import type { Database } from './tables.js';
import { windowMs } from './tag-lifetime.js';

export interface GcClock {
  now: number;
  /** Manifests pushed, links made and blob rows created at or after this are spared. */
  graceCutoff: number;
  /** The time-machine window of namespaces without their own (ms). */
  defaultWindowMs: number;
}

export interface ReleasedManifest {
  id: number;
  repositoryId: number;
  digest: Digest;
  size: number;
}

export interface ReleasedLink {
  repositoryId: number;
  blobId: number;
  digest: Digest;
  size: number;
}

export interface ReleasedBlob {
  id: number;
  digest: Digest;
  size: number;
}

/**
 * Told what GC really deletes, in the deleting transaction before the rows go (a manifest's
 * `manifest_blobs` and `manifest_children` are still there), so totals can change in that transaction.
 */
export interface ContentReleaseHook {
  manifests?(tx: Transaction<Database>, rows: readonly ReleasedManifest[]): Promise<void>;
  links?(tx: Transaction<Database>, rows: readonly ReleasedLink[]): Promise<void>;
  blobs?(tx: Transaction<Database>, rows: readonly ReleasedBlob[]): Promise<void>;
}

export type TagCursor = readonly [at: number, id: number];
export type LinkCursor = readonly [repositoryId: number, blobId: number];

export class GcStore {
  private readonly accounting: QuotaAccounting;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
    private readonly hook: ContentReleaseHook = {},
  ) {
    this.accounting = new QuotaAccounting(db, dialect);
  }

  /**
   * Deletes (or, with `dryRun`, only finds) up to `limit` tag rows past retention: `ended` rows by
   * `lifetime_end`, or still-open `expired` rows by `expires_at`, after `after`. `next` is undefined
   * once the scan is through.
   */
  async deleteTags(which: 'ended' | 'expired', c: GcClock, after: TagCursor | undefined, limit: number, dryRun = false): Promise<{ count: number; next?: TagCursor }> {
    const at = which === 'ended' ? 't.lifetime_end' : 't.expires_at';
    const run = async (db: Kysely<Database> | Transaction<Database>) => {
      let q = db
        .selectFrom('tags as t')
        .innerJoin('repositories as r', 'r.id', 't.repository_id')
        .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
        .select(['t.id', `${at} as at`])
        .where(at, 'is not', null)
        .where(sql<boolean>`(t.hidden = 1 or ${sql.ref(at)} < ${c.now} - ${windowMs('n', c.defaultWindowMs)})`)
        .orderBy(at)
        .orderBy('t.id')
        .limit(limit);
      if (which === 'expired') q = q.where('t.lifetime_end', 'is', null).where('t.expires_at', '<=', c.now);
      if (after) q = q.where(sql<boolean>`(${sql.ref(at)}, t.id) > (${after[0]}, ${after[1]})`);
      const rows = await (this.dialect.supportsRowLocks && !dryRun ? q.forUpdate('t').skipLocked() : q).execute();
      if (rows.length && !dryRun) await db.deleteFrom('tags').where('id', 'in', rows.map((r) => r.id)).execute();
      const last = rows[rows.length - 1];
      return { count: rows.length, ...(rows.length === limit && last ? { next: [Number(last.at), Number(last.id)] as const } : {}) };
    };
    return dryRun ? run(this.db) : this.db.transaction().execute(run);
  }

  /** Ids above `after` of manifests nothing keeps (see the file comment), ascending, at most `limit`. */
  async manifestCandidates(c: GcClock, after: number, limit: number): Promise<number[]> {
    const rows = await this.db
      .selectFrom('manifests as m')
      .select('m.id')
      .where('m.id', '>', after)
      .where(unreferencedManifest(c))
      .orderBy('m.id')
      .limit(limit)
      .execute();
    return rows.map((r) => Number(r.id));
  }

  /**
   * Deletes those of `ids` that nothing keeps, re-checked under their locks. Returns them, and the ids
   * to look at next: their children and their referrers, which may have just lost what kept them.
   */
  async deleteManifests(ids: readonly number[], c: GcClock): Promise<{ deleted: ReleasedManifest[]; next: number[] }> {
    if (!ids.length) return { deleted: [], next: [] };
    return this.db.transaction().execute(async (tx) => {
      const locked = await this.lock(tx, 'manifests', [...ids]);
      if (!locked.length) return { deleted: [], next: [] };
      const rows = await tx
        .selectFrom('manifests as m')
        .select(['m.id', 'm.repository_id', 'm.digest', 'm.size'])
        .where('m.id', 'in', locked)
        .where(unreferencedManifest(c))
        .execute();
      if (!rows.length) return { deleted: [], next: [] };
      const deleted = rows.map((r) => ({ id: Number(r.id), repositoryId: Number(r.repository_id), digest: r.digest as Digest, size: Number(r.size) }));
      const gone = deleted.map((m) => m.id);
      const children = await tx.selectFrom('manifest_children').select('child_id').where('manifest_id', 'in', gone).execute();
      await this.accounting.release(tx, gone);
      await this.hook.manifests?.(tx, deleted);
      await tx.deleteFrom('manifests').where('id', 'in', gone).execute();
      const byRepository = new Map<number, string[]>();
      for (const m of deleted) byRepository.set(m.repositoryId, [...(byRepository.get(m.repositoryId) ?? []), m.digest]);
      const referrers = await tx
        .selectFrom('manifests')
        .select('id')
        .where((eb) => eb.or([...byRepository].map(([repo, digests]) => eb.and([eb('repository_id', '=', repo), eb('subject_digest', 'in', digests)]))))
        .execute();
      const next = new Set([...children.map((r) => Number(r.child_id)), ...referrers.map((r) => Number(r.id))]);
      return { deleted, next: [...next] };
    });
  }

  /**
   * Unlinks, after `after`, up to `limit` blobs from repositories where the link is older than the
   * grace period and no manifest of the repository uses the blob.
   */
  async unlinkUnused(c: GcClock, after: LinkCursor | undefined, limit: number): Promise<{ unlinked: ReleasedLink[]; next?: LinkCursor }> {
    return this.db.transaction().execute(async (tx) => {
      let q = tx
        .selectFrom('repository_blobs as rb')
        .select(['rb.repository_id', 'rb.blob_id'])
        .where('rb.created_at', '<', c.graceCutoff)
        .where(unusedLink)
        .orderBy('rb.repository_id')
        .orderBy('rb.blob_id')
        .limit(limit);
      if (after) q = q.where(sql<boolean>`(rb.repository_id, rb.blob_id) > (${after[0]}, ${after[1]})`);
      const scanned = await (this.dialect.supportsRowLocks ? q.forUpdate('rb').skipLocked() : q).execute();
      const last = scanned[scanned.length - 1];
      const next = scanned.length === limit && last ? ([Number(last.repository_id), Number(last.blob_id)] as const) : undefined;
      if (!scanned.length) return { unlinked: [] };
      const pairs = sql<boolean>`(rb.repository_id, rb.blob_id) in (${pairValues(scanned.map((r) => [Number(r.repository_id), Number(r.blob_id)]))})`;
      const rows = await tx
        .selectFrom('repository_blobs as rb')
        .innerJoin('blobs as b', 'b.id', 'rb.blob_id')
        .select(['rb.repository_id', 'rb.blob_id', 'b.digest', 'b.size'])
        .where(pairs)
        .where('rb.created_at', '<', c.graceCutoff)
        .where(unusedLink)
        .execute();
      const unlinked = rows.map((r) => ({ repositoryId: Number(r.repository_id), blobId: Number(r.blob_id), digest: r.digest as Digest, size: Number(r.size) }));
      if (unlinked.length) {
        await this.hook.links?.(tx, unlinked);
        const gone = sql<boolean>`(repository_id, blob_id) in (${pairValues(unlinked.map((r) => [r.repositoryId, r.blobId]))})`;
        await tx.deleteFrom('repository_blobs').where(gone).execute();
      }
      return { unlinked, ...(next ? { next } : {}) };
    });
  }

  /**
   * Deletes, after `after`, up to `limit` blob rows that no repository links and no manifest uses,
   * created before the grace period, with no live 'write' guard (even of a process that died, see
   * blob-guard-store.ts); leaves a 'delete' guard until `guardUntil` for each. The caller deletes their
   * bytes, then releases the guards.
   */
  async deleteBlobs(c: GcClock, after: number, limit: number, guardUntil: number): Promise<{ blobs: ReleasedBlob[]; guards: number[]; next?: number }> {
    return this.db.transaction().execute(async (tx) => {
      let q = tx
        .selectFrom('blobs as b')
        .select('b.id')
        .where('b.id', '>', after)
        .where('b.created_at', '<', c.graceCutoff)
        .where(unusedBlob)
        .orderBy('b.id')
        .limit(limit);
      if (this.dialect.supportsRowLocks) q = q.forUpdate('b').skipLocked();
      const scanned = await q.execute();
      const last = scanned[scanned.length - 1];
      const next = scanned.length === limit && last ? Number(last.id) : undefined;
      if (!scanned.length) return { blobs: [], guards: [] };
      const rows = await tx
        .selectFrom('blobs as b')
        .select(['b.id', 'b.digest', 'b.size'])
        .where('b.id', 'in', scanned.map((r) => Number(r.id)))
        .where('b.created_at', '<', c.graceCutoff)
        .where(unusedBlob)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('blob_guards as g').select('g.id').whereRef('g.digest', '=', 'b.digest').where('g.kind', '=', 'write').where('g.expires_at', '>', c.now))),
        )
        .execute();
      const blobs = rows.map((r) => ({ id: Number(r.id), digest: r.digest as Digest, size: Number(r.size) }));
      if (!blobs.length) return { blobs, guards: [], ...(next === undefined ? {} : { next }) };
      await this.hook.blobs?.(tx, blobs);
      await tx.deleteFrom('blobs').where('id', 'in', blobs.map((b) => b.id)).execute();
      // The bytes go from every location (the storage deletes them everywhere), and with them where they were and what was to be copied.
      const digests = blobs.map((b) => b.digest);
      // Their 'write' guards are expired (a writer waits for the row GC holds): dropped.
      await tx.deleteFrom('blob_guards').where('digest', 'in', digests).where('kind', '=', 'write').execute();
      await tx.deleteFrom('blob_placements').where('digest', 'in', digests).execute();
      await tx.deleteFrom('replication_jobs').where('digest', 'in', digests).execute();
      const guards = await tx
        .insertInto('blob_guards')
        .values(blobs.map((b) => ({ digest: b.digest, kind: 'delete', expires_at: guardUntil })))
        .returning('id')
        .execute();
      return { blobs, guards: guards.map((g) => Number(g.id)), ...(next === undefined ? {} : { next }) };
    });
  }

  /** Locks the rows of `ids` that nobody else holds (PostgreSQL); returns the ids locked (SQLite: all). */
  private async lock(tx: Transaction<Database>, table: 'manifests', ids: number[]): Promise<number[]> {
    if (!this.dialect.supportsRowLocks) return ids;
    const rows = await tx.selectFrom(table).select('id').where('id', 'in', ids).forUpdate().skipLocked().execute();
    return rows.map((r) => Number(r.id));
  }
}

/** The manifest `m` is kept by nothing: see the file comment. */
function unreferencedManifest(c: GcClock) {
  return sql<boolean>`(
    coalesce(m.pushed_at, m.created_at) < ${c.graceCutoff}
    and not exists (select 1 from tags t where t.manifest_id = m.id)
    and not exists (select 1 from manifest_children mc where mc.child_id = m.id)
    and (m.subject_digest is null or not exists (select 1 from manifests s where s.repository_id = m.repository_id and s.digest = m.subject_digest))
  )`;
}

/** No manifest of the link's repository uses the blob. */
const unusedLink = sql<boolean>`not exists (
  select 1 from manifest_blobs mb inner join manifests m on m.id = mb.manifest_id
  where mb.blob_id = rb.blob_id and m.repository_id = rb.repository_id)`;

/** No repository links the blob and no manifest uses it. */
const unusedBlob = sql<boolean>`(
  not exists (select 1 from repository_blobs rb where rb.blob_id = b.id)
  and not exists (select 1 from manifest_blobs mb where mb.blob_id = b.id))`;
