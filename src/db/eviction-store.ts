/**
 * The reads and deletes of proxy-cache eviction (registry/proxy/quota-eviction.ts): what a new image
 * would add to a namespace's size, and the tags to give up for it — first rows the cache no longer
 * serves (tag history and expired tags), then live tags, least recently pulled first (every pull
 * pushes a cached tag's expiry forward, so the earliest expiry is the least recently pulled).
 *
 * Evicted rows are deleted, not ended: an evicted tag is not restorable. The manifests they kept are
 * then deleted by GcStore.deleteManifests, which re-checks that nothing else keeps them and takes
 * their blobs off the namespace's size in the same transaction.
 */
import { sql, type Kysely } from 'kysely';
import type { Digest } from '../oci/digest.js';
import type { Database } from './tables.js';

export interface EvictionCandidate {
  tagId: number;
  repositoryId: number;
  repository: string;
  tag: string;
  /** Epoch ms; null: never expires (evicted last). */
  expiresAt: number | null;
}

export class EvictionStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Bytes `blobs` would add to the namespace's size: those it does not count yet, each once. */
  async newBytes(namespaceId: number, blobs: ReadonlyArray<{ digest: Digest; size: number }>): Promise<number> {
    const sizes = new Map(blobs.map((b) => [b.digest as string, b.size]));
    if (!sizes.size) return 0;
    const counted = await this.db
      .selectFrom('blobs as b')
      .innerJoin('quota_namespace_blobs as q', 'q.blob_id', 'b.id')
      .select('b.digest')
      .where('q.namespace_id', '=', namespaceId)
      .where('b.digest', 'in', [...sizes.keys()])
      .execute();
    for (const c of counted) sizes.delete(c.digest);
    let total = 0;
    for (const s of sizes.values()) total += s;
    return total;
  }

  /**
   * Deletes up to `limit` tag rows of the namespace the cache no longer serves (ended, or expired);
   * returns the manifests they pointed at.
   */
  async dropRetired(namespaceId: number, now: number, limit = 500): Promise<number[]> {
    return this.db.transaction().execute(async (tx) => {
      const rows = await tx
        .selectFrom('tags as t')
        .innerJoin('repositories as r', 'r.id', 't.repository_id')
        .select(['t.id', 't.manifest_id'])
        .where('r.namespace_id', '=', namespaceId)
        .where((eb) => eb.or([eb('t.lifetime_end', 'is not', null), eb('t.expires_at', '<=', now)]))
        .limit(limit)
        .execute();
      if (!rows.length) return [];
      await tx.deleteFrom('tags').where('id', 'in', rows.map((r) => Number(r.id))).execute();
      return [...new Set(rows.map((r) => Number(r.manifest_id)))];
    });
  }

  /** The namespace's live, mutable tag pulled least recently (hidden tags of manifests pulled by digest included). */
  async leastRecentlyPulled(namespaceId: number, now: number): Promise<EvictionCandidate | undefined> {
    const row = await this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .select(['t.id', 't.repository_id', 'r.name as repository', 't.name', 't.expires_at'])
      .where('r.namespace_id', '=', namespaceId)
      .where('t.lifetime_end', 'is', null)
      .where((eb) => eb.or([eb('t.expires_at', 'is', null), eb('t.expires_at', '>', now)]))
      .where('t.immutable', '=', 0)
      .orderBy(sql`case when t.expires_at is null then 1 else 0 end`)
      .orderBy('t.expires_at')
      .orderBy('t.id')
      .limit(1)
      .executeTakeFirst();
    if (!row) return undefined;
    return { tagId: Number(row.id), repositoryId: Number(row.repository_id), repository: row.repository, tag: row.name, expiresAt: row.expires_at ?? null };
  }

  /** Deletes the tag, history included (it is not restorable), unless it is immutable; returns the manifests its rows pointed at. */
  async evict(c: EvictionCandidate): Promise<number[]> {
    return this.db.transaction().execute(async (tx) => {
      const rows = await tx.selectFrom('tags').select(['id', 'manifest_id', 'immutable', 'lifetime_end']).where('repository_id', '=', c.repositoryId).where('name', '=', c.tag).execute();
      // Made immutable since it was picked: an immutable tag is never evicted.
      if (!rows.length || rows.some((r) => r.immutable === 1 && r.lifetime_end === null)) return [];
      await tx.deleteFrom('tags').where('id', 'in', rows.map((r) => Number(r.id))).execute();
      return [...new Set(rows.map((r) => Number(r.manifest_id)))];
    });
  }
}
