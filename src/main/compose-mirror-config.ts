/** Builds the repository-mirror configuration service (registry/mirror/mirror-config-service.ts) over the database. */
import type { Kysely } from 'kysely';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { DialectAdapter } from '../db/dialect.js';
import { MirrorHealthStore } from '../db/mirror-health-store.js';
import { MirrorStore } from '../db/mirror-store.js';
import { OrgMirrorStore } from '../db/org-mirror-store.js';
import { ProxyCacheStore } from '../db/proxy-cache-store.js';
import type { Database } from '../db/tables.js';
import type { Accounts } from '../registry/accounts/accounts.js';
import { MirrorConfigService } from '../registry/mirror/mirror-config-service.js';
import { lazySecretBox } from '../registry/proxy/secret-box.js';
import { SsrfGuard } from '../upstream/ssrf.js';

/**
 * The service with the proxy cache's SSRF allowlist and secret key (`proxy_cache.allow_private_upstreams`,
 * `proxy_cache.secret_key`): mirrors and proxy caches dial upstreams under the same policy and seal
 * credentials with the same key. `serverAllow` is the allowlist the running server published (the CLI
 * passes it): when it differs, a source must pass the server's guard too.
 */
export function createMirrorConfigService(
  db: Kysely<Database>,
  dialect: DialectAdapter,
  config: Pick<Config, 'data_dir' | 'proxy_cache'>,
  accounts: Pick<Accounts, 'robots' | 'grants' | 'audit'>,
  opts: { serverAllow?: readonly string[]; now?: () => number } = {},
): MirrorConfigService {
  const allow = config.proxy_cache.allow_private_upstreams;
  let guard: SsrfGuard;
  try {
    guard = new SsrfGuard({ allow });
  } catch (err) {
    throw new ConfigError(`proxy_cache.allow_private_upstreams: ${(err as Error).message}`);
  }
  const same = (a: readonly string[], b: readonly string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  let serverGuard: SsrfGuard | undefined;
  if (opts.serverAllow && !same(opts.serverAllow, allow)) {
    try {
      serverGuard = new SsrfGuard({ allow: opts.serverAllow });
    } catch {
      // An allowlist this version cannot read: only this process's guard applies.
    }
  }
  const proxies = new ProxyCacheStore(db, dialect);
  const orgMirrors = new OrgMirrorStore(db, dialect);
  return new MirrorConfigService({
    store: new MirrorStore(db, dialect),
    health: new MirrorHealthStore(db),
    robots: accounts.robots,
    grants: accounts.grants,
    audit: accounts.audit,
    isProxyCache: async (namespaceId) => (await proxies.findByNamespaceId(namespaceId)) !== undefined,
    isOrgMirror: (namespaceId) => orgMirrors.exists(namespaceId),
    secrets: lazySecretBox(config),
    guard,
    serverGuard,
    now: opts.now,
  });
}
