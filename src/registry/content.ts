/**
 * What a pull reads from one repository, whoever holds the content. The resolver (ContentResolver)
 * gives, per repository, either the local content or a pull-through view of an upstream with this
 * same interface; routes read through it and never ask which one they got.
 *
 *   resolve(name) ─▶ RepositoryContent ─▶ manifest(ref) │ blob(digest) │ tags(page) │ referrers(subject)
 *                     local: ManifestService, BlobService, RepositoryService
 *                     proxied (registry/proxy): the same, in front of an upstream registry
 */
import type { Metrics } from '../observability/metrics.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import type { Reference, RepositoryName } from '../oci/reference.js';
import type { BlobRange, ServedBody } from './blobs.js';
import type { StoredManifest } from './manifests.js';

/** Where a pulled manifest or blob came from when it passed through a cache. */
export type CacheResult = 'hit' | 'miss' | 'stale';

export interface ServedManifest extends StoredManifest {
  /** Set when the content passed through a cache (the `X-Wharf-Cache` header). */
  cache?: CacheResult;
  /** Bytes fetched from an upstream to serve this request (recorded with the pull). */
  upstreamBytes?: number;
}

/** A blob ready to be served: its size, where it came from, and its bytes (or a range of them) on demand. */
export interface ServedBlob {
  digest: Digest;
  /** Undefined while an upstream transfer of unannounced length is in flight (no ranges then). */
  size: number | undefined;
  cache?: CacheResult;
  /** An audit entry the serving route records in the caller's name when it sends the bytes (GET, not HEAD). */
  audit?: { kind: string; metadata: Record<string, unknown> };
  /**
   * The bytes, or the inclusive range of them (only when `size` is known); or, for a blob the storage
   * can serve itself, the URL to send the client to.
   */
  open(range?: BlobRange): Promise<ServedBody>;
}

export interface TagListPage {
  tags: string[];
  /** The last tag of this page when more follow. */
  next?: string;
  /** The page size to name in the `Link` to the next page. */
  pageSize: number;
}

export interface ReferrersIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
}

/** The readable content of one repository. */
export interface RepositoryContent {
  readonly name: RepositoryName;
  /**
   * The manifest `ref` names; MANIFEST_UNKNOWN when there is none, or when it is of a type the client
   * does not `accept` (empty: any).
   */
  manifest(ref: Reference, accept: readonly string[]): Promise<ServedManifest>;
  /** The blob, BLOB_UNKNOWN when the repository has none of that digest. */
  blob(digest: Digest): Promise<ServedBlob>;
  /** One page of tag names in order; `n` 0 gives an empty page, absent the whole list up to the page limit. */
  tags(page: { last?: string; n?: number }): Promise<TagListPage>;
  /** The referrers of `subject`, filtered by artifact type when given. */
  referrers(subject: Digest, artifactType?: string): Promise<ReferrersIndex>;
}

/** Picks, per repository, the content to read; the only place that knows whether a repository is proxied. */
export interface ContentResolver {
  /** The content of the repository `name`. */
  resolve(name: RepositoryName): Promise<RepositoryContent>;
  /**
   * The name a pull request for `name` is served under. Mirror clients name the repository as their
   * upstream knows it (containerd adds `ns=<registry>`); the answer is the local name that serves it,
   * or `name` itself. `ns` is only compared, never dialled. Not yet validated: callers parse the result.
   */
  pullName(name: string, ns: string | undefined): Promise<string>;
  /** Reports what the resolved content does (cache results, upstream traffic) in `metrics`. */
  instrument(metrics: Metrics): void;
  /** Makes ready to serve (removes what a crash left of transfers in flight). */
  open(): Promise<void>;
  /** Releases upstream connections. */
  close(): Promise<void>;
}
