/**
 * Builds the HTTP application without listening: tests drive it with `inject()`, `main` listens.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Registry } from '../registry/registry.js';
import type { Accounts } from '../registry/accounts/accounts.js';
import { apiPlugin } from './api/plugin.js';
import { csrfRoutes } from './csrf-routes.js';
import { oauthRoutes } from './oauth-routes.js';
import { earlyErrorOptions, installEarlyErrors } from './early-errors.js';
import { healthRoutes } from './health.js';
import { internalFillRoutes } from './internal-fills.js';

/** The release, reported by the OpenAPI document. */
export const WHARF_VERSION = '0.1.0';
import { v2Plugin } from './v2/plugin.js';

export interface AppOptions {
  registry: Registry;
  metrics: Metrics;
  logger: Logger;
  /** The account services; `/api/v1` is served when they are given (authentication enabled). */
  accounts?: Accounts;
  /** Passed to Fastify (https options, timeouts). */
  server?: Partial<FastifyServerOptions> & { https?: { cert: string | Buffer; key: string | Buffer } };
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger,
    // One access-log line per request is written in onResponse below.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Blob uploads may be slow and large; the registry enforces its own limits per operation.
    requestTimeout: 0,
    ...(opts.server as object),
    ...earlyErrorOptions(opts.server?.https),
  }) as unknown as FastifyInstance;

  app.decorateRequest('wharfRoute', '');
  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Request-Id', req.id);
  });
  installEarlyErrors(app);
  app.addHook('onResponse', async (req, reply) => {
    const route = req.wharfRoute || 'other';
    const seconds = reply.elapsedTime / 1000;
    opts.metrics.requests.labels(req.method, route, String(reply.statusCode)).inc();
    opts.metrics.latency.labels(req.method, route).observe(seconds);
    req.log.info(
      { method: req.method, url: req.url, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ua: req.headers['user-agent'], ip: req.ip },
      'request',
    );
  });

  await app.register(healthRoutes, { registry: opts.registry, accounts: opts.accounts, metrics: opts.metrics });
  await app.register(v2Plugin, { registry: opts.registry, metrics: opts.metrics });
  if (opts.registry.fillPeers) await app.register(internalFillRoutes, { registry: opts.registry });
  if (opts.accounts) await app.register(apiPlugin, { prefix: '/api/v1', registry: opts.registry, accounts: opts.accounts, version: WHARF_VERSION });
  if (opts.accounts) await app.register(csrfRoutes, { accounts: opts.accounts });
  if (opts.accounts) await app.register(oauthRoutes, { registry: opts.registry, accounts: opts.accounts });
  return app;
}
