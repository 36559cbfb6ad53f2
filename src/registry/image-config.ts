/**
 * A stored manifest of a repository, parsed, and the image configuration it references (labels and
 * build history), read from the repository's blobs. A configuration that is not held locally (a
 * proxy-cache fill that has not fetched it), too large or not JSON is reported as absent, never as an error.
 */
import type { ManifestStore, StoredManifest } from '../db/manifest-store.js';
import type { RepositoryRef } from '../db/repository-store.js';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { parseManifest, type ParsedManifest } from '../oci/manifest.js';
import type { BlobService } from './blobs.js';

/** The largest configuration read (Docker's and containerd's limits are of this order). */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  labels: Record<string, string>;
  history: HistoryEntry[];
}

export interface RepositoryManifest {
  stored: StoredManifest;
  parsed: ParsedManifest;
}

export class ImageConfigReader {
  constructor(
    private readonly manifests: ManifestStore,
    private readonly blobs: BlobService,
  ) {}

  /** The manifest `digest` of the repository; MANIFEST_UNKNOWN when it has none. */
  async manifest(repo: RepositoryRef, digest: Digest): Promise<RepositoryManifest> {
    const stored = await this.manifests.findByDigest(repo.id, digest);
    if (!stored) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} not found in ${repo.namespace}/${repo.name}`);
    return { stored, parsed: parseManifest(stored.content, stored.mediaType) };
  }

  /** The image configuration of an image manifest, or undefined (an index, or see the file comment). */
  async config(repo: RepositoryRef, m: ParsedManifest): Promise<ImageConfig | undefined> {
    if (!m.config || m.config.size > MAX_CONFIG_BYTES) return undefined;
    const bytes = await this.read(repo, m.config.digest).catch(() => undefined);
    if (!bytes) return undefined;
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      return undefined;
    }
    if (!isObject(doc)) return undefined;
    const inner = isObject(doc.config) ? doc.config : {};
    const labels: Record<string, string> = {};
    if (isObject(inner.Labels)) for (const [k, v] of Object.entries(inner.Labels)) if (typeof v === 'string') labels[k] = v;
    const history = Array.isArray(doc.history) ? doc.history.filter(isObject).map(historyEntry) : [];
    return { labels, history };
  }

  private async read(repo: RepositoryRef, digest: Digest): Promise<Buffer | undefined> {
    const record = await this.blobs.stat(repo, digest);
    if (record.size > MAX_CONFIG_BYTES) return undefined;
    const body = await this.blobs.open(record);
    if (body.kind === 'stream') {
      const chunks: Buffer[] = [];
      for await (const chunk of body.stream) chunks.push(Buffer.from(chunk as Uint8Array));
      return Buffer.concat(chunks);
    }
    const buffer = Buffer.alloc(body.length);
    try {
      for (let done = 0; done < body.length; ) {
        const n = await body.reader.read(buffer.subarray(done), body.offset + done, body.length - done);
        if (n === 0) return undefined;
        done += n;
      }
    } finally {
      await body.reader.close();
    }
    return buffer;
  }
}

function historyEntry(h: Record<string, unknown>): HistoryEntry {
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { created: text(h.created), created_by: text(h.created_by), author: text(h.author), comment: text(h.comment), empty_layer: h.empty_layer === true };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
