/**
 * Proxy-cache configuration of an organization (Quay's API, plus PUT, which Quay lacks). All routes
 * answer 404 when `proxy_cache.enabled` is false.
 *
 *   GET    /organization/{orgname}/proxycache          members, superusers: the configuration, never the
 *                                                      credentials; Quay's empty values when there is none
 *   POST   /organization/{orgname}/proxycache          admins: 201 "Created"; 400 when one exists
 *   PUT    /organization/{orgname}/proxycache          admins: change the fields given; 200 with the result
 *   DELETE /organization/{orgname}/proxycache          admins: 201 "Deleted" (Quay's status); the cached
 *                                                      repositories stay as ordinary repositories
 *   POST   /organization/{orgname}/validateproxycache  admins: 202 "Valid" or "Anonymous"; 400 with the reason
 *
 * Body fields are Quay's (`upstream_registry`, `upstream_registry_username`, `upstream_registry_password`,
 * `expiration_s`, `insecure`) and Wharf's (`anonymous_pull`, `revalidate_interval_s`, `prefetch_layers`,
 * `answers_for`); null counts as absent, except that PUT with both credentials null drops them.
 */
import { z } from 'zod';
import type { ProxyConfigChanges, ProxyConfigInput } from '../../registry/proxy/proxy-config-service.js';
import type { ProxyCacheSummary } from '../../registry/proxy/proxy-config.js';
import type { ApiContext } from './context.js';
import { ApiError, invalid } from './errors.js';
import { administeredOrganization, visibleOrganization } from './organization-access.js';
import { defineRoute } from './route.js';

const OrgParams = z.object({ orgname: z.string().max(255) });

const Body = z.object({
  upstream_registry: z.string().nullish(),
  upstream_registry_username: z.string().nullish(),
  upstream_registry_password: z.string().nullish(),
  expiration_s: z.number().nullish(),
  insecure: z.boolean().nullish(),
  anonymous_pull: z.boolean().nullish(),
  revalidate_interval_s: z.number().nullish(),
  prefetch_layers: z.boolean().nullish(),
  answers_for: z.array(z.string()).nullish(),
});
type BodyIn = z.infer<typeof Body>;

/** Quay's three fields (empty strings when there is no configuration), Wharf's (null then), never the credentials. */
const ProxyCacheSchema = z.strictObject({
  upstream_registry: z.string(),
  expiration_s: z.union([z.int(), z.literal('')]),
  insecure: z.union([z.boolean(), z.literal('')]),
  anonymous_pull: z.boolean().nullable(),
  revalidate_interval_s: z.int().nullable(),
  prefetch_layers: z.boolean().nullable(),
  answers_for: z.array(z.string()).nullable(),
  has_credentials: z.boolean().nullable(),
});

/** A configuration as the API (and `wharf proxycache show`) shows it; Quay's empty values when there is none. */
export function proxyCacheView(c: ProxyCacheSummary | undefined): z.infer<typeof ProxyCacheSchema> {
  if (!c) {
    return { upstream_registry: '', expiration_s: '', insecure: '', anonymous_pull: null, revalidate_interval_s: null, prefetch_layers: null, answers_for: null, has_credentials: null };
  }
  return {
    upstream_registry: c.upstreamRegistry,
    expiration_s: c.expirationS,
    insecure: c.insecure,
    anonymous_pull: c.anonymousPull,
    revalidate_interval_s: c.revalidateIntervalS,
    prefetch_layers: c.prefetchLayers,
    answers_for: c.answersFor,
    has_credentials: c.hasCredentials,
  };
}

const given = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

/** The changes a body asks for: absent and null fields are unchanged, except both credentials null (dropped). */
function changesOf(b: BodyIn): ProxyConfigChanges {
  const dropCredentials = b.upstream_registry_username === null && b.upstream_registry_password === null;
  const changes: ProxyConfigChanges = {
    upstreamRegistry: given(b.upstream_registry),
    insecure: given(b.insecure),
    expirationS: given(b.expiration_s),
    anonymousPull: given(b.anonymous_pull),
    revalidateIntervalS: given(b.revalidate_interval_s),
    prefetchLayers: given(b.prefetch_layers),
    answersFor: given(b.answers_for),
    username: dropCredentials ? null : given(b.upstream_registry_username),
    password: dropCredentials ? null : given(b.upstream_registry_password),
  };
  return Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
}

function inputOf(b: BodyIn): ProxyConfigInput {
  const { username, password, ...rest } = changesOf(b);
  return { ...rest, upstreamRegistry: rest.upstreamRegistry ?? '', ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** The service, or 404 when the feature is off. */
function service(ctx: ApiContext) {
  const s = ctx.registry.proxyConfig;
  if (!s) throw new ApiError(404, 'not_found', 'the proxy cache is turned off on this registry (proxy_cache.enabled is false)');
  return s;
}

const who = (ctx: ApiContext) => ({
  actor: ctx.principal,
  ip: ctx.req.ip,
  userAgent: typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined,
});

/** Replies with a bare JSON string, as Quay does ("Created", "Deleted", "Valid"). */
function jsonString(ctx: ApiContext, status: number, text: string): string {
  void ctx.reply.code(status).type('application/json').send(JSON.stringify(text));
  return text;
}

export const proxyCacheRoutes = [
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/proxycache',
    summary: "The organization's proxy-cache configuration (never the credentials); empty values when it has none",
    tag: 'proxycache',
    params: OrgParams,
    response: ProxyCacheSchema,
    async handler(ctx, { params }) {
      const proxy = service(ctx);
      const { org } = await visibleOrganization(ctx, params.orgname);
      return proxyCacheView(await proxy.get(org.name));
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/organization/:orgname/proxycache',
    summary: 'Make the organization a proxy cache of an upstream registry',
    tag: 'proxycache',
    status: 201,
    params: OrgParams,
    body: Body,
    response: z.literal('Created'),
    async handler(ctx, { params, body }) {
      const proxy = service(ctx);
      const { org } = await administeredOrganization(ctx, params.orgname);
      // As Quay: a cache refreshes its tags from the upstream, which an immutable tag would refuse.
      if (await ctx.registry.immutability.hasImmutableTags(org.name)) throw invalid('Cannot convert organization to proxy cache: immutable tags exist');
      await proxy.create(org.name, inputOf(body), who(ctx));
      return jsonString(ctx, 201, 'Created');
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/organization/:orgname/proxycache',
    summary: 'Change the fields given of the proxy-cache configuration (credentials, expiration…) without deleting it',
    tag: 'proxycache',
    params: OrgParams,
    body: Body,
    response: ProxyCacheSchema,
    async handler(ctx, { params, body }) {
      const proxy = service(ctx);
      const { org } = await administeredOrganization(ctx, params.orgname);
      return proxyCacheView(await proxy.update(org.name, changesOf(body), who(ctx)));
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname/proxycache',
    summary: 'Delete the proxy-cache configuration; cached repositories stay as ordinary repositories',
    tag: 'proxycache',
    status: 201,
    params: OrgParams,
    response: z.literal('Deleted'),
    async handler(ctx, { params }) {
      const proxy = service(ctx);
      const { org } = await administeredOrganization(ctx, params.orgname);
      await proxy.delete(org.name, who(ctx));
      return jsonString(ctx, 201, 'Deleted');
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/organization/:orgname/validateproxycache',
    summary:
      'Check a configuration against its upstream: "Valid" (access granted) or "Anonymous" (anonymous access only). Without upstream_registry, the stored configuration with the fields given applied',
    tag: 'proxycache',
    status: 202,
    params: OrgParams,
    body: Body,
    response: z.enum(['Valid', 'Anonymous']),
    async handler(ctx, { params, body }) {
      const proxy = service(ctx);
      const { org } = await administeredOrganization(ctx, params.orgname);
      const result = body.upstream_registry == null && (await proxy.get(org.name)) ? await proxy.validateSaved(org.name, changesOf(body)) : await proxy.validate(inputOf(body));
      return jsonString(ctx, 202, result);
    },
  }),
];
