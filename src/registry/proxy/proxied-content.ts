/**
 * The proxy cache as a decorator: repositories of proxy-cache organizations get this content, with the
 * interface of local content (content.ts), in front of their upstream; every other repository gets the
 * local content. ProxyResolver is the only place that tells the two apart.
 */
import type { Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { Reference, RepositoryName } from '../../oci/reference.js';
import type { ContentResolver, ReferrersIndex, RepositoryContent, ServedBlob, ServedManifest, TagListPage } from '../content.js';
import { LocalContent, type LocalContentDeps } from '../local-content.js';
import { assertAcceptable } from '../manifests.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ProxyCache } from './proxy-cache.js';
import type { ProxyDirectory, ProxyTarget } from './proxy-directory.js';
import { proxyMetrics, type ProxyEvents } from './proxy-events.js';
import type { PullThrough } from './pull-through.js';

export class ProxiedContent implements RepositoryContent {
  readonly name: RepositoryName;

  constructor(
    private readonly target: ProxyTarget,
    private readonly cache: ProxyCache,
    private readonly local: LocalContent,
    private readonly deps: LocalContentDeps,
  ) {
    this.name = target.name;
  }

  async manifest(ref: Reference, accept: readonly string[]): Promise<ServedManifest> {
    const m = await this.cache.manifest(this.target, ref);
    assertAcceptable(m.mediaType, accept);
    return { ...m, upstreamBytes: m.cache === 'miss' ? m.size : 0 };
  }

  /** The local copy, or the bytes of the fill in flight as they arrive (a failed fill breaks the transfer off). */
  async blob(digest: Digest): Promise<ServedBlob> {
    const found = await this.cache.blob(this.target, digest);
    if (found.kind === 'local') {
      const record = found.blob;
      return { digest, size: record.size, cache: found.cache, open: (range) => this.deps.blobs.serve(record, range) };
    }
    const { handle } = found;
    return {
      digest,
      size: handle.size,
      cache: found.cache,
      audit: handle.joined ? undefined : { kind: 'proxy_blob_fetch', metadata: { digest, size: handle.size ?? null } },
      open: (range) => handle.body(range),
    };
  }

  /** The upstream's list when it answers (a page of it, as asked), the cached tags otherwise. */
  async tags(page: { last?: string; n?: number }): Promise<TagListPage> {
    if (page.n === 0) return { tags: [], pageSize: 0 };
    const found = await this.cache.tags(this.target, page);
    const tags = found?.tags ?? [];
    return { tags, next: found?.next, pageSize: page.n ?? tags.length };
  }

  /** The upstream's referrers; the cached ones when the upstream cannot answer and has not before. */
  async referrers(subject: Digest, artifactType?: string): Promise<ReferrersIndex> {
    const upstream = await this.cache.referrers(this.target, subject, artifactType);
    if (upstream) return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: upstream };
    return this.local.referrers(subject, artifactType);
  }
}

/** Resolves repositories of proxy-cache organizations to ProxiedContent, all others to local content. */
export class ProxyResolver implements ContentResolver {
  constructor(
    private readonly directory: ProxyDirectory,
    private readonly cache: ProxyCache,
    private readonly pull: PullThrough,
    private readonly events: ProxyEvents,
    private readonly deps: LocalContentDeps,
  ) {}

  async resolve(name: RepositoryName): Promise<RepositoryContent> {
    const local = new LocalContent(name, this.deps);
    const target = await this.directory.target(name);
    return target ? new ProxiedContent(target, this.cache, local, this.deps) : local;
  }

  async pullName(name: string, ns: string | undefined): Promise<string> {
    return (await this.directory.route(name, ns)) ?? name;
  }

  instrument(metrics: Metrics): void {
    this.events.observe(proxyMetrics(metrics));
  }

  async open(): Promise<void> {
    await this.pull.sweep();
  }

  close(): Promise<void> {
    return this.directory.close();
  }
}
