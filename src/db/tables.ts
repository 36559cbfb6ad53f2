/**
 * Table shapes for Kysely. Times are milliseconds since the epoch; booleans are 0/1 integers so that
 * SQLite and PostgreSQL read the same values.
 *
 *   namespaces 1─* repositories 1─* manifests *─* blobs        (manifest_blobs: config and layers)
 *                        │   │           └─* manifests        (manifest_children: an index's children)
 *                        │   └─* tags ──> manifests            (history: lifetime_start / lifetime_end)
 *                        ├─* repository_blobs ──> blobs         (a blob is readable in a repo only if linked)
 *                        └─* uploads
 *   namespaces 1─0..1 proxy_cache_configs                      (an organization that caches an upstream)
 *   blob_guards (per digest: writer committing / GC deleting), worker_leases (scheduled jobs),
 *   blob_fills (per digest: the process fetching it from an upstream, which the others stream from),
 *   login_failures (failed logins per throttling key, shared by every process)
 *   namespaces 1─* autoprune_policies ─> repositories (0..1)   (auto-prune; autoprune_tasks: the worker's queue)
 *   namespaces 1─0..1 namespace_quotas 1─* quota_limits         (storage quotas; totals in *_sizes, counted
 *                                                                through quota_*_blobs: migrations/0006-quotas.ts)
 *   repositories 1─0..1 repository_mirrors                     (a repository synced from another registry)
 *   repository_stars, global_messages, robot_federations, team_robot_members, creator_default_permissions
 *                                                              (Quay's API extras: migrations/0009-collection-lookups.ts)
 */
import type { Generated, Insertable, Selectable } from 'kysely';

export interface NamespacesTable {
  id: Generated<number>;
  name: string;
  /** 'user' | 'org' */
  kind: Generated<string>;
  email: string | null;
  enabled: Generated<number>;
  created_at: number;
  /** How long ended tags stay restorable (seconds); null = the registry's `gc.time_machine_default`. */
  time_machine_s: Generated<number | null>;
}

export interface RepositoriesTable {
  id: Generated<number>;
  namespace_id: number;
  name: string;
  /** 'private' | 'public' */
  visibility: Generated<string>;
  /** 'NORMAL' | 'READ_ONLY' | 'MIRROR' */
  state: Generated<string>;
  description: string | null;
  mirror_robot_id: number | null;
  created_at: number;
}

export interface BlobsTable {
  id: Generated<number>;
  digest: string;
  size: number;
  created_at: number;
}

export interface RepositoryBlobsTable {
  repository_id: number;
  blob_id: number;
  created_at: number;
}

export interface ManifestsTable {
  id: Generated<number>;
  repository_id: number;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  subject_digest: string | null;
  /** JSON object of the manifest's annotations, for the referrers API. */
  annotations: string | null;
  size: number;
  content: Buffer;
  created_at: number;
  /** The latest push of an existing manifest (epoch ms); null = `created_at`. GC spares recent pushes. */
  pushed_at: Generated<number | null>;
}

export interface ManifestBlobsTable {
  manifest_id: number;
  blob_id: number;
}

export interface ManifestChildrenTable {
  manifest_id: number;
  child_id: number;
}

export interface TagsTable {
  id: Generated<number>;
  repository_id: number;
  name: string;
  manifest_id: number;
  lifetime_start: number;
  /** Null while the tag is live; set when it is moved or deleted (the row stays as history). */
  lifetime_end: number | null;
  /** Hidden tags keep content alive without being listed. */
  hidden: number;
  /** Proxy-cache tags: when the cached tag stops being served without an upstream check (epoch ms); null = never. */
  expires_at: Generated<number | null>;
  /** 1: the live tag cannot be moved, deleted, expired or pruned (registry/tag-immutability.ts). */
  immutable: Generated<number>;
}

export interface UploadsTable {
  id: string;
  repository_id: number;
  size: number;
  created_at: number;
  updated_at: number;
  /** The request writing a chunk now, until `chunk_expires_at` (migrations/0017-upload-chunk-claims.ts). */
  chunk_writer: string | null;
  chunk_expires_at: Generated<number>;
  /** The process of `chunk_writer` when it holds a liveness lock (migrations/0020-claim-processes.ts). */
  chunk_process: string | null;
}

export interface UsersTable {
  id: Generated<number>;
  namespace_id: number;
  /** scrypt hash (`scrypt$N$r$p$salt$hash`), null for accounts that cannot log in with a password. */
  password_hash: string | null;
  superuser: Generated<number>;
  created_at: number;
}

export interface TeamsTable {
  id: Generated<number>;
  namespace_id: number;
  name: string;
  /** 'member' | 'creator' | 'admin' */
  role: string;
  description: string | null;
  created_at: number;
}

export interface TeamMembersTable {
  team_id: number;
  user_id: number;
}

export interface RobotsTable {
  id: Generated<number>;
  namespace_id: number;
  /** The short name; the full robot name is `<namespace>+<name>`. */
  name: string;
  description: string | null;
  /** sha256 of the robot token: what logins are checked against. */
  token_hash: string;
  /** The token sealed with the registry's secret key, for its administrators to read again; null when not kept. */
  token_enc: string | null;
  created_at: number;
}

export interface PermissionsTable {
  repository_id: number;
  /** 'user' | 'team' | 'robot' */
  subject_kind: string;
  subject_id: number;
  /** 'read' | 'write' | 'admin' */
  role: string;
}

export interface DefaultPermissionsTable {
  namespace_id: number;
  subject_kind: string;
  subject_id: number;
  role: string;
}

export interface ApiTokensTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  token_hash: string;
  /** Space-separated scopes. */
  scopes: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
  /** 'api' (an API token) or 'app' (an app-specific token, a password for registry clients). */
  kind: Generated<string>;
  /** The public id of an app-specific token; null for API tokens. */
  uuid: string | null;
  /** The OAuth application an API token was granted through, if any. */
  application_id: number | null;
}

/** An OAuth application of an organization (Quay's); only the SHA-256 of its client secret is stored. */
export interface OAuthApplicationsTable {
  id: Generated<number>;
  namespace_id: number;
  name: string;
  client_id: string;
  client_secret_hash: string;
  description: string;
  application_uri: string;
  redirect_uri: string;
  avatar_email: string | null;
  created_at: number;
}

/** A signed-in session of `/api/v1/signin`: only the SHA-256 of the cookie's secret is stored. */
export interface SessionsTable {
  id: Generated<number>;
  user_id: number;
  token_hash: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  kind: string;
  namespace: string | null;
  repository: string | null;
  /** 'user' | 'robot' | 'anonymous' | 'system' */
  actor_kind: string;
  actor_name: string | null;
  ip: string | null;
  user_agent: string | null;
  /** JSON object */
  metadata: string | null;
  created_at: number;
}

export interface SigningKeysTable {
  kid: string;
  algorithm: string;
  private_jwk: string;
  created_at: number;
}

/** An organization that is a pull-through cache of an upstream registry (one row per organization). */
export interface ProxyCacheConfigsTable {
  namespace_id: number;
  /** `host[:port][/namespace]` as configured. */
  upstream_registry: string;
  insecure: number;
  /** 0 = cached tags never expire. */
  expiration_s: number;
  anonymous_pull: number;
  revalidate_interval_s: number;
  prefetch_layers: number;
  /** JSON array of lower-case `host[:port]`. */
  answers_for: string;
  /** SecretBox strings (`v1:…`); both null when the upstream is used anonymously. */
  username_enc: string | null;
  password_enc: string | null;
  created_at: number;
  updated_at: number;
}

/** An auto-prune policy of a namespace (`repository_id` null) or of one of its repositories. */
export interface AutoprunePoliciesTable {
  uuid: string;
  namespace_id: number;
  repository_id: number | null;
  /** 'number_of_tags' | 'creation_date' */
  method: string;
  /** A number of tags, or an age in seconds. */
  value: number;
  /** A creation_date duration as given ("2w"); null for number_of_tags. */
  value_text: string | null;
  /** A regular expression (unanchored search); null = every tag. */
  tag_pattern: string | null;
  /** 1 = prune among the tags the pattern matches; 0 = among those it does not match. */
  tag_pattern_matches: number;
  created_at: number;
}

/** The auto-prune worker's queue: one row per namespace it visits, leased by `last_ran_ms`. */
export interface AutopruneTasksTable {
  namespace_id: number;
  last_ran_ms: number | null;
  /** 'queued' | 'running' | 'success' | 'failure: <message>' */
  status: string | null;
}

/** Per-digest guards between blob writers and garbage collection (db/blob-guard-store.ts). */
export interface BlobGuardsTable {
  id: Generated<number>;
  digest: string;
  /** 'write': a writer is committing the bytes; 'delete': GC is deleting them. */
  kind: string;
  /** Epoch ms; an expired guard (its holder died) is ignored. */
  expires_at: number;
  /** The holder's process when it holds a liveness lock (migrations/0021-lease-processes.ts). */
  owner_process: string | null;
}

/** One row per scheduled job (e.g. 'gc'): who holds it until when, and when it last finished. */
export interface WorkerLeasesTable {
  name: string;
  holder: string | null;
  expires_at: Generated<number>;
  finished_at: number | null;
  /** The process of `holder` when it holds a liveness lock (migrations/0021-lease-processes.ts). */
  holder_process: string | null;
}

/** A blob fill in progress and the process doing it (db/blob-fill-lease-store.ts). */
export interface BlobFillsTable {
  digest: string;
  /** The filling process's instance id. */
  owner: string;
  /** Where the other processes stream the fill from (`cluster.advertise_url`). */
  owner_url: string;
  /** Epoch ms; the owner renews it while the fill runs; past it, another process may take the fill over. */
  expires_at: number;
  started_at: number;
  /** The owner's process when it holds a liveness lock (migrations/0020-claim-processes.ts). */
  owner_process: string | null;
}

/** A storage location that holds a blob's bytes (db/blob-placement-store.ts). */
export interface BlobPlacementsTable {
  digest: string;
  location: string;
  created_at: number;
}

/** The marker id each storage location's storage holds (db/storage-location-store.ts). */
export interface StorageLocationsTable {
  name: string;
  marker_id: string;
  recorded_at: number;
}

/** A copy of a blob to a location still to do (db/replication-job-store.ts). */
export interface ReplicationJobsTable {
  id: Generated<number>;
  digest: string;
  location: string;
  /** 'queued' (never tried) or 'retrying' (the last attempt failed). */
  state: Generated<string>;
  /** Failed attempts so far. */
  attempts: Generated<number>;
  /** Epoch ms; the job is not taken before. */
  next_attempt_at: number;
  /** The worker holding the job, until `lease_expires_at` (epoch ms); afterwards anyone may take it. */
  lease_owner: string | null;
  lease_expires_at: number | null;
  /** The process of `lease_owner` when it holds a liveness lock (migrations/0020-claim-processes.ts). */
  lease_process: string | null;
  last_error: string | null;
  created_at: number;
}

/** A location an organization's blobs are replicated to, besides `replication.targets`. */
export interface NamespaceReplicationTargetsTable {
  namespace_id: number;
  location: string;
}

/** A namespace's storage quota (one per namespace). */
export interface NamespaceQuotasTable {
  id: Generated<number>;
  namespace_id: number;
  limit_bytes: number;
  created_at: number;
}

/** A threshold of a quota: 'Warning' or 'Reject' at `percent` of its limit. */
export interface QuotaLimitsTable {
  id: Generated<number>;
  quota_id: number;
  /** 'Warning' | 'Reject' */
  kind: string;
  percent: number;
}

/** How many manifests of a repository use a blob (the blob counts once towards the repository's size). */
export interface QuotaRepositoryBlobsTable {
  repository_id: number;
  blob_id: number;
  refs: number;
}

/** How many repositories of a namespace use a blob (the blob counts once towards the namespace's size). */
export interface QuotaNamespaceBlobsTable {
  namespace_id: number;
  blob_id: number;
  refs: number;
}

export interface RepositorySizesTable {
  repository_id: number;
  size_bytes: number;
}

export interface NamespaceSizesTable {
  namespace_id: number;
  size_bytes: number;
}

/** A setting published by the last `wharf serve` to start (JSON text), for the CLI to compare with its own. */
export interface ServerSettingsTable {
  name: string;
  value: string;
  updated_at: number;
}

/** One failed login under one throttling key (migrations/0014-login-failures.ts). */
export interface LoginFailuresTable {
  key: string;
  at: number;
}

/** A user's star on a repository (migrations/0009-collection-lookups.ts). */
export interface RepositoryStarsTable {
  user_id: number;
  repository_id: number;
  created_at: number;
}

/** A message superusers publish to every user of the registry. */
export interface GlobalMessagesTable {
  uuid: string;
  content: string;
  /** 'text/plain' | 'text/markdown' */
  media_type: string;
  /** 'info' | 'warning' | 'error' */
  severity: string;
  created_at: number;
}

/** An OIDC issuer and subject trusted to act as a robot, in the order they were given. */
export interface RobotFederationsTable {
  robot_id: number;
  position: number;
  issuer: string;
  subject: string;
}

/** A robot on a team: it gets the team's repository permissions. */
export interface TeamRobotMembersTable {
  team_id: number;
  robot_id: number;
}

/** A default permission that applies only to repositories `creator_user_id` creates in the organization. */
export interface CreatorDefaultPermissionsTable {
  namespace_id: number;
  creator_user_id: number;
  subject_kind: string;
  subject_id: number;
  role: string;
}

/** An immutability policy of a namespace (`repository_id` null) or of one of its repositories. */
export interface ImmutabilityPoliciesTable {
  uuid: string;
  namespace_id: number;
  repository_id: number | null;
  /** A regular expression matched at the start of the tag name. */
  tag_pattern: string;
  /** 1 = tags the pattern matches are immutable; 0 = tags it does not match. */
  tag_pattern_matches: number;
  created_at: number;
}

/** A label added to a manifest through the API (labels of the image configuration are read from it). */
export interface ManifestLabelsTable {
  uuid: string;
  manifest_id: number;
  key: string;
  value: string;
  /** 'text/plain' | 'application/json' */
  media_type: string;
  created_at: number;
}

/** A repository kept in sync with an external one (migrations/0011-repository-mirrors.ts). */
export interface RepositoryMirrorsTable {
  repository_id: number;
  is_enabled: number;
  external_reference: string;
  username_enc: string | null;
  password_enc: string | null;
  verify_tls: number;
  unsigned_images: number;
  /** JSON {http_proxy?, https_proxy?, no_proxy?} */
  proxy: string;
  /** JSON array of tag globs */
  root_rule: string;
  /** JSON array of architectures; [] = all */
  architecture_filter: string;
  rollback_on_failure: number;
  sync_interval_s: number;
  timeout_s: number;
  sync_start_at: number | null;
  sync_expires_at: number | null;
  sync_retries_remaining: number;
  /** 'NEVER_RUN' | 'SYNC_NOW' | 'SYNCING' | 'SUCCESS' | 'FAIL' | 'CANCEL' */
  sync_status: string;
  sync_txn: string;
  sync_holder: string | null;
  /** The process of `sync_holder` when it holds a liveness lock (migrations/0021-lease-processes.ts). */
  sync_process: string | null;
  run_started_at: number | null;
  run_tags_total: number | null;
  run_tags_done: number | null;
  run_bytes: number | null;
  run_current_tag: string | null;
  last_started_at: number | null;
  last_finished_at: number | null;
  /** 'SUCCESS' | 'PARTIAL' | 'FAIL' | 'CANCEL' */
  last_outcome: string | null;
  last_message: string | null;
  last_bytes: number | null;
  created_at: number;
  updated_at: number;
}

/** An organization kept as a copy of an external namespace (migrations/0012-organization-mirrors.ts). */
export interface OrganizationMirrorsTable {
  namespace_id: number;
  is_enabled: number;
  /** 'quay' | 'harbor' */
  registry_type: string;
  registry_url: string;
  external_namespace: string;
  username_enc: string | null;
  password_enc: string | null;
  verify_tls: number;
  /** JSON {http_proxy?, https_proxy?, no_proxy?} */
  proxy: string;
  robot_id: number | null;
  /** 'public' | 'private' */
  visibility: string;
  /** JSON array of repository-name globs; [] = all */
  repository_filters: string;
  sync_interval_s: number;
  timeout_s: number;
  sync_start_at: number | null;
  sync_expires_at: number | null;
  sync_retries_remaining: number;
  /** 'NEVER_RUN' | 'SYNC_NOW' | 'SYNCING' | 'SUCCESS' | 'FAIL' | 'CANCEL' */
  sync_status: string;
  sync_txn: string;
  sync_holder: string | null;
  /** The process of `sync_holder` when it holds a liveness lock (migrations/0021-lease-processes.ts). */
  sync_process: string | null;
  last_finished_at: number | null;
  last_message: string | null;
  created_at: number;
  updated_at: number;
}

/** A repository an organization mirror found at its source. */
export interface OrganizationMirrorRepositoriesTable {
  namespace_id: number;
  name: string;
  repository_id: number | null;
  discovered_at: number;
  vanished_at: number | null;
  message: string | null;
}

export interface Database {
  namespaces: NamespacesTable;
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_blobs: ManifestBlobsTable;
  manifest_children: ManifestChildrenTable;
  tags: TagsTable;
  uploads: UploadsTable;
  users: UsersTable;
  teams: TeamsTable;
  team_members: TeamMembersTable;
  robots: RobotsTable;
  repository_permissions: PermissionsTable;
  default_permissions: DefaultPermissionsTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
  signing_keys: SigningKeysTable;
  proxy_cache_configs: ProxyCacheConfigsTable;
  blob_guards: BlobGuardsTable;
  worker_leases: WorkerLeasesTable;
  blob_fills: BlobFillsTable;
  blob_placements: BlobPlacementsTable;
  storage_locations: StorageLocationsTable;
  replication_jobs: ReplicationJobsTable;
  namespace_replication_targets: NamespaceReplicationTargetsTable;
  autoprune_policies: AutoprunePoliciesTable;
  autoprune_tasks: AutopruneTasksTable;
  namespace_quotas: NamespaceQuotasTable;
  quota_limits: QuotaLimitsTable;
  quota_repository_blobs: QuotaRepositoryBlobsTable;
  quota_namespace_blobs: QuotaNamespaceBlobsTable;
  repository_sizes: RepositorySizesTable;
  namespace_sizes: NamespaceSizesTable;
  server_settings: ServerSettingsTable;
  login_failures: LoginFailuresTable;
  repository_stars: RepositoryStarsTable;
  global_messages: GlobalMessagesTable;
  robot_federations: RobotFederationsTable;
  team_robot_members: TeamRobotMembersTable;
  creator_default_permissions: CreatorDefaultPermissionsTable;
  sessions: SessionsTable;
  oauth_applications: OAuthApplicationsTable;
  immutability_policies: ImmutabilityPoliciesTable;
  manifest_labels: ManifestLabelsTable;
  repository_mirrors: RepositoryMirrorsTable;
  organization_mirrors: OrganizationMirrorsTable;
  organization_mirror_repositories: OrganizationMirrorRepositoriesTable;
}

export type ManifestRow = Selectable<ManifestsTable>;
export type NewManifest = Insertable<ManifestsTable>;
