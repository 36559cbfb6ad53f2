/** A whole registry app on a test database and in-memory storage, for `inject()` route tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildApp } from '../../src/http/app.js';
import { createServices, serverOptions } from '../../src/main/compose.js';
import type { Accounts } from '../../src/registry/accounts/accounts.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import type { Registry } from '../../src/registry/registry.js';
import type { BlobDriver } from '../../src/storage/blob-driver.js';
import { MemoryBlobDriver } from '../../src/storage/memory/memory-blob-driver.js';
import type { DatabaseHandle } from '../../src/db/connect.js';
import { openTestDatabase, type TestDialect } from './databases.js';

export interface TestApp {
  app: FastifyInstance;
  registry: Registry;
  /** The account services, when auth is enabled (the default; route tests of registry semantics turn it off). */
  accounts?: Accounts;
  storage: BlobDriver;
  /** The test database (for workers, which lease through it). */
  db: DatabaseHandle;
  config: Readonly<Config>;
  close(): Promise<void>;
}

export async function buildTestApp(dialect: TestDialect, opts: { storage?: BlobDriver; config?: Record<string, unknown>; logger?: Logger } = {}): Promise<TestApp> {
  const db = await openTestDatabase(dialect);
  const storage = opts.storage ?? new MemoryBlobDriver();
  // Files the app writes (proxy-cache spools, keys) go to a directory of its own.
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-app-'));
  const config = loadConfig({ env: {}, overrides: { log_level: 'silent', data_dir: dataDir, ...opts.config } });
  const { registry, accounts } = createServices({ db, storage, config });
  const app = await buildApp({ registry, accounts, metrics: new Metrics({ defaultMetrics: false }), logger: opts.logger ?? createLogger('silent'), server: serverOptions(config) });
  await app.ready();
  return {
    app,
    registry,
    accounts,
    storage,
    db,
    config,
    close: async () => {
      await app.close();
      await registry.audit?.flush();
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
