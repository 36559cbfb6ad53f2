/**
 * Repository and namespace sizes, kept in the transactions that create and delete manifests.
 *
 * A blob counts once per repository and once per namespace (migrations/0006-quotas.ts):
 * `quota_repository_blobs.refs` counts the manifests of a repository that use a blob and
 * `quota_namespace_blobs.refs` the repositories of a namespace that do; a blob's size is added to a
 * total when its count goes from 0 to 1 and taken off when it returns to 0. An index has no blobs of
 * its own: it counts through its children, which are manifests of the repository.
 *
 * Rows are locked in one global order — repository blob counts by (repository, blob), then namespace
 * blob counts by (namespace, blob), then repository sizes, then namespace sizes — so concurrent pushes
 * and GC batches on PostgreSQL wait for each other instead of deadlocking. The namespace's size row is
 * held until commit: a push checked against a Reject limit there sees every push committed before it,
 * so concurrent pushes cannot overshoot the limit together.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { fullRepositoryName } from './full-name.js';
import { pairValues } from './row-values.js';
import type { Database } from './tables.js';

/** What adding a manifest did to its namespace's size. */
export interface Charge {
  namespaceId: number;
  /** Bytes the namespace's size grew by (0 when every blob was counted already). */
  added: number;
  /** The namespace's size after, when it grew. */
  after?: number;
}

export interface SizeDrift {
  id: number;
  /** `namespace` or `namespace/repository`. */
  name: string;
  stored: number;
  actual: number;
}

/** What `recount` found (and, unless a dry run, corrected). */
export interface RecountReport {
  repositories: number;
  namespaces: number;
  /** Totals that differed from a count from scratch, and how many per-blob counts did. */
  drift: { repositories: SizeDrift[]; namespaces: SizeDrift[]; blobCounts: number };
  /** Whether the tables were rewritten (drift found and not a dry run). */
  fixed: boolean;
  ms: number;
}

type Tx = Transaction<Database>;
type Pair = readonly [number, number];

export class QuotaAccounting {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  /**
   * Counts the blobs of a new manifest (`blobs`: its `manifest_blobs`, with sizes) in its repository
   * and namespace. Call in the transaction that inserts the manifest.
   */
  async charge(tx: Tx, repositoryId: number, blobs: ReadonlyArray<{ id: number; size: number }>): Promise<Charge> {
    const repo = await tx.selectFrom('repositories').select('namespace_id').where('id', '=', repositoryId).executeTakeFirstOrThrow();
    const namespaceId = Number(repo.namespace_id);
    const sorted = [...new Map(blobs.map((b) => [Number(b.id), Number(b.size)])).entries()].sort((a, b) => a[0] - b[0]);
    if (!sorted.length) return { namespaceId, added: 0 };
    const repoCounts = await tx
      .insertInto('quota_repository_blobs')
      .values(sorted.map(([id]) => ({ repository_id: repositoryId, blob_id: id, refs: 1 })))
      .onConflict((oc) => oc.columns(['repository_id', 'blob_id']).doUpdateSet({ refs: sql`quota_repository_blobs.refs + 1` }))
      .returning(['blob_id', 'refs'])
      .execute();
    const firstInRepo = new Set(repoCounts.filter((r) => Number(r.refs) === 1).map((r) => Number(r.blob_id)));
    const newInRepo = sorted.filter(([id]) => firstInRepo.has(id));
    if (!newInRepo.length) return { namespaceId, added: 0 };
    const nsCounts = await tx
      .insertInto('quota_namespace_blobs')
      .values(newInRepo.map(([id]) => ({ namespace_id: namespaceId, blob_id: id, refs: 1 })))
      .onConflict((oc) => oc.columns(['namespace_id', 'blob_id']).doUpdateSet({ refs: sql`quota_namespace_blobs.refs + 1` }))
      .returning(['blob_id', 'refs'])
      .execute();
    const firstInNs = new Set(nsCounts.filter((r) => Number(r.refs) === 1).map((r) => Number(r.blob_id)));
    await addToSize(tx, 'repository_sizes', 'repository_id', repositoryId, sum(newInRepo.map(([, size]) => size)));
    const added = sum(newInRepo.filter(([id]) => firstInNs.has(id)).map(([, size]) => size));
    if (!added) return { namespaceId, added: 0 };
    const after = await addToSize(tx, 'namespace_sizes', 'namespace_id', namespaceId, added);
    return { namespaceId, added, after };
  }

  /** Takes the blobs of manifests about to be deleted off their totals. Call before deleting them. */
  async release(tx: Tx, manifestIds: readonly number[]): Promise<void> {
    if (!manifestIds.length) return;
    const rows = await tx
      .selectFrom('manifest_blobs as mb')
      .innerJoin('manifests as m', 'm.id', 'mb.manifest_id')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .innerJoin('blobs as b', 'b.id', 'mb.blob_id')
      .select(['m.repository_id', 'r.namespace_id', 'mb.blob_id', 'b.size'])
      .where('mb.manifest_id', 'in', [...manifestIds])
      .execute();
    if (!rows.length) return;
    const perRepoBlob = new Map<string, { repositoryId: number; namespaceId: number; blobId: number; size: number; count: number }>();
    for (const r of rows) {
      const key = `${r.repository_id}:${r.blob_id}`;
      const e = perRepoBlob.get(key);
      if (e) e.count++;
      else perRepoBlob.set(key, { repositoryId: Number(r.repository_id), namespaceId: Number(r.namespace_id), blobId: Number(r.blob_id), size: Number(r.size), count: 1 });
    }
    const entries = [...perRepoBlob.values()];
    const zeroed = await this.decrement(
      tx,
      'quota_repository_blobs',
      'repository_id',
      entries.map((e) => ({ pair: [e.repositoryId, e.blobId] as const, by: e.count })),
    );
    const gone = entries.filter((e) => zeroed.has(`${e.repositoryId}:${e.blobId}`));
    // The global lock order: namespace blob counts, then repository sizes, then namespace sizes.
    const freed = await this.releaseFromNamespaces(tx, gone);
    await subtractFromSizes(tx, 'repository_sizes', 'repository_id', totals(gone.map((e) => [e.repositoryId, e.size])), this.dialect);
    await subtractFromSizes(tx, 'namespace_sizes', 'namespace_id', freed, this.dialect);
  }

  /** Takes a repository about to be deleted off its namespace's totals (its own rows go with it). */
  async releaseRepository(tx: Tx, repositoryId: number): Promise<void> {
    const rows = await tx
      .selectFrom('quota_repository_blobs as q')
      .innerJoin('repositories as r', 'r.id', 'q.repository_id')
      .innerJoin('blobs as b', 'b.id', 'q.blob_id')
      .select(['r.namespace_id', 'q.blob_id', 'b.size'])
      .where('q.repository_id', '=', repositoryId)
      .execute();
    const freed = await this.releaseFromNamespaces(
      tx,
      rows.map((r) => ({ namespaceId: Number(r.namespace_id), blobId: Number(r.blob_id), size: Number(r.size) })),
    );
    await subtractFromSizes(tx, 'namespace_sizes', 'namespace_id', freed, this.dialect);
  }

  /** One repository fewer uses each of `gone` in its namespace; returns the bytes each namespace no longer uses. */
  private async releaseFromNamespaces(tx: Tx, gone: ReadonlyArray<{ namespaceId: number; blobId: number; size: number }>): Promise<Map<number, number>> {
    if (!gone.length) return new Map();
    const perNsBlob = new Map<string, { namespaceId: number; blobId: number; size: number; count: number }>();
    for (const g of gone) {
      const key = `${g.namespaceId}:${g.blobId}`;
      const e = perNsBlob.get(key);
      if (e) e.count++;
      else perNsBlob.set(key, { ...g, count: 1 });
    }
    const entries = [...perNsBlob.values()];
    const zeroed = await this.decrement(
      tx,
      'quota_namespace_blobs',
      'namespace_id',
      entries.map((e) => ({ pair: [e.namespaceId, e.blobId] as const, by: e.count })),
    );
    const freed = entries.filter((e) => zeroed.has(`${e.namespaceId}:${e.blobId}`));
    return totals(freed.map((e) => [e.namespaceId, e.size]));
  }

  /**
   * Lowers the counts of (owner, blob) pairs, deleting rows that reach 0; returns the keys
   * `owner:blob` of those. Rows are locked in key order first (PostgreSQL).
   */
  private async decrement(
    tx: Tx,
    table: 'quota_repository_blobs' | 'quota_namespace_blobs',
    owner: 'repository_id' | 'namespace_id',
    items: ReadonlyArray<{ pair: Pair; by: number }>,
  ): Promise<Set<string>> {
    const zeroed = new Set<string>();
    if (!items.length) return zeroed;
    const t = sql.table(table);
    const o = sql.ref(owner);
    if (this.dialect.supportsRowLocks) {
      await sql`select 1 from ${t} where (${o}, blob_id) in (${pairValues(items.map((i) => i.pair))}) order by ${o}, blob_id for update`.execute(tx);
    }
    const byAmount = new Map<number, Pair[]>();
    for (const i of items) byAmount.set(i.by, [...(byAmount.get(i.by) ?? []), i.pair]);
    for (const [by, pairs] of byAmount) {
      const res = await sql<{ owner: number; blob_id: number; refs: number }>`update ${t} set refs = refs - ${by}
        where (${o}, blob_id) in (${pairValues(pairs)}) returning ${o} as owner, blob_id, refs`.execute(tx);
      for (const r of res.rows) if (Number(r.refs) <= 0) zeroed.add(`${r.owner}:${r.blob_id}`);
    }
    if (zeroed.size) {
      const pairs = [...zeroed].map((k) => k.split(':').map(Number) as unknown as Pair);
      await sql`delete from ${t} where (${o}, blob_id) in (${pairValues(pairs)})`.execute(tx);
    }
    return zeroed;
  }

  /**
   * Recomputes every count and total from the manifests, reports what differed and (unless `dryRun`)
   * corrects it. The check runs without locks; only when it finds drift are the totals counted again
   * and rewritten in one transaction, during which (PostgreSQL) pushes and GC wait at their first
   * count update.
   */
  async recount(opts: { dryRun?: boolean } = {}): Promise<RecountReport> {
    const started = Date.now();
    const run = async (db: Kysely<Database> | Tx, fix: boolean): Promise<RecountReport> => {
      if (fix && this.dialect.name === 'postgres') {
        // Pushes and GC wait at their first count update until the new totals are in.
        await sql`lock table quota_repository_blobs, quota_namespace_blobs, repository_sizes, namespace_sizes in share row exclusive mode`.execute(db);
      }
      const repoActual = await sql<{ id: number; name: string; size: string | number }>`
        select x.repository_id as id, ${fullRepositoryName(this.dialect)} as name, sum(b.size) as size
        from (select distinct m.repository_id, mb.blob_id from manifest_blobs mb inner join manifests m on m.id = mb.manifest_id) x
        inner join blobs b on b.id = x.blob_id
        inner join repositories r on r.id = x.repository_id inner join namespaces n on n.id = r.namespace_id
        group by x.repository_id, n.name, r.name`.execute(db);
      const nsActual = await sql<{ id: number; name: string; size: string | number }>`
        select x.namespace_id as id, n.name as name, sum(b.size) as size
        from (select distinct r.namespace_id, mb.blob_id from manifest_blobs mb inner join manifests m on m.id = mb.manifest_id
              inner join repositories r on r.id = m.repository_id) x
        inner join blobs b on b.id = x.blob_id inner join namespaces n on n.id = x.namespace_id
        group by x.namespace_id, n.name`.execute(db);
      const repoStored = await sql<{ id: number; name: string; size: string | number }>`
        select s.repository_id as id, ${fullRepositoryName(this.dialect)} as name, s.size_bytes as size from repository_sizes s
        inner join repositories r on r.id = s.repository_id inner join namespaces n on n.id = r.namespace_id`.execute(db);
      const nsStored = await sql<{ id: number; name: string; size: string | number }>`
        select s.namespace_id as id, n.name as name, s.size_bytes as size from namespace_sizes s inner join namespaces n on n.id = s.namespace_id`.execute(db);
      const repoCounts = sql`select m.repository_id, mb.blob_id, count(*) as refs from manifest_blobs mb inner join manifests m on m.id = mb.manifest_id group by m.repository_id, mb.blob_id`;
      const nsCounts = sql`select r.namespace_id, x.blob_id, count(*) as refs from (select distinct m.repository_id, mb.blob_id from manifest_blobs mb
        inner join manifests m on m.id = mb.manifest_id) x inner join repositories r on r.id = x.repository_id group by r.namespace_id, x.blob_id`;
      const mismatched = await sql<{ c: string | number }>`select
        (select count(*) from (select repository_id, blob_id, refs from quota_repository_blobs except ${repoCounts}) a)
        + (select count(*) from (${repoCounts} except select repository_id, blob_id, refs from quota_repository_blobs) b)
        + (select count(*) from (select namespace_id, blob_id, refs from quota_namespace_blobs except ${nsCounts}) c)
        + (select count(*) from (${nsCounts} except select namespace_id, blob_id, refs from quota_namespace_blobs) d) as c`.execute(db);
      const drift = {
        repositories: differences(repoStored.rows, repoActual.rows),
        namespaces: differences(nsStored.rows, nsActual.rows),
        blobCounts: Number(mismatched.rows[0]?.c ?? 0),
      };
      const any = drift.repositories.length > 0 || drift.namespaces.length > 0 || drift.blobCounts > 0;
      if (any && fix) {
        await sql`delete from quota_repository_blobs`.execute(db);
        await sql`delete from quota_namespace_blobs`.execute(db);
        await sql`delete from repository_sizes`.execute(db);
        await sql`delete from namespace_sizes`.execute(db);
        await sql`insert into quota_repository_blobs (repository_id, blob_id, refs) ${repoCounts}`.execute(db);
        await sql`insert into quota_namespace_blobs (namespace_id, blob_id, refs) ${nsCounts}`.execute(db);
        await sql`insert into repository_sizes (repository_id, size_bytes)
          select q.repository_id, sum(b.size) from quota_repository_blobs q inner join blobs b on b.id = q.blob_id group by q.repository_id`.execute(db);
        await sql`insert into namespace_sizes (namespace_id, size_bytes)
          select q.namespace_id, sum(b.size) from quota_namespace_blobs q inner join blobs b on b.id = q.blob_id group by q.namespace_id`.execute(db);
      }
      return { repositories: repoActual.rows.length, namespaces: nsActual.rows.length, drift, fixed: any && fix, ms: Date.now() - started };
    };
    // A first look takes no locks; only drift makes it count again under the lock and rewrite.
    const seen = await run(this.db, false);
    const clean = !seen.drift.repositories.length && !seen.drift.namespaces.length && !seen.drift.blobCounts;
    if (opts.dryRun || clean) return seen;
    return this.db.transaction().execute((tx) => run(tx, true));
  }
}

function sum(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/** Sums of `[key, amount]` per key. */
function totals(items: ReadonlyArray<readonly [number, number]>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, v] of items) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

/** Rows whose stored total differs from the actual one (a missing row is 0). */
function differences(
  stored: ReadonlyArray<{ id: number; name: string; size: string | number }>,
  actual: ReadonlyArray<{ id: number; name: string; size: string | number }>,
): SizeDrift[] {
  const byId = new Map<number, SizeDrift>();
  for (const s of stored) byId.set(Number(s.id), { id: Number(s.id), name: s.name, stored: Number(s.size), actual: 0 });
  for (const a of actual) {
    const e = byId.get(Number(a.id));
    if (e) e.actual = Number(a.size);
    else byId.set(Number(a.id), { id: Number(a.id), name: a.name, stored: 0, actual: Number(a.size) });
  }
  return [...byId.values()].filter((d) => d.stored !== d.actual).sort((a, b) => a.name.localeCompare(b.name));
}

/** Adds `bytes` to a size row (creating it); returns the new size. */
async function addToSize(tx: Tx, table: 'repository_sizes' | 'namespace_sizes', key: 'repository_id' | 'namespace_id', id: number, bytes: number): Promise<number> {
  const t = sql.table(table);
  const res = await sql<{ size_bytes: number }>`insert into ${t} (${sql.ref(key)}, size_bytes) values (${id}, ${bytes})
    on conflict (${sql.ref(key)}) do update set size_bytes = ${t}.size_bytes + excluded.size_bytes returning size_bytes`.execute(tx);
  return Number(res.rows[0]?.size_bytes ?? bytes);
}

/** Subtracts per-id amounts from size rows, in id order. */
async function subtractFromSizes(
  tx: Tx,
  table: 'repository_sizes' | 'namespace_sizes',
  key: 'repository_id' | 'namespace_id',
  amounts: ReadonlyMap<number, number>,
  dialect: DialectAdapter,
): Promise<void> {
  const ids = [...amounts.keys()].sort((a, b) => a - b);
  if (!ids.length) return;
  const t = sql.table(table);
  const k = sql.ref(key);
  if (dialect.supportsRowLocks) await sql`select 1 from ${t} where ${k} in (${sql.join(ids)}) order by ${k} for update`.execute(tx);
  const cases = sql.join(
    ids.map((id) => sql`when ${sql.lit(id)} then ${sql.lit(amounts.get(id)!)}`),
    sql` `,
  );
  await sql`update ${t} set size_bytes = size_bytes - (case ${k} ${cases} else 0 end) where ${k} in (${sql.join(ids)})`.execute(tx);
}
