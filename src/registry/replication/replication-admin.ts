/**
 * What operators do with replication (API and CLI): read the status of a scope, queue every missing copy
 * (a backfill, e.g. for a location added later), and set the organizations' own targets. Location names
 * are checked against the configured locations: an unknown one is an `invalid_request`.
 */
import type { BlobPlacementStore, ReplicationStatus } from '../../db/blob-placement-store.js';
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { ReplicationJobStore } from '../../db/replication-job-store.js';
import type { ReplicationTargetStore } from '../../db/replication-target-store.js';
import type { RepositoryStore } from '../../db/repository-store.js';
import { AccountError } from '../accounts/account-error.js';
import type { ReplicationService } from './replication-service.js';

export type { ReplicationStatus };

/** Blobs looked at per backfill batch. */
const BACKFILL_BATCH = 1000;

export interface BackfillProgress {
  /** The location being filled. */
  location: string;
  /** Blobs looked at for it so far, and jobs queued. */
  scanned: number;
  queued: number;
}

export interface ReplicationAdminDeps {
  service: ReplicationService;
  jobs: ReplicationJobStore;
  placements: BlobPlacementStore;
  targets: ReplicationTargetStore;
  namespaces: Pick<NamespaceStore, 'findByName'>;
  repositories: Pick<RepositoryStore, 'find'>;
  now?: () => number;
}

export class ReplicationAdmin {
  private readonly now: () => number;

  constructor(private readonly deps: ReplicationAdminDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Every configured location, most preferred first (this process's order). */
  get locations(): string[] {
    return this.deps.service.locations.preferred.map((l) => l.name);
  }

  /** The registry-wide targets. */
  get defaultTargets(): string[] {
    return this.deps.service.defaultTargets;
  }

  /** Throws invalid_request unless every name is a configured location. */
  checkLocations(names: readonly string[]): void {
    const unknown = names.filter((n) => !this.deps.service.locations.get(n));
    if (unknown.length) throw new AccountError('invalid_request', `not a configured storage location: ${unknown.map((n) => JSON.stringify(n.slice(0, 100))).join(', ')} (locations: ${this.locations.join(', ')})`);
  }

  /**
   * How much of the registry, a namespace (`ns`) or a repository (`ns/repo`) each location holds, the
   * backlog and failures per location; not_found when the namespace or repository does not exist.
   */
  async status(scope?: string): Promise<ReplicationStatus> {
    if (!scope) return this.deps.placements.status(this.locations);
    const slash = scope.indexOf('/');
    const namespace = slash < 0 ? scope : scope.slice(0, slash);
    const ns = await this.deps.namespaces.findByName(namespace);
    if (!ns) throw new AccountError('not_found', `namespace ${namespace.slice(0, 100)} not found`);
    if (slash < 0) return this.deps.placements.status(this.locations, { namespaceId: ns.id });
    const repo = await this.deps.repositories.find(namespace, scope.slice(slash + 1));
    if (!repo) throw new AccountError('not_found', `repository ${scope.slice(0, 300)} not found`);
    return this.deps.placements.status(this.locations, { namespaceId: ns.id, repositoryId: repo.id });
  }

  /**
   * Queues a copy of every blob that `location` lacks, or, without it, of every blob that a registry-wide
   * target or (for an organization's blobs) one of the organization's targets lacks; returns the jobs
   * queued. `progress` hears after every batch.
   */
  async backfill(location?: string, progress?: (p: BackfillProgress) => void): Promise<number> {
    if (location !== undefined) this.checkLocations([location]);
    const passes: Array<{ location: string; namespaceId?: number }> = location !== undefined ? [{ location }] : this.defaultTargets.map((l) => ({ location: l }));
    if (location === undefined) {
      for (const { namespaceId, locations } of await this.deps.targets.all()) {
        for (const l of locations) if (!this.defaultTargets.includes(l) && this.deps.service.locations.get(l)) passes.push({ location: l, namespaceId });
      }
    }
    let total = 0;
    for (const pass of passes) {
      const p: BackfillProgress = { location: pass.location, scanned: 0, queued: 0 };
      let after: number | undefined = 0;
      while (after !== undefined) {
        const res = await this.deps.jobs.enqueueMissing(pass.location, after, BACKFILL_BATCH, this.now(), pass.namespaceId);
        p.queued += res.queued;
        p.scanned += res.scanned;
        after = res.next;
        progress?.({ ...p });
      }
      total += p.queued;
    }
    return total;
  }

  /** The organization's own targets (empty: only the registry-wide ones). */
  targets(namespaceId: number): Promise<string[]> {
    return this.deps.targets.get(namespaceId);
  }

  /** Replaces the organization's targets (invalid_request when one is not a configured location). */
  async setTargets(namespaceId: number, locations: readonly string[]): Promise<string[]> {
    this.checkLocations(locations);
    await this.deps.targets.set(namespaceId, locations);
    return this.deps.targets.get(namespaceId);
  }
}
