/** Builds the proxy-cache control plane (registry/proxy/proxy-config-service.ts) over the database. */
import type { Kysely } from 'kysely';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { DialectAdapter } from '../db/dialect.js';
import { NamespaceStore } from '../db/namespace-store.js';
import { ProxyCacheStore } from '../db/proxy-cache-store.js';
import type { Database } from '../db/tables.js';
import { ProxyConfigService, type ProxyConfigServiceDeps } from '../registry/proxy/proxy-config-service.js';
import { lazySecretBox, parseSecretKey } from '../registry/proxy/secret-box.js';
import { SsrfGuard } from '../upstream/ssrf.js';

/** The service over the database with the settings of `config.proxy_cache`; a malformed secret_key or allowlist fails here, at start. */
export function createProxyConfigService(
  db: Kysely<Database>,
  dialect: DialectAdapter,
  config: Pick<Config, 'data_dir' | 'proxy_cache'>,
  opts: Pick<ProxyConfigServiceDeps, 'audit' | 'onChange' | 'now'> = {},
): ProxyConfigService {
  const pc = config.proxy_cache;
  if (pc.secret_key !== undefined) parseSecretKey(pc.secret_key);
  let guard: SsrfGuard;
  try {
    guard = new SsrfGuard({ allow: pc.allow_private_upstreams });
  } catch (err) {
    throw new ConfigError(`proxy_cache.allow_private_upstreams: ${(err as Error).message}`);
  }
  return new ProxyConfigService({
    store: new ProxyCacheStore(db, dialect),
    namespaces: new NamespaceStore(db, dialect),
    secrets: lazySecretBox(config),
    guard,
    timeouts: { connectMs: pc.connect_timeout, headersMs: pc.first_byte_timeout, bodyIdleMs: pc.idle_timeout },
    ...opts,
  });
}
