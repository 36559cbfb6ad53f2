/**
 * The pull-through cache: pulls from a proxy organization (`<org>/<path>`) are answered from the local
 * copy when it is current and from the upstream `<org>`'s configuration names otherwise, storing what
 * passes through.
 *
 *   by tag     cached → one upstream HEAD (shared by concurrent pulls; reused for `revalidate_interval_s`):
 *              same digest → serve the copy, push the expiry to now + expiration_s; new digest → fetch,
 *              store, retarget the tag (the old target stays in the history). Not cached → fetch, store.
 *   by digest  served locally when present (content-addressed: it cannot be stale), else fetched and kept
 *              alive by a hidden tag that expires like a cached tag.
 *   failure    upstream down, timing out, 5xx, 429, or 404 for a cached tag → the copy is served while
 *              its tag has not expired, without extending it; afterwards a clear 404/429/503
 *              (upstream-failure.ts). Upstream 401/403 (after one re-authentication) are never answered
 *              from the copy: access was revoked.
 *   blobs      a local copy (any repository: the store is content-addressed) is linked and served; a miss
 *              joins the one in-flight fill of that digest (blob-fills.ts), streamed to every client
 *              while it is written and verified.
 *
 * What is fetched is stored by PullThrough (pull-through.ts) through the registry's one manifest write
 * path; ProxiedContent (proxied-content.ts) puts this behind the interface every repository has.
 */
import type { ManifestStore, StoredManifest } from '../../db/manifest-store.js';
import type { RepositoryRef } from '../../db/repository-store.js';
import { digestHex, digestAlgorithm, type Digest } from '../../oci/digest.js';
import { splitRepositoryName, type Reference, type Tag } from '../../oci/reference.js';
import { isUpstreamError } from '../../upstream/errors.js';
import type { TagPage } from '../../upstream/upstream-client.js';
import type { ReferrerDescriptor } from '../../upstream/responses.js';
import type { CacheResult } from '../content.js';
import type { RepositoryService } from '../repositories.js';
import type { ProxyTarget, ProxyUpstream } from './proxy-directory.js';
import type { ProxyEvents } from './proxy-events.js';
import type { ProxiedBlob, PullThrough } from './pull-through.js';
import { upstreamFailure } from '../upstream-import/upstream-failure.js';

export interface ProxiedManifest extends StoredManifest {
  cache: CacheResult;
}

/** Whether an organization has a quota, so that its cached tags are evicted by recency (quota-eviction.ts). */
export interface RecencyPolicy {
  governs(namespace: string): Promise<boolean>;
}

export interface ProxyCacheOptions {
  /** Cached tags' lookups and expiry updates (reads; writes go through `pull`). */
  manifests: ManifestStore;
  repositories: RepositoryService;
  pull: PullThrough;
  events: ProxyEvents;
  tagsListTtlMs: number;
  log?: { warn(obj: object, msg: string): void };
  /** Organizations with a quota: every pull of a cached tag refreshes its recency. */
  recency?: RecencyPolicy;
  now?: () => number;
}

interface Revalidation {
  digest: Digest;
  at: number;
}

const HIDDEN_TAG_PREFIX = '$proxy-';
const MEMO_LIMIT = 10_000;

/** The hidden tag that keeps a manifest pulled by digest cached (not a valid OCI tag: no collisions). */
export function hiddenTagFor(digest: Digest): string {
  return `${HIDDEN_TAG_PREFIX}${digestAlgorithm(digest)}-${digestHex(digest)}`;
}

export class ProxyCache {
  private readonly revalidating = new Map<string, Promise<ProxiedManifest>>();
  private readonly revalidated = new Map<string, Revalidation>();
  private readonly tagLists = new Map<string, { at: number; page: TagPage }>();
  private readonly referrerLists = new Map<string, { at: number; manifests: ReferrerDescriptor[] }>();
  /** When each cached tag's recency was last written (organizations with a quota evict by it). */
  private readonly touched = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: ProxyCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Serves a manifest of a proxy repository (see the file comment). */
  async manifest(target: ProxyTarget, ref: Reference): Promise<ProxiedManifest> {
    if (ref.kind === 'digest') return this.manifestByDigest(target, ref.digest);
    const key = `${target.name}:${ref.tag}`;
    const running = this.revalidating.get(key);
    if (running) return running;
    const p = this.manifestByTag(target, ref.tag).finally(() => this.revalidating.delete(key));
    this.revalidating.set(key, p);
    return p;
  }

  private async manifestByTag(target: ProxyTarget, tag: Tag): Promise<ProxiedManifest> {
    const { upstream } = target;
    const { namespace, repository } = splitRepositoryName(target.name);
    // One query for repository, live tag (expired or not) and manifest: this is the hot path of cached tags.
    const cached = await this.opts.manifests.cachedTag(namespace, repository, tag);
    const now = this.now();
    const key = `${target.name}:${tag}`;
    const alive = cached !== undefined && (cached.expiresAt === null || cached.expiresAt > now);
    if (cached && alive && upstream.config.revalidateIntervalS > 0) {
      const seen = this.revalidated.get(key);
      if (seen && seen.digest === cached.manifest.digest && now - seen.at < upstream.config.revalidateIntervalS * 1000) {
        this.touch(target, cached.repositoryId, tag, cached.expiresAt);
        return this.opts.events.served(target.upstream, 'manifest', { ...cached.manifest, cache: 'hit' });
      }
    }
    let head;
    try {
      head = await upstream.client.headManifest(target.upstreamRepository, tag, { fallback: alive });
    } catch (err) {
      this.opts.events.upstreamError(upstream, err);
      if (cached && alive && isUpstreamError(err) && err.kind !== 'auth') {
        this.opts.log?.warn({ repository: target.name, tag, err: err.message }, 'upstream failed; serving the cached tag');
        return this.opts.events.served(target.upstream, 'manifest', { ...cached.manifest, cache: 'stale' });
      }
      throw upstreamFailure(err, 'manifest', upstream.spec.registry);
    } finally {
      this.opts.events.rateLimit(upstream);
    }
    if (cached && cached.manifest.digest === head.digest) {
      // Extending by less than a hundredth of the lifetime is not worth a write per pull.
      const expiresAt = this.expiry(upstream);
      const gain = expiresAt === null ? (cached.expiresAt === null ? 0 : Infinity) : expiresAt - (cached.expiresAt ?? 0);
      if (gain > Math.max(1000, upstream.config.expirationS * 10)) await this.opts.manifests.setTagExpiry(cached.repositoryId, tag, expiresAt);
      else this.touch(target, cached.repositoryId, tag, cached.expiresAt);
      this.remember(key, head.digest);
      return this.opts.events.served(target.upstream, 'manifest', { ...cached.manifest, cache: 'hit' });
    }
    const stored = await this.opts.pull.manifest(target, { kind: 'tag', tag }, { tag, hidden: false, expiresAt: this.expiry(upstream) });
    this.remember(key, stored.digest);
    return this.opts.events.served(target.upstream, 'manifest', { ...stored, cache: 'miss' });
  }

  private async manifestByDigest(target: ProxyTarget, digest: Digest): Promise<ProxiedManifest> {
    const repo = await this.opts.repositories.find(target.name);
    const local = repo ? await this.opts.manifests.findByDigest(repo.id, digest) : undefined;
    if (local && repo) {
      this.keepAlive(target, repo, digest);
      return this.opts.events.served(target.upstream, 'manifest', { ...local, cache: 'hit' });
    }
    const key = `${target.name}@${digest}`;
    const running = this.revalidating.get(key);
    if (running) return running;
    const p = this.opts.pull
      .manifest(target, { kind: 'digest', digest }, { tag: hiddenTagFor(digest), hidden: true, expiresAt: this.expiry(target.upstream) })
      .then((m) => this.opts.events.served(target.upstream, 'manifest', { ...m, cache: 'miss' as const }))
      .finally(() => this.revalidating.delete(key));
    this.revalidating.set(key, p);
    return p;
  }

  /**
   * In an organization with a quota, which evicts by recency, every pull of a cached tag refreshes
   * its expiry to within a second, without waiting: one write per tag per second at most. Elsewhere
   * the expiry moves only by the coarser steps above.
   */
  private touch(target: ProxyTarget, repositoryId: number, tag: string, expiresAt: number | null): void {
    if (!this.opts.recency) return;
    const next = this.expiry(target.upstream);
    const now = this.now();
    const key = `${target.name}:${tag}`;
    if (next === null || next - (expiresAt ?? 0) < 1000 || now - (this.touched.get(key) ?? 0) < 1000) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(key, now);
    void this.opts.recency
      .governs(splitRepositoryName(target.name).namespace)
      .then((governed) => (governed ? this.opts.manifests.setTagExpiry(repositoryId, tag, next) : false))
      .catch((err: unknown) => {
        this.opts.log?.warn({ err: (err as Error).message, repository: target.name, tag }, 'could not refresh a cached tag');
      });
  }

  /** Pushes the hidden tag of a manifest pulled by digest forward, at most once per tenth of its lifetime. */
  private keepAlive(target: ProxyTarget, repo: RepositoryRef, digest: Digest): void {
    const expiresAt = this.expiry(target.upstream);
    const key = `${target.name}@${digest}`;
    const seen = this.revalidated.get(key);
    const step = Math.max(1000, target.upstream.config.expirationS * 100);
    if (seen && this.now() - seen.at < step) return;
    this.remember(key, digest);
    void this.opts.manifests.setTagExpiry(repo.id, hiddenTagFor(digest), expiresAt).catch((err: unknown) => {
      this.opts.log?.warn({ err: (err as Error).message, repository: target.name, digest }, 'could not extend a cached manifest');
    });
  }

  /** A blob of a proxy repository: the local copy, or the one fill of that digest in flight (pull-through.ts). */
  blob(target: ProxyTarget, digest: Digest): Promise<ProxiedBlob> {
    return this.opts.pull.blob(target, digest);
  }

  /**
   * One page of the upstream's tag list (reused for `tags_list_ttl`); the cached tags when the upstream
   * cannot answer. Undefined when neither knows the repository.
   */
  async tags(target: ProxyTarget, page: { last?: string; n?: number }): Promise<{ tags: string[]; next?: string } | undefined> {
    const key = `${target.name}?n=${page.n ?? ''}&last=${page.last ?? ''}`;
    const hit = this.tagLists.get(key);
    if (hit && this.now() - hit.at < this.opts.tagsListTtlMs) return { tags: hit.page.tags, next: hit.page.next?.last };
    const repo = await this.opts.repositories.find(target.name);
    try {
      const p = await target.upstream.client.listTags(target.upstreamRepository, page, { fallback: repo !== undefined });
      if (this.tagLists.size >= MEMO_LIMIT) this.tagLists.clear();
      this.tagLists.set(key, { at: this.now(), page: p });
      return { tags: p.tags, next: p.next?.last };
    } catch (err) {
      this.opts.events.upstreamError(target.upstream, err);
      if (!isUpstreamError(err)) throw err;
      if (!repo) throw upstreamFailure(err, 'tags', target.upstream.spec.registry);
      const limit = page.n ?? 10_000;
      const rows = await this.opts.manifests.listTags(repo.id, { last: page.last, limit: limit + 1 });
      const tags = rows.slice(0, limit);
      return { tags, next: rows.length > limit ? tags[tags.length - 1] : undefined };
    }
  }

  /** The upstream's referrers of `digest`; the cached ones when the upstream cannot answer. */
  async referrers(target: ProxyTarget, digest: Digest, artifactType?: string): Promise<ReferrerDescriptor[] | undefined> {
    const key = `${target.name}@${digest}?${artifactType ?? ''}`;
    const hit = this.referrerLists.get(key);
    if (hit && this.now() - hit.at < this.opts.tagsListTtlMs) return hit.manifests;
    try {
      const r = await target.upstream.client.referrers(target.upstreamRepository, digest, { artifactType, fallback: hit !== undefined });
      if (this.referrerLists.size >= MEMO_LIMIT) this.referrerLists.clear();
      this.referrerLists.set(key, { at: this.now(), manifests: r.manifests });
      return r.manifests;
    } catch (err) {
      this.opts.events.upstreamError(target.upstream, err);
      if (!isUpstreamError(err)) throw err;
      // The last answer while the upstream fails; the cached referrer manifests when there is none.
      return hit?.manifests;
    }
  }

  private expiry(upstream: ProxyUpstream): number | null {
    return upstream.config.expirationS > 0 ? this.now() + upstream.config.expirationS * 1000 : null;
  }

  private remember(key: string, digest: Digest): void {
    if (this.revalidated.size >= MEMO_LIMIT) this.revalidated.clear();
    this.revalidated.set(key, { digest, at: this.now() });
  }
}
