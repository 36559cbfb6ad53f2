/**
 * The audit log: who did what, where, from which address, when. Entries copy names (actor, namespace,
 * repository) so they outlive what they mention. Metadata values under keys that look like secrets
 * (password, token, secret, authorization…) are replaced by "********" before anything is stored.
 *
 * Kinds follow Quay's log kind names where Quay has one (e.g. push_repo, pull_repo, delete_tag,
 * create_repo, delete_repo, change_repo_permission, delete_repo_permission, change_repo_visibility,
 * change_repo_state, create_robot, delete_robot, regenerate_robot_token, org_create_team,
 * org_delete_team, org_add_team_member, org_remove_team_member, org_set_team_role, user_create,
 * user_delete, org_create, org_delete, login_failure, login_success, create_application_token,
 * revoke_application_token).
 */
import type { AuditLogStore, AuditRecord, NewAuditRecord } from '../../db/audit-log-store.js';
import type { Principal } from '../access.js';
import { AccountError } from './account-error.js';

export type AuditActor = Principal | { kind: 'system'; name?: string };

export interface AuditContext {
  actor: AuditActor;
  ip?: string | null;
  userAgent?: string | null;
  namespace?: string | null;
  /** The repository's name within `namespace`. */
  repository?: string | null;
  metadata?: Record<string, unknown> | null;
}

export interface AuditEntry {
  id: number;
  kind: string;
  namespace: string | null;
  repository: string | null;
  actor: { kind: string; name: string | null };
  ip: string | null;
  userAgent: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: number;
}

export interface AuditQuery {
  namespace?: string;
  repository?: string;
  kinds?: readonly string[];
  /** Inclusive, milliseconds since the epoch. */
  since?: number;
  /** Exclusive, milliseconds since the epoch. */
  until?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** 1..MAX_PAGE, default DEFAULT_PAGE. */
  limit?: number;
}

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;
const KIND_RE = /^[a-z][a-z0-9_]{0,63}$/;
const SECRET_KEY_RE = /password|passphrase|^pass$|secret|token|authori[sz]ation|credential|private_?key/i;
/** Names and ids of secrets are not secrets (e.g. `token_name`, `token_id`). */
const NOT_SECRET_RE = /(_name|_id|_kind|_scopes?|_expires?_at)$/i;
const MAX_FIELD = 1024;
/** How long an entry recorded with `submit` may wait for company before it is written. */
const BACKGROUND_WINDOW_MS = 20;
/** At most this many entries per statement (9 parameters each; well inside SQLite's and PostgreSQL's limits). */
const MAX_BATCH = 500;

interface Batch {
  entries: NewAuditRecord[];
  done: Promise<void>;
  settle: (outcome: { ok: true } | { ok: false; err: unknown }) => void;
  onError: Array<(err: unknown) => void>;
}

export class AuditService {
  private readonly now: () => number;

  constructor(
    private readonly store: AuditLogStore,
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * Appends an entry; resolves once it is stored. Entries recorded in the same turn of the event loop
   * (concurrent pulls, say) are written together in one statement, so a busy registry does not pay one
   * database write per request.
   */
  async record(kind: string, ctx: AuditContext): Promise<void> {
    const batch = this.add(this.entry(kind, ctx));
    this.schedule('now');
    return batch.done;
  }

  /**
   * Appends an entry without waiting for it: it is written with the next batch, within
   * BACKGROUND_WINDOW_MS (sooner when an awaited entry or `flush` comes along), in the order recorded.
   * `onError` hears of a failed write. `flush()` (called on shutdown) and `query()` wait for it.
   */
  submit(kind: string, ctx: AuditContext, onError: (err: unknown) => void): void {
    const batch = this.add(this.entry(kind, ctx));
    batch.onError.push(onError);
    this.schedule('soon');
  }

  /** Resolves once every entry recorded so far is stored (or its write has failed). */
  async flush(): Promise<void> {
    await this.write().catch(() => {});
  }

  private entry(kind: string, ctx: AuditContext): NewAuditRecord {
    if (!KIND_RE.test(kind)) throw new Error(`invalid audit log kind ${JSON.stringify(kind)}`);
    if (ctx.repository && !ctx.namespace) throw new Error('an audit entry naming a repository must name its namespace');
    const actor = ctx.actor;
    return {
      kind,
      namespace: ctx.namespace ?? null,
      repository: ctx.repository ?? null,
      actorKind: actor.kind,
      actorName: actor.kind === 'anonymous' ? null : (actor.name ?? null),
      ip: clip(ctx.ip),
      userAgent: clip(ctx.userAgent),
      metadata: ctx.metadata ? JSON.stringify(redact(ctx.metadata)) : null,
      createdAt: this.now(),
    };
  }

  /** The batch being collected; written as one statement, after the batch before it. */
  private open: Batch | undefined;
  private timer: { kind: 'now'; handle: NodeJS.Immediate } | { kind: 'soon'; handle: NodeJS.Timeout } | undefined;
  /** The newest write; writes run one after another so that entries keep their order. */
  private tail: Promise<void> = Promise.resolve();

  private add(entry: NewAuditRecord): Batch {
    if (!this.open) {
      let settle!: Batch['settle'];
      const done = new Promise<void>((resolve, reject) => (settle = (outcome) => (outcome.ok ? resolve() : reject(outcome.err))));
      // Nobody awaits a batch of background entries only; their errors go to `onError`.
      done.catch(() => {});
      this.open = { entries: [], done, settle, onError: [] };
    }
    this.open.entries.push(entry);
    return this.open;
  }

  private schedule(when: 'now' | 'soon'): void {
    if (this.open && this.open.entries.length >= MAX_BATCH) {
      void this.write().catch(() => {});
    } else if (when === 'now' && this.timer?.kind !== 'now') {
      this.cancelTimer();
      this.timer = { kind: 'now', handle: setImmediate(() => void this.write().catch(() => {})) };
    } else if (!this.timer) {
      this.timer = { kind: 'soon', handle: setTimeout(() => void this.write().catch(() => {}), BACKGROUND_WINDOW_MS) };
    }
  }

  private cancelTimer(): void {
    if (this.timer?.kind === 'now') clearImmediate(this.timer.handle);
    else if (this.timer) clearTimeout(this.timer.handle);
    this.timer = undefined;
  }

  /** Writes the open batch after the writes before it; resolves (or rejects) when it is stored. */
  private write(): Promise<void> {
    this.cancelTimer();
    const batch = this.open;
    this.open = undefined;
    if (!batch) return this.tail;
    this.tail = this.tail.then(
      () => this.store.appendMany(batch.entries),
      () => this.store.appendMany(batch.entries),
    );
    this.tail.then(
      () => batch.settle({ ok: true }),
      (err: unknown) => {
        batch.settle({ ok: false, err });
        for (const report of batch.onError) report(err);
      },
    );
    return this.tail;
  }

  /** Entries matching every filter given, newest first; `nextCursor` is set when there may be more. */
  async query(q: AuditQuery): Promise<{ entries: AuditEntry[]; nextCursor?: string }> {
    if (q.repository !== undefined && q.namespace === undefined) throw new AccountError('invalid_request', 'a repository filter needs a namespace');
    // Entries this process recorded in the background are there before anyone reads the log.
    await this.flush();
    const limit = q.limit ?? DEFAULT_PAGE;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new AccountError('invalid_request', `a page holds 1 to ${MAX_PAGE} entries`);
    let beforeId: number | undefined;
    if (q.cursor !== undefined) {
      beforeId = Number(q.cursor);
      if (!/^[1-9][0-9]{0,15}$/.test(q.cursor) || !Number.isSafeInteger(beforeId)) throw new AccountError('invalid_request', 'invalid page cursor');
    }
    for (const t of [q.since, q.until]) if (t !== undefined && !Number.isFinite(t)) throw new AccountError('invalid_request', 'invalid time range');
    const rows = await this.store.query({ namespace: q.namespace, repository: q.repository, kinds: q.kinds, since: q.since, until: q.until, beforeId, limit: limit + 1 });
    const entries = rows.slice(0, limit).map(toEntry);
    return rows.length > limit ? { entries, nextCursor: String(entries[entries.length - 1]!.id) } : { entries };
  }
}

function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '…';
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY_RE.test(k) && !NOT_SECRET_RE.test(k) && v !== null && v !== undefined ? '********' : redact(v, depth + 1);
    return out;
  }
  return value;
}

function clip(value: string | null | undefined): string | null {
  return value === undefined || value === null ? null : value.slice(0, MAX_FIELD);
}

function toEntry(r: AuditRecord): AuditEntry {
  let metadata: Record<string, unknown> | null = null;
  if (r.metadata) {
    try {
      metadata = JSON.parse(r.metadata) as Record<string, unknown>;
    } catch {
      metadata = { unparsed: r.metadata };
    }
  }
  return {
    id: r.id,
    kind: r.kind,
    namespace: r.namespace,
    repository: r.repository,
    actor: { kind: r.actorKind, name: r.actorName },
    ip: r.ip,
    userAgent: r.userAgent,
    metadata,
    createdAt: r.createdAt,
  };
}
