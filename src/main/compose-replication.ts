/**
 * Replication between storage locations, built only when the storage is a located driver with more than
 * one location (storage/locations.ts): the service listens to the driver's commits and to the links of
 * blobs into repositories (`links`: the registry's blob store), the admin serves the
 * API and the CLI, and `wharf serve` runs the worker. With one location there is nothing to replicate and
 * none of it exists.
 */
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { BlobGuardStore } from '../db/blob-guard-store.js';
import { BlobPlacementStore } from '../db/blob-placement-store.js';
import { BlobStore } from '../db/blob-store.js';
import type { DatabaseHandle } from '../db/connect.js';
import { NamespaceStore } from '../db/namespace-store.js';
import { ReplicationJobStore } from '../db/replication-job-store.js';
import { ReplicationTargetStore } from '../db/replication-target-store.js';
import { RepositoryStore } from '../db/repository-store.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { ReplicationAdmin } from '../registry/replication/replication-admin.js';
import { ReplicationService, type BlobLinks } from '../registry/replication/replication-service.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import type { StorageLocations } from '../storage/locations.js';
import { ReplicationWorker } from '../workers/replication/replication-worker.js';

export interface Replication {
  service: ReplicationService;
  admin: ReplicationAdmin;
}

/** The storage's locations when it is a located driver (it implements StorageLocations); undefined otherwise. */
export function storageLocations(storage: BlobDriver): StorageLocations | undefined {
  const s = storage as Partial<StorageLocations>;
  return Array.isArray(s.preferred) && typeof s.get === 'function' && typeof s.holders === 'function' && typeof s.onCommitted === 'function' ? (storage as unknown as StorageLocations) : undefined;
}

/**
 * Replication over `locations` when there are several (undefined otherwise). Throws ConfigError when
 * `replication.targets` names a location that is not configured.
 */
export function createReplication(db: DatabaseHandle, config: Config, locations: StorageLocations | undefined, opts: { log?: Logger; now?: () => number; links?: BlobLinks } = {}): Replication | undefined {
  if (!locations || locations.preferred.length < 2) return undefined;
  const unknown = config.replication.targets.filter((t) => !locations.get(t));
  if (unknown.length) {
    throw new ConfigError(`replication.targets: ${unknown.map((t) => JSON.stringify(t)).join(', ')} is not a configured storage location (locations: ${locations.preferred.map((l) => l.name).join(', ')})`);
  }
  // Stamped with this process's id (when it holds its liveness lock): its jobs are taken over once it dies.
  const jobs = new ReplicationJobStore(db.db, db.dialect, db.processId);
  const placements = new BlobPlacementStore(db.db);
  const targets = new ReplicationTargetStore(db.db);
  const r = config.replication;
  const service = new ReplicationService(
    locations,
    { jobs, placements, targets, blobs: new BlobStore(db.db), guards: new BlobGuardStore(db.db, db.dialect, db.processId) },
    {
      targets: r.targets,
      leaseMs: r.lease,
      backoff: { baseMs: r.retry_base, maxMs: r.retry_max },
      orphanMs: config.gc.grace_period,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    },
  );
  service.listen(opts.links);
  const admin = new ReplicationAdmin({ service, jobs, placements, targets, namespaces: new NamespaceStore(db.db, db.dialect), repositories: new RepositoryStore(db.db, db.dialect), ...(opts.now ? { now: opts.now } : {}), ...(opts.log ? { log: opts.log } : {}) });
  return { service, admin };
}

/** The worker copying queued blobs (`replication.enabled`), when replication exists. */
export function createReplicationWorker(db: DatabaseHandle, replication: Replication | undefined, config: Config, opts: { log?: Logger; metrics?: Metrics; owner?: string } = {}): ReplicationWorker | undefined {
  if (!replication || !config.replication.enabled) return undefined;
  const jobs = new ReplicationJobStore(db.db, db.dialect);
  return new ReplicationWorker({
    service: replication.service,
    concurrency: config.replication.concurrency,
    pollMs: config.replication.poll_interval,
    backlog: () => jobs.backlog(),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.owner ? { owner: opts.owner } : {}),
  });
}
