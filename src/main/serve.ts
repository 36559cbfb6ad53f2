/**
 * `wharf serve`: checks the data directory, takes the SQLite lock, opens the database and storage,
 * starts the HTTP server and the background jobs. What stops a start that the operator can fix is a
 * StartupError (one line, exit status 1); whatever was opened before it is closed again.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { buildApp } from '../http/app.js';
import { createLogger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { adminBanner, bootstrapAdmin } from './bootstrap.js';
import { createDatabase, createServices, createStorage, serverOptions } from './compose.js';
import { prepareDataDir } from './data-dir.js';
import { acquireInstanceLock } from './instance-lock.js';
import { publishServerSettings } from './server-settings.js';
import { StartupError } from './startup-error.js';
import { tlsOptions } from './tls.js';
import { createAutopruneWorker } from './compose-autoprune.js';
import { createGcWorker } from './compose-gc.js';

const UPLOAD_SWEEP_MS = 10 * 60 * 1000;

export async function serve(config: Readonly<Config>): Promise<void> {
  const logger = createLogger(config.log_level);
  prepareDataDir(config.data_dir);
  const lock = acquireInstanceLock(config);
  // Undone in reverse order when the start fails half-way.
  const opened: Array<() => unknown> = [() => lock?.release()];
  const undo = async () => {
    for (const close of opened.reverse()) await Promise.resolve(close()).catch(() => undefined);
  };
  let started;
  try {
    started = await start(config, logger, opened);
  } catch (err) {
    await undo();
    throw err;
  }
  const { db, storage, registry, app, tls, admin, metrics } = started;

  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const scheme = tls ? 'https' : 'http';
  const shownHost = config.tls.self_signed_hostname ?? (config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host);
  const url = config.base_url ?? `${scheme}://${shownHost}:${port}`;
  logger.info({ url, db: db.description, storage: storage.name, tls: Boolean(tls), auth: config.auth.enabled }, 'wharf is listening');
  if (!config.auth.enabled) logger.warn('authentication is disabled (auth.enabled: false): anyone who can reach this port can pull, push and delete');
  // The way in goes to the terminal only: never into the JSON log on stdout.
  // Clients verify TLS by default: the hints say --tls-verify=false for plain HTTP and a generated certificate.
  if (admin?.password !== undefined || admin?.passwordFile) process.stderr.write(adminBanner(url, admin, { verifiedTls: url.startsWith('https:') && !tls?.selfSigned }));
  else if (admin) logger.info({ username: admin.username }, 'created the superuser with the configured password');
  if (tls?.generated) logger.info({ certificate: tls.generated }, 'generated a self-signed certificate; clients must trust it (see docs/clients.md)');

  const sweepUploads = async () => {
    const expired = await registry.uploads.expire(Date.now() - config.registry.upload_timeout);
    const staged = (await storage.sweepStaging?.(config.registry.upload_timeout)) ?? 0;
    if (expired + staged > 0) logger.info({ expired, staged }, 'removed stale uploads and abandoned staged writes');
  };
  const runSweep = () => void sweepUploads().catch((err: unknown) => logger.error({ err }, 'upload sweep failed'));
  runSweep();
  const sweep = setInterval(runSweep, UPLOAD_SWEEP_MS);
  sweep.unref();
  // Auto-prune policies; any number of processes may run the worker (namespaces are leased).
  const autoprune = config.autoprune.enabled ? createAutopruneWorker(db, registry.autoprune.pruner, { intervalMs: config.autoprune.interval, log: logger, metrics }) : undefined;
  autoprune?.start();
  // Garbage collection: one pass per gc.interval across all processes (leased through the database).
  const gc = config.gc.enabled ? createGcWorker(db, registry.gc, { intervalMs: config.gc.interval, log: logger, metrics }) : undefined;
  gc?.start();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    clearInterval(sweep);
    const autopruneStopped = autoprune?.stop();
    const gcStopped = gc?.stop();
    const force = setTimeout(() => {
      logger.warn('shutdown timeout reached; closing remaining connections');
      app.server.closeAllConnections?.();
    }, config.shutdown_timeout);
    force.unref();
    try {
      await app.close();
      await registry.content.close();
      await autopruneStopped;
      await gcStopped;
      // Pull entries are written in the background; they go in before the database closes.
      await registry.audit?.flush();
      await db.close();
      lock?.release();
    } catch (err) {
      logger.error({ err }, 'error during shutdown');
      process.exitCode = 1;
    }
    logger.info('stopped');
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

/** Everything up to a listening server; each thing opened is pushed onto `opened` so that a failure can close it. */
async function start(config: Readonly<Config>, logger: ReturnType<typeof createLogger>, opened: Array<() => unknown>) {
  const db = await createDatabase(config, logger);
  opened.push(() => db.close());
  await publishServerSettings(db, config);
  const storage = createStorage(config);
  const { registry, accounts } = createServices({ db, storage, config, logger });
  // Spool files of blob fills a crash interrupted.
  await registry.content.open();
  opened.push(() => registry.content.close());
  // The signing key is generated and stored on the very first start; later starts (and replicas) load it.
  await registry.auth?.ready();
  const tls = await tlsOptions(config);
  const admin = accounts ? await bootstrapAdmin(accounts, config, logger) : undefined;
  const metrics = new Metrics();
  const app = await buildApp({ registry, accounts, metrics, logger, server: { ...serverOptions(config), ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}) } });
  opened.push(() => app.close());
  await listen(app, config);
  return { db, storage, registry, app, tls: tls && { ...tls, selfSigned: !config.tls.cert }, admin, metrics };
}

async function listen(app: FastifyInstance, config: Readonly<Config>): Promise<void> {
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
    const fix = 'set port (WHARF_PORT) or host (WHARF_HOST)';
    if (code === 'EADDRINUSE') throw new StartupError(`cannot listen on ${where}: the port is already in use (another wharf serve, or another program); stop that program or ${fix}`);
    if (code === 'EACCES') throw new StartupError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges); ${fix}`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new StartupError(`cannot listen on ${where}: no such address on this machine; ${fix}`);
    throw err;
  }
}
