/**
 * Pull statistics of tags and manifests (Quay's `quay_pull_stat_info`), answered from what Wharf
 * records already: every pull of a manifest writes a `pull_repo` audit entry naming the tag (pulls by
 * tag) and the manifest digest served. A tag's count is its pulls by tag; a manifest's count is every
 * pull that served it, by tag or by digest. A registry without accounts keeps no audit log and reports
 * zero pulls; entries removed from the audit log no longer count.
 */
import type { AuditLogStore } from '../db/audit-log-store.js';
import type { RepositoryRef } from '../db/repository-store.js';
import type { Digest } from '../oci/digest.js';
import type { Tag } from '../oci/reference.js';

export interface PullCount {
  count: number;
  /** Epoch ms of the latest pull, null when none is recorded. */
  last: number | null;
}

export class PullStatistics {
  constructor(
    private readonly log: AuditLogStore | undefined,
    /** Waits for audit entries still being written (pulls are recorded in the background). */
    private readonly flush: () => Promise<void> = async () => {},
  ) {}

  async forTag(repo: RepositoryRef, tag: Tag): Promise<PullCount> {
    return this.count(repo, { tag });
  }

  async forManifest(repo: RepositoryRef, digest: Digest): Promise<PullCount> {
    return this.count(repo, { manifestDigest: digest });
  }

  private async count(repo: RepositoryRef, match: { tag: string } | { manifestDigest: string }): Promise<PullCount> {
    if (!this.log) return { count: 0, last: null };
    await this.flush();
    return this.log.pullCount(repo.namespace, repo.name, match);
  }
}
