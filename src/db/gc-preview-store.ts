/**
 * What a garbage-collection pass would remove, without removing anything (`wharf gc --dry-run`). GC
 * deletes unreferenced manifests level by level (an index first, then the children only it kept); here
 * the same outcome is computed at once as a mark: the manifests kept are those pushed within the grace
 * period or pointed at by a retained tag row (tag-lifetime.ts), and everything they reach through
 * `manifest_children` and from a subject to its referrers. Links and blobs follow from that set with
 * the rules of gc-store.ts.
 */
import { sql, type Kysely } from 'kysely';
import type { Digest } from '../oci/digest.js';
import type { GcClock } from './gc-store.js';
import type { Database } from './tables.js';
import { retainedTag } from './tag-lifetime.js';

export interface GcPreviewPart {
  count: number;
  bytes: number;
  /** Some of the digests, at most the sample size asked for. */
  sample: Digest[];
}

export interface GcPreview {
  manifests: GcPreviewPart;
  links: { count: number };
  blobs: GcPreviewPart;
}

export class GcPreviewStore {
  constructor(private readonly db: Kysely<Database>) {}

  async preview(c: GcClock, sampleSize: number): Promise<GcPreview> {
    // Every set once, as common table expressions; membership tests are IN lists, which both databases
    // answer with a hash (PostgreSQL) or an ephemeral index (SQLite) instead of a scan per row.
    const sets = sql`with recursive
      edges(parent, child) as (
        select mc.manifest_id, mc.child_id from manifest_children mc
        union all
        select s.id, r.id from manifests r inner join manifests s on s.repository_id = r.repository_id and s.digest = r.subject_digest
      ),
      kept(id) as (
        select m.id from manifests m
        where coalesce(m.pushed_at, m.created_at) >= ${c.graceCutoff}
          or exists (
            select 1 from tags t
            inner join repositories rr on rr.id = t.repository_id
            inner join namespaces n on n.id = rr.namespace_id
            where t.manifest_id = m.id and ${retainedTag('t', 'n', c.now, c.defaultWindowMs)})
        union
        select e.child from edges e inner join kept k on k.id = e.parent
      ),
      kept_use(repository_id, blob_id) as (
        select km.repository_id, kmb.blob_id from manifest_blobs kmb inner join manifests km on km.id = kmb.manifest_id
        where km.id in (select id from kept)
      ),
      gone_manifests(digest, size) as (select m.digest, m.size from manifests m where m.id not in (select id from kept)),
      kept_links(repository_id, blob_id) as (
        select rb.repository_id, rb.blob_id from repository_blobs rb
        where rb.created_at >= ${c.graceCutoff} or (rb.repository_id, rb.blob_id) in (select repository_id, blob_id from kept_use)
      ),
      gone_blobs(digest, size) as (
        select b.digest, b.size from blobs b
        where b.created_at < ${c.graceCutoff}
          and b.id not in (select blob_id from kept_use)
          and b.id not in (select blob_id from kept_links)
      )`;
    const totals = await sql<{ m: number; mb: number | null; l: number; k: number; b: number; bb: number | null }>`${sets}
      select (select count(*) from gone_manifests) as m, (select sum(size) from gone_manifests) as mb,
        (select count(*) from repository_blobs) as l, (select count(*) from kept_links) as k,
        (select count(*) from gone_blobs) as b, (select sum(size) from gone_blobs) as bb`.execute(this.db);
    const samples = await sql<{ kind: string; digest: string }>`${sets}
      select * from (select 'm' as kind, digest from gone_manifests order by digest limit ${sampleSize}) gm
      union all
      select * from (select 'b' as kind, digest from gone_blobs order by digest limit ${sampleSize}) gb`.execute(this.db);
    const t = totals.rows[0]!;
    const sample = (kind: string) => samples.rows.filter((r) => r.kind === kind).map((r) => r.digest as Digest);
    return {
      manifests: { count: Number(t.m), bytes: Number(t.mb ?? 0), sample: sample('m') },
      links: { count: Number(t.l) - Number(t.k) },
      blobs: { count: Number(t.b), bytes: Number(t.bb ?? 0), sample: sample('b') },
    };
  }
}
