/**
 * Tags as the management API sees them: live tags and their history (the "time machine"), moving a
 * tag to a manifest of its repository, deleting (the tag moves to history), restoring an earlier target
 * and permanently expiring a tag.
 *
 * Restore window: for now a history row can be restored for as long as it exists and its manifest
 * does. The namespace's time-machine window (default two weeks) and the garbage collection that deletes
 * history past it come with the GC work of issue 5; until then nothing removes history rows except
 * `expire`, manifest deletion by digest, and repository deletion.
 */
import type { ManifestStore } from '../db/manifest-store.js';
import type { RepositoryRef } from '../db/repository-store.js';
import type { TagHistoryStore, TagRow } from '../db/tag-history-store.js';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { Tag } from '../oci/reference.js';

export type { TagRow };

export interface TagPage {
  tags: TagRow[];
  hasAdditional: boolean;
}

export const MAX_TAG_PAGE = 100;

export class TagService {
  constructor(
    private readonly history: TagHistoryStore,
    private readonly manifests: ManifestStore,
  ) {}

  /** One page (1-based) of tags, newest first; with `onlyActive: false` history rows too. */
  async list(repo: RepositoryRef, q: { onlyActive: boolean; name?: Tag; filter?: { op: 'like' | 'eq'; value: string }; page: number; limit: number }): Promise<TagPage> {
    const rows = await this.history.list(repo.id, { onlyActive: q.onlyActive, name: q.name, filter: q.filter, offset: (q.page - 1) * q.limit, limit: q.limit + 1 });
    return { tags: rows.slice(0, q.limit), hasAdditional: rows.length > q.limit };
  }

  countLive(repo: RepositoryRef): Promise<number> {
    return this.history.countLive(repo.id);
  }

  /** Points the tag at a manifest of the repository (MANIFEST_UNKNOWN if there is none with that digest); returns the previous target. */
  async set(repo: RepositoryRef, tag: Tag, digest: Digest): Promise<{ previous?: Digest; changed: boolean }> {
    const manifest = await this.manifests.findByDigest(repo.id, digest);
    if (!manifest) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} not found in ${repo.namespace}/${repo.name}`);
    return this.history.retarget(repo.id, tag, manifest.id);
  }

  /** Ends the live tag's lifetime (it stays restorable from history); returns the digest it pointed at, MANIFEST_UNKNOWN if it is not live. */
  async delete(repo: RepositoryRef, tag: Tag): Promise<Digest> {
    const digest = await this.history.end(repo.id, tag);
    if (!digest) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} not found in ${repo.namespace}/${repo.name}`);
    return digest;
  }

  /**
   * Points the tag at `digest` again. Allowed only when the tag pointed at it before (live or history)
   * and the manifest still exists; MANIFEST_UNKNOWN otherwise. Returns the target it replaced.
   */
  async restore(repo: RepositoryRef, tag: Tag, digest: Digest): Promise<{ previous?: Digest; changed: boolean }> {
    const manifestId = await this.history.historicalTarget(repo.id, tag, digest);
    if (manifestId === undefined) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} of ${repo.namespace}/${repo.name} has no restorable history pointing at ${digest}`);
    return this.history.retarget(repo.id, tag, manifestId);
  }

  /**
   * Removes the tag for good: its live row and its whole history (only the rows pointing at `digest`
   * when given), so it cannot be restored. Returns the number of rows removed; MANIFEST_UNKNOWN if none.
   */
  async expire(repo: RepositoryRef, tag: Tag, digest?: Digest): Promise<number> {
    const removed = await this.history.purge(repo.id, tag, digest);
    if (removed === 0) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} has no ${digest ? `rows pointing at ${digest}` : 'live or history rows'} in ${repo.namespace}/${repo.name}`);
    return removed;
  }
}
