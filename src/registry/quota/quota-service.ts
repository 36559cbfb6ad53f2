/**
 * Storage quotas of namespaces (organizations and users), with Quay's rules and messages: one quota
 * per namespace, a limit in bytes (given as a number or as text such as "10 GiB", see size-text.ts),
 * and any number of Warning and Reject limits at 1..100 % of it (no two of the same type and percent).
 * Each change is audited with Quay's kinds (`org_create_quota`, `org_change_quota` with the previous
 * values, `org_delete_quota`, and the same three with `_limit`), whatever the namespace's kind.
 *
 * Callers have checked who may do it; the service checks what. It also reads usage (the totals
 * QuotaAccounting keeps as manifests come and go) for the views, and runs `recount` for the CLI.
 * Enforcement on push is QuotaGate's (quota-gate.ts).
 */
import type { NamespaceRecord, NamespaceStore } from '../../db/namespace-store.js';
import type { RecountReport } from '../../db/quota-accounting.js';
import type { QuotaLimitKind, QuotaLimitRecord, QuotaRecord, QuotaStore } from '../../db/quota-store.js';
import { AccountError } from '../accounts/account-error.js';
import type { AuditContext } from '../accounts/audit-service.js';
import { formatSize, parseSize } from './size-text.js';

export type { QuotaLimitKind, QuotaLimitRecord, QuotaRecord, RecountReport };

/** The largest limit: JavaScript's largest exact integer (about 8 PiB), below Quay's 1 EiB. */
export const MAX_LIMIT_BYTES = Number.MAX_SAFE_INTEGER;

export const QUOTA_LIMIT_EXISTS = 'Quota limit already exists';
export const QUOTA_TYPE_INVALID = 'Quota type must be one of [Warning, Reject]';
export const QUOTA_THRESHOLD_INVALID = 'Quota limit threshold must be between 1 and 100';
export const QUOTA_SIZE_UNSUPPORTED = `Unsupported quota size limit. (at most ${MAX_LIMIT_BYTES} bytes)`;
export const quotaExists = (namespace: string) => `Organization quota for '${namespace}' already exists`;
export const quotaSizeInvalid = (value: unknown) => `Invalid quota size limit value: '${String(value).slice(0, 100)}'`;

/** A quota's size: `limitBytes` (a positive integer) wins over `limit` (text such as "10 GiB"). */
export interface QuotaSizeInput {
  limitBytes?: number | null;
  limit?: string | null;
}

/** A limit: `type` "Warning" or "Reject" (any case), `thresholdPercent` an integer 1..100. */
export interface QuotaLimitInput {
  type?: string | null;
  thresholdPercent?: number | string | null;
}

/** Who asks, for the audit log. */
export type AuditWho = Pick<AuditContext, 'actor' | 'ip' | 'userAgent'>;

export interface NamespaceUsage {
  quota: QuotaRecord | undefined;
  /** The namespace's size: each blob its manifests use, once. */
  usedBytes: number;
}

export interface RepositoryUsage {
  usedBytes: number;
  /** The namespace's quota limit, null without a quota. */
  limitBytes: number | null;
}

export interface RegistrySize {
  sizeBytes: number;
  /** When it was computed (ms since the epoch). */
  ranAt: number;
}

export interface QuotaServiceDeps {
  store: QuotaStore;
  namespaces: NamespaceStore;
  /** Recomputes the totals (`recount`); absent in tests that do not need it. */
  accounting?: { recount(opts: { dryRun?: boolean }): Promise<RecountReport> };
  audit?: { record(kind: string, ctx: AuditContext): Promise<void> };
  now?: () => number;
}

export class QuotaService {
  constructor(private readonly deps: QuotaServiceDeps) {}

  /** The namespace's quotas (none or one); 404 when the namespace does not exist. */
  async list(namespace: string): Promise<QuotaRecord[]> {
    const q = await this.deps.store.find((await this.namespace(namespace)).id);
    return q ? [q] : [];
  }

  /** The namespace's quota `quotaId`; 404 when it has none of that id. */
  async get(namespace: string, quotaId: number): Promise<QuotaRecord> {
    return this.quota(await this.namespace(namespace), quotaId);
  }

  /** Gives the namespace a quota; 400 when the size is invalid or it has one already. */
  async create(namespace: string, input: QuotaSizeInput, who: AuditWho): Promise<QuotaRecord> {
    const ns = await this.namespace(namespace);
    const limitBytes = limitBytesOf(input);
    if (limitBytes === undefined) throw invalid('give limit_bytes (a number of bytes) or limit (a size such as "10 GiB")');
    const created = await this.deps.store.create(ns.id, limitBytes);
    if (!created) throw invalid(quotaExists(ns.name));
    await this.audit('org_create_quota', ns, who, { quota_id: created.id, ...sizeFields(limitBytes) });
    return created;
  }

  /** Changes the quota's size when one is given (an empty input changes nothing); 404, 400 as for create. */
  async update(namespace: string, quotaId: number, input: QuotaSizeInput, who: AuditWho): Promise<QuotaRecord> {
    const ns = await this.namespace(namespace);
    const current = await this.quota(ns, quotaId);
    const limitBytes = limitBytesOf(input);
    if (limitBytes === undefined || limitBytes === current.limitBytes) return current;
    if (!(await this.deps.store.setLimitBytes(current.id, limitBytes))) throw quotaNotFound(ns, quotaId);
    await this.audit('org_change_quota', ns, who, { quota_id: current.id, ...sizeFields(limitBytes), ...sizeFields(current.limitBytes, 'previous_') });
    return { ...current, limitBytes };
  }

  /** Deletes the quota with its limits; 404 when missing. */
  async delete(namespace: string, quotaId: number, who: AuditWho): Promise<void> {
    const ns = await this.namespace(namespace);
    const current = await this.quota(ns, quotaId);
    if (!(await this.deps.store.delete(current.id))) throw quotaNotFound(ns, quotaId);
    await this.audit('org_delete_quota', ns, who, { quota_id: current.id, ...sizeFields(current.limitBytes) });
  }

  /** One limit of the quota; 404 when the quota or the limit is missing. */
  async limit(namespace: string, quotaId: number, limitId: number): Promise<QuotaLimitRecord> {
    const ns = await this.namespace(namespace);
    return findLimit(ns, await this.quota(ns, quotaId), limitId);
  }

  /** Adds a limit; 400 when invalid or when the quota has one of that type and percent. */
  async addLimit(namespace: string, quotaId: number, input: QuotaLimitInput, who: AuditWho): Promise<QuotaLimitRecord> {
    const percent = percentOf(input.thresholdPercent);
    const kind = kindOf(input.type);
    const ns = await this.namespace(namespace);
    const quota = await this.quota(ns, quotaId);
    const created = await this.deps.store.addLimit(quota.id, kind, percent);
    if (!created) throw invalid(QUOTA_LIMIT_EXISTS);
    await this.audit('org_create_quota_limit', ns, who, { quota_id: quota.id, limit_id: created.id, type: kind, threshold_percent: percent });
    return created;
  }

  /** Changes the type and/or percent given; returns the whole quota (Quay's reply). 404, 400 as for addLimit. */
  async updateLimit(namespace: string, quotaId: number, limitId: number, input: QuotaLimitInput, who: AuditWho): Promise<QuotaRecord> {
    const percent = input.thresholdPercent == null ? undefined : percentOf(input.thresholdPercent);
    const kind = input.type == null ? undefined : kindOf(input.type);
    const ns = await this.namespace(namespace);
    const quota = await this.quota(ns, quotaId);
    const before = findLimit(ns, quota, limitId);
    const after = { kind: kind ?? before.kind, percent: percent ?? before.percent };
    if (after.kind === before.kind && after.percent === before.percent) return quota;
    const result = await this.deps.store.updateLimit(quota.id, limitId, after);
    if (result === 'missing') throw limitNotFound(ns, limitId);
    if (result === 'duplicate') throw invalid(QUOTA_LIMIT_EXISTS);
    await this.audit('org_change_quota_limit', ns, who, {
      quota_id: quota.id,
      limit_id: limitId,
      type: after.kind,
      threshold_percent: after.percent,
      previous_type: before.kind,
      previous_threshold_percent: before.percent,
    });
    return { ...quota, limits: await this.deps.store.limits(quota.id) };
  }

  /** Deletes a limit; 404 when missing. */
  async deleteLimit(namespace: string, quotaId: number, limitId: number, who: AuditWho): Promise<void> {
    const ns = await this.namespace(namespace);
    const quota = await this.quota(ns, quotaId);
    const limit = findLimit(ns, quota, limitId);
    if (!(await this.deps.store.deleteLimit(quota.id, limitId))) throw limitNotFound(ns, limitId);
    await this.audit('org_delete_quota_limit', ns, who, { quota_id: quota.id, limit_id: limitId, type: limit.kind, threshold_percent: limit.percent });
  }

  /** The namespace's quota (if any) and size; 404 when the namespace does not exist. */
  async usage(namespace: string): Promise<NamespaceUsage> {
    const ns = await this.namespace(namespace);
    const [quota, usedBytes] = await Promise.all([this.deps.store.find(ns.id), this.deps.store.namespaceSize(ns.id)]);
    return { quota, usedBytes };
  }

  /** Sizes of repositories and their namespaces' limits, keyed `namespace/name` (one query, for listings). */
  async repositoryUsage(repositories: ReadonlyArray<{ namespace: string; name: string }>): Promise<Map<string, RepositoryUsage>> {
    const rows = await this.deps.store.repositoryUsage(repositories);
    return new Map([...rows].map(([key, r]) => [key, { usedBytes: r.sizeBytes, limitBytes: r.limitBytes }]));
  }

  /** The bytes the registry holds, every blob once, computed now. */
  async registrySize(): Promise<RegistrySize> {
    return { sizeBytes: await this.deps.store.registrySize(), ranAt: (this.deps.now ?? Date.now)() };
  }

  /** Recomputes every repository and namespace total, reports what differed, and (unless `dryRun`) corrects it. */
  async recount(opts: { dryRun?: boolean } = {}): Promise<RecountReport> {
    if (!this.deps.accounting) throw new Error('QuotaService: no accounting to recount with');
    return this.deps.accounting.recount(opts);
  }

  private async namespace(name: string): Promise<NamespaceRecord> {
    const ns = await this.deps.namespaces.findByName(name);
    if (!ns) throw new AccountError('not_found', `namespace ${name.slice(0, 100)} not found`);
    return ns;
  }

  private async quota(ns: NamespaceRecord, quotaId: number): Promise<QuotaRecord> {
    const q = Number.isSafeInteger(quotaId) ? await this.deps.store.findById(quotaId) : undefined;
    if (!q || q.namespaceId !== ns.id) throw quotaNotFound(ns, quotaId);
    return q;
  }

  private async audit(kind: string, ns: NamespaceRecord, who: AuditWho, metadata: Record<string, unknown>): Promise<void> {
    await this.deps.audit?.record(kind, { ...who, namespace: ns.name, metadata: { namespace: ns.name, ...metadata } });
  }
}

/** Quay's metadata of a size: `limit_bytes` and its human form `limit` (with a prefix: `previous_…`). */
function sizeFields(bytes: number, prefix = ''): Record<string, unknown> {
  return { [`${prefix}limit_bytes`]: bytes, [`${prefix}limit`]: formatSize(bytes) };
}

/** The bytes of a size input; undefined when it gives none; 400 when it is not a positive size up to MAX_LIMIT_BYTES. */
export function limitBytesOf(input: QuotaSizeInput): number | undefined {
  if (input.limitBytes != null) {
    const v = input.limitBytes;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw invalid(quotaSizeInvalid(v));
    if (v > MAX_LIMIT_BYTES) throw invalid(QUOTA_SIZE_UNSUPPORTED);
    return v;
  }
  if (input.limit != null) {
    const text = String(input.limit);
    const bytes = parseSize(text);
    if (bytes === undefined) throw invalid(`${quotaSizeInvalid(text)}: give a number of bytes or a size such as "10 GiB", "500 MiB" or "1.5 GB"`);
    if (bytes <= 0n) throw invalid(quotaSizeInvalid(text));
    if (bytes > BigInt(MAX_LIMIT_BYTES)) throw invalid(QUOTA_SIZE_UNSUPPORTED);
    return Number(bytes);
  }
  return undefined;
}

function kindOf(type: string | null | undefined): QuotaLimitKind {
  const t = typeof type === 'string' ? type.trim().toLowerCase() : '';
  if (t === 'warning') return 'Warning';
  if (t === 'reject') return 'Reject';
  throw invalid(QUOTA_TYPE_INVALID);
}

function percentOf(value: number | string | null | undefined): number {
  const n = typeof value === 'string' && /^\s*\d{1,3}\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 100) throw invalid(QUOTA_THRESHOLD_INVALID);
  return n;
}

function findLimit(ns: NamespaceRecord, quota: QuotaRecord, limitId: number): QuotaLimitRecord {
  return quota.limits.find((l) => l.id === limitId) ?? limitNotFound(ns, limitId);
}

function invalid(message: string): AccountError {
  return new AccountError('invalid_request', message);
}

function quotaNotFound(ns: NamespaceRecord, quotaId: number): AccountError {
  return new AccountError('not_found', `quota ${quotaId} not found in namespace ${ns.name}`);
}

function limitNotFound(ns: NamespaceRecord, limitId: number): never {
  throw new AccountError('not_found', `quota limit ${limitId} not found in namespace ${ns.name}`);
}
