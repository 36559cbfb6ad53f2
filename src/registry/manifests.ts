/**
 * Manifest push, pull and delete. Bytes are stored and served exactly as pushed; a manifest is accepted
 * only when every blob and child it references is already in the repository.
 */
import { QuotaExceeded, type ManifestStore, type ManifestWrite, type StoredManifest } from '../db/manifest-store.js';
import type { Charge } from '../db/quota-accounting.js';
import type { RepositoryRef } from '../db/repository-store.js';
import { digestAlgorithm, digestOf, type Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { quotaExceeded } from './quota/quota-gate.js';
import { parseManifest, requiredBlobs, type Descriptor } from '../oci/manifest.js';
import { MediaType, normalizeMediaType } from '../oci/media-types.js';
import { splitRepositoryName, type Reference, type RepositoryName } from '../oci/reference.js';
import { immutableRefusal, type ImmutabilityPolicies } from './tag-immutability.js';

export type { StoredManifest };

export interface ManifestPutResult {
  digest: Digest;
  subject?: Digest;
  /** The manifest as stored, ready to serve. */
  stored: StoredManifest;
}

/** Quota refusals and warnings of manifest writes (quota/quota-gate.ts). */
export interface ManifestQuota {
  refused(namespace: string, stage: 'manifest' | 'proxy'): Error;
  charged(namespace: string, charge: Charge): Promise<void>;
}

/**
 * A manifest brought from an upstream registry (a proxy-cache fill, a mirror sync): stored although its
 * blobs and children are not (yet) in the repository, each blob counted at the size the manifest gives.
 */
export interface CachedManifestWrite {
  /** The digest the upstream gave; the bytes must match it. */
  digest: Digest;
  /** The tag to point at the manifest: the pulled tag, or a hidden tag that keeps a manifest pulled by digest. */
  tag: string;
  hidden: boolean;
  /** Expiry of the tag (epoch ms); null: none. */
  expiresAt: number | null;
  /**
   * Makes room under the namespace's quota for the blobs an image manifest would add (proxy eviction),
   * before it is counted; a write that a concurrent one beat to the room gets one more try.
   */
  makeRoom?(namespace: string, blobs: ReadonlyArray<{ digest: Digest; size: number }>): Promise<void>;
}

export class ManifestService {
  constructor(
    private readonly store: ManifestStore,
    private readonly opts: { maxManifestSize: number; quota?: ManifestQuota; immutability?: ImmutabilityPolicies },
  ) {}

  /**
   * The manifest a reference names. `accept` lists the media types the client accepts (empty: any);
   * a manifest of another type is reported as MANIFEST_UNKNOWN with the reason.
   */
  async get(name: RepositoryName, ref: Reference, accept: readonly string[] = []): Promise<StoredManifest> {
    const { namespace, repository } = splitRepositoryName(name);
    const m = await this.store.findByName(namespace, repository, ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest });
    if (!m) {
      const what = ref.kind === 'tag' ? `tag ${ref.tag}` : `manifest ${ref.digest}`;
      throw new RegistryError('MANIFEST_UNKNOWN', `${what} not found in ${name}`);
    }
    assertAcceptable(m.mediaType, accept);
    return m;
  }

  /**
   * Validates and stores a manifest, tagging it when `ref` is a tag: every manifest write (a push, a
   * cache fill with `cached`) goes through here and the namespace's quota. A manifest that would take
   * the namespace over a Reject limit is refused and nothing of it is stored; one that crosses a
   * Warning limit is reported. A push onto an immutable tag that points elsewhere is refused
   * (TagImmutableError) and stores nothing; a tag it creates is immutable when a policy selects it.
   * `sparse.omittedChildren`: children of an index that need not be in the repository (a mirror's
   * architecture filter left them out); every other reference must be there, as for a push.
   */
  async put(
    repo: RepositoryRef,
    ref: Reference,
    bytes: Buffer,
    contentType: string | undefined,
    cached?: CachedManifestWrite,
    sparse?: { omittedChildren: ReadonlySet<Digest> },
  ): Promise<ManifestPutResult> {
    if (bytes.byteLength > this.opts.maxManifestSize) {
      throw new RegistryError('SIZE_INVALID', `manifest is ${bytes.byteLength} bytes; the limit is ${this.opts.maxManifestSize}`, undefined, 413);
    }
    const expected = ref.kind === 'digest' ? ref.digest : cached?.digest;
    const digest = expected ? digestOf(bytes, digestAlgorithm(expected)) : digestOf(bytes);
    if (expected && digest !== expected) {
      throw new RegistryError('DIGEST_INVALID', `manifest content has digest ${digest}, not ${expected}`);
    }
    const manifest = parseManifest(bytes, contentType);
    const blobs = requiredBlobs(manifest);
    const write: ManifestWrite = {
      repositoryId: repo.id,
      digest,
      mediaType: manifest.mediaType,
      artifactType: manifest.artifactType,
      subjectDigest: manifest.subject?.digest,
      annotations: manifest.annotations,
      content: bytes,
      blobDigests: blobs.map((d) => d.digest),
      childDigests: manifest.manifests.map((d) => d.digest),
      tag: cached ? cached.tag : ref.kind === 'tag' ? ref.tag : undefined,
      ...(sparse && { omittedChildren: sparse.omittedChildren }),
      ...(cached && { lazy: true, blobSizes: new Map(blobs.map((d) => [d.digest, d.size])), tagExpiresAt: cached.expiresAt, hiddenTag: cached.hidden }),
    };
    if (write.tag !== undefined && !write.hiddenTag && this.opts.immutability) write.tagImmutable = await this.opts.immutability.selects(repo.id, write.tag);
    // An index counts through its children, each made room for when it is fetched.
    const room = cached?.makeRoom && manifest.manifests.length === 0 ? cached.makeRoom : undefined;
    const stage = cached ? 'proxy' : 'manifest';
    let result;
    for (let attempt = 1; ; attempt++) {
      try {
        if (room) await room(repo.namespace, blobs);
        result = await this.store.put(write);
        break;
      } catch (err) {
        if (!(err instanceof QuotaExceeded)) immutableRefusal(err, repo);
        if (!room || attempt >= 2) throw this.opts.quota?.refused(repo.namespace, stage) ?? quotaExceeded(repo.namespace);
      }
    }
    if (result.ok && result.charge) await this.opts.quota?.charged(repo.namespace, result.charge);
    if (!result.ok) {
      if (result.missingBlobs.length) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references blobs not in ${repo.namespace}/${repo.name}: ${result.missingBlobs.join(', ')}`, {
          missing: result.missingBlobs,
        });
      }
      throw new RegistryError('MANIFEST_UNKNOWN', `index references manifests not in ${repo.namespace}/${repo.name}: ${result.missingChildren.join(', ')}`, {
        missing: result.missingChildren,
      }, 400);
    }
    return {
      digest,
      subject: manifest.subject?.digest,
      stored: { id: result.manifestId, digest, mediaType: manifest.mediaType, size: bytes.byteLength, content: bytes },
    };
  }

  /**
   * Deletes a tag (the manifest stays) or a manifest by digest (with the tags that point at it);
   * TagImmutableError when that would delete an immutable tag.
   */
  async delete(repo: RepositoryRef, ref: Reference): Promise<void> {
    if (ref.kind === 'tag') {
      const deleted = await this.store.deleteTag(repo.id, ref.tag).catch((err: unknown) => immutableRefusal(err, repo));
      if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${ref.tag} not found`);
      return;
    }
    const res = await this.store.deleteByDigest(repo.id, ref.digest).catch((err: unknown) => immutableRefusal(err, repo));
    if (res.referencedBy.length) {
      throw new RegistryError('DENIED', `manifest ${ref.digest} is referenced by index ${res.referencedBy.join(', ')}; delete the index first`, undefined, 409);
    }
    if (!res.deleted) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${ref.digest} not found`);
  }

  tags(repo: RepositoryRef, opts: { last?: string; limit: number }): Promise<string[]> {
    return this.store.listTags(repo.id, opts);
  }

  /** The referrers of `subject` as an OCI image index document. */
  async referrers(repo: RepositoryRef | undefined, subject: Digest, artifactType?: string): Promise<{ mediaType: string; schemaVersion: 2; manifests: Descriptor[] }> {
    const rows = repo ? await this.store.referrers(repo.id, subject, artifactType) : [];
    return {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: rows.map((r) => {
        const d: Descriptor = { mediaType: r.mediaType, digest: r.digest, size: r.size };
        if (r.artifactType) d.artifactType = r.artifactType;
        if (r.annotations) d.annotations = JSON.parse(r.annotations) as Record<string, string>;
        return d;
      }),
    };
  }
}

/**
 * Whether a manifest of `mediaType` may be served to a client that sent `accept` (as Distribution does,
 * a client that lists manifest types but not this one gets MANIFEST_UNKNOWN with the reason).
 */
export function assertAcceptable(mediaType: string, accept: readonly string[]): void {
  if (!acceptable(mediaType, accept)) {
    throw new RegistryError('MANIFEST_UNKNOWN', `manifest is a ${mediaType}, which the client does not accept (Accept: ${accept.join(', ')})`);
  }
}

function acceptable(mediaType: string, accept: readonly string[]): boolean {
  if (accept.length === 0) return true;
  for (const entry of accept) {
    const t = normalizeMediaType(entry);
    if (t === mediaType || t === '*/*' || t === 'application/*' || t === 'application/json') return true;
  }
  return false;
}
