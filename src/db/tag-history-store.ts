/**
 * Tags with their history, for the management API. A tag name has at most one live row
 * (`lifetime_end` null); every earlier target stays as a row with its lifetime closed, newest last.
 * Hidden tags are never listed. Pushes move tags through ManifestStore; the API moves them here, with
 * the same rule: one transaction, serialised per repository.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Digest } from '../oci/digest.js';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export interface TagRow {
  name: string;
  digest: Digest;
  mediaType: string;
  /** The manifest's own size in bytes. */
  manifestSize: number;
  /** The sum of the sizes of the blobs the manifest references (config and layers); 0 for an index. */
  blobSize: number;
  lifetimeStart: number;
  /** Undefined while the tag is live. */
  lifetimeEnd?: number;
}

export interface TagListQuery {
  /** Only live tags (default); otherwise history rows too. */
  onlyActive: boolean;
  /** Only rows of this tag name. */
  name?: string;
  /** Only tag names containing (`like`) or equal to (`eq`) the value, ignoring ASCII case for `like`. */
  filter?: { op: 'like' | 'eq'; value: string };
  offset: number;
  limit: number;
}

export class TagHistoryStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  /** Matching rows, newest lifetime first (ties: newest row first), at most `limit` from `offset`. */
  async list(repositoryId: number, q: TagListQuery): Promise<TagRow[]> {
    let query = this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .select(['t.name', 'm.digest', 'm.media_type', 'm.size', 't.lifetime_start', 't.lifetime_end'])
      .select((eb) =>
        eb
          .selectFrom('manifest_blobs as mb')
          .innerJoin('blobs as b', 'b.id', 'mb.blob_id')
          .select((e) => e.fn.sum<number>('b.size').as('s'))
          .whereRef('mb.manifest_id', '=', 'm.id')
          .as('blob_size'),
      )
      .where('t.repository_id', '=', repositoryId)
      .where('t.hidden', '=', 0)
      .orderBy('t.lifetime_start', 'desc')
      .orderBy('t.id', 'desc')
      .limit(q.limit)
      .offset(q.offset);
    if (q.onlyActive) query = query.where('t.lifetime_end', 'is', null);
    if (q.name !== undefined) query = query.where('t.name', '=', q.name);
    if (q.filter?.op === 'eq') query = query.where('t.name', '=', q.filter.value);
    if (q.filter?.op === 'like') {
      const pattern = `%${q.filter.value.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query = query.where(sql<boolean>`lower(t.name) like ${pattern} escape '\\'`);
    }
    const rows = await query.execute();
    return rows.map((r) => ({
      name: r.name,
      digest: r.digest as Digest,
      mediaType: r.media_type,
      manifestSize: Number(r.size),
      blobSize: Number(r.blob_size ?? 0),
      lifetimeStart: Number(r.lifetime_start),
      ...(r.lifetime_end === null ? {} : { lifetimeEnd: Number(r.lifetime_end) }),
    }));
  }

  /** The number of live, visible tags. */
  async countLive(repositoryId: number): Promise<number> {
    const row = await this.db
      .selectFrom('tags')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('repository_id', '=', repositoryId)
      .where('lifetime_end', 'is', null)
      .where('hidden', '=', 0)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** The digest a live tag points at, or undefined. */
  async liveDigest(repositoryId: number, tag: string): Promise<Digest | undefined> {
    const row = await this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .select('m.digest')
      .where('t.repository_id', '=', repositoryId)
      .where('t.name', '=', tag)
      .where('t.lifetime_end', 'is', null)
      .executeTakeFirst();
    return row?.digest as Digest | undefined;
  }

  /** The id of the manifest `digest` if it still exists in the repository and some row of `tag` (live or history) ever pointed at it. */
  async historicalTarget(repositoryId: number, tag: string, digest: Digest): Promise<number | undefined> {
    const row = await this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .select('m.id')
      .where('t.repository_id', '=', repositoryId)
      .where('t.name', '=', tag)
      .where('m.digest', '=', digest)
      .limit(1)
      .executeTakeFirst();
    return row?.id;
  }

  /**
   * Points the tag at the manifest (the previous target, if any, becomes history) and returns the
   * previous target's digest; nothing changes when it points there already.
   */
  async retarget(repositoryId: number, tag: string, manifestId: number): Promise<{ previous?: Digest; changed: boolean }> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockRepository(tx, repositoryId);
      const live = await tx
        .selectFrom('tags as t')
        .innerJoin('manifests as m', 'm.id', 't.manifest_id')
        .select(['t.id', 't.manifest_id', 'm.digest'])
        .where('t.repository_id', '=', repositoryId)
        .where('t.name', '=', tag)
        .where('t.lifetime_end', 'is', null)
        .executeTakeFirst();
      if (live?.manifest_id === manifestId) return { previous: live.digest as Digest, changed: false };
      const now = Date.now();
      if (live) await tx.updateTable('tags').set({ lifetime_end: now }).where('id', '=', live.id).execute();
      await tx
        .insertInto('tags')
        .values({ repository_id: repositoryId, name: tag, manifest_id: manifestId, lifetime_start: now, lifetime_end: null, hidden: 0 })
        .execute();
      return { previous: live?.digest as Digest | undefined, changed: true };
    });
  }

  /** Ends the live tag's lifetime (it stays as history); the digest it pointed at, or undefined if it was not live. */
  async end(repositoryId: number, tag: string): Promise<Digest | undefined> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockRepository(tx, repositoryId);
      const live = await tx
        .selectFrom('tags as t')
        .innerJoin('manifests as m', 'm.id', 't.manifest_id')
        .select(['t.id', 'm.digest'])
        .where('t.repository_id', '=', repositoryId)
        .where('t.name', '=', tag)
        .where('t.lifetime_end', 'is', null)
        .where('t.hidden', '=', 0)
        .executeTakeFirst();
      if (!live) return undefined;
      await tx.updateTable('tags').set({ lifetime_end: Date.now() }).where('id', '=', live.id).execute();
      return live.digest as Digest;
    });
  }

  /**
   * Deletes every row of the tag, live and history (only those pointing at `digest` when given), so
   * that it cannot be restored; returns the number of rows removed.
   */
  async purge(repositoryId: number, tag: string, digest?: Digest): Promise<number> {
    let q = this.db.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).where('hidden', '=', 0);
    if (digest !== undefined) {
      q = q.where('manifest_id', 'in', this.db.selectFrom('manifests').select('id').where('repository_id', '=', repositoryId).where('digest', '=', digest));
    }
    const res = await q.executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /** Tag moves in one repository are serialised by a lock on its row (SQLite write transactions are exclusive already). */
  private async lockRepository(tx: Transaction<Database>, repositoryId: number): Promise<void> {
    if (this.dialect.supportsRowLocks) await tx.selectFrom('repositories').select('id').where('id', '=', repositoryId).forUpdate().execute();
  }
}
