/**
 * The one configuration schema. A YAML file (`--config`) and `WHARF_*` environment variables are
 * merged and validated here once at start; the result is frozen and passed down. docs/configuration.md
 * documents every key (a test checks that each leaf is mentioned there).
 *
 * Environment variables name a key by its path in upper case joined by "_":
 * `WHARF_PORT` → `port`, `WHARF_DATA_DIR` → `data_dir`, `WHARF_DB_URL` → `db.url`.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (e.g. 4194304, "4 MiB", "10GB")` });
    return z.NEVER;
  }
  return n;
});

const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (e.g. 30 for seconds, "30s", "5m", "2w")` });
    return z.NEVER;
  }
  return n;
});

/** Names of storage locations (`storage.locations`). */
export const LOCATION_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** The one location of a configuration without `storage.locations`. */
export const DEFAULT_LOCATION = 'default';

/** One bucket of an S3-compatible object store (`storage.s3`, and `s3` of an S3 storage location). */
const s3Fields = z.strictObject({
    /** Endpoint URL, e.g. `http://127.0.0.1:7480`; unset for AWS's own endpoints. */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    bucket: z.string().min(3).max(63).optional(),
    region: z.string().min(1).default('us-east-1'),
    /** Credentials; unset for the AWS SDK's own chain (its environment variables, instance roles). */
    access_key_id: z.string().min(1).optional(),
    secret_access_key: z.string().min(1).optional(),
    /** `http://endpoint/bucket/key` rather than `http://bucket.endpoint/key` (RGW, MinIO and most self-hosted stores need it). */
    force_path_style: z.boolean().default(true),
    /** Key prefix of every object Wharf writes in the bucket (to share a bucket). */
    prefix: z.string().regex(/^(?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]*$/).default(''),
    /** Bytes a writer buffers before sending them as one multipart part (memory per upload in progress). */
    part_size: size.prefault(8 * 1024 * 1024).refine((n) => n >= 5 * 1024 * 1024 && n <= 5 * 1024 * 1024 * 1024, { message: 'must be between 5 MiB and 5 GiB (S3 part limits)' }),
    /**
     * Blob pulls answered with a `307` to a presigned GET URL of the object, so the bytes go from the
     * store to the client; off, Wharf streams them.
     */
    redirect: z.boolean().default(false),
    /** The store's endpoint as clients reach it, for redirect URLs; default `endpoint`. */
    redirect_endpoint: z.url({ protocol: /^https?$/ }).optional(),
    /** How long a presigned redirect URL stays valid (S3 allows at most 7 days). */
    redirect_expiry: duration.prefault('5m').refine((n) => n >= 1000 && n <= 7 * 24 * 3600 * 1000, { message: 'must be between 1 second and 7 days' }),
    /** A request to the store that has not connected within this long fails (the store is unavailable). */
    connect_timeout: duration.prefault('5s').refine((n) => n >= 100, { message: 'must be at least 100 ms' }),
    /**
     * A request whose connection to the store stays silent this long fails: no answer yet, or a
     * response body that stopped arriving.
     */
    request_timeout: duration.prefault('60s').refine((n) => n >= 1000, { message: 'must be at least 1 second' }),
    /**
     * An `https://` endpoint: a PEM file of the certificate authorities trusted for it, instead of Node's
     * own (Mozilla's list and NODE_EXTRA_CA_CERTS), e.g. a private CA.
     */
    ca_file: z.string().min(1).optional(),
});
const s3KeysTogether = (s: z.output<typeof s3Fields>) => (s.access_key_id === undefined) === (s.secret_access_key === undefined);
const s3KeysMessage = { message: 'access_key_id and secret_access_key must be given together' };
const s3Storage = s3Fields.prefault({}).refine(s3KeysTogether, s3KeysMessage);

export const configSchema = z.strictObject({
  /** Address to listen on. */
  host: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(5000),
  /** Externally visible base URL (scheme://host[:port]); derived from the request when unset. */
  base_url: z.url().optional(),
  /**
   * Comma-separated addresses or CIDRs of reverse proxies whose `X-Forwarded-For`/`-Proto`/`-Host` are
   * believed, so that logs, the audit log and login throttling see the client's own address.
   */
  trust_proxy: z.string().optional(),
  /** Where the embedded defaults keep their files: the SQLite database and the blob store. */
  data_dir: z.string().default('./data'),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  db: z
    .strictObject({
      /** `postgres://user:pass@host:port/db`, or `sqlite:<path>`; default `sqlite:<data_dir>/wharf.db`. */
      url: z
        .string()
        .refine((u) => /^(sqlite:.|postgres(ql)?:\/\/)/.test(u), { message: 'must be sqlite:<path> or postgres://user:password@host:port/database (no other database is supported)' })
        .refine((u) => !/^postgres(ql)?:\/\//.test(u) || URL.canParse(u), { message: 'is not a valid URL (percent-encode "@", ":" and "/" in the password)' })
        .optional(),
      /** Connection pool size for PostgreSQL. */
      pool_size: z.number().int().min(1).max(200).default(10),
      /**
       * PostgreSQL: run the hot reads as named prepared statements (planned once per connection). Turn
       * off behind a pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
       */
      prepared_statements: z.boolean().default(true),
    })
    .prefault({}),
  storage: z
    .strictObject({
      driver: z.enum(['filesystem', 'memory', 's3']).default('filesystem'),
      /** Root of the filesystem driver; default `<data_dir>/blobs`. */
      path: z.string().optional(),
      /** fsync blobs before they become visible. */
      fsync: z.boolean().default(true),
      /** Large writes of new blobs around the page cache (O_DIRECT) where the filesystem allows it. */
      direct_io: z.boolean().default(true),
      /** The S3 driver: one bucket of an S3-compatible object store. */
      s3: s3Storage,
      /**
       * Named storage locations (geo-replication), each a driver of its own; unset: one location named
       * `default` made of `driver`, `path`, `fsync`, `direct_io` and `s3` above. A YAML mapping, or JSON text in the
       * environment variable.
       */
      locations: z
        .preprocess(
          (v, ctx) => {
            if (typeof v !== 'string') return v;
            try {
              return JSON.parse(v);
            } catch {
              ctx.addIssue({ code: 'custom', message: 'give a JSON object of locations, e.g. {"fs":{"driver":"filesystem","path":"/srv/blobs"}}' });
              return z.NEVER;
            }
          },
          z
            .record(
              z.string(),
              z
                .strictObject({
                  driver: z.enum(['filesystem', 'memory', 's3']),
                  /** Root of a filesystem location; default `<data_dir>/locations/<name>`. */
                  path: z.string().optional(),
                  fsync: z.boolean().default(true),
                  direct_io: z.boolean().default(true),
                  s3: s3Fields.refine(s3KeysTogether, s3KeysMessage).optional(),
                })
                .refine((l) => l.driver !== 's3' || l.s3?.bucket !== undefined, { message: 'an s3 location needs s3.bucket' })
                .refine((l) => l.driver === 's3' || l.s3 === undefined, { message: 's3 settings belong to a location whose driver is s3' })
                .refine((l) => l.driver === 'filesystem' || l.path === undefined, { message: 'path belongs to a location whose driver is filesystem' }),
            )
            .refine((r) => Object.keys(r).length > 0, { message: 'name at least one location, or leave storage.locations out' })
            .superRefine((r, ctx) => {
              for (const name of Object.keys(r)) {
                if (!LOCATION_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: `${JSON.stringify(name)} is not a location name (a lower-case letter, then up to 31 of a-z, 0-9, "_" and "-")` });
              }
            }),
        )
        .optional(),
      /**
       * This process's order of preference among the locations: writes go to the first one that is up,
       * reads try them in this order. Locations not named follow in configuration order. A YAML list, or
       * names separated by commas or spaces.
       */
      preference: z.preprocess((v) => (typeof v === 'string' ? v.split(/[\s,]+/).filter(Boolean) : v), z.array(z.string())).default([]),
    })
    .prefault({})
    .refine((s) => s.driver !== 's3' || s.s3.bucket !== undefined, { message: 'storage.driver s3 needs storage.s3.bucket' })
    .superRefine((s, ctx) => {
      const names = s.locations ? Object.keys(s.locations) : [DEFAULT_LOCATION];
      const unknown = s.preference.filter((n) => !names.includes(n));
      const repeated = s.preference.filter((n, i) => s.preference.indexOf(n) !== i);
      if (unknown.length) {
        const quoted = unknown.map((n) => JSON.stringify(n)).join(', ');
        ctx.addIssue({ code: 'custom', path: ['preference'], message: `no storage location named ${quoted}; the locations are ${names.join(', ')}` });
      } else if (repeated.length) {
        ctx.addIssue({ code: 'custom', path: ['preference'], message: `names ${JSON.stringify(repeated[0])} more than once` });
      }
    }),
  tls: z
    .strictObject({
      cert: z.string().optional(),
      key: z.string().optional(),
      /** Generate a self-signed certificate for this host name (kept under `<data_dir>/tls`). */
      self_signed_hostname: z.string().optional(),
    })
    .prefault({})
    .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'tls.cert and tls.key must be given together' }),
  registry: z
    .strictObject({
      /** Largest manifest accepted on push. */
      max_manifest_size: size.prefault(4 * 1024 * 1024),
      /** Namespace for one-component repository names (`alpine` → `library/alpine`). */
      default_namespace: z.string().regex(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/).default('library'),
      /** Uploads untouched for this long are cancelled and their bytes removed. */
      upload_timeout: duration.prefault('24h'),
      /** Largest page of tags or repositories returned by one list request. */
      max_page_size: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** Require credentials (token auth on `/v2`); false runs an open registry where anyone may push. */
      enabled: z.boolean().default(true),
      /** Lifetime of the bearer tokens `/v2/auth` issues. */
      token_ttl: duration.prefault('5m'),
      /** Name of the superuser created on first start with an empty database. */
      admin_username: z.string().regex(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/).min(2).max(255).default('admin'),
      /** Initial password of that superuser (random and printed once when unset). Also `WHARF_ADMIN_PASSWORD`. */
      admin_password: z.string().min(8).max(1024).optional(),
      /** Visibility of repositories created by a push. */
      default_visibility: z.enum(['private', 'public']).default('private'),
      /** Failed logins allowed per user name and per client address in any minute before 429. */
      login_failures_per_minute: z.number().int().min(1).default(10),
      /**
       * Create no superuser on the first start: the first user is created through `POST
       * /api/v1/user/initialize` (Quay's first-user bootstrap) while the registry has no user.
       */
      user_initialize: z.boolean().default(false),
      /** A signed-in session (`/api/v1/signin`) unused this long ends. */
      session_idle_timeout: duration.prefault('12h').refine((ms) => ms >= 60_000, { message: 'must be at least 1m' }),
      /** A signed-in session ends this long after sign-in, used or not. */
      session_max_age: duration.prefault('7d').refine((ms) => ms >= 60_000, { message: 'must be at least 1m' }),
      /** Lifetime of new app-specific tokens (`/api/v1/user/apptoken`); unset: they do not expire. */
      app_token_expiration: duration.refine((ms) => ms >= 60_000, { message: 'must be at least 1m' }).optional(),
    })
    .prefault({})
    .refine((a) => !(a.user_initialize && a.admin_password !== undefined), {
      message: 'auth.user_initialize creates no superuser on the first start, so auth.admin_password (WHARF_ADMIN_PASSWORD) has no use with it; set one or the other',
    }),
  proxy_cache: z
    .strictObject({
      /** Organizations may be proxy caches for upstream registries; false turns the feature off everywhere. */
      enabled: z.boolean().default(true),
      /**
       * Host names, addresses or CIDRs of upstreams that may resolve to loopback or private addresses
       * (e.g. an internal registry at 10.0.0.5). Link-local and cloud metadata addresses are always refused.
       * A YAML list, or comma-separated text (as an environment variable must be).
       */
      allow_private_upstreams: z
        .preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(z.string().min(1)))
        .default([]),
      /** Key that encrypts upstream credentials and robot tokens at rest (32 bytes, base64 or hex); default a key generated into `<data_dir>/proxy-secret.key`. */
      secret_key: z.string().min(1).optional(),
      /** Give up connecting to an upstream after this long. */
      connect_timeout: duration.prefault('5s'),
      /** Give up when an upstream has not started answering this long after the request was sent. */
      first_byte_timeout: duration.prefault('10s'),
      /** Give up on an upstream body that stalls this long. */
      idle_timeout: duration.prefault('30s'),
      /** Consecutive failures that open an upstream's circuit breaker (requests then fail at once). */
      breaker_failures: z.number().int().min(1).default(5),
      /**
       * How long an open breaker refuses pulls that have a cached copy to serve before letting one probe
       * through (doubles while the upstream stays down). Pulls with nothing cached probe at least once a second.
       */
      breaker_cooldown: duration.prefault('10s'),
      /** How long an upstream's tag list is reused before asking again. */
      tags_list_ttl: duration.prefault('30s'),
      /**
       * Proxy organization that answers `/v2` requests naming no local namespace and carrying no `ns=`
       * (Docker's `registry-mirrors`): `/v2/library/nginx/...` is served as `/v2/<org>/library/nginx/...`.
       */
      default_organization: z.string().optional(),
    })
    .prefault({}),
  autoprune: z
    .strictObject({
      /** Run the auto-prune worker in this process (policies can be managed either way). */
      enabled: z.boolean().default(true),
      /** How often each namespace's policies are applied; new or changed policies apply within 30 seconds. */
      interval: duration.prefault('5m').refine((ms) => ms >= 1000, { message: 'must be at least 1s' }),
      /**
       * Registry-wide policies for every namespace without namespace policies of its own (repository
       * policies still apply on top). A YAML list, or JSON text in the environment variable.
       */
      default_policies: z
        .preprocess(
          (v, ctx) => {
            if (typeof v !== 'string') return v;
            try {
              return v.trim() === '' ? [] : JSON.parse(v);
            } catch {
              ctx.addIssue({ code: 'custom', message: 'give a JSON list of policies, e.g. [{"method":"creation_date","value":"4w"}]' });
              return z.NEVER;
            }
          },
          z.array(
            z.strictObject({
              method: z.enum(['number_of_tags', 'creation_date']),
              value: z.union([z.number(), z.string()]),
              tag_pattern: z.string().optional(),
              tag_pattern_matches: z.boolean().default(true),
            }),
          ),
        )
        .default([]),
    })
    .prefault({}),
  gc: z
    .strictObject({
      /** Run garbage collection in this process on a schedule (`wharf gc` runs a pass either way). */
      enabled: z.boolean().default(true),
      /** How often a pass runs (replicas share one schedule through the database). */
      interval: duration.prefault('1h').refine((ms) => ms >= 1000, { message: 'must be at least 1s' }),
      /**
       * How long a scheduled pass stays leased to its process without a renewal (renewed every quarter of
       * it while the pass runs): when that process dies, another one takes the pass over after this.
       */
      lease: duration.prefault('10m').refine((ms) => ms >= 1000, { message: 'must be at least 1s' }),
      /** Manifests pushed and blobs uploaded or linked this recently are never collected (in-flight pushes). */
      grace_period: duration.prefault('1h'),
      /** How long deleted, moved and expired tags stay restorable in namespaces that chose no window. */
      time_machine_default: duration.prefault('2w'),
      /** The windows a namespace may choose (`tag_expiration_s`). A YAML list, or comma-separated text. */
      time_machine_options: z
        .preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(duration).min(1))
        .prefault(['0s', '1d', '1w', '2w', '4w']),
      /** Rows per batch (each batch is one short transaction). */
      batch_size: z.number().int().min(1).max(10_000).default(500),
      /**
       * Blob keys in storage each scheduled pass checks for bytes no blob row records (a crash left them),
       * continuing where the previous pass stopped; 0 turns the sweep off (`wharf gc` checks all of them).
       */
      sweep_batch: z.number().int().min(0).max(10_000_000).default(10_000),
    })
    .prefault({})
    .refine((g) => g.time_machine_options.includes(g.time_machine_default), { message: 'gc.time_machine_default must be one of gc.time_machine_options' })
    .refine((g) => [g.time_machine_default, ...g.time_machine_options].every((ms) => ms % 1000 === 0), { message: 'time-machine windows are whole seconds' }),
  mirror: z
    .strictObject({
      /** Run the repository-mirror worker in this process (mirrors can be configured either way). */
      enabled: z.boolean().default(true),
      /** How often the worker looks for due mirrors. */
      poll_interval: duration.prefault('30s').refine((ms) => ms >= 100, { message: 'must be at least 100ms' }),
      /** Mirror runs this process runs at the same time. */
      concurrent_runs: z.number().int().min(1).max(64).default(2),
      /** How long a claimed mirror stays claimed without its worker renewing the claim (a dead worker's mirror is taken over after this). */
      lease: duration.prefault('2m').refine((ms) => ms >= 1000, { message: 'must be at least 1s' }),
      /** Tags of one run synced at once (their upstream HEADs and manifests). */
      tag_concurrency: z.number().int().min(1).max(64).default(8),
      /** Blob transfers in flight per run. */
      blob_concurrency: z.number().int().min(1).max(64).default(6),
    })
    .prefault({}),
  replication: z
    .strictObject({
      /** Run the replication worker in this process (only when several storage locations are configured). */
      enabled: z.boolean().default(true),
      /**
       * Locations every blob is copied to; empty: every configured location. Organizations add their own
       * (`/api/v1/organization/{org}/replication`). A YAML list, or comma-separated text.
       */
      targets: z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(z.string().min(1))).default([]),
      /** Blob copies this process runs at once. */
      concurrency: z.number().int().min(1).max(256).default(4),
      /** How often the worker looks for due copies once the queue is empty. */
      poll_interval: duration.prefault('5s').refine((ms) => ms >= 100, { message: 'must be at least 100ms' }),
      /** How long a copy stays claimed without its worker renewing the claim (every third of it): a dead worker's copy is taken over after this. */
      lease: duration.prefault('5m').refine((ms) => ms >= 1000, { message: 'must be at least 1s' }),
      /** Delay before retrying a failed copy; doubles with each further failure, up to `retry_max`. */
      retry_base: duration.prefault('10s').refine((ms) => ms >= 100, { message: 'must be at least 100ms' }),
      /** The longest delay between two attempts of a failing copy (a location that was down is caught up within this after it returns). */
      retry_max: duration.prefault('5m').refine((ms) => ms >= 1000, { message: 'must be at least 1s' }),
    })
    .prefault({})
    .refine((r) => r.retry_base <= r.retry_max, { message: 'replication.retry_base must not exceed replication.retry_max' }),
  cluster: z
    .strictObject({
      /**
       * The URL the other processes sharing the database reach this one at, to stream the proxy-cache
       * fills it runs (`/internal/fills`); default `http(s)://<host, or this machine's name when host is a
       * wildcard>:<port>`.
       */
      advertise_url: z.url().optional(),
      /** How long a process's claim on a fill holds without renewal (every third of it): a dead owner's fill is taken over after this at the latest. */
      fill_lease: duration.prefault('15s').refine((ms) => ms >= 1000, { message: 'must be at least 1s' }),
    })
    .prefault({}),
  /** How long to let requests in flight finish on SIGTERM before closing connections. */
  shutdown_timeout: duration.prefault('30s'),
  /**
   * How far the JavaScript heap may grow past what survived the last full garbage collection before the
   * next one, in percent (V8's `--heap-growing-percent`, set by `wharf serve`); 0 leaves it to V8.
   */
  heap_growing_percent: z.number().int().min(0).max(1000).default(100),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
