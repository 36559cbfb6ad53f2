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
import type { Logger } from '../../observability/logger.js';
import { AccountError } from '../accounts/account-error.js';
import type { ReplicationService } from './replication-service.js';

export type { ReplicationStatus };

/** Blobs looked at per backfill batch. */
const BACKFILL_BATCH = 1000;
/** Batches per location a change of an organization's targets queues before it answers; the rest runs in the background. */
const INLINE_BATCHES = 10;

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
  /** Blobs per backfill batch, and batches a targets change queues before it answers (tests). */
  backfillBatch?: number;
  inlineBatches?: number;
  log?: Logger;
}

/** An organization's targets after a change, and the copies queued for the targets it gained. */
export interface TargetsChange {
  locations: string[];
  /** Copies queued before the answer. */
  queued: number;
  /** True when more blobs remain to be looked at: the queueing goes on in the background. */
  backfilling: boolean;
}

export class ReplicationAdmin {
  private readonly now: () => number;
  private readonly background = new Set<Promise<void>>();

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
    for (const pass of passes) total += (await this.fill(pass, 0, Infinity, progress)).queued;
    return total;
  }

  /** Runs backfill batches of `pass` from blob id `after`, at most `maxBatches`; `next` is where to go on (undefined: through). */
  private async fill(pass: { location: string; namespaceId?: number }, after: number, maxBatches: number, progress?: (p: BackfillProgress) => void): Promise<{ queued: number; next?: number }> {
    const p: BackfillProgress = { location: pass.location, scanned: 0, queued: 0 };
    let next: number | undefined = after;
    for (let batches = 0; next !== undefined && batches < maxBatches; batches++) {
      const res = await this.deps.jobs.enqueueMissing(pass.location, next, this.deps.backfillBatch ?? BACKFILL_BATCH, this.now(), pass.namespaceId);
      p.queued += res.queued;
      p.scanned += res.scanned;
      next = res.next;
      progress?.({ ...p });
    }
    return next === undefined ? { queued: p.queued } : { queued: p.queued, next };
  }

  /** The organization's own targets (empty: only the registry-wide ones). */
  targets(namespaceId: number): Promise<string[]> {
    return this.deps.targets.get(namespaceId);
  }

  /**
   * Replaces the organization's targets (invalid_request when one is not a configured location) and
   * queues a copy of each blob its repositories link to each target it gains (one that was neither its
   * own nor registry-wide) and that lacks it: the first batches before it answers, the rest in the
   * background (`backfilling`); a process that stops before the end leaves the rest to
   * `wharf replicate backfill`. Blobs linked after the change are queued by their link.
   */
  async setTargets(namespaceId: number, locations: readonly string[]): Promise<TargetsChange> {
    this.checkLocations(locations);
    const before = await this.deps.targets.get(namespaceId);
    await this.deps.targets.set(namespaceId, locations);
    const gained = [...new Set(locations)].filter((l) => !before.includes(l) && !this.defaultTargets.includes(l));
    let queued = 0;
    const rest: Array<{ location: string; next: number }> = [];
    for (const location of gained) {
      const done = await this.fill({ location, namespaceId }, 0, this.deps.inlineBatches ?? INLINE_BATCHES);
      queued += done.queued;
      if (done.next !== undefined) rest.push({ location, next: done.next });
    }
    if (rest.length) this.inBackground(namespaceId, rest);
    return { locations: await this.deps.targets.get(namespaceId), queued, backfilling: rest.length > 0 };
  }

  /** Resolves when the background queueing started by `setTargets` has ended. */
  async idle(): Promise<void> {
    while (this.background.size) await Promise.all(this.background);
  }

  private inBackground(namespaceId: number, rest: Array<{ location: string; next: number }>): void {
    const run = (async () => {
      for (const { location, next } of rest) {
        const { queued } = await this.fill({ location, namespaceId }, next, Infinity);
        this.deps.log?.info({ namespaceId, location, queued }, "queued the copies of an organization's blobs to a new replication target");
      }
    })().catch((err: unknown) => this.deps.log?.error({ err, namespaceId }, "could not queue the copies of an organization's blobs to its new targets; run wharf replicate backfill"));
    this.background.add(run);
    void run.finally(() => this.background.delete(run));
  }
}
