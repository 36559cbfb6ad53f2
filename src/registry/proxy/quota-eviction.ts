/**
 * Least-recently-pulled eviction for proxy-cache organizations with a quota.
 *
 * Before an image is cached, `makeRoom` works out what it would add to the organization's size (only
 * blobs the organization does not count yet) and, while that does not fit under the quota's lowest
 * Reject limit (or the quota's limit when it has none), gives up cached content: first tag rows the
 * cache no longer serves (history, expired tags), then live tags least recently pulled first. Each
 * eviction deletes the tag and then the manifests nothing else keeps, taking their blobs off the
 * organization's size at once (a blob another live tag still uses is neither counted as freed nor
 * deleted); GC deletes the bytes later. An image larger than the quota, or one that does not fit after
 * everything evictable is gone, is refused with the quota error.
 */
import type { EvictionStore } from '../../db/eviction-store.js';
import type { GcStore } from '../../db/gc-store.js';
import { rejectThreshold, type QuotaStore } from '../../db/quota-store.js';
import type { Digest } from '../../oci/digest.js';

interface Log {
  info(obj: object, msg: string): void;
}

export interface EvictionGate {
  refused(namespace: string, stage: 'proxy'): Error;
  evicted?(namespace: string, tags: number): void;
}

/** How long whether an organization has a quota is remembered (ms). */
const QUOTA_KNOWN_MS = 5000;

export class ProxyEviction {
  private readonly now: () => number;
  private readonly known = new Map<string, { at: number; has: boolean }>();

  constructor(
    private readonly deps: { store: EvictionStore; quotas: QuotaStore; gc: GcStore; gate: EvictionGate; log?: Log; now?: () => number },
  ) {
    this.now = deps.now ?? Date.now;
  }

  /** Whether the organization has a quota (so evicts by recency); remembered for a few seconds. */
  async governs(namespace: string): Promise<boolean> {
    const now = this.now();
    const k = this.known.get(namespace);
    if (k && now - k.at < QUOTA_KNOWN_MS) return k.has;
    const has = (await this.deps.quotas.check(namespace)) !== undefined;
    if (this.known.size > 10_000) this.known.clear();
    this.known.set(namespace, { at: now, has });
    return has;
  }

  /** The error for a cache fill the quota refuses. */
  refused(namespace: string): Error {
    return this.deps.gate.refused(namespace, 'proxy');
  }

  /** Evicts until `blobs` fit in the namespace's quota; throws the quota error when they cannot. */
  async makeRoom(namespace: string, blobs: ReadonlyArray<{ digest: Digest; size: number }>): Promise<void> {
    const { store, quotas } = this.deps;
    const q = await quotas.check(namespace);
    if (!q) return;
    const limit = rejectThreshold(q) ?? q.limitBytes;
    let evicted = 0;
    let retired = true;
    try {
      for (;;) {
        const need = await store.newBytes(q.namespaceId, blobs);
        if (need === 0) return;
        if (need > limit) throw this.refused(namespace);
        if ((await quotas.namespaceSize(q.namespaceId)) + need <= limit) return;
        const now = this.now();
        let manifests: number[] = [];
        if (retired) {
          manifests = await store.dropRetired(q.namespaceId, now);
          if (!manifests.length) retired = false;
        }
        if (!retired) {
          const victim = await store.leastRecentlyPulled(q.namespaceId, now);
          if (!victim) throw this.refused(namespace);
          manifests = await store.evict(victim);
          evicted++;
          this.deps.log?.info({ namespace, repository: victim.repository, tag: victim.tag }, 'evicted a cached tag to stay within the quota');
        }
        await this.release(manifests);
      }
    } finally {
      if (evicted) this.deps.gate.evicted?.(namespace, evicted);
    }
  }

  /** Deletes the manifests (and then their children and referrers) that nothing keeps any more. */
  private async release(ids: number[]): Promise<void> {
    const now = this.now();
    // No grace period: these manifests were cached, not pushed, and their tags are gone.
    const clock = { now, graceCutoff: Number.MAX_SAFE_INTEGER, defaultWindowMs: 0 };
    let next = ids;
    for (let round = 0; next.length && round < 4; round++) next = (await this.deps.gc.deleteManifests(next, clock)).next;
  }
}
