/**
 * Repository mirroring (Quay's API, plus DELETE, which Quay lacks). Repository admins and superusers;
 * the repository name may be nested and is found by repository-router.ts.
 *
 *   GET    /repository/{repo}/mirror              the configuration (never the password) with the run
 *                                                 in flight (`progress`) and the last one (`last_run`)
 *   POST   /repository/{repo}/mirror              201 "": make the repository a mirror; 409 when it is one
 *   PUT    /repository/{repo}/mirror              201 "": change the fields given (Quay's status)
 *   DELETE /repository/{repo}/mirror              204: back to an ordinary repository; 409 while syncing
 *   POST   /repository/{repo}/mirror/sync-now     204: run as soon as a worker is free; 404 while syncing
 *   POST   /repository/{repo}/mirror/sync-cancel  204: stop the run between two tags; 404 when none
 *   GET    /repository/mirror/health              200 healthy, 503 not (Quay's shape): superusers for
 *                                                 the whole registry, `?namespace=` for its members
 *
 * The health path is also the path of a repository `mirror/health`: that repository's own routes are
 * reached with its name encoded, `/repository/mirror%2Fhealth`.
 */
import { z } from 'zod';
import { FIELD_NAMES, formatDate } from '../../registry/mirror/mirror-config-input.js';
import type { MirrorView } from '../../registry/mirror/mirror-config-service.js';
import type { ApiContext } from './context.js';
import { ApiError, notFound, unauthorized } from './errors.js';
import { visibleOrganization } from './organization-access.js';
import { queryBool, repositoryPathName } from './params.js';
import { requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH } from './route.js';

const one = z.object({ repository: repositoryPathName });
/** A JSON object with Quay's fields, their values checked by the service (for Quay's messages); others ignored. */
const Body = z.looseObject(Object.fromEntries(FIELD_NAMES.map((k) => [k, z.unknown().optional()])));

const ProxySchema = z.strictObject({ http_proxy: z.string().nullable(), https_proxy: z.string().nullable(), no_proxy: z.string().nullable() });
const MirrorSchema = z.strictObject({
  is_enabled: z.boolean(),
  mirror_type: z.literal('PULL'),
  external_reference: z.string(),
  external_registry_username: z.string().nullable(),
  external_registry_config: z.strictObject({ verify_tls: z.boolean(), unsigned_images: z.boolean(), proxy: ProxySchema }),
  sync_interval: z.int(),
  sync_start_date: z.string().nullable(),
  sync_expiration_date: z.string().nullable(),
  sync_retries_remaining: z.int(),
  sync_status: z.enum(['NEVER_RUN', 'SYNC_NOW', 'SYNCING', 'SUCCESS', 'FAIL', 'CANCEL']),
  root_rule: z.strictObject({ rule_kind: z.literal('tag_glob_csv'), rule_value: z.array(z.string()) }),
  robot_username: z.string().nullable(),
  skopeo_timeout_interval: z.int(),
  architecture_filter: z.array(z.string()),
  rollback_on_failure: z.boolean(),
  /** The run in flight (SYNCING), else null. */
  progress: z.strictObject({ tags_total: z.int().nullable(), tags_done: z.int(), bytes: z.number(), current_tag: z.string().nullable(), started: z.string().nullable() }).nullable(),
  /** The last finished run, else null. */
  last_run: z
    .strictObject({ started: z.string().nullable(), finished: z.string().nullable(), outcome: z.enum(['SUCCESS', 'PARTIAL', 'FAIL', 'CANCEL']), message: z.string().nullable(), bytes: z.number() })
    .nullable(),
});

/** A mirror as the API (and `wharf mirror show`) shows it. */
export function mirrorView(m: MirrorView): z.infer<typeof MirrorSchema> {
  const run = m.sync.status === 'SYNCING' ? m.sync.run : null;
  const last = m.sync.last;
  return {
    is_enabled: m.enabled,
    mirror_type: 'PULL',
    external_reference: m.externalReference,
    external_registry_username: m.username,
    external_registry_config: {
      verify_tls: m.verifyTls,
      unsigned_images: m.unsignedImages,
      proxy: { http_proxy: m.proxy.http_proxy ?? null, https_proxy: m.proxy.https_proxy ?? null, no_proxy: m.proxy.no_proxy ?? null },
    },
    sync_interval: m.syncIntervalS,
    sync_start_date: formatDate(m.sync.startAt),
    sync_expiration_date: formatDate(m.sync.expiresAt),
    sync_retries_remaining: m.sync.retriesRemaining,
    sync_status: m.sync.status,
    root_rule: { rule_kind: 'tag_glob_csv', rule_value: m.tagGlobs },
    robot_username: m.robotName,
    skopeo_timeout_interval: m.timeoutS,
    architecture_filter: m.architectures,
    rollback_on_failure: m.rollbackOnFailure,
    progress: run ? { tags_total: run.tagsTotal, tags_done: run.tagsDone, bytes: run.bytes, current_tag: run.currentTag, started: formatDate(run.startedAt) } : null,
    last_run: last ? { started: formatDate(last.startedAt), finished: formatDate(last.finishedAt), outcome: last.outcome, message: last.message, bytes: last.bytes } : null,
  };
}

const HealthSchema = z.strictObject({
  healthy: z.boolean(),
  workers: z.strictObject({ active: z.int(), configured: z.int(), status: z.enum(['healthy', 'degraded']) }),
  repositories: z.strictObject({
    total: z.int(),
    syncing: z.int(),
    completed: z.int(),
    failed: z.int(),
    never_run: z.int(),
    details: z
      .array(z.strictObject({ namespace: z.string(), repository: z.string(), sync_status: z.string(), is_enabled: z.boolean(), last_sync: z.string().nullable(), retries_remaining: z.int() }))
      .optional(),
    pagination: z.strictObject({ limit: z.int(), offset: z.int(), has_more: z.boolean() }).optional(),
  }),
  tags_pending: z.int(),
  last_check: z.string(),
  issues: z.array(z.strictObject({ severity: z.enum(['critical', 'error', 'warning']), message: z.string(), timestamp: z.string() })),
});

/** An integer in a query string (Quay's `type=int`); out-of-range values are clamped by the report. */
const queryInteger = z
  .string()
  .regex(/^-?[0-9]{1,9}$/, 'must be a decimal integer')
  .optional()
  .transform((v) => (v === undefined ? undefined : Number(v)));

/** The service, or 404 when the registry runs without accounts (a mirror needs its robot). */
function service(ctx: ApiContext) {
  const s = ctx.registry.mirrorConfig;
  if (!s) throw new ApiError(404, 'not_found', 'repository mirroring needs accounts (auth.enabled is false)');
  return s;
}

const who = (ctx: ApiContext) => ({
  actor: ctx.principal,
  ip: ctx.req.ip,
  userAgent: typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined,
});

/** Quay's reply to a create or change: an empty JSON string. */
function emptyString(ctx: ApiContext, status: number): string {
  void ctx.reply.code(status).type('application/json').send('""');
  return '';
}

/** Who may see the health of `namespace` (every namespace when absent): see the file comment. */
async function healthScope(ctx: ApiContext, namespace: string | undefined): Promise<void> {
  if (ctx.principal.kind === 'anonymous') throw unauthorized();
  const user = ctx.user();
  const superuser = await ctx.accounts.permissions.isSuperuser(user);
  if (namespace === undefined) {
    if (!superuser) throw new ApiError(403, 'insufficient_scope', 'the health of every mirror is for superusers; give ?namespace= for one of yours');
    return;
  }
  if (superuser) return;
  if (await ctx.accounts.accounts.getOrganization(namespace)) {
    await visibleOrganization(ctx, namespace);
    return;
  }
  if (user.name !== namespace) throw notFound(`namespace ${namespace.slice(0, 100)}`);
}

export const mirrorRoutes = [
  defineRoute({
    method: 'GET',
    path: '/repository/mirror/health',
    summary:
      "The health of repository mirroring (Quay's shape): 200 healthy, 503 when over 20% of the mirrors that have run are failing. Superusers see every namespace; `namespace` limits it to one the caller belongs to; `detailed=true` adds a page (`limit`, `offset`) of mirrors",
    tag: 'mirror',
    query: z.object({ namespace: z.string().min(1).max(255).optional(), detailed: queryBool(false), limit: queryInteger, offset: queryInteger }),
    response: HealthSchema,
    async handler(ctx, { query }) {
      const mirrors = service(ctx);
      await healthScope(ctx, query.namespace);
      const view = await mirrors.health({ namespace: query.namespace, detailed: query.detailed, limit: query.limit, offset: query.offset });
      void ctx.reply.code(view.healthy ? 200 : 503).header('Cache-Control', 'no-cache, no-store, must-revalidate').send(view);
      return view;
    },
  }),
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/mirror`,
    summary: "The repository's mirror configuration (never the password), with the run in flight and the last one",
    tag: 'mirror',
    params: one,
    response: MirrorSchema,
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      const found = await mirrors.get(repo);
      if (!found) throw notFound(`mirror configuration of ${params.repository}`);
      return mirrorView(found);
    },
  }),
  defineRoute({
    method: 'POST',
    path: `${REPOSITORY_PATH}/mirror`,
    summary: 'Make the repository a mirror of an external repository (its state becomes MIRROR; the robot gets write)',
    tag: 'mirror',
    status: 201,
    params: one,
    body: Body,
    response: z.literal(''),
    async handler(ctx, { params, body }) {
      const mirrors = service(ctx);
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await mirrors.create(repo, body, who(ctx));
      return emptyString(ctx, 201);
    },
  }),
  defineRoute({
    method: 'PUT',
    path: `${REPOSITORY_PATH}/mirror`,
    summary: 'Change the fields given of the mirror configuration (201, as Quay)',
    tag: 'mirror',
    status: 201,
    params: one,
    body: Body,
    response: z.literal(''),
    async handler(ctx, { params, body }) {
      const mirrors = service(ctx);
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await mirrors.update(repo, body, who(ctx));
      return emptyString(ctx, 201);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: `${REPOSITORY_PATH}/mirror`,
    summary: 'Stop mirroring: delete the configuration and make the repository NORMAL again (its tags stay); 409 while a sync runs',
    tag: 'mirror',
    status: 204,
    params: one,
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await mirrors.delete(repo, who(ctx));
    },
  }),
  defineRoute({
    method: 'POST',
    path: `${REPOSITORY_PATH}/mirror/sync-now`,
    summary: 'Sync as soon as a worker is free, also when the mirror is disabled; 404 while it is syncing',
    tag: 'mirror',
    status: 204,
    params: one,
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await mirrors.syncNow(repo, who(ctx));
    },
  }),
  defineRoute({
    method: 'POST',
    path: `${REPOSITORY_PATH}/mirror/sync-cancel`,
    summary: 'Cancel the sync in flight (it stops between two tags) or asked for; the mirror then syncs only on sync-now. 404 when there is none',
    tag: 'mirror',
    status: 204,
    params: one,
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      await mirrors.cancel(repo, who(ctx));
    },
  }),
];
