/**
 * GET /health/instance and GET /health/endtoend (Quay's shape: `{"data":{"services":{...}},
 * "status_code":200|503}`, with the same HTTP status) and GET /metrics (Prometheus).
 *
 * /health/instance: this process (database, and whether its storage can take writes).
 * /health/endtoend: the database and every storage location; `storage` fails only when this process's
 * preferred location does. A superuser's request also gets `data.services_expanded`, each check with
 * its failure (`storage:<location>`), as Quay shows superusers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../observability/metrics.js';
import type { Accounts } from '../registry/accounts/accounts.js';
import { hasScope } from '../registry/accounts/api-scopes.js';
import type { Registry } from '../registry/registry.js';
import { apiCaller } from './api/caller.js';

export async function healthRoutes(app: FastifyInstance, opts: { registry: Registry; accounts?: Accounts; metrics: Metrics }): Promise<void> {
  app.get('/health/instance', async (req, reply) => {
    req.wharfRoute = 'health';
    const services = await opts.registry.health.check();
    const ok = Object.values(services).every(Boolean);
    const status = ok ? 200 : 503;
    return reply.code(status).send({ data: { services }, status_code: status });
  });
  app.get('/health/endtoend', async (req, reply) => {
    req.wharfRoute = 'health';
    const [report, superuser] = await Promise.all([opts.registry.health.endToEnd(), isSuperuser(opts, req, reply)]);
    const ok = Object.values(report.services).every(Boolean);
    const status = ok ? 200 : 503;
    return reply.code(status).send({ data: { services: report.services, ...(superuser ? { services_expanded: report.expanded } : {}) }, status_code: status });
  });
  app.get('/metrics', async (req, reply) => {
    req.wharfRoute = 'metrics';
    return reply.header('Content-Type', opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });
}

/** Whether the request carries a superuser's credentials; anything else (none, wrong ones) is the plain answer. */
async function isSuperuser(opts: { registry: Registry; accounts?: Accounts }, req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  if (!opts.accounts || (req.headers.authorization === undefined && req.headers.cookie === undefined)) return false;
  try {
    const caller = await apiCaller(opts.registry, opts.accounts, req, reply);
    return caller.kind === 'user' && caller.superuser && hasScope(caller, 'super:user');
  } catch {
    return false;
  }
}
