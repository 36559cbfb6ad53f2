/**
 * Per-organization replication targets (`namespace_replication_targets`): locations an organization's
 * blobs are copied to besides the registry-wide `replication.targets`, and the union of them for the
 * organizations whose repositories link a blob.
 */
import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

export class ReplicationTargetStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The namespace's targets, sorted by name (empty: none of its own). */
  async get(namespaceId: number): Promise<string[]> {
    const rows = await this.db.selectFrom('namespace_replication_targets').select('location').where('namespace_id', '=', namespaceId).orderBy('location').execute();
    return rows.map((r) => r.location);
  }

  /** Replaces the namespace's targets with `locations` (none: removes them). */
  async set(namespaceId: number, locations: readonly string[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('namespace_replication_targets').where('namespace_id', '=', namespaceId).execute();
      const unique = [...new Set(locations)];
      if (unique.length) await tx.insertInto('namespace_replication_targets').values(unique.map((location) => ({ namespace_id: namespaceId, location }))).execute();
    });
  }

  /** Every namespace with targets of its own, and them. */
  async all(): Promise<Array<{ namespaceId: number; locations: string[] }>> {
    const rows = await this.db.selectFrom('namespace_replication_targets').select(['namespace_id', 'location']).orderBy('namespace_id').orderBy('location').execute();
    const out = new Map<number, string[]>();
    for (const r of rows) {
      const id = Number(r.namespace_id);
      out.set(id, [...(out.get(id) ?? []), r.location]);
    }
    return [...out].map(([namespaceId, locations]) => ({ namespaceId, locations }));
  }

  /** The targets of every namespace whose repositories link `digest` (by upload or by a manifest), sorted. */
  async forDigest(digest: string): Promise<string[]> {
    return (await this.forDigests([digest])).get(digest) ?? [];
  }

  /**
   * `forDigest` for several digests in one statement (a digest no such namespace links is absent). One
   * query over the namespaces that have targets: it reads nothing else when none has.
   */
  async forDigests(digests: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (!digests.length) return out;
    const list = [...new Set(digests)];
    const rows = await this.db
      .selectFrom('namespace_replication_targets as t')
      .innerJoin('repositories as r', 'r.namespace_id', 't.namespace_id')
      .innerJoin('repository_blobs as rb', 'rb.repository_id', 'r.id')
      .innerJoin('blobs as b', 'b.id', 'rb.blob_id')
      .select(['b.digest', 't.location'])
      .where('b.digest', 'in', list)
      .union((eb) =>
        eb
          .selectFrom('namespace_replication_targets as t')
          .innerJoin('repositories as r', 'r.namespace_id', 't.namespace_id')
          .innerJoin('manifests as m', 'm.repository_id', 'r.id')
          .innerJoin('manifest_blobs as mb', 'mb.manifest_id', 'm.id')
          .innerJoin('blobs as b', 'b.id', 'mb.blob_id')
          .select(['b.digest', 't.location'])
          .where('b.digest', 'in', list),
      )
      .execute();
    for (const r of rows) out.set(r.digest, [...(out.get(r.digest) ?? []), r.location]);
    for (const [d, l] of out) out.set(d, [...new Set(l)].sort());
    return out;
  }
}
