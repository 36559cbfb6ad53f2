/**
 * Brings content from an upstream registry into a local repository: a manifest (stored through
 * ManifestService.put, the one manifest write path, with the namespace's quota and eviction), and a
 * blob (linked when a local copy exists, else the one fill of that digest in flight, started here
 * when there is none: blob-fills.ts). The proxy cache calls it on demand per request.
 *
 *   manifest   GET upstream ─▶ size and parse checks (an unservable manifest is 404) ─▶ put(cached)
 *              ─▶ optional prefetch of its layers, one at a time, in the background
 *   blob       storage has the bytes? link them into the repository ─▶ 'hit'
 *              otherwise join/start the fill ─▶ 'miss'; the repository links the blob once verified
 */
import type { Readable } from 'node:stream';
import type { BlobRecord, BlobStore } from '../../db/blob-store.js';
import type { Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import { parseManifest, requiredBlobs } from '../../oci/manifest.js';
import type { Reference } from '../../oci/reference.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import { UpstreamProtocolError } from '../../upstream/errors.js';
import type { ManifestService, StoredManifest } from '../manifests.js';
import type { BlobBody } from '../blobs.js';
import type { RepositoryService } from '../repositories.js';
import type { ProxyEvents } from './proxy-events.js';
import type { ProxyTarget } from './proxy-directory.js';
import { upstreamFailure } from './upstream-failure.js';

/** A blob fill in flight (blob-fills.ts). */
export interface FillHandle {
  readonly size: number | undefined;
  readonly joined: boolean;
  open(range?: { start: number; end: number }): Readable;
  /** The same bytes as a body to send (positional reads into the sender's buffers when the size is known). */
  body(range?: { start: number; end: number }): Promise<BlobBody>;
  readonly done: Promise<{ size: number }>;
}

export interface FillPool {
  /** Removes what fills interrupted by a crash left behind; returns how many. */
  sweepSpool?(): Promise<number>;
  join(digest: Digest, start: () => Promise<{ stream: Readable; size?: number }>): Promise<FillHandle>;
}

/** A blob of a proxy repository: a local copy or a fill in flight. */
export type ProxiedBlob = { kind: 'local'; blob: BlobRecord; cache: 'hit' } | { kind: 'fill'; digest: Digest; handle: FillHandle; cache: 'miss' };

/** Makes room under an organization's quota before an image is cached (quota-eviction.ts). */
export interface CacheRoom {
  makeRoom(namespace: string, blobs: ReadonlyArray<{ digest: Digest; size: number }>): Promise<void>;
}

export interface PullThroughOptions {
  manifests: ManifestService;
  repositories: RepositoryService;
  blobs: BlobStore;
  storage: BlobDriver;
  fills: FillPool;
  events: ProxyEvents;
  maxManifestBytes: number;
  room?: CacheRoom;
  log?: { warn(obj: object, msg: string): void };
  now?: () => number;
}

/** How a fetched manifest is kept: under the pulled tag, or a hidden tag that keeps a digest pull cached. */
export interface ManifestKeep {
  tag: string;
  hidden: boolean;
  expiresAt: number | null;
}

export class PullThrough {
  private readonly now: () => number;

  constructor(private readonly opts: PullThroughOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Removes what fills interrupted by a crash left behind (call before serving). */
  async sweep(): Promise<number> {
    return (await this.opts.fills.sweepSpool?.()) ?? 0;
  }

  /** Fetches the manifest `ref` names from the upstream and stores it in the target repository. */
  async manifest(target: ProxyTarget, ref: Reference, keep: ManifestKeep): Promise<StoredManifest> {
    const { upstream } = target;
    const { events } = this.opts;
    let m;
    try {
      m = await upstream.client.getManifest(target.upstreamRepository, ref.kind === 'tag' ? ref.tag : ref.digest, { fallback: false });
    } catch (err) {
      events.upstreamError(upstream, err);
      throw upstreamFailure(err, 'manifest', upstream.spec.registry);
    } finally {
      events.rateLimit(upstream);
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
    events.upstreamBytes(upstream, m.bytes.byteLength);
    const repo = await this.opts.repositories.ensure(target.name);
    const room = this.opts.room;
    const { stored } = await this.opts.manifests.put(repo, ref, m.bytes, m.mediaType, {
      digest: m.digest,
      ...keep,
      makeRoom: room && ((namespace, blobs) => room.makeRoom(namespace, blobs)),
    });
    if (upstream.config.prefetchLayers && parsed.manifests.length === 0) this.prefetch(target, requiredBlobs(parsed).map((d) => d.digest));
    return stored;
  }

  /**
   * A blob of a proxy repository: the local copy (linked into the repository if another one holds it),
   * or the one fill of that digest in flight, started here when there is none.
   */
  async blob(target: ProxyTarget, digest: Digest): Promise<ProxiedBlob> {
    const { upstream } = target;
    const { events, repositories, blobs } = this.opts;
    const repo = await repositories.find(target.name);
    const linked = repo ? await blobs.findInRepository(repo.id, digest) : undefined;
    // The bytes are checked, not just the row: a copy GC removed is fetched again.
    const stored = await this.opts.storage.stat(blobKey(digest));
    if (stored) {
      const r = repo ?? (await repositories.ensure(target.name));
      const blob = linked && repo ? linked : await blobs.link(r.id, digest, stored.size);
      return events.served(upstream, 'blob', { kind: 'local' as const, blob, cache: 'hit' as const });
    }
    const started = this.now();
    let handle: FillHandle;
    try {
      handle = await this.opts.fills.join(digest, async () => {
        try {
          // The fill verifies digest and size itself (BlobFillPump): the upstream client need not hash too.
          const res = await upstream.client.getBlob(target.upstreamRepository, digest, undefined, { verify: false, fallback: false });
          events.fillFirstByte(upstream, (this.now() - started) / 1000);
          return { stream: res.stream, size: res.size };
        } finally {
          events.rateLimit(upstream);
        }
      });
    } catch (err) {
      events.upstreamError(upstream, err);
      throw upstreamFailure(err, 'blob', upstream.spec.registry);
    }
    if (handle.joined) events.joined(upstream);
    else this.recordWhenDone(target, digest, handle);
    return events.served(upstream, 'blob', { kind: 'fill' as const, digest, handle, cache: 'miss' as const });
  }

  /** Links a filled blob into the repository once it is verified and stored; counts and logs a failed fill. */
  private recordWhenDone(target: ProxyTarget, digest: Digest, handle: FillHandle): void {
    const { upstream } = target;
    const { events, log } = this.opts;
    handle.done
      .then(
        async ({ size }) => {
          events.upstreamBytes(upstream, size);
          const r = await this.opts.repositories.ensure(target.name);
          await this.opts.blobs.link(r.id, digest, size);
        },
        (err: unknown) => {
          // Content that fails verification is the upstream's protocol error.
          const verification = err instanceof RegistryError && (err.code === 'DIGEST_INVALID' || err.code === 'SIZE_INVALID');
          events.upstreamError(upstream, verification ? new UpstreamProtocolError(`blob ${digest}: ${err.message}`) : err);
          log?.warn({ repository: target.name, digest, err: (err as Error).message }, 'blob fill failed; nothing was cached');
        },
      )
      .catch((err: unknown) => log?.warn({ repository: target.name, digest, err: (err as Error).message }, 'could not record a cached blob'));
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
