/**
 * Tags with their history, for the management API. A tag name has at most one live row
 * (`lifetime_end` null); every earlier target stays as a row with its lifetime closed, newest last.
 * Hidden tags are never listed. Pushes move tags through ManifestStore; the API moves them here, with
 * the same rule: one transaction, serialised per repository.
 *
 * A tag with an expiry (`expires_at`) that has passed is not live: it is history from its expiry on,
 * and its row is closed at that time when the tag is next moved (tag-lifetime.ts). A history row can be
 * restored while it is within its namespace's time-machine window.
 *
 * An immutable live tag (`immutable` = 1) is never moved, ended, given an expiry or purged here: those
 * writes throw TagImmutable and change nothing (registry/tag-immutability.ts states the rule).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Digest } from '../oci/digest.js';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';
import { liveTag, tagEnd, windowMs } from './tag-lifetime.js';
import { TagImmutable } from './tag-immutable.js';

export interface TagRow {
  name: string;
  digest: Digest;
  mediaType: string;
  /** The manifest's own size in bytes. */
  manifestSize: number;
  /** The sum of the sizes of the blobs the manifest references (config and layers); 0 for an index. */
  blobSize: number;
  lifetimeStart: number;
  /** Undefined while the tag is live; an expired tag's expiry. */
  lifetimeEnd?: number;
  /** A live tag's future expiry (epoch ms), if it has one. */
  expiresAt?: number;
  /** The tag cannot be moved, deleted, expired or pruned. */
  immutable: boolean;
}

/** What the history holds of a tag's past target (see `historicalTarget`). */
export interface HistoricalTarget {
  manifestId: number;
  /** Some row is live or ended within the namespace's time-machine window. */
  restorable: boolean;
  /** The latest end of those rows (epoch ms), when none is live. */
  lastEnd?: number;
  /** The namespace's window in ms. */
  windowMs: number;
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
  /** The clock for expiry (default: now). */
  now?: number;
}

export class TagHistoryStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  /** Matching rows, newest lifetime first (ties: newest row first), at most `limit` from `offset`. */
  async list(repositoryId: number, q: TagListQuery): Promise<TagRow[]> {
    const now = q.now ?? Date.now();
    let query = this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .select(['t.name', 'm.digest', 'm.media_type', 'm.size', 't.lifetime_start', 't.expires_at', 't.immutable'])
      .select(tagEnd('t', now).as('lifetime_end'))
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
    if (q.onlyActive) query = query.where(liveTag('t', now));
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
      ...(r.lifetime_end === null && r.expires_at !== null ? { expiresAt: Number(r.expires_at) } : {}),
      immutable: Number(r.immutable) === 1,
    }));
  }

  /** The number of live, visible tags. */
  async countLive(repositoryId: number, now = Date.now()): Promise<number> {
    const row = await this.db
      .selectFrom('tags as t')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('t.repository_id', '=', repositoryId)
      .where(liveTag('t', now))
      .where('t.hidden', '=', 0)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Every live, visible tag of the repository with the digest it points at. */
  async liveTargets(repositoryId: number, now = Date.now()): Promise<Map<string, Digest>> {
    const rows = await this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .select(['t.name', 'm.digest'])
      .where('t.repository_id', '=', repositoryId)
      .where('t.hidden', '=', 0)
      .where(liveTag('t', now))
      .execute();
    return new Map(rows.map((r) => [r.name, r.digest as Digest]));
  }

  /** The digest a live tag points at, or undefined. */
  async liveDigest(repositoryId: number, tag: string, now = Date.now()): Promise<Digest | undefined> {
    const row = await this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .select('m.digest')
      .where('t.repository_id', '=', repositoryId)
      .where('t.name', '=', tag)
      .where(liveTag('t', now))
      .executeTakeFirst();
    return row?.digest as Digest | undefined;
  }

  /**
   * The manifest `digest` if it still exists in the repository and some visible row of `tag` (live or
   * history) pointed at it, with whether that history is still within the namespace's time-machine
   * window (`defaultWindowMs` when the namespace has none of its own).
   */
  async historicalTarget(repositoryId: number, tag: string, digest: Digest, now: number, defaultWindowMs: number): Promise<HistoricalTarget | undefined> {
    const rows = await this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .select(['m.id'])
      .select([tagEnd('t', now).as('end'), windowMs('n', defaultWindowMs).as('window')])
      .where('t.repository_id', '=', repositoryId)
      .where('t.name', '=', tag)
      .where('t.hidden', '=', 0)
      .where('m.digest', '=', digest)
      .execute();
    if (!rows.length) return undefined;
    const window = Number(rows[0]!.window);
    const ends = rows.map((r) => (r.end === null ? null : Number(r.end)));
    const live = ends.includes(null);
    const lastEnd = live ? undefined : Math.max(...(ends as number[]));
    return { manifestId: Number(rows[0]!.id), restorable: live || lastEnd! >= now - window, windowMs: window, ...(lastEnd === undefined ? {} : { lastEnd }) };
  }

  /**
   * Points the tag at the manifest (the previous target, if any, becomes history) and returns the
   * previous target's digest; nothing changes when it points there already. A row it creates is
   * immutable with `immutable`. TagImmutable when the live tag is immutable and points elsewhere.
   */
  async retarget(repositoryId: number, tag: string, manifestId: number, opts: { immutable?: boolean } = {}): Promise<{ previous?: Digest; changed: boolean } | undefined> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockRepository(tx, repositoryId);
      // The target must still exist; share-locked so that garbage collection cannot delete it under us.
      const target = tx.selectFrom('manifests').select('id').where('id', '=', manifestId);
      if (!(await (this.dialect.supportsRowLocks ? target.forShare() : target).executeTakeFirst())) return undefined;
      const live = await tx
        .selectFrom('tags as t')
        .innerJoin('manifests as m', 'm.id', 't.manifest_id')
        .select(['t.id', 't.manifest_id', 't.expires_at', 't.immutable', 'm.digest'])
        .where('t.repository_id', '=', repositoryId)
        .where('t.name', '=', tag)
        .where('t.lifetime_end', 'is', null)
        .executeTakeFirst();
      const now = Date.now();
      // An expired row is history already: it ends at its expiry.
      const expired = live?.expires_at !== null && live?.expires_at !== undefined && live.expires_at <= now;
      if (live && !expired && live.manifest_id === manifestId) return { previous: live.digest as Digest, changed: false };
      if (live && !expired && live.immutable === 1) throw new TagImmutable(tag);
      if (live) await tx.updateTable('tags').set({ lifetime_end: expired ? live.expires_at : now }).where('id', '=', live.id).execute();
      await tx
        .insertInto('tags')
        .values({ repository_id: repositoryId, name: tag, manifest_id: manifestId, lifetime_start: now, lifetime_end: null, hidden: 0, immutable: opts.immutable ? 1 : 0 })
        .execute();
      return { previous: expired ? undefined : (live?.digest as Digest | undefined), changed: true };
    });
  }

  /**
   * Ends the live tag's lifetime (it stays as history); the digest it pointed at, or undefined if it was
   * not live — or, with `onlyRow`, if its live row is no longer that one (the tag moved meanwhile).
   */
  async end(repositoryId: number, tag: string, opts: { onlyRow?: number } = {}): Promise<Digest | undefined> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockRepository(tx, repositoryId);
      const now = Date.now();
      let q = tx
        .selectFrom('tags as t')
        .innerJoin('manifests as m', 'm.id', 't.manifest_id')
        .select(['t.id', 't.immutable', 'm.digest'])
        .where('t.repository_id', '=', repositoryId)
        .where('t.name', '=', tag)
        .where(liveTag('t', now))
        .where('t.hidden', '=', 0);
      if (opts.onlyRow !== undefined) q = q.where('t.id', '=', opts.onlyRow);
      const live = await q.executeTakeFirst();
      if (!live) return undefined;
      if (live.immutable === 1) throw new TagImmutable(tag);
      await tx.updateTable('tags').set({ lifetime_end: now }).where('id', '=', live.id).execute();
      return live.digest as Digest;
    });
  }

  /**
   * Sets (or, with null, clears) the expiry of a live, visible tag; undefined when the tag is not live,
   * TagImmutable when it is immutable and `expiresAt` is not null. Returns its target and its previous expiry.
   */
  async setExpiry(repositoryId: number, tag: string, expiresAt: number | null): Promise<{ digest: Digest; previous: number | null } | undefined> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockRepository(tx, repositoryId);
      const live = await tx
        .selectFrom('tags as t')
        .innerJoin('manifests as m', 'm.id', 't.manifest_id')
        .select(['t.id', 't.expires_at', 't.immutable', 'm.digest'])
        .where('t.repository_id', '=', repositoryId)
        .where('t.name', '=', tag)
        .where(liveTag('t', Date.now()))
        .where('t.hidden', '=', 0)
        .executeTakeFirst();
      if (!live) return undefined;
      if (live.immutable === 1 && expiresAt !== null) throw new TagImmutable(tag);
      await tx.updateTable('tags').set({ expires_at: expiresAt }).where('id', '=', live.id).execute();
      return { digest: live.digest as Digest, previous: live.expires_at === null ? null : Number(live.expires_at) };
    });
  }

  /**
   * Deletes every row of the tag, live and history (only those pointing at `digest` when given), so
   * that it cannot be restored; returns the number of rows removed. TagImmutable, removing nothing,
   * when the rows include an immutable live one.
   */
  async purge(repositoryId: number, tag: string, digest?: Digest): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockRepository(tx, repositoryId);
      const target = (db: Transaction<Database>) => db.selectFrom('manifests').select('id').where('repository_id', '=', repositoryId).where('digest', '=', digest!);
      let locked = tx.selectFrom('tags').select('id').where('repository_id', '=', repositoryId).where('name', '=', tag).where('hidden', '=', 0).where('immutable', '=', 1).where('lifetime_end', 'is', null);
      if (digest !== undefined) locked = locked.where('manifest_id', 'in', target(tx));
      if (await locked.executeTakeFirst()) throw new TagImmutable(tag);
      let q = tx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).where('hidden', '=', 0);
      if (digest !== undefined) q = q.where('manifest_id', 'in', target(tx));
      const res = await q.executeTakeFirst();
      return Number(res.numDeletedRows);
    });
  }

  /**
   * Makes a live, visible tag immutable (its expiry, if any, is cleared: an immutable tag does not
   * expire) or mutable again; undefined when the tag is not live. Returns its target and whether it was
   * immutable before.
   */
  async setImmutable(repositoryId: number, tag: string, immutable: boolean): Promise<{ digest: Digest; previous: boolean } | undefined> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockRepository(tx, repositoryId);
      const live = await tx
        .selectFrom('tags as t')
        .innerJoin('manifests as m', 'm.id', 't.manifest_id')
        .select(['t.id', 't.immutable', 'm.digest'])
        .where('t.repository_id', '=', repositoryId)
        .where('t.name', '=', tag)
        .where(liveTag('t', Date.now()))
        .where('t.hidden', '=', 0)
        .executeTakeFirst();
      if (!live) return undefined;
      await tx
        .updateTable('tags')
        .set(immutable ? { immutable: 1, expires_at: null } : { immutable: 0 })
        .where('id', '=', live.id)
        .execute();
      return { digest: live.digest as Digest, previous: live.immutable === 1 };
    });
  }

  /** Tag moves in one repository are serialised by a lock on its row (SQLite write transactions are exclusive already). */
  private async lockRepository(tx: Transaction<Database>, repositoryId: number): Promise<void> {
    if (this.dialect.supportsRowLocks) await tx.selectFrom('repositories').select('id').where('id', '=', repositoryId).forUpdate().execute();
  }
}
