/**
 * Organization mirroring (Quay's API). Organization admins and superusers; other members get 403, anyone
 * else 404. Every route answers 404 when the organization has no mirror configuration (POST excepted).
 *
 *   GET    /organization/{orgname}/mirror                the configuration (never the password), with
 *                                                        `repo_sync_status_counts` of its repositories
 *   POST   /organization/{orgname}/mirror                201 "": the organization must hold no repository
 *   PUT    /organization/{orgname}/mirror                200 "": change the fields given
 *   DELETE /organization/{orgname}/mirror                204: its repositories stay, as ordinary ones
 *   POST   /organization/{orgname}/mirror/sync-now       204: discover (and sync every repository) now;
 *                                                        400 while a discovery runs
 *   POST   /organization/{orgname}/mirror/sync-cancel    204: stop the discovery and the repositories'
 *                                                        syncs; 400 when cancelled already
 *   POST   /organization/{orgname}/mirror/verify         200 {success, message}: does the source answer
 *   GET    /organization/{orgname}/mirror/repositories   200: the repositories discovered (`page`,
 *                                                        `limit` up to 500), with their sync status
 */
import { z } from 'zod';
import type { OrgMirrorView } from '../../registry/mirror/org-mirror-config-service.js';
import { formatDate } from '../../registry/mirror/mirror-config-input.js';
import type { ApiContext } from './context.js';
import { ApiError, notFound } from './errors.js';
import { administeredOrganization } from './organization-access.js';
import { defineRoute } from './route.js';

const OrgParams = z.object({ orgname: z.string().max(255) });
const STATUSES = ['NEVER_RUN', 'SYNC_NOW', 'SYNCING', 'SUCCESS', 'FAIL', 'CANCEL'] as const;
const Body = z.looseObject({});

const ProxySchema = z.strictObject({ http_proxy: z.string().nullable(), https_proxy: z.string().nullable(), no_proxy: z.string().nullable() });
const OrgMirrorSchema = z.strictObject({
  is_enabled: z.boolean(),
  external_registry_type: z.enum(['quay', 'harbor']),
  external_registry_url: z.string(),
  external_namespace: z.string(),
  external_registry_username: z.string().nullable(),
  has_external_registry_password: z.boolean(),
  external_registry_config: z.strictObject({ verify_tls: z.boolean(), proxy: ProxySchema }),
  repository_filters: z.array(z.string()),
  robot_username: z.string().nullable(),
  visibility: z.enum(['public', 'private']),
  sync_interval: z.int(),
  sync_start_date: z.string().nullable(),
  sync_expiration_date: z.string().nullable(),
  sync_status: z.enum(STATUSES),
  sync_retries_remaining: z.int(),
  repo_sync_status_counts: z.record(z.string(), z.int()),
  skopeo_timeout: z.int(),
  creation_date: z.string(),
  /** Wharf: when the last discovery ended and what it found, else null. */
  last_sync: z.strictObject({ finished: z.string().nullable(), message: z.string().nullable() }).nullable(),
});

const RepositoriesSchema = z.strictObject({
  repositories: z.array(
    z.strictObject({
      name: z.string(),
      sync_status: z.string(),
      discovery_date: z.string().nullable(),
      last_sync_date: z.string().nullable(),
      status_message: z.string().nullable(),
      quay_repository: z.string().nullable(),
    }),
  ),
  page: z.int(),
  limit: z.int(),
  total: z.int(),
  has_next: z.boolean(),
});

/** An organization mirror as the API shows it. */
export function orgMirrorView(m: OrgMirrorView): z.infer<typeof OrgMirrorSchema> {
  return {
    is_enabled: m.enabled,
    external_registry_type: m.registryType,
    external_registry_url: m.registryUrl,
    external_namespace: m.externalNamespace,
    external_registry_username: m.username,
    has_external_registry_password: m.hasPassword,
    external_registry_config: { verify_tls: m.verifyTls, proxy: { http_proxy: m.proxy.http_proxy ?? null, https_proxy: m.proxy.https_proxy ?? null, no_proxy: m.proxy.no_proxy ?? null } },
    repository_filters: m.repositoryFilters,
    robot_username: m.robotName,
    visibility: m.visibility,
    sync_interval: m.syncIntervalS,
    sync_start_date: formatDate(m.sync.startAt),
    sync_expiration_date: formatDate(m.sync.expiresAt),
    sync_status: m.sync.status,
    sync_retries_remaining: m.sync.retriesRemaining,
    repo_sync_status_counts: m.counts,
    skopeo_timeout: m.timeoutS,
    creation_date: new Date(m.createdAt).toISOString(),
    last_sync: m.lastFinishedAt === null ? null : { finished: formatDate(m.lastFinishedAt), message: m.lastMessage },
  };
}

/** The service, or 404 when the registry runs without accounts. */
function service(ctx: ApiContext) {
  const s = ctx.registry.orgMirrorConfig;
  if (!s) throw new ApiError(404, 'not_found', 'organization mirroring needs accounts (auth.enabled is false)');
  return s;
}

const who = (ctx: ApiContext) => ({
  actor: ctx.principal,
  ip: ctx.req.ip,
  userAgent: typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined,
});

async function adminOrg(ctx: ApiContext, name: string) {
  const { org } = await administeredOrganization(ctx, name);
  return { id: org.id, name: org.name };
}

/** Quay's `type=int` query argument: a value that is not an integer counts as absent. */
const lenientInt = z
  .string()
  .optional()
  .transform((v) => (v !== undefined && /^-?[0-9]{1,9}$/.test(v) ? Number(v) : undefined));

function emptyString(ctx: ApiContext, status: number): string {
  void ctx.reply.code(status).type('application/json').send('""');
  return '';
}

export const orgMirrorRoutes = [
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/mirror',
    summary: "The organization's mirror configuration (never the password), with the sync status counts of its repositories",
    tag: 'mirror',
    params: OrgParams,
    response: OrgMirrorSchema,
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const org = await adminOrg(ctx, params.orgname);
      const found = await mirrors.get(org);
      if (!found) throw notFound(`mirror configuration of organization ${org.name}`);
      return orgMirrorView(found);
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/organization/:orgname/mirror',
    summary: 'Make the organization a mirror of a namespace of a Quay or Harbor registry (the organization must hold no repository)',
    tag: 'mirror',
    status: 201,
    params: OrgParams,
    body: Body,
    response: z.literal(''),
    async handler(ctx, { params, body }) {
      const mirrors = service(ctx);
      const org = await adminOrg(ctx, params.orgname);
      await mirrors.create(org, body, who(ctx));
      return emptyString(ctx, 201);
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/organization/:orgname/mirror',
    summary: 'Change the fields given of the organization mirror configuration',
    tag: 'mirror',
    status: 200,
    params: OrgParams,
    body: Body,
    response: z.literal(''),
    async handler(ctx, { params, body }) {
      const mirrors = service(ctx);
      const org = await adminOrg(ctx, params.orgname);
      await mirrors.update(org, body, who(ctx));
      return emptyString(ctx, 200);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname/mirror',
    summary: 'Stop mirroring the organization: its repositories stay, as ordinary repositories with their tags',
    tag: 'mirror',
    status: 204,
    params: OrgParams,
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const org = await adminOrg(ctx, params.orgname);
      await mirrors.delete(org, who(ctx));
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/organization/:orgname/mirror/sync-now',
    summary: 'Discover the repositories of the source now and sync each of them; 400 while a discovery runs',
    tag: 'mirror',
    status: 204,
    params: OrgParams,
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const org = await adminOrg(ctx, params.orgname);
      await mirrors.syncNow(org, who(ctx));
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/organization/:orgname/mirror/sync-cancel',
    summary: "Cancel the discovery and the syncs of the organization's repositories in flight or asked for; 400 when cancelled already",
    tag: 'mirror',
    status: 204,
    params: OrgParams,
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const org = await adminOrg(ctx, params.orgname);
      await mirrors.cancel(org, who(ctx));
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/organization/:orgname/mirror/verify',
    summary: 'Check that the source registry answers the repository list of the namespace with the stored settings',
    tag: 'mirror',
    params: OrgParams,
    response: z.strictObject({ success: z.boolean(), message: z.string() }),
    async handler(ctx, { params }) {
      const mirrors = service(ctx);
      const org = await adminOrg(ctx, params.orgname);
      return mirrors.verify(org);
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/mirror/repositories',
    summary: 'The repositories the discovery found, by name, a page at a time (`page` from 1, `limit` up to 500), with their sync status',
    tag: 'mirror',
    params: OrgParams,
    query: z.object({ page: lenientInt, limit: lenientInt }),
    response: RepositoriesSchema,
    async handler(ctx, { params, query }) {
      const mirrors = service(ctx);
      const org = await adminOrg(ctx, params.orgname);
      const page = query.page === undefined || query.page < 1 ? 1 : query.page;
      const limit = query.limit === undefined || query.limit < 1 ? 100 : Math.min(query.limit, 500);
      const { repositories, total } = await mirrors.repositories(org, page, limit);
      return {
        repositories: repositories.map((r) => ({
          name: r.name,
          sync_status: r.vanishedAt !== null ? 'SKIP' : (r.status ?? 'NEVER_RUN'),
          discovery_date: formatDate(r.discoveredAt),
          last_sync_date: formatDate(r.lastFinishedAt),
          status_message: r.message ?? r.lastMessage,
          quay_repository: r.repositoryId !== null ? `${org.name}/${r.name}` : null,
        })),
        page,
        limit,
        total,
        has_next: page * limit < total,
      };
    },
  }),
];
