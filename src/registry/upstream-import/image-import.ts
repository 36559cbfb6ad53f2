/**
 * One tag of an upstream repository brought into a local repository completely, for mirrors: after
 * `image` returns, the tag points at a manifest whose blobs and children are all in the repository.
 *
 *   HEAD tag upstream ─▶ same digest as the local tag? ─▶ unchanged (one request, no bytes)
 *   otherwise GET the manifest by that digest
 *     image  ─▶ every blob missing from the repository through the one fill per digest (bounded by
 *               `blobs`, each digest once per run through `copies`) ─▶ put
 *     index  ─▶ each child (only the platforms of `architectures`, when given) not in the repository,
 *               the same way ─▶ put the index bytes unchanged (a sparse index when filtered)
 *   the tag is put last, as a normal write that checks every reference: it never points at
 *   something incomplete, and a failure leaves it at its previous target.
 */
import type { Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import { requiredBlobs, type Descriptor, type ParsedManifest } from '../../oci/manifest.js';
import { isTag, type Reference } from '../../oci/reference.js';
import type { RepositoryRef } from '../../db/repository-store.js';
import type { ManifestService } from '../manifests.js';
import type { RepositoryService } from '../repositories.js';
import type { Limiter } from './limiter.js';
import type { ImportSource, UpstreamImport } from './upstream-import.js';

/** How deep indexes may nest (an index of indexes); deeper is refused. */
const MAX_DEPTH = 3;

export interface ImageImportOptions {
  /** The digest the local tag points at now, if it is live. */
  current?: Digest;
  /** Platforms of an index to bring (architecture names); empty: all. */
  architectures: readonly string[];
  /** Bounds the blob transfers in flight (shared by the tags of a run). */
  blobs: Limiter;
  /** The blob copies of the run so far, by digest: a blob shared by tags is copied once. */
  copies: Map<Digest, Promise<void>>;
}

export type ImageImportResult = { changed: false; digest: Digest } | { changed: true; digest: Digest; previous?: Digest };

export class ImageImport {
  constructor(
    private readonly deps: {
      upstreamImport: UpstreamImport;
      manifests: ManifestService;
      repositories: RepositoryService;
    },
  ) {}

  /** Brings `tag` from the source (see the file comment). */
  async image(source: ImportSource, tag: string, opts: ImageImportOptions): Promise<ImageImportResult> {
    if (!isTag(tag)) throw new RegistryError('TAG_INVALID', `the upstream tag "${tag.slice(0, 200)}" is not a valid tag name`);
    let head;
    try {
      head = await source.client.headManifest(source.upstreamRepository, tag, { fallback: false });
    } catch (err) {
      source.events?.upstreamError?.(err);
      throw err;
    } finally {
      source.events?.rateLimit?.();
    }
    if (opts.current === head.digest) return { changed: false, digest: head.digest };
    const repo = await this.deps.repositories.ensure(source.name);
    await this.bring(source, repo, { kind: 'tag', tag }, head.digest, opts, 0);
    return { changed: true, digest: head.digest, ...(opts.current ? { previous: opts.current } : {}) };
  }

  /** Fetches the manifest `digest`, everything it references that the repository lacks, and stores it under `ref`. */
  private async bring(source: ImportSource, repo: RepositoryRef, ref: Reference, digest: Digest, opts: ImageImportOptions, depth: number): Promise<void> {
    const m = await this.deps.upstreamImport.fetchManifest(source, digest);
    if (m.digest !== digest) throw new RegistryError('MANIFEST_UNKNOWN', `the upstream manifest ${digest} came back as ${m.digest}`, undefined, 404);
    let omitted: Set<Digest> | undefined;
    if (m.parsed.manifests.length > 0) {
      if (depth >= MAX_DEPTH) throw new RegistryError('MANIFEST_UNKNOWN', `index ${digest} nests indexes more than ${MAX_DEPTH} deep`, undefined, 404);
      const { keep, drop } = selectPlatforms(m.parsed, opts.architectures);
      if (keep.length === 0) throw new RegistryError('MANIFEST_UNKNOWN', `index ${digest} has no manifest for the architectures ${opts.architectures.join(', ')}`, undefined, 404);
      if (drop.length) omitted = new Set(drop.map((d) => d.digest));
      await Promise.all(
        keep.map(async (child) => {
          if (await this.has(source, child.digest)) return;
          await this.bring(source, repo, { kind: 'digest', digest: child.digest }, child.digest, opts, depth + 1);
        }),
      );
    } else {
      await Promise.all(requiredBlobs(m.parsed).map((d) => this.copyBlob(source, d.digest, opts)));
    }
    await this.deps.manifests.put(repo, ref, m.bytes, m.mediaType, undefined, omitted && { omittedChildren: omitted });
  }

  private async has(source: ImportSource, digest: Digest): Promise<boolean> {
    return this.deps.manifests.get(source.name, { kind: 'digest', digest }).then(
      () => true,
      () => false,
    );
  }

  /** The blob in the repository: linked from storage, or fetched through the fill of its digest (once per run). */
  private copyBlob(source: ImportSource, digest: Digest, opts: ImageImportOptions): Promise<void> {
    let copy = opts.copies.get(digest);
    if (!copy) {
      copy = opts.blobs.run(async () => {
        const found = await this.deps.upstreamImport.blob(source, digest);
        await found.linked;
      });
      opts.copies.set(digest, copy);
      // A failed copy is tried again by the next tag that needs it.
      copy.catch(() => {
        if (opts.copies.get(digest) === copy) opts.copies.delete(digest);
      });
    }
    return copy;
  }
}

/** The children of an index to bring, and those an architecture filter leaves out. */
export function selectPlatforms(index: ParsedManifest, architectures: readonly string[]): { keep: Descriptor[]; drop: Descriptor[] } {
  if (architectures.length === 0) return { keep: [...index.manifests], drop: [] };
  const keep: Descriptor[] = [];
  const drop: Descriptor[] = [];
  for (const d of index.manifests) (d.platform?.architecture !== undefined && architectures.includes(d.platform.architecture) ? keep : drop).push(d);
  return { keep, drop };
}
