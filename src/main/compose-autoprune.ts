/** Builds auto-prune over the database: its stores, the services over them, and the worker. */
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.js';
import { AutopruneStore } from '../db/autoprune-store.js';
import type { DatabaseHandle } from '../db/connect.js';
import type { DialectAdapter } from '../db/dialect.js';
import { NamespaceStore } from '../db/namespace-store.js';
import type { Database } from '../db/tables.js';
import { wireAutoprune, type Autoprune, type AutopruneDeps } from '../registry/autoprune/autoprune.js';
import type { NamespacePruner } from '../registry/autoprune/namespace-pruner.js';
import { AutopruneWorker, type AutopruneWorkerDeps } from '../workers/autoprune/autoprune-worker.js';

/** The policy service and the pruner over one database; ConfigError when a default policy is invalid. */
export function createAutoprune(db: Kysely<Database>, dialect: DialectAdapter, config: Pick<Config, 'autoprune'>, deps: AutopruneDeps): Autoprune {
  return wireAutoprune({ store: new AutopruneStore(db, dialect), namespaces: new NamespaceStore(db, dialect) }, config, deps);
}

/** The auto-prune worker leasing namespaces from the database's task table. */
export function createAutopruneWorker(db: DatabaseHandle, pruner: NamespacePruner, opts: Omit<AutopruneWorkerDeps, 'store' | 'pruner'>): AutopruneWorker {
  return new AutopruneWorker({ store: new AutopruneStore(db.db, db.dialect), pruner, ...opts });
}
