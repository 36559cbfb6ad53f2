/**
 * The audit log: append-only entries naming actor, namespace and repository by name (copied, so that
 * entries outlive what they mention), queried newest first with an id cursor.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './tables.js';

export interface AuditRecord {
  id: number;
  kind: string;
  namespace: string | null;
  repository: string | null;
  /** 'user' | 'robot' | 'anonymous' | 'system' */
  actorKind: string;
  actorName: string | null;
  ip: string | null;
  userAgent: string | null;
  /** A JSON object, or null. */
  metadata: string | null;
  createdAt: number;
}

export type NewAuditRecord = Omit<AuditRecord, 'id'>;

export interface AuditFilter {
  namespace?: string;
  /** The repository's name within `namespace` (requires `namespace`). */
  repository?: string;
  kinds?: readonly string[];
  /** Inclusive lower bound on `createdAt`. */
  since?: number;
  /** Exclusive upper bound on `createdAt`. */
  until?: number;
  /** Only entries with a smaller id (the cursor of the previous page). */
  beforeId?: number;
  limit: number;
}

export class AuditLogStore {
  constructor(private readonly db: Kysely<Database>) {}

  async append(entry: NewAuditRecord): Promise<number> {
    const row = await this.db.insertInto('audit_log').values(toRow(entry)).returning('id').executeTakeFirstOrThrow();
    return row.id;
  }

  /** Appends several entries in one statement, in order. */
  async appendMany(entries: readonly NewAuditRecord[]): Promise<void> {
    if (entries.length === 0) return;
    await this.db.insertInto('audit_log').values(entries.map(toRow)).execute();
  }

  /** Entries matching every given filter, newest (highest id) first, at most `limit`. */
  async query(f: AuditFilter): Promise<AuditRecord[]> {
    let q = this.db
      .selectFrom('audit_log')
      .select(['id', 'kind', 'namespace', 'repository', 'actor_kind', 'actor_name', 'ip', 'user_agent', 'metadata', 'created_at'])
      .orderBy('id', 'desc')
      .limit(f.limit);
    if (f.namespace !== undefined) q = q.where('namespace', '=', f.namespace);
    if (f.repository !== undefined) q = q.where('repository', '=', f.repository);
    if (f.kinds !== undefined) q = f.kinds.length ? q.where('kind', 'in', [...f.kinds]) : q.where((eb) => eb.val(1), '=', 0);
    if (f.since !== undefined) q = q.where('created_at', '>=', f.since);
    if (f.until !== undefined) q = q.where('created_at', '<', f.until);
    if (f.beforeId !== undefined) q = q.where('id', '<', f.beforeId);
    const rows = await q.execute();
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      namespace: r.namespace,
      repository: r.repository,
      actorKind: r.actor_kind,
      actorName: r.actor_name,
      ip: r.ip,
      userAgent: r.user_agent,
      metadata: r.metadata,
      createdAt: r.created_at,
    }));
  }

  /**
   * How many `pull_repo` entries of the repository name the tag (`{"tag": …}`, pulls by tag) or the
   * manifest (`{"manifest_digest": …}`, every pull that served it), and when the latest was recorded.
   */
  async pullCount(namespace: string, repository: string, match: { tag: string } | { manifestDigest: string }): Promise<{ count: number; last: number | null }> {
    const fragment = 'tag' in match ? `"tag":${JSON.stringify(match.tag)}` : `"manifest_digest":${JSON.stringify(match.manifestDigest)}`;
    const pattern = `%${fragment.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const row = await this.db
      .selectFrom('audit_log')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.max('created_at').as('last')])
      .where('namespace', '=', namespace)
      .where('repository', '=', repository)
      .where('kind', '=', 'pull_repo')
      .where(sql<boolean>`metadata like ${pattern} escape '\\'`)
      .executeTakeFirstOrThrow();
    return { count: Number(row.n), last: row.last === null || row.last === undefined ? null : Number(row.last) };
  }
}

function toRow(entry: NewAuditRecord) {
  return {
    kind: entry.kind,
    namespace: entry.namespace,
    repository: entry.repository,
    actor_kind: entry.actorKind,
    actor_name: entry.actorName,
    ip: entry.ip,
    user_agent: entry.userAgent,
    metadata: entry.metadata,
    created_at: entry.createdAt,
  };
}
