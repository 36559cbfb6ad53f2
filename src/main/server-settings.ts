/**
 * The configuration a running server and the CLI must agree on. `wharf serve` publishes these settings
 * in the database when it starts; the CLI reads them back, so that a command whose effect the server
 * would refuse (a proxy cache of a private upstream the server's SSRF guard does not allow) fails
 * instead of succeeding silently. Last server to start wins; replicas are meant to share one
 * configuration.
 */
import type { Config } from '../config/schema.js';
import type { DatabaseHandle } from '../db/connect.js';
import { ServerSettingsStore } from '../db/server-settings-store.js';

export const PRIVATE_UPSTREAMS = 'proxy_cache.allow_private_upstreams';

export async function publishServerSettings(db: DatabaseHandle, config: Readonly<Pick<Config, 'proxy_cache'>>): Promise<void> {
  await new ServerSettingsStore(db.db).publish(PRIVATE_UPSTREAMS, JSON.stringify(config.proxy_cache.allow_private_upstreams), Date.now());
}

/** The allowlist of the last server started on this database, or undefined when none published one. */
export async function serverPrivateUpstreams(db: DatabaseHandle): Promise<string[] | undefined> {
  const row = await new ServerSettingsStore(db.db).read(PRIVATE_UPSTREAMS);
  if (!row) return undefined;
  try {
    const list = JSON.parse(row.value) as unknown;
    return Array.isArray(list) && list.every((x) => typeof x === 'string') ? list : undefined;
  } catch {
    return undefined;
  }
}
