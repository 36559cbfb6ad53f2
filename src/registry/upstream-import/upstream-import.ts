/**
 * The one way content comes from an upstream registry into a local repository, for both callers: the
 * proxy cache on demand (proxy/pull-through.ts, one request at a time) and repository mirrors on a
 * schedule (image-import.ts, every matching tag). Manifests are stored through ManifestService.put
 * (quota, immutability, tag history); blobs through the single-flight verified fills (proxy/blob-fills.ts),
 * so a digest is fetched once however many requests, tags or mirrors want it at the same time.
 *
 *   manifest   GET upstream ─▶ size and parse checks (an unservable manifest is 404) ─▶ put(cached)
 *   blob       storage has the bytes? link them into the repository ─▶ 'local'
 *              otherwise join/start the fill ─▶ 'fill'; the repository links the blob once verified
 */
import type { Readable } from 'node:stream';
import type { BlobRecord, BlobStore } from '../../db/blob-store.js';
import type { Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import { parseManifest, type ParsedManifest } from '../../oci/manifest.js';
import type { Reference, RepositoryName } from '../../oci/reference.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import { UpstreamProtocolError } from '../../upstream/errors.js';
import type { UpstreamClient } from '../../upstream/upstream-client.js';
import type { BlobBody } from '../blobs.js';
import type { CachedManifestWrite, ManifestService, StoredManifest } from '../manifests.js';
import type { RepositoryService } from '../repositories.js';
import { upstreamFailure } from './upstream-failure.js';

/** A blob fill in flight (proxy/blob-fills.ts). */
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

/** What happens on the way, for the caller's metrics and progress (every method optional). */
export interface ImportEvents {
  upstreamError?(err: unknown): void;
  /** Bytes fetched from the upstream: a manifest, or a blob once its fill is verified. */
  upstreamBytes?(bytes: number): void;
  /** After every upstream request (rate-limit headers). */
  rateLimit?(): void;
  fillFirstByte?(seconds: number): void;
  joined?(): void;
}

/** Where content comes from and where it goes. */
export interface ImportSource {
  /** The local repository. */
  name: RepositoryName;
  client: UpstreamClient;
  /** The repository path on the upstream. */
  upstreamRepository: string;
  /** The upstream registry as configured (`host[:port]`), for messages. */
  registry: string;
  events?: ImportEvents;
}

/** A blob of the repository: a local copy, or a fill in flight. */
export type ImportedBlob = { kind: 'local'; blob: BlobRecord } | { kind: 'fill'; digest: Digest; handle: FillHandle };

export interface UpstreamImportOptions {
  manifests: ManifestService;
  repositories: RepositoryService;
  blobs: BlobStore;
  storage: BlobDriver;
  fills: FillPool;
  maxManifestBytes: number;
  log?: { warn(obj: object, msg: string): void };
  now?: () => number;
}

export class UpstreamImport {
  readonly now: () => number;

  constructor(readonly opts: UpstreamImportOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Removes what fills interrupted by a crash left behind (call before serving). */
  async sweep(): Promise<number> {
    return (await this.opts.fills.sweepSpool?.()) ?? 0;
  }

  /**
   * The manifest `ref` names, fetched from the upstream and checked (size, parse); an unservable one
   * is MANIFEST_UNKNOWN (404), an upstream failure the error upstream-failure.ts gives.
   */
  async fetchManifest(source: ImportSource, ref: string): Promise<{ bytes: Buffer; digest: Digest; mediaType: string; parsed: ParsedManifest }> {
    const ev = source.events;
    let m;
    try {
      m = await source.client.getManifest(source.upstreamRepository, ref, { fallback: false });
    } catch (err) {
      ev?.upstreamError?.(err);
      throw upstreamFailure(err, 'manifest', source.registry);
    } finally {
      ev?.rateLimit?.();
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
    ev?.upstreamBytes?.(m.bytes.byteLength);
    return { ...m, parsed };
  }

  /** Fetches the manifest `ref` names and stores it as a cache write (`keep`): blobs and children may follow later. */
  async manifest(source: ImportSource, ref: Reference, keep: Omit<CachedManifestWrite, 'digest'>): Promise<{ stored: StoredManifest; parsed: ParsedManifest }> {
    const m = await this.fetchManifest(source, ref.kind === 'tag' ? ref.tag : ref.digest);
    const repo = await this.opts.repositories.ensure(source.name);
    const { stored } = await this.opts.manifests.put(repo, ref, m.bytes, m.mediaType, { digest: m.digest, ...keep });
    return { stored, parsed: m.parsed };
  }

  /**
   * A blob for the repository: the local copy (linked into the repository if only another one holds
   * it), or the one fill of that digest in flight, started here when there is none. A fill this call
   * started is linked into the repository once verified (`linked` resolves then; it rejects when the
   * fill failed). The bytes in storage are checked, not just a row: a copy GC removed is fetched again.
   */
  async blob(source: ImportSource, digest: Digest): Promise<ImportedBlob & { linked: Promise<BlobRecord> }> {
    const { repositories, blobs } = this.opts;
    const ev = source.events;
    const repo = await repositories.find(source.name);
    const linked = repo ? await blobs.findInRepository(repo.id, digest) : undefined;
    const stored = await this.opts.storage.stat(blobKey(digest));
    if (stored) {
      const r = repo ?? (await repositories.ensure(source.name));
      const blob = linked && repo ? linked : await blobs.link(r.id, digest, stored.size);
      return { kind: 'local', blob, linked: Promise.resolve(blob) };
    }
    const started = this.now();
    let handle: FillHandle;
    try {
      handle = await this.opts.fills.join(digest, async () => {
        try {
          // The fill verifies digest and size itself (BlobFillPump): the upstream client need not hash too.
          const res = await source.client.getBlob(source.upstreamRepository, digest, undefined, { verify: false, fallback: false });
          ev?.fillFirstByte?.((this.now() - started) / 1000);
          return { stream: res.stream, size: res.size };
        } finally {
          ev?.rateLimit?.();
        }
      });
    } catch (err) {
      ev?.upstreamError?.(err);
      throw upstreamFailure(err, 'blob', source.registry);
    }
    if (handle.joined) ev?.joined?.();
    const done = this.linkWhenDone(source, digest, handle);
    return { kind: 'fill', digest, handle, linked: done };
  }

  /** Links being written, per repository and digest: the clients waiting on one fill share one link. */
  private readonly links = new Map<string, Promise<BlobRecord>>();

  private link(name: RepositoryName, digest: Digest, size: number): Promise<BlobRecord> {
    const key = `${name}\u0000${digest}`;
    let linking = this.links.get(key);
    if (!linking) {
      linking = (async () => {
        const r = await this.opts.repositories.ensure(name);
        try {
          return await this.opts.blobs.link(r.id, digest, size);
        } catch (err) {
          this.opts.log?.warn({ repository: name, digest, err: (err as Error).message }, 'could not record a cached blob');
          throw err;
        }
      })();
      const mine = linking;
      this.links.set(key, mine);
      const forget = () => {
        if (this.links.get(key) === mine) this.links.delete(key);
      };
      mine.then(forget, forget);
    }
    return linking;
  }

  /**
   * Links a filled blob into the repository once it is verified and stored (the fill's starter counts
   * its bytes and reports its failure); `linked` rejects when the fill or the link failed.
   */
  private linkWhenDone(source: ImportSource, digest: Digest, handle: FillHandle): Promise<BlobRecord> {
    const ev = source.events;
    const { log } = this.opts;
    handle.done.catch((err: unknown) => {
      if (handle.joined) return;
      // Content that fails verification is the upstream's protocol error.
      const verification = err instanceof RegistryError && (err.code === 'DIGEST_INVALID' || err.code === 'SIZE_INVALID');
      ev?.upstreamError?.(verification ? new UpstreamProtocolError(`blob ${digest}: ${err.message}`) : err);
      log?.warn({ repository: source.name, digest, err: (err as Error).message }, 'blob fill failed; nothing was cached');
    });
    const linked = handle.done.then(({ size }) => {
      if (!handle.joined) ev?.upstreamBytes?.(size);
      return this.link(source.name, digest, size);
    });
    // Callers that do not wait for the link (a proxy client reading the fill) must not leave it unhandled.
    linked.catch(() => {});
    return linked;
  }
}
