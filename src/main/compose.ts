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
import { BlobGuardStore } from '../db/blob-guard-store.js';
import { GcPreviewStore } from '../db/gc-preview-store.js';
import { GcStore } from '../db/gc-store.js';
import { TimeMachineStore } from '../db/time-machine-store.js';
import { BlobWriteGuard } from '../registry/blob-write-guard.js';
import { GarbageCollector } from '../registry/gc.js';
import { TimeMachineService } from '../registry/time-machine.js';
import { OpenAccess, type AccessService, type GrantingAccess } from '../registry/access.js';
import { BlobService } from '../registry/blobs.js';
import { ManifestService } from '../registry/manifests.js';
import type { Registry } from '../registry/registry.js';
import { RepositoryService } from '../registry/repositories.js';
import { TagService } from '../registry/tags.js';
import { ImmutabilityStore } from '../db/immutability-store.js';
import { ManifestLabelStore } from '../db/manifest-label-store.js';
import { AuditLogStore } from '../db/audit-log-store.js';
import { ImmutabilityPolicies } from '../registry/tag-immutability.js';
import { ImageConfigReader } from '../registry/image-config.js';
import { ManifestLabelService } from '../registry/manifest-labels.js';
import { PullStatistics } from '../registry/pull-statistics.js';
import { UploadService } from '../registry/uploads.js';
import { StorageHealth } from '../registry/storage-health.js';
import { EndToEndHealth } from '../registry/end-to-end-health.js';
import type { Accounts } from '../registry/accounts/accounts.js';
import { LoginThrottle } from '../registry/accounts/login-throttle.js';
import { LoginFailureStore } from '../db/login-failure-store.js';
import { RegistryAuth } from '../registry/accounts/registry-auth.js';
import { RegistryTokens } from '../registry/accounts/registry-tokens.js';
import { QuotaGate } from '../registry/quota/quota-gate.js';
import { QuotaStore } from '../db/quota-store.js';
import type { ProxyConfigService } from '../registry/proxy/proxy-config-service.js';
import { ProxyAccess } from '../registry/proxy/proxy-access.js';
import { ProxyCache } from '../registry/proxy/proxy-cache.js';
import { ProxyDirectory } from '../registry/proxy/proxy-directory.js';
import { ProxyEvents } from '../registry/proxy/proxy-events.js';
import { ProxyResolver } from '../registry/proxy/proxied-content.js';
import { PullThrough } from '../registry/proxy/pull-through.js';
import { ProxyEviction } from '../registry/proxy/quota-eviction.js';
import type { ContentResolver } from '../registry/content.js';
import { LocalContentResolver, type LocalContentDeps } from '../registry/local-content.js';
import { EvictionStore } from '../db/eviction-store.js';
import { BlobFills, FILL_SLOT_BYTES } from '../registry/proxy/blob-fills.js';
import { AlignedBuffers } from '../storage/aligned-buffers.js';
import { ClusterFills } from '../registry/proxy/cluster-fills.js';
import { FillPeers } from '../registry/proxy/fill-peers.js';
import { PEER_SECRET_SETTING, PeerSecret } from '../registry/proxy/peer-secret.js';
import { BlobFillLeaseStore } from '../db/blob-fill-lease-store.js';
import { ServerSettingsStore } from '../db/server-settings-store.js';
import { PeerClient } from '../upstream/peer-client.js';
import { UpstreamImport } from '../registry/upstream-import/upstream-import.js';
import { NamespaceStore } from '../db/namespace-store.js';
import { CircuitBreakers } from '../upstream/circuit-breaker.js';
import { SsrfGuard } from '../upstream/ssrf.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { join } from 'node:path';
import { parseRepositoryName } from '../oci/reference.js';
import { createAccounts } from './compose-accounts.js';
import { locationsOf } from './compose-storage.js';
import { databaseStartupError } from './database-error.js';
import { forgetInitialPassword } from './initial-password.js';
import { createAutoprune } from './compose-autoprune.js';
import { createProxyConfigService } from './compose-proxy-config.js';
import { createMirrorConfigService } from './compose-mirror-config.js';
import { createOrgMirrorConfigService } from './compose-org-mirror.js';
import { lazySecretBox } from '../registry/proxy/secret-box.js';
import { createQuotaService } from './compose-quota.js';
import { createMirrorRun } from './compose-mirror.js';
import { createReplication, storageLocations } from './compose-replication.js';

export { createStorage } from './compose-storage.js';

/**
 * Opens (and migrates) the database; a database that cannot be reached or opened is a StartupError.
 * With `processId` (a serving process), on PostgreSQL, the process holds its liveness lock while open.
 */
export async function createDatabase(config: Config, logger?: Logger, processId?: string): Promise<DatabaseHandle> {
  const url = config.db.url ?? `sqlite:${join(config.data_dir, 'wharf.db')}`;
  try {
    return await openDatabase({
      url,
      dataDir: config.data_dir,
      poolSize: config.db.pool_size,
      preparedStatements: config.db.prepared_statements,
      onConnectionError: (err) => logger?.warn({ err: err.message }, 'database connection lost; it will be re-established on the next query'),
      ...(processId !== undefined ? { processId } : {}),
      onLiveness: (regained, err) =>
        regained
          ? logger?.info('liveness lock held again: claims of this process are its own again')
          : logger?.warn({ err: err?.message }, 'liveness connection lost: other processes may take over the claims of this one until it reconnects'),
    });
  } catch (err) {
    throw databaseStartupError(err, url) ?? err;
  }
}

export interface Services {
  registry: Registry;
  /** The account services; absent when `auth.enabled` is false. */
  accounts?: Accounts;
}

/**
 * The account services over the database, for `wharf serve` and the account CLI commands. Setting the
 * superuser's password deletes the file that kept its generated first password (main/initial-password.ts).
 */
export function createAccountServices(db: DatabaseHandle, config: Config, repositories = new RepositoryService(new RepositoryStore(db.db, db.dialect))): Accounts {
  return createAccounts(db.db, db.dialect, repositories, {
    defaultVisibility: config.auth.default_visibility,
    secrets: lazySecretBox(config),
    sessionIdleMs: config.auth.session_idle_timeout,
    sessionMaxAgeMs: config.auth.session_max_age,
    appTokenLifetimeMs: config.auth.app_token_expiration,
    userInitialize: config.auth.user_initialize,
    onPasswordSet: (name) => {
      // Best effort: a file that cannot be deleted here is found stale and deleted at the next start.
      if (name === config.auth.admin_username) {
        try {
          forgetInitialPassword(config.data_dir);
        } catch {}
      }
    },
  });
}

export function createRegistry(deps: ServiceDeps): Registry {
  return createServices(deps).registry;
}

export interface ServiceDeps {
  db: DatabaseHandle;
  storage: BlobDriver;
  config: Config;
  /** Replaces the access policy (tests). */
  access?: AccessService;
  logger?: Logger;
  /**
   * Share proxy-cache fills with the other processes on the database (`wharf serve`): this process's id
   * (unique per start) and the URL they reach it at, known once it listens.
   */
  cluster?: { id: string; advertiseUrl: () => string | undefined };
}

/** The registry, with accounts and token auth when `auth.enabled` (the default) and the proxy cache when `proxy_cache.enabled`. */
export function createServices(deps: ServiceDeps): Services {
  const { db, storage, config } = deps;
  const blobStore = new BlobStore(db.db);
  const manifestStore = new ManifestStore(db.db, db.dialect);
  const repositories = new RepositoryService(new RepositoryStore(db.db, db.dialect));
  const accounts = config.auth.enabled ? createAccountServices(db, config, repositories) : undefined;
  const proxyConfig = config.proxy_cache.enabled ? createProxyConfigService(db.db, db.dialect, config, { audit: accounts?.audit }) : undefined;
  const quotaStore = new QuotaStore(db.db, db.dialect);
  const quotaGate = new QuotaGate(quotaStore, { audit: accounts?.audit, log: deps.logger });
  const blobGuards = new BlobGuardStore(db.db, db.dialect, db.processId);
  const blobWriteGuard = new BlobWriteGuard(blobGuards);
  const baseAccess: GrantingAccess = accounts?.access ?? new OpenAccess();
  // Proxy organizations: members pull through, anonymous pulls when allowed, writes refused.
  const blobs = new BlobService(blobStore, storage, blobWriteGuard);
  const immutability = new ImmutabilityPolicies({ store: new ImmutabilityStore(db.db), namespaces: new NamespaceStore(db.db, db.dialect), audit: accounts?.audit });
  const manifests = new ManifestService(manifestStore, { maxManifestSize: config.registry.max_manifest_size, quota: quotaGate, immutability });
  const images = new ImageConfigReader(manifestStore, blobs);
  const local: LocalContentDeps = { manifests, blobs, repositories, maxPageSize: config.registry.max_page_size };
  // The one import from upstream registries (proxy cache and mirrors): one fill per digest in this
  // process, and with `cluster` one across the processes on the database (the others follow it).
  // Two fills' worth of page-aligned slots: the filesystem driver writes them around the page cache without a copy.
  const alignedSlots = new AlignedBuffers(FILL_SLOT_BYTES, 8, 2);
  const localFills = new BlobFills({ storage, spoolDir: join(config.data_dir, 'tmp', 'fills'), log: deps.logger, alignedSlots });
  const cluster = deps.cluster && createClusterFills(deps, localFills);
  const upstreamImport = new UpstreamImport({
    manifests,
    repositories,
    blobs: blobStore,
    storage,
    fills: cluster?.fills ?? localFills,
    maxManifestBytes: config.registry.max_manifest_size,
    log: deps.logger,
  });
  const proxy =
    proxyConfig &&
    createProxyContent({
      db,
      config,
      configs: proxyConfig,
      upstreamImport,
      manifestStore,
      local,
      logger: deps.logger,
      eviction: new ProxyEviction({ store: new EvictionStore(db.db), quotas: quotaStore, gc: new GcStore(db.db, db.dialect), gate: quotaGate, log: deps.logger }),
    });
  const access = proxy
    ? new ProxyAccess(baseAccess, proxy.directory, {
        pullsThrough: (principal, namespaceId) => (accounts ? accounts.permissions.belongsTo(principal, namespaceId) : Promise.resolve(true)),
      })
    : baseAccess;
  const auth =
    accounts &&
    new RegistryAuth({
      authenticator: accounts.authenticator,
      tokens: new RegistryTokens(accounts.signingKeys, { ttlMs: config.auth.token_ttl }),
      access,
      audit: accounts.audit,
      throttle: new LoginThrottle(config.auth.login_failures_per_minute, new LoginFailureStore(db.db)),
    });
  const tags = new TagService(new TagHistoryStore(db.db, db.dialect), manifestStore, { timeMachineDefaultMs: config.gc.time_machine_default, immutability });
  const mirrors = createMirrorRun(config, { upstreamImport, manifests, repositories, tags, audit: accounts?.audit, logger: deps.logger });
  const storageHealth = new StorageHealth(storage, { log: deps.logger });
  const databaseUp = () =>
    sql`select 1`.execute(db.db).then(
      () => true,
      () => false,
    );
  const endToEnd = new EndToEndHealth(databaseUp, locationsOf(storage, config), { log: deps.logger });
  // Several storage locations (a located driver, storage/locations.ts): blobs are copied between them.
  const replication = createReplication(db, config, storageLocations(storage), { log: deps.logger, links: blobStore });
  const registry: Registry = {
    access: deps.access ?? access,
    auth,
    audit: accounts?.audit,
    proxyConfig,
    mirrorConfig: accounts && createMirrorConfigService(db.db, db.dialect, config, accounts),
    orgMirrorConfig: accounts && createOrgMirrorConfigService(db, config, accounts),
    content: proxy?.resolver ?? new LocalContentResolver(local),
    repositories,
    blobs,
    uploads: new UploadService(new UploadStore(db.db, db.dialect, db.processId), blobStore, storage, blobWriteGuard, quotaGate),
    manifests,
    quotaGate,
    tags,
    immutability,
    images,
    manifestLabels: new ManifestLabelService(images, new ManifestLabelStore(db.db)),
    pullStatistics: new PullStatistics(accounts ? new AuditLogStore(db.db) : undefined, async () => accounts?.audit.flush()),
    timeMachine: new TimeMachineService(new TimeMachineStore(db.db), {
      defaultS: config.gc.time_machine_default / 1000,
      optionsS: config.gc.time_machine_options.map((ms) => ms / 1000),
    }),
    gc: new GarbageCollector(
      { store: new GcStore(db.db, db.dialect), preview: new GcPreviewStore(db.db), guards: blobGuards, storage },
      { gracePeriodMs: config.gc.grace_period, timeMachineDefaultMs: config.gc.time_machine_default, batchSize: config.gc.batch_size, sweepBatch: config.gc.sweep_batch, log: deps.logger, audit: accounts?.audit },
    ),
    mirrors,
    fillPeers: cluster?.peers,
    clusterFills: cluster?.fills,
    autoprune: createAutoprune(db.db, db.dialect, config, {
      tags,
      audit: accounts?.audit,
      onAuditError: (err) => deps.logger?.error({ err }, 'could not record an auto-prune audit entry'),
    }),
    quota: createQuotaService(db.db, db.dialect, { audit: accounts?.audit }),
    replication,
    health: {
      async check() {
        const [database, registry_storage] = await Promise.all([databaseUp(), storageHealth.up()]);
        return { database, registry_storage };
      },
      endToEnd: () => endToEnd.check(),
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

/** Fills shared across processes: leases in the database, peers reached over `/internal/fills` with a secret kept there. */
function createClusterFills(deps: ServiceDeps, local: BlobFills): { fills: ClusterFills; peers: FillPeers } {
  const { db, storage, config } = deps;
  const cluster = deps.cluster!;
  const settings = new ServerSettingsStore(db.db);
  const secret = new PeerSecret((candidate) => settings.claim(PEER_SECRET_SETTING, candidate, Date.now()));
  const pc = config.proxy_cache;
  // The owner holds a blob's last bytes until its commit: a follower's body may pause that long too.
  const peers = new PeerClient({ connectMs: pc.connect_timeout, headersMs: pc.first_byte_timeout, bodyIdleMs: 2 * pc.idle_timeout });
  const fills = new ClusterFills({
    local,
    leases: new BlobFillLeaseStore(db.db, db.dialect, db.processId),
    storage,
    peers,
    secret,
    self: { id: cluster.id, url: cluster.advertiseUrl },
    leaseMs: config.cluster.fill_lease,
    log: deps.logger,
  });
  return { fills, peers: new FillPeers({ fills: local, storage, secret }) };
}

/**
 * The pull-through cache over the proxy organizations' configurations (it hears of their changes at
 * once): the directory of proxy organizations and the resolver that puts their repositories' content
 * behind the local interface.
 */
function createProxyContent(deps: {
  db: DatabaseHandle;
  config: Config;
  configs: ProxyConfigService;
  upstreamImport: UpstreamImport;
  manifestStore: ManifestStore;
  local: LocalContentDeps;
  logger?: Logger;
  eviction: ProxyEviction;
}): { directory: ProxyDirectory; resolver: ContentResolver } {
  const { config, local } = deps;
  const pc = config.proxy_cache;
  const namespaces = new NamespaceStore(deps.db.db, deps.db.dialect);
  const directory = new ProxyDirectory({
    configs: deps.configs,
    guard: new SsrfGuard({ allow: pc.allow_private_upstreams }),
    breakers: new CircuitBreakers({ failureThreshold: pc.breaker_failures, baseCooldownMs: pc.breaker_cooldown }),
    timeouts: { connectMs: pc.connect_timeout, headersMs: pc.first_byte_timeout, bodyIdleMs: pc.idle_timeout },
    maxManifestBytes: config.registry.max_manifest_size,
    defaultOrganization: pc.default_organization,
    defaultNamespace: config.registry.default_namespace,
    namespaceExists: async (name) => (await namespaces.findByName(name)) !== undefined,
    repositoryExists: async (name) => {
      const parsed = parseRepositoryName(name, config.registry.default_namespace);
      return parsed.ok && (await local.repositories.find(parsed.name)) !== undefined;
    },
  });
  deps.configs.subscribe((_id, organization) => directory.invalidate(organization));
  const events = new ProxyEvents();
  const pull = new PullThrough({
    upstreamImport: deps.upstreamImport,
    events,
    room: deps.eviction,
    log: deps.logger,
  });
  const cache = new ProxyCache({
    manifests: deps.manifestStore,
    repositories: local.repositories,
    pull,
    events,
    tagsListTtlMs: pc.tags_list_ttl,
    recency: deps.eviction,
    log: deps.logger,
  });
  return { directory, resolver: new ProxyResolver(directory, cache, pull, events, local) };
}

/** Fastify server options that come from the configuration (TLS material is added by the caller). */
export function serverOptions(config: Config): { trustProxy?: string } {
  return config.trust_proxy ? { trustProxy: config.trust_proxy } : {};
}
