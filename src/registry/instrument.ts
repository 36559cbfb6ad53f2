/** Connects the registry's event sources (quota enforcement, content passing through caches) to metrics. */
import type { Metrics } from '../observability/metrics.js';
import type { Registry } from './registry.js';

export function instrumentRegistry(registry: Registry, metrics: Metrics): void {
  registry.quotaGate.observe({
    rejected: (e) => metrics.quotaRejections.labels(e.stage).inc(),
    warning: () => metrics.quotaWarnings.inc(),
    evicted: (e) => metrics.proxyEvictions.labels(e.namespace).inc(e.tags),
  });
  registry.content.instrument(metrics);
  registry.clusterFills?.observe({
    followed: () => metrics.proxyFillsFollowed.inc(),
    takenOver: () => metrics.proxyFillsTakenOver.inc(),
  });
}
