/**
 * Tags as the management API sees them: live tags and their history (the "time machine"), moving a
 * tag to a manifest of its repository, deleting (the tag moves to history), restoring an earlier target
 * and permanently expiring a tag, and giving a live tag an expiry.
 *
 * Expiry: a tag whose expiry has passed leaves the live view at once (API lists, `/v2` tags/list and
 * pulls by tag) and is history from that moment, restorable like a deleted or moved tag.
 *
 * Restore window: a history row can be restored while its end lies within the namespace's time-machine
 * window (`namespaces.time_machine_s`, else `gc.time_machine_default`, two weeks by default) and its
 * manifest exists. Garbage collection (gc.ts) deletes history rows past the window, then the manifests
 * and blobs nothing references any more; `expire` removes rows at once.
 *
 * Immutable tags (tag-immutability.ts): moving, deleting, expiring or purging one throws
 * TagImmutableError and changes nothing; a tag these methods create is immutable when a policy selects it.
 */
import { isTimeMs, MAX_TIME_MS } from '../config/units.js';
import type { ManifestStore } from '../db/manifest-store.js';
import type { RepositoryRef } from '../db/repository-store.js';
import type { TagHistoryStore, TagRow } from '../db/tag-history-store.js';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { Tag } from '../oci/reference.js';
import { formatDuration } from './time-machine.js';
import { immutableRefusal, type ImmutabilityPolicies } from './tag-immutability.js';

export type { TagRow };

export interface TagPage {
  tags: TagRow[];
  hasAdditional: boolean;
}

export const MAX_TAG_PAGE = 100;

export class TagService {
  private readonly defaultWindowMs: number;

  private readonly immutability?: ImmutabilityPolicies;

  constructor(
    private readonly history: TagHistoryStore,
    private readonly manifests: ManifestStore,
    opts: { timeMachineDefaultMs?: number; immutability?: ImmutabilityPolicies } = {},
  ) {
    this.defaultWindowMs = opts.timeMachineDefaultMs ?? 14 * 86_400_000;
    this.immutability = opts.immutability;
  }

  /** One page (1-based) of tags, newest first; with `onlyActive: false` history rows too. */
  async list(repo: RepositoryRef, q: { onlyActive: boolean; name?: Tag; filter?: { op: 'like' | 'eq'; value: string }; page: number; limit: number }): Promise<TagPage> {
    const rows = await this.history.list(repo.id, { onlyActive: q.onlyActive, name: q.name, filter: q.filter, offset: (q.page - 1) * q.limit, limit: q.limit + 1 });
    return { tags: rows.slice(0, q.limit), hasAdditional: rows.length > q.limit };
  }

  /** Every live tag of the repository and the digest it points at. */
  liveTargets(repo: RepositoryRef): Promise<Map<string, Digest>> {
    return this.history.liveTargets(repo.id);
  }

  countLive(repo: RepositoryRef): Promise<number> {
    return this.history.countLive(repo.id);
  }

  /** Points the tag at a manifest of the repository (MANIFEST_UNKNOWN if there is none with that digest); returns the previous target. */
  async set(repo: RepositoryRef, tag: Tag, digest: Digest): Promise<{ previous?: Digest; changed: boolean }> {
    const manifest = await this.manifests.findByDigest(repo.id, digest);
    const immutable = manifest !== undefined && (await this.immutability?.selects(repo.id, tag)) === true;
    const res = manifest && (await this.history.retarget(repo.id, tag, manifest.id, { immutable }).catch((err: unknown) => immutableRefusal(err, repo)));
    if (!res) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} not found in ${repo.namespace}/${repo.name}`);
    return res;
  }

  /**
   * Sets the expiry (epoch ms) of a live tag, or clears it with null; an expiry must lie in the future
   * and no later than MAX_TIME_MS (TAG_INVALID otherwise, and nothing is stored). MANIFEST_UNKNOWN if
   * the tag is not live. Returns the previous expiry.
   */
  async setExpiration(repo: RepositoryRef, tag: Tag, expiresAt: number | null, now = Date.now()): Promise<{ digest: Digest; previous: number | null }> {
    if (expiresAt !== null && !isTimeMs(expiresAt)) throw new RegistryError('TAG_INVALID', `the expiration ${expiresAt} ms is not a time Wharf stores (0 to ${MAX_TIME_MS}, 9999-12-31)`);
    if (expiresAt !== null && !(expiresAt > now)) throw new RegistryError('TAG_INVALID', `the expiration ${new Date(expiresAt).toISOString()} is not in the future`);
    const res = await this.history.setExpiry(repo.id, tag, expiresAt).catch((err: unknown) => immutableRefusal(err, repo));
    if (!res) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} not found in ${repo.namespace}/${repo.name}`);
    return res;
  }

  /**
   * Ends the live tag's lifetime (it stays restorable from history); returns the digest it pointed at,
   * MANIFEST_UNKNOWN if it is not live (with `onlyRow`: if its live row is not that one any more).
   */
  async delete(repo: RepositoryRef, tag: Tag, opts: { onlyRow?: number } = {}): Promise<Digest> {
    const digest = await this.history.end(repo.id, tag, opts).catch((err: unknown) => immutableRefusal(err, repo));
    if (!digest) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} not found in ${repo.namespace}/${repo.name}`);
    return digest;
  }

  /**
   * Points the tag at `digest` again. Allowed only when the tag pointed at it (live, or history ended
   * within the namespace's time-machine window) and the manifest still exists; MANIFEST_UNKNOWN
   * otherwise, saying which. Returns the target it replaced.
   */
  async restore(repo: RepositoryRef, tag: Tag, digest: Digest, now = Date.now()): Promise<{ previous?: Digest; changed: boolean }> {
    const target = await this.history.historicalTarget(repo.id, tag, digest, now, this.defaultWindowMs);
    if (!target) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} of ${repo.namespace}/${repo.name} has no restorable history pointing at ${digest}`);
    if (!target.restorable) {
      throw new RegistryError(
        'MANIFEST_UNKNOWN',
        `tag ${tag} of ${repo.namespace}/${repo.name} last pointed at ${digest} until ${new Date(target.lastEnd!).toISOString()}, ` +
          `outside the time-machine window of namespace ${repo.namespace} (${formatDuration(target.windowMs)}); it can no longer be restored`,
      );
    }
    const immutable = (await this.immutability?.selects(repo.id, tag)) === true;
    const res = await this.history.retarget(repo.id, tag, target.manifestId, { immutable }).catch((err: unknown) => immutableRefusal(err, repo));
    if (!res) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} no longer exists in ${repo.namespace}/${repo.name}`);
    return res;
  }

  /**
   * Removes the tag for good: its live row and its whole history (only the rows pointing at `digest`
   * when given), so it cannot be restored. Returns the number of rows removed; MANIFEST_UNKNOWN if none.
   */
  async expire(repo: RepositoryRef, tag: Tag, digest?: Digest): Promise<number> {
    const removed = await this.history.purge(repo.id, tag, digest).catch((err: unknown) => immutableRefusal(err, repo));
    if (removed === 0) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} has no ${digest ? `rows pointing at ${digest}` : 'live or history rows'} in ${repo.namespace}/${repo.name}`);
    return removed;
  }

  /**
   * Makes a live tag immutable (clearing any expiry) or mutable again; MANIFEST_UNKNOWN if it is not
   * live. Who may do which is the caller's check (making a tag mutable needs a repository admin).
   */
  async setImmutable(repo: RepositoryRef, tag: Tag, immutable: boolean): Promise<{ digest: Digest; previous: boolean }> {
    const res = await this.history.setImmutable(repo.id, tag, immutable);
    if (!res) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} not found in ${repo.namespace}/${repo.name}`);
    return res;
  }
}
