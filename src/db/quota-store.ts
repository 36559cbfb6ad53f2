/**
 * Storage quotas of namespaces, their limits, and the totals they are checked against.
 *
 * The totals themselves are kept by QuotaAccounting (quota-accounting.ts) in the transactions that
 * create and delete manifests; this store reads them and keeps the quotas and limits.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import type { Database } from './tables.js';

export type QuotaLimitKind = 'Warning' | 'Reject';

export interface QuotaLimitRecord {
  id: number;
  kind: QuotaLimitKind;
  /** 1..100 */
  percent: number;
}

export interface QuotaRecord {
  id: number;
  namespaceId: number;
  limitBytes: number;
  /** Ordered by percent, then kind. */
  limits: QuotaLimitRecord[];
}

/** What a namespace's pushes are checked against. */
export interface QuotaCheck {
  namespaceId: number;
  limitBytes: number;
  limits: QuotaLimitRecord[];
  /** The namespace's size now (blobs its manifests use, each counted once). */
  usedBytes: number;
}

type Db = Kysely<Database> | Transaction<Database>;

export class QuotaStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectAdapter,
  ) {}

  async find(namespaceId: number, db: Db = this.db): Promise<QuotaRecord | undefined> {
    const q = await db.selectFrom('namespace_quotas').select(['id', 'namespace_id', 'limit_bytes']).where('namespace_id', '=', namespaceId).executeTakeFirst();
    if (!q) return undefined;
    return { id: Number(q.id), namespaceId: Number(q.namespace_id), limitBytes: Number(q.limit_bytes), limits: await this.limits(Number(q.id), db) };
  }

  async findById(quotaId: number): Promise<QuotaRecord | undefined> {
    const q = await this.db.selectFrom('namespace_quotas').select('namespace_id').where('id', '=', quotaId).executeTakeFirst();
    return q ? this.find(Number(q.namespace_id)) : undefined;
  }

  /** Quotas of several namespaces at once (listings), by namespace id. */
  async findMany(namespaceIds: readonly number[]): Promise<Map<number, QuotaRecord>> {
    const out = new Map<number, QuotaRecord>();
    if (!namespaceIds.length) return out;
    const rows = await this.db
      .selectFrom('namespace_quotas as q')
      .leftJoin('quota_limits as l', 'l.quota_id', 'q.id')
      .select(['q.id', 'q.namespace_id', 'q.limit_bytes', 'l.id as limit_id', 'l.kind', 'l.percent'])
      .where('q.namespace_id', 'in', [...namespaceIds])
      .orderBy('l.percent')
      .orderBy('l.kind')
      .execute();
    for (const r of rows) {
      const ns = Number(r.namespace_id);
      let q = out.get(ns);
      if (!q) out.set(ns, (q = { id: Number(r.id), namespaceId: ns, limitBytes: Number(r.limit_bytes), limits: [] }));
      if (r.limit_id !== null) q.limits.push({ id: Number(r.limit_id), kind: r.kind as QuotaLimitKind, percent: Number(r.percent) });
    }
    return out;
  }

  /** Creates the namespace's quota; undefined when it has one already. */
  async create(namespaceId: number, limitBytes: number): Promise<QuotaRecord | undefined> {
    try {
      const row = await this.db
        .insertInto('namespace_quotas')
        .values({ namespace_id: namespaceId, limit_bytes: limitBytes, created_at: Date.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { id: Number(row.id), namespaceId, limitBytes, limits: [] };
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  async setLimitBytes(quotaId: number, limitBytes: number): Promise<boolean> {
    const res = await this.db.updateTable('namespace_quotas').set({ limit_bytes: limitBytes }).where('id', '=', quotaId).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Deletes the quota and its limits. */
  async delete(quotaId: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('quota_limits').where('quota_id', '=', quotaId).execute();
      const res = await tx.deleteFrom('namespace_quotas').where('id', '=', quotaId).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }

  async limits(quotaId: number, db: Db = this.db): Promise<QuotaLimitRecord[]> {
    const rows = await db.selectFrom('quota_limits').select(['id', 'kind', 'percent']).where('quota_id', '=', quotaId).orderBy('percent').orderBy('kind').execute();
    return rows.map((r) => ({ id: Number(r.id), kind: r.kind as QuotaLimitKind, percent: Number(r.percent) }));
  }

  /** Adds a limit; undefined when the quota has one of that kind and percent already. */
  async addLimit(quotaId: number, kind: QuotaLimitKind, percent: number): Promise<QuotaLimitRecord | undefined> {
    try {
      const row = await this.db.insertInto('quota_limits').values({ quota_id: quotaId, kind, percent }).returning('id').executeTakeFirstOrThrow();
      return { id: Number(row.id), kind, percent };
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  /** Changes a limit of the quota: 'missing' when it has no such limit, 'duplicate' when the change would repeat another. */
  async updateLimit(quotaId: number, limitId: number, change: { kind?: QuotaLimitKind; percent?: number }): Promise<'ok' | 'missing' | 'duplicate'> {
    const set: { kind?: string; percent?: number } = {};
    if (change.kind !== undefined) set.kind = change.kind;
    if (change.percent !== undefined) set.percent = change.percent;
    const exists = await this.db.selectFrom('quota_limits').select('id').where('id', '=', limitId).where('quota_id', '=', quotaId).executeTakeFirst();
    if (!exists) return 'missing';
    if (!Object.keys(set).length) return 'ok';
    try {
      await this.db.updateTable('quota_limits').set(set).where('id', '=', limitId).execute();
      return 'ok';
    } catch (err) {
      if (this.dialect.isUniqueViolation(err)) return 'duplicate';
      throw err;
    }
  }

  async deleteLimit(quotaId: number, limitId: number): Promise<boolean> {
    const res = await this.db.deleteFrom('quota_limits').where('id', '=', limitId).where('quota_id', '=', quotaId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** A namespace's size in bytes (0 when it holds nothing). */
  async namespaceSize(namespaceId: number, db: Db = this.db): Promise<number> {
    const row = await db.selectFrom('namespace_sizes').select('size_bytes').where('namespace_id', '=', namespaceId).executeTakeFirst();
    return Number(row?.size_bytes ?? 0);
  }

  /** Sizes of several namespaces (absent ones are 0). */
  async namespaceSizes(namespaceIds: readonly number[]): Promise<Map<number, number>> {
    if (!namespaceIds.length) return new Map();
    const rows = await this.db.selectFrom('namespace_sizes').select(['namespace_id', 'size_bytes']).where('namespace_id', 'in', [...namespaceIds]).execute();
    return new Map(rows.map((r) => [Number(r.namespace_id), Number(r.size_bytes)]));
  }

  /** Sizes of several repositories (absent ones are 0). */
  async repositorySizes(repositoryIds: readonly number[]): Promise<Map<number, number>> {
    if (!repositoryIds.length) return new Map();
    const rows = await this.db.selectFrom('repository_sizes').select(['repository_id', 'size_bytes']).where('repository_id', 'in', [...repositoryIds]).execute();
    return new Map(rows.map((r) => [Number(r.repository_id), Number(r.size_bytes)]));
  }

  /**
   * Sizes of repositories given by name, each with its namespace's quota limit (null without a
   * quota), keyed `namespace/name`; absent repositories are left out. One query (listings).
   */
  async repositoryUsage(repositories: ReadonlyArray<{ namespace: string; name: string }>): Promise<Map<string, { sizeBytes: number; limitBytes: number | null }>> {
    const out = new Map<string, { sizeBytes: number; limitBytes: number | null }>();
    if (!repositories.length) return out;
    const wanted = new Set(repositories.map((r) => `${r.namespace}/${r.name}`));
    const rows = await this.db
      .selectFrom('repositories as r')
      .innerJoin('namespaces as n', 'n.id', 'r.namespace_id')
      .leftJoin('repository_sizes as s', 's.repository_id', 'r.id')
      .leftJoin('namespace_quotas as q', 'q.namespace_id', 'r.namespace_id')
      .select(['n.name as namespace', 'r.name', 's.size_bytes', 'q.limit_bytes'])
      .where('n.name', 'in', [...new Set(repositories.map((r) => r.namespace))])
      .where('r.name', 'in', [...new Set(repositories.map((r) => r.name))])
      .execute();
    for (const r of rows) {
      const key = `${r.namespace}/${r.name}`;
      if (wanted.has(key)) out.set(key, { sizeBytes: Number(r.size_bytes ?? 0), limitBytes: r.limit_bytes === null ? null : Number(r.limit_bytes) });
    }
    return out;
  }

  /**
   * The bytes the registry holds: every blob once, whichever namespaces use it (blobs of cached
   * manifests count from the moment the manifest is cached, as they do in their namespace).
   */
  async registrySize(): Promise<number> {
    const row = await sql<{ s: string | number | null }>`select sum(size) as s from blobs`.execute(this.db);
    return Number(row.rows[0]?.s ?? 0);
  }

  /**
   * The quota of the namespace `namespace` (by name) with its current usage; undefined when it has
   * none. One query: this runs at every upload start and chunk.
   */
  async check(namespace: string, db: Db = this.db): Promise<QuotaCheck | undefined> {
    const rows = await db
      .selectFrom('namespaces as n')
      .innerJoin('namespace_quotas as q', 'q.namespace_id', 'n.id')
      .leftJoin('namespace_sizes as s', 's.namespace_id', 'n.id')
      .leftJoin('quota_limits as l', 'l.quota_id', 'q.id')
      .select(['n.id as namespace_id', 'q.limit_bytes', 's.size_bytes', 'l.id as limit_id', 'l.kind', 'l.percent'])
      .where('n.name', '=', namespace)
      .execute();
    return toCheck(rows);
  }

  /** As `check`, by namespace id. */
  async checkById(namespaceId: number, db: Db = this.db): Promise<QuotaCheck | undefined> {
    const rows = await db
      .selectFrom('namespace_quotas as q')
      .leftJoin('namespace_sizes as s', 's.namespace_id', 'q.namespace_id')
      .leftJoin('quota_limits as l', 'l.quota_id', 'q.id')
      .select(['q.namespace_id', 'q.limit_bytes', 's.size_bytes', 'l.id as limit_id', 'l.kind', 'l.percent'])
      .where('q.namespace_id', '=', namespaceId)
      .execute();
    return toCheck(rows);
  }

  /** Bytes received so far by the uploads in progress into the namespace's repositories. */
  async uploadingBytes(namespaceId: number): Promise<number> {
    const row = await this.db
      .selectFrom('uploads as u')
      .innerJoin('repositories as r', 'r.id', 'u.repository_id')
      .select(sql<string | number | null>`sum(u.size)`.as('s'))
      .where('r.namespace_id', '=', namespaceId)
      .executeTakeFirst();
    return Number(row?.s ?? 0);
  }
}

function toCheck(
  rows: Array<{ namespace_id: number; limit_bytes: number; size_bytes: number | null; limit_id: number | null; kind: string | null; percent: number | null }>,
): QuotaCheck | undefined {
  const first = rows[0];
  if (!first) return undefined;
  const limits = rows
    .filter((r) => r.limit_id !== null)
    .map((r) => ({ id: Number(r.limit_id), kind: r.kind as QuotaLimitKind, percent: Number(r.percent) }))
    .sort((a, b) => a.percent - b.percent || a.kind.localeCompare(b.kind));
  return { namespaceId: Number(first.namespace_id), limitBytes: Number(first.limit_bytes), limits, usedBytes: Number(first.size_bytes ?? 0) };
}

/** Bytes a limit allows: `limitBytes * percent / 100`, rounded down. */
export function limitThreshold(limitBytes: number, percent: number): number {
  return Math.floor((limitBytes * percent) / 100);
}

/** The bytes Reject limits allow (the lowest of them); undefined when the quota has none. */
export function rejectThreshold(q: Pick<QuotaCheck, 'limitBytes' | 'limits'>): number | undefined {
  const rejects = q.limits.filter((l) => l.kind === 'Reject').map((l) => limitThreshold(q.limitBytes, l.percent));
  return rejects.length ? Math.min(...rejects) : undefined;
}
