/**
 * The composition root: the only place that picks concrete implementations (database dialect, storage
 * driver, access policy) and wires the services together.
 */
import { sql } from 'kysely';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { BlobStore } from '../db/blob-store.js';
import { openDatabase, type DatabaseHandle } from '../db/connect.js';
import { ManifestStore } from '../db/manifest-store.js';
import { RepositoryStore } from '../db/repository-store.js';
import { TagHistoryStore } from '../db/tag-history-store.js';
import { UploadStore } from '../db/upload-store.js';
import { OpenAccess, type AccessService } from '../registry/access.js';
import { BlobService } from '../registry/blobs.js';
import { ManifestService } from '../registry/manifests.js';
import type { Registry } from '../registry/registry.js';
import { RepositoryService } from '../registry/repositories.js';
import { TagService } from '../registry/tags.js';
import { UploadService } from '../registry/uploads.js';
import { createAccounts, type Accounts } from '../registry/accounts/accounts.js';
import { LoginThrottle } from '../registry/accounts/login-throttle.js';
import { RegistryAuth } from '../registry/accounts/registry-auth.js';
import { RegistryTokens } from '../registry/accounts/registry-tokens.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { FsBlobDriver } from '../storage/fs/fs-blob-driver.js';
import { MemoryBlobDriver } from '../storage/memory/memory-blob-driver.js';
import { join } from 'node:path';

export function createStorage(config: Config): BlobDriver {
  if (config.storage.driver === 'memory') return new MemoryBlobDriver();
  return new FsBlobDriver(config.storage.path ?? join(config.data_dir, 'blobs'), { fsync: config.storage.fsync });
}

export async function createDatabase(config: Config, logger?: Logger): Promise<DatabaseHandle> {
  return openDatabase({
    url: config.db.url,
    dataDir: config.data_dir,
    poolSize: config.db.pool_size,
    onConnectionError: (err) => logger?.warn({ err: err.message }, 'database connection lost; it will be re-established on the next query'),
  });
}

export interface Services {
  registry: Registry;
  /** The account services; absent when `auth.enabled` is false. */
  accounts?: Accounts;
}

/** The account services over the database, for `wharf serve` and the account CLI commands. */
export function createAccountServices(db: DatabaseHandle, config: Config, repositories = new RepositoryService(new RepositoryStore(db.db, db.dialect))): Accounts {
  return createAccounts(db.db, db.dialect, repositories, { defaultVisibility: config.auth.default_visibility });
}

export function createRegistry(deps: { db: DatabaseHandle; storage: BlobDriver; config: Config; access?: AccessService }): Registry {
  return createServices(deps).registry;
}

/** The registry, with accounts and token auth when `auth.enabled` (the default). */
export function createServices(deps: { db: DatabaseHandle; storage: BlobDriver; config: Config; access?: AccessService }): Services {
  const { db, storage, config } = deps;
  const blobStore = new BlobStore(db.db);
  const manifestStore = new ManifestStore(db.db, db.dialect);
  const repositories = new RepositoryService(new RepositoryStore(db.db, db.dialect));
  const accounts = config.auth.enabled ? createAccountServices(db, config, repositories) : undefined;
  const auth =
    accounts &&
    new RegistryAuth({
      authenticator: accounts.authenticator,
      tokens: new RegistryTokens(accounts.signingKeys, { ttlMs: config.auth.token_ttl }),
      access: accounts.access,
      audit: accounts.audit,
      throttle: new LoginThrottle(config.auth.login_failures_per_minute),
    });
  const registry: Registry = {
    access: deps.access ?? accounts?.access ?? new OpenAccess(),
    auth,
    audit: accounts?.audit,
    repositories,
    blobs: new BlobService(blobStore, storage),
    uploads: new UploadService(new UploadStore(db.db), blobStore, storage),
    manifests: new ManifestService(manifestStore, { maxManifestSize: config.registry.max_manifest_size }),
    tags: new TagService(new TagHistoryStore(db.db, db.dialect), manifestStore),
    health: {
      async check() {
        const database = await sql`select 1`.execute(db.db).then(
          () => true,
          () => false,
        );
        const registry_storage = await storage.stat('health/probe').then(
          () => true,
          () => false,
        );
        return { database, registry_storage };
      },
    },
    options: {
      defaultNamespace: config.registry.default_namespace,
      maxPageSize: config.registry.max_page_size,
      maxManifestSize: config.registry.max_manifest_size,
      baseUrl: config.base_url,
    },
  };
  return { registry, accounts };
}

/** Fastify server options that come from the configuration (TLS material is added by the caller). */
export function serverOptions(config: Config): { trustProxy?: string } {
  return config.trust_proxy ? { trustProxy: config.trust_proxy } : {};
}
