/** Builds the proxy-cache control plane (registry/proxy/proxy-config-service.ts) over the database. */
import type { Kysely } from 'kysely';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { DialectAdapter } from '../db/dialect.js';
import { NamespaceStore } from '../db/namespace-store.js';
import { OrgMirrorStore } from '../db/org-mirror-store.js';
import { MirrorStore } from '../db/mirror-store.js';
import { ProxyCacheStore } from '../db/proxy-cache-store.js';
import type { Database } from '../db/tables.js';
import { ProxyConfigService, type ProxyConfigServiceDeps } from '../registry/proxy/proxy-config-service.js';
import { lazySecretBox, parseSecretKey } from '../registry/proxy/secret-box.js';
import { SsrfGuard } from '../upstream/ssrf.js';

/**
 * The service over the database with the settings of `config.proxy_cache`; a malformed secret_key or
 * allowlist fails here, at start. `serverAllow` is the allowlist the running server published (the CLI
 * passes it): when it differs from this process's, upstreams must pass the server's guard too.
 */
export function createProxyConfigService(
  db: Kysely<Database>,
  dialect: DialectAdapter,
  config: Pick<Config, 'data_dir' | 'proxy_cache'>,
  opts: Pick<ProxyConfigServiceDeps, 'audit' | 'onChange' | 'now'> & { serverAllow?: readonly string[] } = {},
): ProxyConfigService {
  const pc = config.proxy_cache;
  if (pc.secret_key !== undefined) parseSecretKey(pc.secret_key);
  let guard: SsrfGuard;
  try {
    guard = new SsrfGuard({ allow: pc.allow_private_upstreams });
  } catch (err) {
    throw new ConfigError(`proxy_cache.allow_private_upstreams: ${(err as Error).message}`);
  }
  const { serverAllow, ...deps } = opts;
  const sameList = (a: readonly string[], b: readonly string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  let serverGuard: SsrfGuard | undefined;
  if (serverAllow && !sameList(serverAllow, pc.allow_private_upstreams)) {
    try {
      serverGuard = new SsrfGuard({ allow: serverAllow });
    } catch {
      // An allowlist this version cannot read: only this process's guard applies.
    }
  }
  const orgMirrors = new OrgMirrorStore(db, dialect);
  const repositoryMirrors = new MirrorStore(db, dialect);
  return new ProxyConfigService({
    store: new ProxyCacheStore(db, dialect),
    namespaces: new NamespaceStore(db, dialect),
    isOrgMirror: (namespaceId) => orgMirrors.exists(namespaceId),
    hasRepositoryMirrors: (namespaceId) => repositoryMirrors.anyInNamespace(namespaceId),
    secrets: lazySecretBox(config),
    guard,
    serverGuard,
    timeouts: { connectMs: pc.connect_timeout, headersMs: pc.first_byte_timeout, bodyIdleMs: pc.idle_timeout },
    ...deps,
  });
}
