/** GET /health/instance (Quay's shape) and GET /metrics (Prometheus). */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics.js';
import type { Registry } from '../registry/registry.js';

export async function healthRoutes(app: FastifyInstance, opts: { registry: Registry; metrics: Metrics }): Promise<void> {
  app.get('/health/instance', async (req, reply) => {
    req.wharfRoute = 'health';
    const services = await opts.registry.health.check();
    const ok = Object.values(services).every(Boolean);
    const status = ok ? 200 : 503;
    return reply.code(status).send({ data: { services }, status_code: status });
  });
  app.get('/metrics', async (req, reply) => {
    req.wharfRoute = 'metrics';
    return reply.header('Content-Type', opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });
}
