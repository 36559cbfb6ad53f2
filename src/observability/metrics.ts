/** Prometheus metrics, one registry per process (or per app in tests). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly latency: Histogram<'method' | 'route'>;
  readonly bytesServed: Counter<'route'>;
  readonly bytesReceived: Counter<'route'>;
  /** Proxy-cache pulls by organization, upstream, kind (manifest/blob) and result (hit/miss/stale). */
  readonly proxyRequests: Counter<'organization' | 'upstream' | 'kind' | 'result'>;
  readonly proxyUpstreamBytes: Counter<'organization' | 'upstream'>;
  readonly proxyUpstreamErrors: Counter<'organization' | 'upstream' | 'kind'>;
  readonly proxyJoinedWaiters: Counter<'organization' | 'upstream'>;
  readonly proxyFillsFollowed: Counter;
  readonly proxyFillsTakenOver: Counter;
  readonly proxyFillFirstByte: Histogram<'organization' | 'upstream'>;
  readonly proxyRateLimitRemaining: Gauge<'upstream'>;
  readonly proxyRateLimitLimit: Gauge<'upstream'>;
  /** What garbage collection removed, by kind: tag (history rows), manifest, link (blob in a repository), blob. */
  readonly gcRemoved: Counter<'kind'>;
  readonly gcFreedBytes: Counter;
  /** Blobs whose bytes the storage sweep deleted (no blob row recorded them), and their bytes. */
  readonly gcSweptBlobs: Counter;
  readonly gcSweptBytes: Counter;
  /** Garbage-collection passes by result: ok, aborted, failed. */
  readonly gcPasses: Counter<'result'>;
  readonly gcPassDuration: Histogram;
  /** Tags the auto-prune worker removed from the live view (into tag history), by policy method. */
  readonly autopruneTags: Counter<'method'>;
  /** Writes refused by a quota's Reject limit, by stage: upload_start, upload_chunk, manifest, proxy. */
  readonly quotaRejections: Counter<'stage'>;
  /** Manifest pushes that took a namespace across a quota's Warning limit. */
  readonly quotaWarnings: Counter;
  /** Cached tags a proxy-cache organization evicted to stay within its quota. */
  readonly proxyEvictions: Counter<'organization'>;

  readonly mirrorSyncs: Counter<'outcome'>;
  readonly mirrorSyncDuration: Histogram;
  readonly mirrorFailures: Counter<'reason'>;
  readonly mirrorLastStatus: Gauge<'repository'>;
  readonly mirrorLastSync: Gauge<'repository'>;
  readonly mirrorPendingTags: Gauge<'repository'>;
  readonly mirrorWorkersActive: Gauge;
  readonly mirrorUpstreamBytes: Counter;

  readonly replicationBacklog: Gauge<'location'>;
  readonly replicationBytes: Counter<'location' | 'method'>;
  readonly replicationFailures: Counter<'location'>;
  readonly replicationCopySeconds: Histogram<'location'>;

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
    const proxyLabels = ['organization', 'upstream'] as const;
    this.proxyRequests = new Counter({
      name: 'wharf_proxy_requests_total',
      help: 'Proxy-cache manifest and blob pulls by result: hit (local copy), miss (fetched upstream), stale (served while the upstream fails)',
      labelNames: [...proxyLabels, 'kind', 'result'],
      registers: [this.registry],
    });
    this.proxyUpstreamBytes = new Counter({
      name: 'wharf_proxy_upstream_bytes_total',
      help: 'Bytes of manifests and blobs fetched from upstream registries (compare with wharf_http_response_bytes_total)',
      labelNames: [...proxyLabels],
      registers: [this.registry],
    });
    this.proxyUpstreamErrors = new Counter({
      name: 'wharf_proxy_upstream_errors_total',
      help: 'Upstream failures by kind: unavailable, rate_limited, not_found, auth, protocol, blocked',
      labelNames: [...proxyLabels, 'kind'],
      registers: [this.registry],
    });
    this.proxyJoinedWaiters = new Counter({
      name: 'wharf_proxy_joined_waiters_total',
      help: 'Blob requests that joined a fill already in flight instead of going upstream',
      labelNames: [...proxyLabels],
      registers: [this.registry],
    });
    this.proxyFillsFollowed = new Counter({
      name: 'wharf_proxy_fills_followed_total',
      help: 'Blob fills this process streamed from the process that owned them instead of fetching them from the upstream',
      registers: [this.registry],
    });
    this.proxyFillsTakenOver = new Counter({
      name: 'wharf_proxy_fills_taken_over_total',
      help: 'Followed blob fills this process took over because their owner died or failed',
      registers: [this.registry],
    });
    this.proxyFillFirstByte = new Histogram({
      name: 'wharf_proxy_fill_first_byte_seconds',
      help: 'Time from a blob cache miss until the upstream started answering',
      labelNames: [...proxyLabels],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.proxyRateLimitRemaining = new Gauge({
      name: 'wharf_proxy_ratelimit_remaining',
      help: "Pulls left in the upstream's rate-limit window (Docker Hub's ratelimit-remaining)",
      labelNames: ['upstream'],
      registers: [this.registry],
    });
    this.gcRemoved = new Counter({
      name: 'wharf_gc_removed_total',
      help: 'Rows garbage collection removed, by kind: tag (history past the time-machine window), manifest, link (a blob in a repository), blob',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    this.gcFreedBytes = new Counter({
      name: 'wharf_gc_freed_bytes_total',
      help: 'Bytes of the blobs garbage collection removed (rows and storage)',
      registers: [this.registry],
    });
    this.gcSweptBlobs = new Counter({
      name: 'wharf_gc_swept_blobs_total',
      help: 'Blobs in storage that no blob row recorded (left by a crash) whose bytes the storage sweep of garbage collection deleted',
      registers: [this.registry],
    });
    this.gcSweptBytes = new Counter({
      name: 'wharf_gc_swept_bytes_total',
      help: 'Bytes the storage sweep of garbage collection deleted',
      registers: [this.registry],
    });
    this.gcPasses = new Counter({
      name: 'wharf_gc_passes_total',
      help: 'Garbage-collection passes by result: ok, aborted (shutdown), failed',
      labelNames: ['result'],
      registers: [this.registry],
    });
    this.gcPassDuration = new Histogram({
      name: 'wharf_gc_pass_duration_seconds',
      help: 'Duration of garbage-collection passes',
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
      registers: [this.registry],
    });
    this.proxyRateLimitLimit = new Gauge({
      name: 'wharf_proxy_ratelimit_limit',
      help: "Pulls allowed per rate-limit window (Docker Hub's ratelimit-limit)",
      labelNames: ['upstream'],
      registers: [this.registry],
    });
    this.autopruneTags = new Counter({
      name: 'wharf_autoprune_pruned_tags_total',
      help: 'Tags pruned by auto-prune policies (they stay restorable from tag history), by method: number_of_tags or creation_date',
      labelNames: ['method'],
      registers: [this.registry],
    });
    this.quotaRejections = new Counter({
      name: 'wharf_quota_rejections_total',
      help: 'Writes refused because they would take a namespace over a Reject limit of its quota, by stage',
      labelNames: ['stage'],
      registers: [this.registry],
    });
    this.quotaWarnings = new Counter({
      name: 'wharf_quota_warnings_total',
      help: 'Manifest pushes that took a namespace across a Warning limit of its quota',
      registers: [this.registry],
    });
    this.proxyEvictions = new Counter({
      name: 'wharf_proxy_evicted_tags_total',
      help: 'Cached tags of proxy-cache organizations evicted (least recently pulled first) to make room within the quota',
      labelNames: ['organization'],
      registers: [this.registry],
    });
    this.mirrorSyncs = new Counter({
      name: 'wharf_mirror_syncs_total',
      help: 'Finished repository mirror runs by outcome: SUCCESS, PARTIAL, FAIL, CANCEL',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    this.mirrorSyncDuration = new Histogram({
      name: 'wharf_mirror_sync_duration_seconds',
      help: 'Duration of repository mirror runs',
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400],
      registers: [this.registry],
    });
    this.mirrorFailures = new Counter({
      name: 'wharf_mirror_sync_failures_total',
      help: 'Failed repository mirror runs (and partial ones, by their first failed tag) by reason',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.mirrorLastStatus = new Gauge({
      name: 'wharf_mirror_last_sync_status',
      help: 'Status of the last run of each mirrored repository this process ran: 0 failed (or partial, cancelled), 1 succeeded, 2 in progress',
      labelNames: ['repository'],
      registers: [this.registry],
    });
    this.mirrorLastSync = new Gauge({
      name: 'wharf_mirror_last_sync_timestamp_seconds',
      help: 'When the last run of each mirrored repository this process ran finished (Unix time)',
      labelNames: ['repository'],
      registers: [this.registry],
    });
    this.mirrorPendingTags = new Gauge({
      name: 'wharf_mirror_pending_tags',
      help: 'Tags the run in progress of each mirrored repository has still to sync',
      labelNames: ['repository'],
      registers: [this.registry],
    });
    this.mirrorWorkersActive = new Gauge({
      name: 'wharf_mirror_workers_active',
      help: 'Mirror runs in progress in this process',
      registers: [this.registry],
    });
    this.mirrorUpstreamBytes = new Counter({
      name: 'wharf_mirror_upstream_bytes_total',
      help: 'Manifest and blob bytes mirror runs fetched from upstream registries',
      registers: [this.registry],
    });
    this.replicationBacklog = new Gauge({
      name: 'wharf_replication_backlog',
      help: 'Blob copies queued per target location (all processes; refreshed by each replication poll of this one)',
      labelNames: ['location'],
      registers: [this.registry],
    });
    this.replicationBytes = new Counter({
      name: 'wharf_replication_bytes_total',
      help: 'Blob bytes this process copied to each location, by method: server_side (inside the store) or streamed (through this process)',
      labelNames: ['location', 'method'],
      registers: [this.registry],
    });
    this.replicationFailures = new Counter({
      name: 'wharf_replication_failures_total',
      help: 'Failed attempts of this process to copy a blob to each location (each is retried with backoff)',
      labelNames: ['location'],
      registers: [this.registry],
    });
    this.replicationCopySeconds = new Histogram({
      name: 'wharf_replication_copy_seconds',
      help: 'Time to copy one blob to each location',
      labelNames: ['location'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
      registers: [this.registry],
    });
  }
}
