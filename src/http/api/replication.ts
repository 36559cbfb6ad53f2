/**
 * Replication between storage locations (a Wharf extension: Quay configures storage replication only in
 * its config file and has no API for it). Every route answers 404 unless several storage locations are
 * configured.
 *
 *   GET    /organization/{orgname}/replication   members, superusers: the organization's own targets,
 *                                                the registry-wide ones and the configured locations
 *   PUT    /organization/{orgname}/replication   admins: {"locations": [...]} replaces its targets and queues
 *                                                copies of its blobs to the targets it gains; 400
 *                                                (invalid_request) when one is not a configured location
 *   DELETE /organization/{orgname}/replication   admins: 204; only the registry-wide targets apply again
 *   GET    /replication/status?scope=NS[/REPO]   superusers: per location, how much of the registry (or
 *                                                of a namespace or repository) it holds, the backlog and
 *                                                the failing copies
 */
import { z } from 'zod';
import type { ReplicationStatus } from '../../registry/replication/replication-admin.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';
import { administeredOrganization, visibleOrganization } from './organization-access.js';
import { defineRoute } from './route.js';

const OrgParams = z.object({ orgname: z.string().max(255) });
const Body = z.strictObject({ locations: z.array(z.string().max(255)).max(100) });

const TargetsSchema = z.strictObject({
  /** The organization's own targets (empty: none). */
  locations: z.array(z.string()),
  /** `replication.targets` (every location when it is empty). */
  registry_targets: z.array(z.string()),
  /** Every configured location, most preferred first for the answering process. */
  available: z.array(z.string()),
});

const ChangedSchema = TargetsSchema.extend({
  /** Copies of the organization's blobs queued for the targets it gained, before this answer. */
  copies_queued: z.int(),
  /** True when the organization has more blobs to look at: the copies go on being queued in the background. */
  backfilling: z.boolean(),
});

const StatusSchema = z.strictObject({
  scope: z.string().nullable(),
  blobs: z.int(),
  bytes: z.int(),
  locations: z.array(
    z.strictObject({
      location: z.string(),
      blobs: z.int(),
      bytes: z.int(),
      backlog: z.int(),
      failing: z.int(),
      last_error: z.string().nullable(),
    }),
  ),
});

/** The replication admin, or 404 when there is nothing to replicate between. */
function admin(ctx: ApiContext) {
  const r = ctx.registry.replication;
  if (!r) throw new ApiError(404, 'not_found', 'replication is off on this registry: fewer than two storage locations are configured');
  return r.admin;
}

/** A status as the API (and `wharf replicate status --json`) shows it. */
export function replicationStatusView(scope: string | undefined, s: ReplicationStatus): z.infer<typeof StatusSchema> {
  return {
    scope: scope ?? null,
    blobs: s.blobs,
    bytes: s.bytes,
    locations: s.locations.map((l) => ({ location: l.location, blobs: l.blobs, bytes: l.bytes, backlog: l.backlog, failing: l.failing, last_error: l.lastError })),
  };
}

async function targetsView(ctx: ApiContext, namespaceId: number): Promise<z.infer<typeof TargetsSchema>> {
  const a = admin(ctx);
  return { locations: await a.targets(namespaceId), registry_targets: a.defaultTargets, available: a.locations };
}

export const replicationRoutes = [
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/replication',
    summary: "The organization's replication targets (Wharf extension), the registry-wide targets and the configured locations",
    tag: 'replication',
    params: OrgParams,
    response: TargetsSchema,
    async handler(ctx, { params }) {
      admin(ctx);
      const { org } = await visibleOrganization(ctx, params.orgname);
      return targetsView(ctx, org.id);
    },
  }),
  defineRoute({
    method: 'PUT',
    path: '/organization/:orgname/replication',
    summary: "Replace the organization's replication targets: its blobs (those it holds already too) are copied there besides the registry-wide targets; 400 for a name that is not a configured location",
    tag: 'replication',
    params: OrgParams,
    body: Body,
    response: ChangedSchema,
    async handler(ctx, { params, body }) {
      const a = admin(ctx);
      const { org } = await administeredOrganization(ctx, params.orgname);
      const change = await a.setTargets(org.id, body.locations);
      return { ...(await targetsView(ctx, org.id)), copies_queued: change.queued, backfilling: change.backfilling };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/organization/:orgname/replication',
    summary: "Remove the organization's replication targets (only the registry-wide ones apply)",
    tag: 'replication',
    status: 204,
    params: OrgParams,
    async handler(ctx, { params }) {
      const a = admin(ctx);
      const { org } = await administeredOrganization(ctx, params.orgname);
      await a.setTargets(org.id, []);
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/replication/status',
    summary: 'Per storage location: how much of the registry, a namespace or a repository (scope=NS or NS/REPO) it holds, the copies queued and failing (superusers)',
    tag: 'replication',
    query: z.object({ scope: z.string().max(512).optional() }),
    response: StatusSchema,
    async handler(ctx, { query }) {
      const a = admin(ctx);
      await ctx.superuser();
      return replicationStatusView(query.scope, await a.status(query.scope || undefined));
    },
  }),
];
