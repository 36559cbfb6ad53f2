/**
 * The proxy cache's side of the one upstream import (upstream-import/upstream-import.ts, shared with
 * repository mirrors): a manifest pulled through a proxy organization is stored as a cache write (blobs
 * and children follow when clients ask), with room made under the organization's quota, and its layers
 * optionally prefetched; a blob is the local copy or the one fill in flight. Events are counted per
 * organization and upstream (proxy-events.ts).
 *
 *   manifest   GET upstream ─▶ size and parse checks (an unservable manifest is 404) ─▶ put(cached)
 *              ─▶ optional prefetch of its layers, one at a time, in the background
 *   blob       storage has the bytes? link them into the repository ─▶ 'hit'
 *              otherwise join/start the fill ─▶ 'miss'; the repository links the blob once verified
 */
import type { BlobRecord } from '../../db/blob-store.js';
import type { Digest } from '../../oci/digest.js';
import { requiredBlobs } from '../../oci/manifest.js';
import type { Reference } from '../../oci/reference.js';
import type { StoredManifest } from '../manifests.js';
import type { FillHandle, ImportSource, UpstreamImport } from '../upstream-import/upstream-import.js';
import type { ProxyEvents } from './proxy-events.js';
import type { ProxyTarget } from './proxy-directory.js';

export type { FillHandle, FillPool } from '../upstream-import/upstream-import.js';

/** A blob of a proxy repository: a local copy or a fill in flight. */
export type ProxiedBlob = { kind: 'local'; blob: BlobRecord; cache: 'hit' } | { kind: 'fill'; digest: Digest; handle: FillHandle; cache: 'miss' };

/** Makes room under an organization's quota before an image is cached (quota-eviction.ts). */
export interface CacheRoom {
  makeRoom(namespace: string, blobs: ReadonlyArray<{ digest: Digest; size: number }>): Promise<void>;
}

export interface PullThroughOptions {
  upstreamImport: UpstreamImport;
  events: ProxyEvents;
  room?: CacheRoom;
  log?: { warn(obj: object, msg: string): void };
}

/** How a fetched manifest is kept: under the pulled tag, or a hidden tag that keeps a digest pull cached. */
export interface ManifestKeep {
  tag: string;
  hidden: boolean;
  expiresAt: number | null;
}

export class PullThrough {
  constructor(private readonly opts: PullThroughOptions) {}

  /** Removes what fills interrupted by a crash left behind (call before serving). */
  sweep(): Promise<number> {
    return this.opts.upstreamImport.sweep();
  }

  /** Fetches the manifest `ref` names from the upstream and stores it in the target repository. */
  async manifest(target: ProxyTarget, ref: Reference, keep: ManifestKeep): Promise<StoredManifest> {
    const room = this.opts.room;
    const { stored, parsed } = await this.opts.upstreamImport.manifest(this.source(target), ref, {
      ...keep,
      makeRoom: room && ((namespace, blobs) => room.makeRoom(namespace, blobs)),
    });
    if (target.upstream.config.prefetchLayers && parsed.manifests.length === 0) this.prefetch(target, requiredBlobs(parsed).map((d) => d.digest));
    return stored;
  }

  /**
   * A blob of a proxy repository: the local copy (linked into the repository if another one holds it),
   * or the one fill of that digest in flight, started here when there is none.
   */
  async blob(target: ProxyTarget, digest: Digest): Promise<ProxiedBlob> {
    const found = await this.opts.upstreamImport.blob(this.source(target), digest);
    const value: ProxiedBlob = found.kind === 'local' ? { kind: 'local', blob: found.blob, cache: 'hit' } : { kind: 'fill', digest, handle: found.handle, cache: 'miss' };
    return this.opts.events.served(target.upstream, 'blob', value);
  }

  /** The import's view of a proxy repository, its events counted for the organization. */
  private source(target: ProxyTarget): ImportSource {
    const { upstream } = target;
    const events = this.opts.events;
    return {
      name: target.name,
      client: upstream.client,
      upstreamRepository: target.upstreamRepository,
      registry: upstream.spec.registry,
      events: {
        upstreamError: (err) => events.upstreamError(upstream, err),
        upstreamBytes: (bytes) => events.upstreamBytes(upstream, bytes),
        rateLimit: () => events.rateLimit(upstream),
        fillFirstByte: (seconds) => events.fillFirstByte(upstream, seconds),
        joined: () => events.joined(upstream),
      },
    };
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
}
