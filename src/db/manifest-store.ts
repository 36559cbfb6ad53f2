/** Manifests, their links to blobs and children, tags with history, and referrers. */
import type { ExpressionBuilder, Kysely, Transaction } from 'kysely';
import type { Digest } from '../oci/digest.js';
import type { DialectAdapter } from './dialect.js';
import { PreparedQuery } from './prepared-query.js';
import { QuotaAccounting, type Charge } from './quota-accounting.js';
import { QuotaStore, rejectThreshold } from './quota-store.js';
import type { Database } from './tables.js';
import { TagImmutable } from './tag-immutable.js';

/** A write that lost a race with garbage collection (a row it relied on went); `put` tries again. */
class LostToGc extends Error {}

/**
 * A manifest write refused because it would take its namespace over a Reject limit of its quota;
 * nothing of it was stored.
 */
export class QuotaExceeded extends Error {
  constructor(
    readonly namespaceId: number,
    readonly limitBytes: number,
    readonly wouldUse: number,
  ) {
    super(`namespace ${namespaceId} would use ${wouldUse} bytes; its Reject limit allows ${limitBytes}`);
  }
}

export interface StoredManifest {
  id: number;
  digest: Digest;
  mediaType: string;
  size: number;
  content: Buffer;
}

export interface ManifestWrite {
  repositoryId: number;
  digest: Digest;
  mediaType: string;
  artifactType?: string;
  subjectDigest?: Digest;
  annotations?: Record<string, string>;
  content: Buffer;
  blobDigests: Digest[];
  childDigests: Digest[];
  tag?: string;
  /**
   * A proxy-cache write: the manifest is stored although its blobs and children are not (yet) in the
   * repository (they are fetched when a client asks for them); links are made to those that are.
   */
  lazy?: boolean;
  /**
   * With `lazy`: the sizes the manifest gives its blobs. A blob not yet known gets a row of that size
   * (no bytes yet: a placeholder, as in Quay) so that the manifest's links, and its size, are complete
   * from the start; the bytes are linked into the repository when they arrive.
   */
  blobSizes?: ReadonlyMap<Digest, number>;
  /** Expiry of the tag (epoch ms), for cached tags; null or absent: none. */
  tagExpiresAt?: number | null;
  /** The tag is hidden (never listed): it only keeps a manifest cached by digest alive. */
  hiddenTag?: boolean;
  /** A tag row this write creates is immutable (an immutability policy selects the tag). */
  tagImmutable?: boolean;
  /**
   * Children an index may lack (a sparse index: the platforms a mirror's architecture filter left out);
   * the index is linked to those that are present.
   */
  omittedChildren?: ReadonlySet<Digest>;
}

/** A live tag of a proxy-cache repository with its expiry and target. */
export interface CachedTag {
  repositoryId: number;
  manifest: StoredManifest;
  /** Epoch ms; null: never expires. */
  expiresAt: number | null;
}

export type ManifestWriteResult =
  /** `charge`: what a created manifest added to its namespace's size. */
  | { ok: true; manifestId: number; created: boolean; charge?: Charge }
  | { ok: false; missingBlobs: Digest[]; missingChildren: Digest[] };

export interface ReferrerRow {
  digest: Digest;
  mediaType: string;
  size: number;
  artifactType: string | null;
  annotations: string | null;
}

type Db = Kysely<Database> | Transaction<Database>;

export class ManifestStore {
  private readonly byTag: PreparedQuery<StoredManifest, { namespace: string; name: string; tag: string; now: number }>;
  private readonly byDigest: PreparedQuery<StoredManifest, { namespace: string; name: string; digest: string }>;

  private readonly accounting: QuotaAccounting;
  private readonly quotas: QuotaStore;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {
    this.accounting = new QuotaAccounting(db, dialect);
    this.quotas = new QuotaStore(db, dialect);
    this.byTag = new PreparedQuery<StoredManifest, { namespace: string; name: string; tag: string; now: number }>(
      (p) =>
        this.db
          .selectFrom('namespaces as n')
          .innerJoin('repositories as r', 'r.namespace_id', 'n.id')
          // Constraining the tag's repository lets the live-tag index answer; joining by manifest
          // alone would scan every manifest of the repository.
          .innerJoin('tags as t', 't.repository_id', 'r.id')
          .innerJoin('manifests as m', 'm.id', 't.manifest_id')
          .select(['m.id', 'm.digest', 'm.media_type as mediaType', 'm.size', 'm.content'])
          .where('n.name', '=', p.namespace)
          .where('r.name', '=', p.name)
          .where('t.name', '=', p.tag)
          .where('t.lifetime_end', 'is', null)
          // An expired tag is not live (tag-lifetime.ts).
          .where((eb) => eb.or([eb('t.expires_at', 'is', null), eb('t.expires_at', '>', p.now)]))
          .where('t.hidden', '=', 0) as never,
      ['namespace', 'name', 'tag', 'now'],
    );
    this.byDigest = new PreparedQuery<StoredManifest, { namespace: string; name: string; digest: string }>(
      (p) =>
        this.db
          .selectFrom('namespaces as n')
          .innerJoin('repositories as r', 'r.namespace_id', 'n.id')
          .innerJoin('manifests as m', 'm.repository_id', 'r.id')
          .select(['m.id', 'm.digest', 'm.media_type as mediaType', 'm.size', 'm.content'])
          .where('n.name', '=', p.namespace)
          .where('r.name', '=', p.name)
          .where('m.digest', '=', p.digest) as never,
      ['namespace', 'name', 'digest'],
    );
  }

  /** The manifest a live (unexpired) tag or a digest names in `namespace/name`, with its bytes, in one query. */
  async findByName(namespace: string, name: string, ref: { tag: string } | { digest: Digest }, now = Date.now()): Promise<StoredManifest | undefined> {
    const rows =
      'tag' in ref
        ? await this.byTag.execute(this.db, { namespace, name, tag: ref.tag, now })
        : await this.byDigest.execute(this.db, { namespace, name, digest: ref.digest });
    return rows[0];
  }

  async findByDigest(repositoryId: number, digest: Digest, db: Db = this.db): Promise<StoredManifest | undefined> {
    const row = await db
      .selectFrom('manifests')
      .select(['id', 'digest', 'media_type as mediaType', 'size', 'content'])
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .executeTakeFirst();
    return row as StoredManifest | undefined;
  }

  /**
   * Stores a manifest and (optionally) points a tag at it, in one transaction. Refuses, changing
   * nothing, when a referenced blob is not linked into the repository or a child manifest is missing.
   *
   * On PostgreSQL the rows the manifest comes to rely on (the blob links, the children, an existing
   * manifest of that digest) are share-locked: garbage collection takes candidates `FOR UPDATE SKIP
   * LOCKED` and re-checks them, so it either skips them or has deleted them before this write reads
   * them (which then sees them missing, or creates the manifest anew).
   *
   * A created manifest's blobs are counted in its repository's and namespace's sizes in the same
   * transaction; when that takes the namespace over a Reject limit of its quota the write is rolled
   * back and QuotaExceeded thrown (a write that adds no new bytes to the namespace always passes).
   *
   * A tag that is immutable and points at another manifest is not moved: a push throws TagImmutable
   * and nothing of the write is kept; a cache write (`lazy`) stores the manifest and leaves the tag.
   */
  async put(w: ManifestWrite): Promise<ManifestWriteResult> {
    // Racing pushes of the same manifest or tag can collide on a unique index (PostgreSQL); the
    // loser retries and then sees the winner's rows.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.putOnce(w);
      } catch (err) {
        if (attempt >= 5 || !(err instanceof LostToGc || this.dialect.isUniqueViolation(err))) throw err;
      }
    }
  }

  private async putOnce(w: ManifestWrite): Promise<ManifestWriteResult> {
    return this.db.transaction().execute(async (tx) => {
      // Tag moves in one repository are serialised by a lock on its row (SQLite write transactions
      // are exclusive already).
      if (w.tag !== undefined && this.dialect.supportsRowLocks) {
        await tx.selectFrom('repositories').select('id').where('id', '=', w.repositoryId).forUpdate().execute();
      }
      const locks = this.dialect.supportsRowLocks;
      const blobDigests = [...new Set(w.blobDigests)];
      const childDigests = [...new Set(w.childDigests)];
      const placeholders = w.lazy && w.blobSizes ? blobDigests.filter((d) => w.blobSizes!.has(d)) : [];
      if (placeholders.length) {
        const now = Date.now();
        await tx
          .insertInto('blobs')
          .values(placeholders.map((d) => ({ digest: d, size: w.blobSizes!.get(d)!, created_at: now })))
          .onConflict((oc) => oc.column('digest').doNothing())
          .execute();
      }
      let blobs: Array<{ id: number; digest: string; size: number }> = [];
      if (blobDigests.length && w.lazy) {
        const q = tx.selectFrom('blobs as b').select(['b.id', 'b.digest', 'b.size']).where('b.digest', 'in', blobDigests);
        blobs = await (locks ? q.forShare() : q).execute();
        // GC deleted a placeholder between the insert and the lock: insert it again.
        const found = new Set(blobs.map((b) => b.digest));
        if (placeholders.some((d) => !found.has(d))) throw new LostToGc();
      } else if (blobDigests.length) {
        const q = tx
          .selectFrom('blobs as b')
          .innerJoin('repository_blobs as rb', 'rb.blob_id', 'b.id')
          .select(['b.id', 'b.digest', 'b.size'])
          .where('rb.repository_id', '=', w.repositoryId)
          .where('b.digest', 'in', blobDigests);
        blobs = await (locks ? q.forShare('rb') : q).execute();
      }
      let children: Array<{ id: number; digest: string }> = [];
      if (childDigests.length) {
        const q = tx.selectFrom('manifests').select(['id', 'digest']).where('repository_id', '=', w.repositoryId).where('digest', 'in', childDigests);
        children = await (locks ? q.forShare() : q).execute();
      }
      const haveBlobs = new Set(blobs.map((b) => b.digest));
      const haveChildren = new Set(children.map((c) => c.digest));
      const missingBlobs = blobDigests.filter((d) => !haveBlobs.has(d));
      const missingChildren = childDigests.filter((d) => !haveChildren.has(d) && !w.omittedChildren?.has(d as Digest));
      if (!w.lazy && (missingBlobs.length || missingChildren.length)) return { ok: false, missingBlobs, missingChildren };

      let created = false;
      let charge: Charge | undefined;
      const existing = tx.selectFrom('manifests').select('id').where('repository_id', '=', w.repositoryId).where('digest', '=', w.digest);
      let manifest = (await (locks ? existing.forShare() : existing).executeTakeFirst()) as StoredManifest | undefined;
      // A push of a manifest that exists: GC spares it for its grace period again (an index's children
      // are pushed by digest before the index that references them).
      if (manifest && w.tag === undefined) await tx.updateTable('manifests').set({ pushed_at: Date.now() }).where('id', '=', manifest.id).execute();
      if (!manifest) {
        const inserted = await tx
          .insertInto('manifests')
          .values({
            repository_id: w.repositoryId,
            digest: w.digest,
            media_type: w.mediaType,
            artifact_type: w.artifactType ?? null,
            subject_digest: w.subjectDigest ?? null,
            annotations: w.annotations ? JSON.stringify(w.annotations) : null,
            size: w.content.byteLength,
            content: w.content,
            created_at: Date.now(),
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        created = true;
        if (blobs.length) {
          await tx.insertInto('manifest_blobs').values(blobs.map((b) => ({ manifest_id: inserted.id, blob_id: b.id }))).execute();
        }
        if (children.length) {
          await tx.insertInto('manifest_children').values(children.map((c) => ({ manifest_id: inserted.id, child_id: c.id }))).execute();
        }
        manifest = { id: inserted.id } as StoredManifest;
        charge = await this.accounting.charge(tx, w.repositoryId, blobs);
        if (charge.added > 0 && charge.after !== undefined) {
          const quota = await this.quotas.checkById(charge.namespaceId, tx);
          const limit = quota && rejectThreshold(quota);
          if (limit !== undefined && charge.after > limit) throw new QuotaExceeded(charge.namespaceId, limit, charge.after);
        }
      }
      if (w.tag !== undefined) {
        await this.moveTag(tx, w.repositoryId, w.tag, manifest.id, { expiresAt: w.tagExpiresAt ?? null, hidden: w.hiddenTag === true, immutable: w.tagImmutable === true, cached: w.lazy === true });
      }
      return { ok: true, manifestId: manifest.id, created, ...(charge ? { charge } : {}) };
    });
  }

  /** Points a live tag at a manifest; the previous target stays in the tag's history. */
  private async moveTag(
    tx: Transaction<Database>,
    repositoryId: number,
    tag: string,
    manifestId: number,
    opts: { expiresAt: number | null; hidden: boolean; immutable: boolean; cached: boolean },
  ): Promise<void> {
    const live = await tx
      .selectFrom('tags')
      .select(['id', 'manifest_id', 'expires_at', 'immutable'])
      .where('repository_id', '=', repositoryId)
      .where('name', '=', tag)
      .where('lifetime_end', 'is', null)
      .executeTakeFirst();
    const now = Date.now();
    // An expired row is history already: it ends at its expiry and a new row starts.
    const expired = live?.expires_at !== null && live?.expires_at !== undefined && live.expires_at <= now;
    const immutable = live !== undefined && !expired && live.immutable === 1;
    if (live && !expired && live.manifest_id === manifestId) {
      // An immutable tag keeps no expiry.
      if (!immutable && live.expires_at !== opts.expiresAt) await tx.updateTable('tags').set({ expires_at: opts.expiresAt }).where('id', '=', live.id).execute();
      return;
    }
    if (immutable) {
      if (opts.cached) return;
      throw new TagImmutable(tag);
    }
    if (live) await tx.updateTable('tags').set({ lifetime_end: expired ? live.expires_at : now }).where('id', '=', live.id).execute();
    await tx
      .insertInto('tags')
      .values({
        repository_id: repositoryId,
        name: tag,
        manifest_id: manifestId,
        lifetime_start: now,
        lifetime_end: null,
        hidden: opts.hidden ? 1 : 0,
        expires_at: opts.immutable && !opts.hidden ? null : opts.expiresAt,
        immutable: opts.immutable && !opts.hidden ? 1 : 0,
      })
      .execute();
  }

  /** The live tag (hidden ones included) with its target and expiry, expired or not. */
  async cachedTag(namespace: string, name: string, tag: string): Promise<CachedTag | undefined> {
    const row = await this.db
      .selectFrom('namespaces as n')
      .innerJoin('repositories as r', 'r.namespace_id', 'n.id')
      .innerJoin('tags as t', 't.repository_id', 'r.id')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .select(['r.id as repositoryId', 'm.id', 'm.digest', 'm.media_type as mediaType', 'm.size', 'm.content', 't.expires_at as expiresAt'])
      .where('n.name', '=', namespace)
      .where('r.name', '=', name)
      .where('t.name', '=', tag)
      .where('t.lifetime_end', 'is', null)
      .executeTakeFirst();
    if (!row) return undefined;
    const { expiresAt, repositoryId, ...manifest } = row;
    return { repositoryId: Number(repositoryId), manifest: manifest as StoredManifest, expiresAt: expiresAt ?? null };
  }

  /** Sets the expiry of a live, mutable tag (an immutable tag keeps none); false when there is none. */
  async setTagExpiry(repositoryId: number, tag: string, expiresAt: number | null): Promise<boolean> {
    const res = await this.db
      .updateTable('tags')
      .set({ expires_at: expiresAt })
      .where('repository_id', '=', repositoryId)
      .where('name', '=', tag)
      .where('lifetime_end', 'is', null)
      .where('immutable', '=', 0)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Ends a live (unexpired) tag's lifetime (it stays in the history); TagImmutable for an immutable tag. */
  async deleteTag(repositoryId: number, tag: string): Promise<boolean> {
    const now = Date.now();
    const live = (eb: ExpressionBuilder<Database, 'tags'>) =>
      eb.and([eb('repository_id', '=', repositoryId), eb('name', '=', tag), eb('lifetime_end', 'is', null), eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)])]);
    const res = await this.db.updateTable('tags').set({ lifetime_end: now }).where(live).where('immutable', '=', 0).executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) return true;
    if (await this.db.selectFrom('tags').select('id').where(live).where('immutable', '=', 1).executeTakeFirst()) throw new TagImmutable(tag);
    return false;
  }

  /**
   * Deletes a manifest for good, with every tag (live or historical) that points at it. Refuses when an
   * index in the repository still lists it as a child; TagImmutable when an immutable live tag points at it.
   */
  async deleteByDigest(repositoryId: number, digest: Digest): Promise<{ deleted: boolean; referencedBy: Digest[] }> {
    return this.db.transaction().execute(async (tx) => {
      const m = await this.findByDigest(repositoryId, digest, tx);
      if (!m) return { deleted: false, referencedBy: [] };
      const parents = await tx
        .selectFrom('manifest_children as mc')
        .innerJoin('manifests as p', 'p.id', 'mc.manifest_id')
        .select('p.digest')
        .where('mc.child_id', '=', m.id)
        .limit(5)
        .execute();
      if (parents.length) return { deleted: false, referencedBy: parents.map((p) => p.digest as Digest) };
      const pinned = await tx
        .selectFrom('tags')
        .select('name')
        .where('manifest_id', '=', m.id)
        .where('immutable', '=', 1)
        .where('hidden', '=', 0)
        .where('lifetime_end', 'is', null)
        .executeTakeFirst();
      if (pinned) throw new TagImmutable(pinned.name);
      await this.accounting.release(tx, [m.id]);
      await tx.deleteFrom('tags').where('manifest_id', '=', m.id).execute();
      await tx.deleteFrom('manifests').where('id', '=', m.id).execute();
      return { deleted: true, referencedBy: [] };
    });
  }

  /** Live (unexpired), visible tag names in byte order after `last`. */
  async listTags(repositoryId: number, opts: { last?: string; limit: number; now?: number }): Promise<string[]> {
    const now = opts.now ?? Date.now();
    let q = this.db
      .selectFrom('tags')
      .select('name')
      .where('repository_id', '=', repositoryId)
      .where('lifetime_end', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .where('hidden', '=', 0)
      .orderBy('name')
      .limit(opts.limit);
    if (opts.last !== undefined) q = q.where('name', '>', opts.last);
    return (await q.execute()).map((r) => r.name);
  }

  /** Manifests in the repository whose subject is `subject`, optionally of one artifact type. */
  async referrers(repositoryId: number, subject: Digest, artifactType?: string): Promise<ReferrerRow[]> {
    let q = this.db
      .selectFrom('manifests')
      .select(['digest', 'media_type as mediaType', 'size', 'artifact_type as artifactType', 'annotations'])
      .where('repository_id', '=', repositoryId)
      .where('subject_digest', '=', subject)
      .orderBy('digest');
    if (artifactType !== undefined) q = q.where('artifact_type', '=', artifactType);
    return (await q.execute()) as ReferrerRow[];
  }
}
