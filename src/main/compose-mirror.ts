/**
 * Repository mirroring: the run (over the registry's one upstream import, with the proxy cache's SSRF
 * policy, timeouts and secret key) and the worker that claims due mirrors through the database.
 */
import type { Config } from '../config/schema.js';
import type { DatabaseHandle } from '../db/connect.js';
import { MirrorScheduleStore } from '../db/mirror-schedule-store.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AuditService } from '../registry/accounts/audit-service.js';
import type { ManifestService } from '../registry/manifests.js';
import { MirrorRun } from '../registry/mirror/mirror-run.js';
import { MirrorUpstreams } from '../registry/mirror/mirror-upstream.js';
import { lazySecretBox } from '../registry/proxy/secret-box.js';
import type { Registry } from '../registry/registry.js';
import type { RepositoryService } from '../registry/repositories.js';
import type { TagService } from '../registry/tags.js';
import { ImageImport } from '../registry/upstream-import/image-import.js';
import type { UpstreamImport } from '../registry/upstream-import/upstream-import.js';
import { SsrfGuard } from '../upstream/ssrf.js';
import { MirrorWorker, type MirrorWorkerDeps } from '../workers/mirror/mirror-worker.js';

/** The run of one mirror, as `registry.mirrors`. */
export function createMirrorRun(
  config: Config,
  deps: { upstreamImport: UpstreamImport; manifests: ManifestService; repositories: RepositoryService; tags: TagService; audit?: AuditService; logger?: Logger },
): MirrorRun {
  const pc = config.proxy_cache;
  return new MirrorRun({
    upstreams: new MirrorUpstreams({
      guard: new SsrfGuard({ allow: pc.allow_private_upstreams }),
      secrets: lazySecretBox(config),
      timeouts: { connectMs: pc.connect_timeout, headersMs: pc.first_byte_timeout, bodyIdleMs: pc.idle_timeout },
      maxManifestBytes: config.registry.max_manifest_size,
    }),
    images: new ImageImport({ upstreamImport: deps.upstreamImport, manifests: deps.manifests, repositories: deps.repositories }),
    tags: deps.tags,
    repositories: deps.repositories,
    audit: deps.audit,
    log: deps.logger,
    tagConcurrency: config.mirror.tag_concurrency,
    blobConcurrency: config.mirror.blob_concurrency,
  });
}

/** The worker running due mirrors (`mirror.*` settings); start it with `start()`. */
export function createMirrorWorker(
  db: DatabaseHandle,
  registry: Pick<Registry, 'mirrors'>,
  config: Config,
  opts: Partial<Pick<MirrorWorkerDeps, 'log' | 'metrics' | 'holder' | 'now'>> = {},
): MirrorWorker {
  return new MirrorWorker({
    schedule: new MirrorScheduleStore(db.db, db.dialect, db.processId),
    run: registry.mirrors,
    pollMs: config.mirror.poll_interval,
    concurrentRuns: config.mirror.concurrent_runs,
    leaseMs: config.mirror.lease,
    ...opts,
  });
}
