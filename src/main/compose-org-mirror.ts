/**
 * Organization mirroring: the configuration service (API), the discovery run and its worker, with the
 * proxy cache's SSRF policy, timeouts and secret key (the same as repository mirrors). The repositories
 * a discovery creates are repository mirrors, synced by the repository-mirror worker.
 */
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { DatabaseHandle } from '../db/connect.js';
import { MirrorStore } from '../db/mirror-store.js';
import { OrgMirrorScheduleStore } from '../db/org-mirror-schedule-store.js';
import { OrgMirrorStore } from '../db/org-mirror-store.js';
import { ProxyCacheStore } from '../db/proxy-cache-store.js';
import { RepositoryStore } from '../db/repository-store.js';
import type { Accounts } from '../registry/accounts/accounts.js';
import { OrgMirrorConfigService } from '../registry/mirror/org-mirror-config-service.js';
import { OrgMirrorRun } from '../registry/mirror/org-mirror-run.js';
import { OrgMirrorSource } from '../registry/mirror/org-mirror-source.js';
import { lazySecretBox } from '../registry/proxy/secret-box.js';
import { SsrfGuard } from '../upstream/ssrf.js';
import { OrgMirrorWorker, type OrgMirrorWorkerDeps } from '../workers/mirror/org-mirror-worker.js';

function guardOf(config: Pick<Config, 'proxy_cache'>): SsrfGuard {
  try {
    return new SsrfGuard({ allow: config.proxy_cache.allow_private_upstreams });
  } catch (err) {
    throw new ConfigError(`proxy_cache.allow_private_upstreams: ${(err as Error).message}`);
  }
}

function sourceOf(config: Pick<Config, 'data_dir' | 'proxy_cache'>, guard: SsrfGuard): OrgMirrorSource {
  const pc = config.proxy_cache;
  return new OrgMirrorSource({ guard, secrets: lazySecretBox(config), timeouts: { connectMs: pc.connect_timeout, headersMs: pc.first_byte_timeout, bodyIdleMs: pc.idle_timeout } });
}

export function createOrgMirrorConfigService(db: DatabaseHandle, config: Pick<Config, 'data_dir' | 'proxy_cache'>, accounts: Pick<Accounts, 'robots' | 'audit'>, opts: { now?: () => number } = {}): OrgMirrorConfigService {
  const guard = guardOf(config);
  const proxies = new ProxyCacheStore(db.db, db.dialect);
  return new OrgMirrorConfigService({
    store: new OrgMirrorStore(db.db, db.dialect),
    robots: accounts.robots,
    isProxyCache: async (namespaceId) => (await proxies.findByNamespaceId(namespaceId)) !== undefined,
    source: sourceOf(config, guard),
    audit: accounts.audit,
    secrets: lazySecretBox(config),
    guard,
    now: opts.now,
  });
}

/** The worker running due discoveries (`mirror.poll_interval`, `mirror.lease`); start it with `start()`. */
export function createOrgMirrorWorker(db: DatabaseHandle, config: Config, accounts: Pick<Accounts, 'grants'>, opts: Partial<Pick<OrgMirrorWorkerDeps, 'log' | 'holder' | 'now'>> = {}): OrgMirrorWorker {
  const schedule = new OrgMirrorScheduleStore(db.db, db.dialect, db.processId);
  const store = new OrgMirrorStore(db.db, db.dialect);
  const run = new OrgMirrorRun({
    source: sourceOf(config, guardOf(config)),
    schedule,
    repositories: new RepositoryStore(db.db, db.dialect),
    mirrors: new MirrorStore(db.db, db.dialect),
    grants: accounts.grants,
    robots: { nameOf: (id) => store.robotName(id) },
    secrets: lazySecretBox(config),
    now: opts.now,
  });
  return new OrgMirrorWorker({ schedule, run, pollMs: config.mirror.poll_interval, leaseMs: config.mirror.lease, ...opts });
}
