/** Prometheus metrics, one registry per process (or per app in tests). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly latency: Histogram<'method' | 'route'>;
  readonly bytesServed: Counter<'route'>;
  readonly bytesReceived: Counter<'route'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'wharf_' });
    this.requests = new Counter({
      name: 'wharf_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'wharf_http_request_duration_seconds',
      help: 'HTTP request latency until the response is finished',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.bytesServed = new Counter({
      name: 'wharf_http_response_bytes_total',
      help: 'Bytes of blob and manifest content served',
      labelNames: ['route'],
      registers: [this.registry],
    });
    this.bytesReceived = new Counter({
      name: 'wharf_http_request_bytes_total',
      help: 'Bytes of blob and manifest content received',
      labelNames: ['route'],
      registers: [this.registry],
    });
  }
}
