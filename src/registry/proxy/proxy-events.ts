/** The events of pulls through proxy organizations, for metrics and logs (every observer method optional). */
import type { Metrics } from '../../observability/metrics.js';
import { isUpstreamError, type UpstreamErrorKind } from '../../upstream/errors.js';
import type { CacheResult } from '../content.js';
import type { ProxyUpstream } from './proxy-directory.js';

export interface ProxyObserver {
  result?(e: { organization: string; upstream: string; kind: 'manifest' | 'blob'; result: CacheResult }): void;
  upstreamError?(e: { organization: string; upstream: string; kind: UpstreamErrorKind }): void;
  upstreamBytes?(e: { organization: string; upstream: string; bytes: number }): void;
  fillFirstByte?(e: { organization: string; upstream: string; seconds: number }): void;
  joined?(e: { organization: string; upstream: string }): void;
  rateLimit?(e: { upstream: string; limit: number; remaining: number }): void;
}

/** The Prometheus series of the proxy cache (`wharf_proxy_*`). */
export function proxyMetrics(metrics: Metrics): ProxyObserver {
  return {
    result: (e) => metrics.proxyRequests.labels(e.organization, e.upstream, e.kind, e.result).inc(),
    upstreamBytes: (e) => metrics.proxyUpstreamBytes.labels(e.organization, e.upstream).inc(e.bytes),
    upstreamError: (e) => metrics.proxyUpstreamErrors.labels(e.organization, e.upstream, e.kind).inc(),
    joined: (e) => metrics.proxyJoinedWaiters.labels(e.organization, e.upstream).inc(),
    fillFirstByte: (e) => metrics.proxyFillFirstByte.labels(e.organization, e.upstream).observe(e.seconds),
    rateLimit: (e) => {
      metrics.proxyRateLimitRemaining.labels(e.upstream).set(e.remaining);
      metrics.proxyRateLimitLimit.labels(e.upstream).set(e.limit);
    },
  };
}

/** Emits proxy events, labelled by organization and upstream registry, to the current observer. */
export class ProxyEvents {
  private observer: ProxyObserver | undefined;

  /** Sends events to `observer` from now on. */
  observe(observer: ProxyObserver): void {
    this.observer = observer;
  }

  /** Counts a served manifest or blob by its cache result, and returns it. */
  served<T extends { cache?: CacheResult }>(upstream: ProxyUpstream, kind: 'manifest' | 'blob', value: T): T {
    if (value.cache) this.observer?.result?.({ ...labels(upstream), kind, result: value.cache });
    return value;
  }

  /** Counts an upstream failure by kind (other errors are not the upstream's). */
  upstreamError(upstream: ProxyUpstream, err: unknown): void {
    if (isUpstreamError(err)) this.observer?.upstreamError?.({ ...labels(upstream), kind: err.kind });
  }

  upstreamBytes(upstream: ProxyUpstream, bytes: number): void {
    this.observer?.upstreamBytes?.({ ...labels(upstream), bytes });
  }

  fillFirstByte(upstream: ProxyUpstream, seconds: number): void {
    this.observer?.fillFirstByte?.({ ...labels(upstream), seconds });
  }

  joined(upstream: ProxyUpstream): void {
    this.observer?.joined?.(labels(upstream));
  }

  /** Exports the upstream's rate-limit window after a request, when it announces one. */
  rateLimit(upstream: ProxyUpstream): void {
    const rl = upstream.client.rateLimit;
    if (rl) this.observer?.rateLimit?.({ upstream: upstream.spec.registry, limit: rl.limit, remaining: rl.remaining });
  }
}

function labels(upstream: ProxyUpstream): { organization: string; upstream: string } {
  return { organization: upstream.config.organization, upstream: upstream.spec.registry };
}
