/**
 * Quay's JSON of storage quotas: the quota view of `/quota` routes, and the usage other views carry
 * (`quotas` and `quota_report` of organizations and users, `quota_report` of repositories).
 */
import { z } from 'zod';
import type { NamespaceUsage, QuotaLimitRecord, QuotaRecord, RepositoryUsage } from '../../registry/quota/quota-service.js';
import { formatSize } from '../../registry/quota/size-text.js';

export const QuotaLimitSchema = z.strictObject({ id: z.int(), type: z.enum(['Warning', 'Reject']), limit_percent: z.int() });

/** `limit` is the human form of `limit_bytes` ("1.0 GiB"); Wharf has no system default quota, so both `default_config` fields are false. */
export const QuotaSchema = z.strictObject({
  id: z.int(),
  limit_bytes: z.int(),
  limit: z.string(),
  default_config: z.boolean(),
  limits: z.array(QuotaLimitSchema),
  default_config_exists: z.boolean(),
});

/** The short quota of organization and user views. */
export const QuotaSummarySchema = z.strictObject({ id: z.int(), limit_bytes: z.int(), limits: z.array(QuotaLimitSchema) });

/** Usage of an organization or user: `quota_bytes` used, `configured_quota` the limit (null without a quota). */
export const NamespaceQuotaReportSchema = z.strictObject({
  quota_bytes: z.int(),
  configured_quota: z.int().nullable(),
  running_backfill: z.enum(['waiting', 'running', 'complete']),
  backfill_status: z.enum(['waiting', 'running', 'complete']),
});

export const RepositoryQuotaReportSchema = z.strictObject({ quota_bytes: z.int(), configured_quota: z.int().nullable() });

export function quotaLimitView(l: QuotaLimitRecord): z.infer<typeof QuotaLimitSchema> {
  return { id: l.id, type: l.kind, limit_percent: l.percent };
}

export function quotaView(q: QuotaRecord): z.infer<typeof QuotaSchema> {
  return { id: q.id, limit_bytes: q.limitBytes, limit: formatSize(q.limitBytes), default_config: false, limits: q.limits.map(quotaLimitView), default_config_exists: false };
}

/** `quotas` and `quota_report` of an organization or user view (totals are always kept, so backfill is "complete"). */
export function namespaceQuotaFields(u: NamespaceUsage): { quotas: Array<z.infer<typeof QuotaSummarySchema>>; quota_report: z.infer<typeof NamespaceQuotaReportSchema> } {
  return {
    quotas: u.quota ? [{ id: u.quota.id, limit_bytes: u.quota.limitBytes, limits: u.quota.limits.map(quotaLimitView) }] : [],
    quota_report: { quota_bytes: u.usedBytes, configured_quota: u.quota?.limitBytes ?? null, running_backfill: 'complete', backfill_status: 'complete' },
  };
}

export function repositoryQuotaReport(u: RepositoryUsage | undefined): z.infer<typeof RepositoryQuotaReportSchema> {
  return { quota_bytes: u?.usedBytes ?? 0, configured_quota: u?.limitBytes ?? null };
}
