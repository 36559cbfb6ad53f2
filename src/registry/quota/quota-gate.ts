/**
 * Quota enforcement on the push path.
 *
 *   uploads     refused at start when the namespace's size plus the bytes of its uploads in progress
 *               has reached the lowest Reject limit, and after a chunk (or a monolithic blob) that takes
 *               it over: the upload is cancelled, so the refused bytes do not count
 *   manifests   checked inside the transaction that counts them (db/manifest-store.ts): a manifest
 *               whose new blobs take the namespace over the limit is rolled back; the namespace's size
 *               row is held until commit, so concurrent pushes cannot cross the limit together
 *   warnings    a manifest that takes the namespace's size across a Warning limit is logged, counted
 *               and written to the audit log as `quota_warning`; it never blocks
 *
 * Refusals are `403 DENIED` with "Quota has been exceeded on namespace <ns>".
 */
import type { Charge } from '../../db/quota-accounting.js';
import { limitThreshold, rejectThreshold, type QuotaStore } from '../../db/quota-store.js';
import type { RepositoryRef } from '../../db/repository-store.js';
import { RegistryError } from '../../oci/errors.js';
import type { AuditService } from '../accounts/audit-service.js';

export function quotaExceeded(namespace: string): RegistryError {
  return new RegistryError('DENIED', `Quota has been exceeded on namespace ${namespace}`, undefined, 403);
}

export type QuotaStage = 'upload_start' | 'upload_chunk' | 'manifest' | 'proxy';

export interface QuotaObserver {
  rejected?(e: { namespace: string; stage: QuotaStage }): void;
  warning?(e: { namespace: string; thresholdPercent: number }): void;
  evicted?(e: { namespace: string; tags: number }): void;
}

interface Log {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class QuotaGate {
  private observer?: QuotaObserver;

  constructor(
    private readonly store: QuotaStore,
    private readonly deps: { audit?: AuditService; log?: Log } = {},
  ) {}

  observe(observer: QuotaObserver): void {
    this.observer = observer;
  }

  /**
   * Refuses (403 DENIED) a write of `incoming` more bytes into `repo`'s namespace that would take it
   * over its Reject limit; at `upload_start` a namespace already at the limit is refused too (a
   * monolithic upload of announced size is checked for both at once).
   */
  async admitUpload(repo: RepositoryRef, stage: 'upload_start' | 'upload_chunk', incoming = 0): Promise<void> {
    const q = await this.store.check(repo.namespace);
    if (!q) return;
    const limit = rejectThreshold(q);
    if (limit === undefined) return;
    const used = q.usedBytes + (await this.store.uploadingBytes(q.namespaceId));
    if (stage === 'upload_start' && used >= limit) throw this.refused(repo.namespace, 'upload_start');
    if (used + incoming > limit) throw this.refused(repo.namespace, 'upload_chunk');
  }

  /** The error for a refused write, counted. */
  refused(namespace: string, stage: QuotaStage): RegistryError {
    this.observer?.rejected?.({ namespace, stage });
    this.deps.log?.info({ namespace, stage }, 'push refused: quota exceeded');
    return quotaExceeded(namespace);
  }

  /** A proxy-cache organization evicted `tags` cached tags to make room. */
  evicted(namespace: string, tags: number): void {
    this.observer?.evicted?.({ namespace, tags });
  }

  /** After a manifest was counted: reports the Warning limits its bytes took the namespace across. */
  async charged(namespace: string, charge: Charge): Promise<void> {
    if (charge.added <= 0 || charge.after === undefined) return;
    const q = await this.store.checkById(charge.namespaceId);
    if (!q) return;
    const before = charge.after - charge.added;
    const crossed = q.limits.filter((l) => {
      if (l.kind !== 'Warning') return false;
      const t = limitThreshold(q.limitBytes, l.percent);
      return before < t && charge.after! >= t;
    });
    const top = crossed[crossed.length - 1];
    if (!top) return;
    const metadata = {
      namespace,
      threshold_percent: top.percent,
      usage_bytes: charge.after,
      limit_bytes: q.limitBytes,
      usage_percent: Math.round((charge.after / q.limitBytes) * 1000) / 10,
    };
    this.observer?.warning?.({ namespace, thresholdPercent: top.percent });
    this.deps.log?.warn(metadata, 'namespace crossed a quota Warning limit');
    await this.deps.audit?.record('quota_warning', { actor: { kind: 'system' }, namespace, metadata }).catch((err: unknown) => {
      this.deps.log?.error({ err, namespace }, 'could not record a quota_warning audit entry');
    });
  }
}
