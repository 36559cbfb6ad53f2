/** The services of one registry, as the HTTP layer and workers see them. */
import type { EndToEndReport } from './end-to-end-health.js';
import type { AccessService } from './access.js';
import type { AuditService } from './accounts/audit-service.js';
import type { Autoprune } from './autoprune/autoprune.js';
import type { RegistryAuth } from './accounts/registry-auth.js';
import type { BlobService } from './blobs.js';
import type { ContentResolver } from './content.js';
import type { GarbageCollector } from './gc.js';
import type { ManifestService } from './manifests.js';
import type { MirrorRun } from './mirror/mirror-run.js';
import type { ProxyConfigService } from './proxy/proxy-config-service.js';
import type { MirrorConfigService } from './mirror/mirror-config-service.js';
import type { QuotaService } from './quota/quota-service.js';
import type { QuotaGate } from './quota/quota-gate.js';
import type { RepositoryService } from './repositories.js';
import type { OrgMirrorConfigService } from './mirror/org-mirror-config-service.js';
import type { TagService } from './tags.js';
import type { TimeMachineService } from './time-machine.js';
import type { UploadService } from './uploads.js';
import type { ImmutabilityPolicies } from './tag-immutability.js';
import type { ImageConfigReader } from './image-config.js';
import type { ManifestLabelService } from './manifest-labels.js';
import type { PullStatistics } from './pull-statistics.js';
import type { ClusterFills } from './proxy/cluster-fills.js';
import type { FillPeers } from './proxy/fill-peers.js';
import type { ReplicationAdmin } from './replication/replication-admin.js';
import type { ReplicationService } from './replication/replication-service.js';

export interface HealthCheck {
  /** This process's dependencies by name (`/health/instance`), true when it answered. */
  check(): Promise<Record<string, boolean>>;
  /** The database and every storage location (`/health/endtoend`). */
  endToEnd(): Promise<EndToEndReport>;
}

export interface Registry {
  access: AccessService;
  repositories: RepositoryService;
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  /** Tags with history, for the management API. */
  tags: TagService;
  /** Namespaces' time-machine windows. */
  timeMachine: TimeMachineService;
  /** Tag immutability policies of namespaces and repositories (tag-immutability.ts states the rule). */
  immutability: ImmutabilityPolicies;
  /** Stored manifests with their image configuration (layers, history), for the management API. */
  images: ImageConfigReader;
  /** Manifest labels: the image configuration's and those added through the API. */
  manifestLabels: ManifestLabelService;
  /** Pull counts of tags and manifests, from the audit log. */
  pullStatistics: PullStatistics;
  /** Garbage collection: one pass on demand (`wharf gc`) or from the worker. */
  gc: GarbageCollector;
  /** One run of a repository mirror, as the mirror worker calls it (mirror/mirror-run.ts). */
  mirrors: MirrorRun;
  /** Auto-prune policies (API, CLI) and the pruner the worker runs. */
  autoprune: Autoprune;
  /** Storage quotas of namespaces and the usage they are checked against (API, CLI). */
  quota: QuotaService;
  /** Replication between storage locations; absent unless several locations are configured. */
  replication?: { service: ReplicationService; admin: ReplicationAdmin };
  /** Quota enforcement on pushes and cache fills (refusals, warnings, evictions; metrics observe it). */
  quotaGate: QuotaGate;
  health: HealthCheck;
  /** Authentication for `/v2`; absent when the registry runs open (`auth.enabled: false`). */
  auth?: RegistryAuth;
  /** Where pushes, pulls, deletes and failed logins are recorded; absent when the registry runs open. */
  audit?: AuditService;
  /**
   * What pulls read, per repository: local content, or for proxy-cache organizations the pull-through
   * view of their upstream, with the same interface.
   */
  content: ContentResolver;
  /** Proxy-cache organizations' configurations; absent when `proxy_cache.enabled` is false. */
  proxyConfig?: ProxyConfigService;
  /** Repository mirrors' configurations (API, CLI); absent when the registry runs without accounts. */
  mirrorConfig?: MirrorConfigService;
  /** Organization mirrors' configurations (API); absent when the registry runs without accounts. */
  orgMirrorConfig?: OrgMirrorConfigService;
  /**
   * The fills this process runs, as the other processes of the deployment stream them
   * (`/internal/fills`); absent when fills are not shared across processes.
   */
  fillPeers?: FillPeers;
  /** Fills across processes (cluster-fills.ts), observed for metrics; absent with `fillPeers`. */
  clusterFills?: ClusterFills;
  /** Parsing options the edge needs. */
  options: { defaultNamespace: string; maxPageSize: number; maxManifestSize: number; baseUrl?: string };
}
