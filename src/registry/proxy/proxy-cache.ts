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
 * Organizations' configurations are looked up per request through a short-lived cache that the config
 * service invalidates on every change.
 */
import type { Readable } from 'node:stream';
import type { BlobRecord, BlobStore } from '../../db/blob-store.js';
import { QuotaExceeded, type ManifestStore, type ManifestWrite, type StoredManifest } from '../../db/manifest-store.js';
import type { RepositoryRef } from '../../db/repository-store.js';
import { digestHex, digestAlgorithm, type Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import { parseManifest, requiredBlobs } from '../../oci/manifest.js';
import { splitRepositoryName, type Reference, type RepositoryName } from '../../oci/reference.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import { isUpstreamError, UpstreamProtocolError, type UpstreamError, type UpstreamErrorKind } from '../../upstream/errors.js';
import type { TagPage } from '../../upstream/upstream-client.js';
import type { ReferrerDescriptor } from '../../upstream/responses.js';
import type { RepositoryService } from '../repositories.js';
import { ProxyDirectory, type ProxyDirectoryOptions, type ProxyTarget, type ProxyUpstream } from './proxy-directory.js';

export type { ProxyConfigSource, ProxyTarget, ProxyUpstream } from './proxy-directory.js';
import { upstreamFailure } from './upstream-failure.js';
import { quotaExceeded } from '../quota/quota-gate.js';

export type CacheResult = 'hit' | 'miss' | 'stale';

/** A blob fill in flight (blob-fills.ts). */
export interface FillHandle {
  readonly size: number | undefined;
  readonly joined: boolean;
  open(range?: { start: number; end: number }): Readable;
  readonly done: Promise<{ size: number }>;
}

export interface FillPool {
  /** Removes what fills interrupted by a crash left behind; returns how many. */
  sweepSpool?(): Promise<number>;
  join(digest: Digest, start: () => Promise<{ stream: Readable; size?: number }>): Promise<FillHandle>;
}

/** Events for metrics and logs; every method optional. */
export interface ProxyObserver {
  result?(e: { organization: string; upstream: string; kind: 'manifest' | 'blob'; result: CacheResult }): void;
  upstreamError?(e: { organization: string; upstream: string; kind: UpstreamErrorKind }): void;
  upstreamBytes?(e: { organization: string; upstream: string; bytes: number }): void;
  fillFirstByte?(e: { organization: string; upstream: string; seconds: number }): void;
  joined?(e: { organization: string; upstream: string }): void;
  rateLimit?(e: { upstream: string; limit: number; remaining: number }): void;
}

export interface ProxiedManifest extends StoredManifest {
  cache: CacheResult;
}

/** A blob of a proxy repository: a local copy or a fill in flight. */
export type ProxiedBlob =
  | { kind: 'local'; blob: BlobRecord; cache: 'hit' }
  | { kind: 'fill'; digest: Digest; handle: FillHandle; cache: 'miss' };

export interface ProxyQuota {
  /** Whether the organization has a quota (its cached tags are then evicted by recency). */
  governs(namespace: string): Promise<boolean>;
  makeRoom(namespace: string, blobs: ReadonlyArray<{ digest: Digest; size: number }>): Promise<void>;
  refused(namespace: string): Error;
}

export interface ProxyCacheOptions extends ProxyDirectoryOptions {
  manifests: ManifestStore;
  blobs: BlobStore;
  repositories: RepositoryService;
  storage: BlobDriver;
  fills: FillPool;
  tagsListTtlMs: number;
  log?: { warn(obj: object, msg: string): void };
  observer?: ProxyObserver;
  /** Quota enforcement: eviction before an image is cached, and the error when it cannot fit (quota-eviction.ts). */
  quota?: ProxyQuota;
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
  private readonly directory: ProxyDirectory;
  private readonly revalidating = new Map<string, Promise<ProxiedManifest>>();
  private readonly revalidated = new Map<string, Revalidation>();
  private readonly tagLists = new Map<string, { at: number; page: TagPage }>();
  private readonly referrerLists = new Map<string, { at: number; manifests: ReferrerDescriptor[] }>();
  /** When each cached tag's recency was last written (organizations with a quota evict by it). */
  private readonly touched = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: ProxyCacheOptions) {
    this.now = opts.now ?? Date.now;
    this.directory = new ProxyDirectory(opts);
  }

  /** Sends events (metrics) to `observer` from now on. */
  observe(observer: ProxyObserver): void {
    this.opts.observer = observer;
  }

  /** Forgets cached configurations (after a change); all of them when no organization is named. */
  invalidate(organization?: string): void {
    this.directory.invalidate(organization);
  }

  /** Removes spool files of fills a crash interrupted (call before serving). */
  async sweepSpool(): Promise<number> {
    return (await this.opts.fills.sweepSpool?.()) ?? 0;
  }

  /** Closes upstream connections. */
  close(): Promise<void> {
    return this.directory.close();
  }

  /** The proxy organization's view of a repository name, or undefined when its namespace is no proxy cache. */
  target(name: RepositoryName): Promise<ProxyTarget | undefined> {
    return this.directory.target(name);
  }

  /** The local name a mirror request is served under (see ProxyDirectory.route). */
  route(name: string, ns: string | undefined): Promise<string | undefined> {
    return this.directory.route(name, ns);
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

  private async manifestByTag(target: ProxyTarget, tag: string): Promise<ProxiedManifest> {
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
        return this.served(target, 'manifest', { ...cached.manifest, cache: 'hit' });
      }
    }
    let head;
    try {
      head = await upstream.client.headManifest(target.upstreamRepository, tag, { fallback: alive });
    } catch (err) {
      this.upstreamError(upstream, err);
      if (cached && alive && isUpstreamError(err) && err.kind !== 'auth') {
        this.opts.log?.warn({ repository: target.name, tag, err: err.message }, 'upstream failed; serving the cached tag');
        return this.served(target, 'manifest', { ...cached.manifest, cache: 'stale' });
      }
      throw upstreamFailure(err, 'manifest', upstream.spec.registry);
    } finally {
      this.noteRateLimit(upstream);
    }
    if (cached && cached.manifest.digest === head.digest) {
      // Extending by less than a hundredth of the lifetime is not worth a write per pull.
      const expiresAt = this.expiry(upstream);
      const gain = expiresAt === null ? (cached.expiresAt === null ? 0 : Infinity) : expiresAt - (cached.expiresAt ?? 0);
      if (gain > Math.max(1000, upstream.config.expirationS * 10)) await this.opts.manifests.setTagExpiry(cached.repositoryId, tag, expiresAt);
      else this.touch(target, cached.repositoryId, tag, cached.expiresAt);
      this.remember(key, head.digest);
      return this.served(target, 'manifest', { ...cached.manifest, cache: 'hit' });
    }
    const stored = await this.fetchManifest(target, tag, { tag });
    this.remember(key, stored.digest);
    return this.served(target, 'manifest', { ...stored, cache: 'miss' });
  }

  private async manifestByDigest(target: ProxyTarget, digest: Digest): Promise<ProxiedManifest> {
    const repo = await this.opts.repositories.find(target.name);
    const local = repo ? await this.opts.manifests.findByDigest(repo.id, digest) : undefined;
    if (local && repo) {
      this.keepAlive(target, repo, digest);
      return this.served(target, 'manifest', { ...local, cache: 'hit' });
    }
    const key = `${target.name}@${digest}`;
    const running = this.revalidating.get(key);
    if (running) return running;
    const p = this.fetchManifest(target, digest, { hiddenFor: digest })
      .then((m) => this.served(target, 'manifest', { ...m, cache: 'miss' as const }))
      .finally(() => this.revalidating.delete(key));
    this.revalidating.set(key, p);
    return p;
  }

  /** Fetches a manifest from the upstream and stores it under a tag (or a hidden tag for a digest pull). */
  private async fetchManifest(target: ProxyTarget, ref: string, how: { tag: string } | { hiddenFor: Digest }): Promise<StoredManifest> {
    const { upstream } = target;
    let m;
    try {
      m = await upstream.client.getManifest(target.upstreamRepository, ref, { fallback: false });
    } catch (err) {
      this.upstreamError(upstream, err);
      throw upstreamFailure(err, 'manifest', upstream.spec.registry);
    } finally {
      this.noteRateLimit(upstream);
    }
    if (m.bytes.byteLength > this.opts.maxManifestBytes) {
      throw new RegistryError('MANIFEST_UNKNOWN', `the upstream manifest is ${m.bytes.byteLength} bytes, more than the ${this.opts.maxManifestBytes} allowed`, undefined, 404);
    }
    let parsed;
    try {
      parsed = parseManifest(m.bytes, m.mediaType);
    } catch (err) {
      throw new RegistryError('MANIFEST_UNKNOWN', `the upstream manifest cannot be served: ${(err as Error).message}`, undefined, 404);
    }
    this.opts.observer?.upstreamBytes?.({ organization: upstream.config.organization, upstream: upstream.spec.registry, bytes: m.bytes.byteLength });
    const repo = await this.opts.repositories.ensure(target.name);
    const blobs = requiredBlobs(parsed);
    const result = await this.store(target, parsed.manifests.length === 0 ? blobs : [], {
      repositoryId: repo.id,
      digest: m.digest,
      mediaType: parsed.mediaType,
      artifactType: parsed.artifactType,
      subjectDigest: parsed.subject?.digest,
      annotations: parsed.annotations,
      content: m.bytes,
      blobDigests: blobs.map((d) => d.digest),
      blobSizes: new Map(blobs.map((d) => [d.digest, d.size])),
      childDigests: parsed.manifests.map((d) => d.digest),
      tag: 'tag' in how ? how.tag : hiddenTagFor(how.hiddenFor),
      hiddenTag: !('tag' in how),
      tagExpiresAt: this.expiry(upstream),
      lazy: true,
    });
    if (!result.ok) throw new Error('a lazy manifest write reported missing content');
    if (upstream.config.prefetchLayers && parsed.manifests.length === 0) this.prefetch(target, requiredBlobs(parsed).map((d) => d.digest));
    return { id: result.manifestId, digest: m.digest, mediaType: parsed.mediaType, size: m.bytes.byteLength, content: m.bytes };
  }

  /**
   * Stores a fetched manifest. In an organization with a quota, least recently pulled content is
   * evicted first to make room for `blobs` (an index counts through its children, each made room for
   * when it is fetched); a concurrent fill that took the room gets one more try.
   */
  private async store(target: ProxyTarget, blobs: ReadonlyArray<{ digest: Digest; size: number }>, write: ManifestWrite) {
    const { quota } = this.opts;
    const namespace = splitRepositoryName(target.name).namespace;
    for (let attempt = 1; ; attempt++) {
      if (quota && blobs.length) await quota.makeRoom(namespace, blobs);
      try {
        return await this.opts.manifests.put(write);
      } catch (err) {
        if (!(err instanceof QuotaExceeded)) throw err;
        if (!quota || attempt >= 2) throw quota?.refused(namespace) ?? quotaExceeded(namespace);
      }
    }
  }

  /**
   * In an organization with a quota, which evicts by recency, every pull of a cached tag refreshes
   * its expiry to within a second, without waiting: one write per tag per second at most. Elsewhere
   * the expiry moves only by the coarser steps above.
   */
  private touch(target: ProxyTarget, repositoryId: number, tag: string, expiresAt: number | null): void {
    if (!this.opts.quota) return;
    const next = this.expiry(target.upstream);
    const now = this.now();
    const key = `${target.name}:${tag}`;
    if (next === null || next - (expiresAt ?? 0) < 1000 || now - (this.touched.get(key) ?? 0) < 1000) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(key, now);
    const quota = this.opts.quota;
    void quota
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

  /**
   * A blob of a proxy repository: the local copy (linked into the repository if another one holds it),
   * or the one fill of that digest in flight, started here when there is none.
   */
  async blob(target: ProxyTarget, digest: Digest): Promise<ProxiedBlob> {
    const { upstream } = target;
    const repo = await this.opts.repositories.find(target.name);
    const linked = repo ? await this.opts.blobs.findInRepository(repo.id, digest) : undefined;
    // The bytes are checked, not just the row: a copy GC removed is fetched again.
    const stored = await this.opts.storage.stat(blobKey(digest));
    if (stored) {
      const r = repo ?? (await this.opts.repositories.ensure(target.name));
      const blob = linked && repo ? linked : await this.opts.blobs.link(r.id, digest, stored.size);
      return this.served(target, 'blob', { kind: 'local' as const, blob, cache: 'hit' });
    }
    const started = this.now();
    let handle: FillHandle;
    try {
      handle = await this.opts.fills.join(digest, async () => {
        try {
          // The fill verifies digest and size itself (BlobFillPump): the upstream client need not hash too.
          const res = await upstream.client.getBlob(target.upstreamRepository, digest, undefined, { verify: false, fallback: false });
          this.opts.observer?.fillFirstByte?.({ organization: upstream.config.organization, upstream: upstream.spec.registry, seconds: (this.now() - started) / 1000 });
          return { stream: res.stream, size: res.size };
        } finally {
          this.noteRateLimit(upstream);
        }
      });
    } catch (err) {
      this.upstreamError(upstream, err);
      throw upstreamFailure(err, 'blob', upstream.spec.registry);
    }
    if (handle.joined) this.opts.observer?.joined?.({ organization: upstream.config.organization, upstream: upstream.spec.registry });
    else {
      handle.done.then(
        async ({ size }) => {
          this.opts.observer?.upstreamBytes?.({ organization: upstream.config.organization, upstream: upstream.spec.registry, bytes: size });
          const r = await this.opts.repositories.ensure(target.name);
          await this.opts.blobs.link(r.id, digest, size);
        },
        (err: unknown) => {
          // Content that fails verification is the upstream's protocol error.
          const verification = err instanceof RegistryError && (err.code === 'DIGEST_INVALID' || err.code === 'SIZE_INVALID');
          this.upstreamError(upstream, verification ? new UpstreamProtocolError(`blob ${digest}: ${err.message}`) : err);
          this.opts.log?.warn({ repository: target.name, digest, err: (err as Error).message }, 'blob fill failed; nothing was cached');
        },
      ).catch((err: unknown) => this.opts.log?.warn({ repository: target.name, digest, err: (err as Error).message }, 'could not record a cached blob'));
    }
    return this.served(target, 'blob', { kind: 'fill' as const, digest, handle, cache: 'miss' as const });
  }

  /**
   * Fetches the blobs of a pulled manifest in the background, one at a time (`prefetch_layers`), so the
   * layers a client skips are cached too. Failures are logged; a client's own pull retries them.
   */
  private prefetch(target: ProxyTarget, digests: Digest[]): void {
    void (async () => {
      for (const digest of new Set(digests)) {
        try {
          const found = await this.blob(target, digest);
          if (found.kind === 'fill') await found.handle.done;
        } catch (err) {
          this.opts.log?.warn({ repository: target.name, digest, err: (err as Error).message }, 'prefetching a layer failed');
        }
      }
    })();
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
      this.upstreamError(target.upstream, err);
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
      this.upstreamError(target.upstream, err);
      if (!isUpstreamError(err)) throw err;
      // The last answer while the upstream fails; the cached referrer manifests when there is none.
      return hit?.manifests;
    }
  }

  private served<T extends { cache: CacheResult }>(target: ProxyTarget, kind: 'manifest' | 'blob', value: T): T {
    this.opts.observer?.result?.({ organization: target.upstream.config.organization, upstream: target.upstream.spec.registry, kind, result: value.cache });
    return value;
  }

  private upstreamError(upstream: ProxyUpstream, err: unknown): void {
    if (isUpstreamError(err)) {
      this.opts.observer?.upstreamError?.({ organization: upstream.config.organization, upstream: upstream.spec.registry, kind: (err as UpstreamError).kind });
    }
  }

  private noteRateLimit(upstream: ProxyUpstream): void {
    const rl = upstream.client.rateLimit;
    if (rl) this.opts.observer?.rateLimit?.({ upstream: upstream.spec.registry, limit: rl.limit, remaining: rl.remaining });
  }

  private expiry(upstream: ProxyUpstream): number | null {
    return upstream.config.expirationS > 0 ? this.now() + upstream.config.expirationS * 1000 : null;
  }

  private remember(key: string, digest: Digest): void {
    if (this.revalidated.size >= MEMO_LIMIT) this.revalidated.clear();
    this.revalidated.set(key, { digest, at: this.now() });
  }
}
