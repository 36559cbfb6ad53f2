/**
 * The audit log, newest first, one page at a time: of an organization (its admins), of a repository (its
 * admins), of the calling user's own namespace. Superusers may read every one of them.
 *
 *   starttime, endtime  ISO 8601, milliseconds since the epoch, or Quay's MM/DD/YYYY (UTC); default the
 *                       30 days before now. `starttime` is inclusive, `endtime` exclusive; a bare date
 *                       as `endtime` includes that whole day, as in Quay.
 *   kind                one or more kinds, repeated (`kind=a&kind=b`) or comma-separated
 *   next_page           the cursor of the previous page
 */
import { z } from 'zod';
import type { AuditEntry } from '../../registry/accounts/audit-service.js';
import type { ApiContext } from './context.js';
import { invalid, notFound } from './errors.js';
import { administeredOrganization } from './organization-access.js';
import { httpDate, repositoryPathName } from './params.js';
import { requireRepository } from './repository-access.js';
import { defineRoute, REPOSITORY_PATH } from './route.js';

const DAY = 86_400_000;
const DEFAULT_SPAN = 30 * DAY;
const KIND_RE = /^[a-z][a-z0-9_]{0,63}$/;

const logsQuery = z.object({
  starttime: z.string().max(64).optional(),
  endtime: z.string().max(64).optional(),
  kind: z.union([z.string().max(2048), z.array(z.string().max(2048)).max(64)]).optional(),
  next_page: z.string().max(32).optional(),
  limit: z.string().regex(/^[0-9]{1,3}$/).optional(),
});
type LogsQuery = z.infer<typeof logsQuery>;

/** One page of the audit log; `next_page` when there is more. */
const LogPageSchema = z.strictObject({
  start_time: z.string(),
  end_time: z.string(),
  logs: z.array(
    z.strictObject({
      kind: z.string(),
      metadata: z.record(z.string(), z.unknown()),
      ip: z.string().nullable(),
      datetime: z.string(),
      performer: z.strictObject({ kind: z.string(), name: z.string().nullable() }).nullable(),
      namespace: z.string().nullable(),
      repository: z.string().nullable(),
    }),
  ),
  next_page: z.string().optional(),
});

/** Milliseconds for one of the accepted time formats; `endOfDay` moves a bare date to the next midnight. */
function parseTime(name: string, value: string, endOfDay: boolean): number {
  let ms: number;
  let dateOnly = false;
  const us = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(value);
  if (/^[0-9]{1,15}$/.test(value)) ms = Number(value);
  else if (us) {
    ms = Date.UTC(Number(us[3]), Number(us[1]) - 1, Number(us[2]));
    dateOnly = true;
  } else if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    ms = Date.parse(value);
    dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  } else ms = Number.NaN;
  if (!Number.isFinite(ms)) throw invalid(`${name}: expected an ISO 8601 time, milliseconds since the epoch or MM/DD/YYYY`);
  return dateOnly && endOfDay ? ms + DAY : ms;
}

function kinds(kind: LogsQuery['kind']): string[] | undefined {
  if (kind === undefined) return undefined;
  const list = (Array.isArray(kind) ? kind : [kind]).flatMap((k) => k.split(',')).map((k) => k.trim()).filter(Boolean);
  for (const k of list) if (!KIND_RE.test(k)) throw invalid(`kind: invalid log kind ${JSON.stringify(k.slice(0, 64))}`);
  return list.length ? list : undefined;
}

/**
 * One page of entries for `where`. `notBefore` is when the namespace or repository was created: entries
 * of an earlier holder of the same name (deleted, then the name reused) never reach the new owner.
 */
async function page(ctx: ApiContext, where: { namespace: string; repository?: string }, q: LogsQuery, notBefore: number) {
  const end = q.endtime === undefined ? Date.now() + 1 : parseTime('endtime', q.endtime, true);
  const requestedStart = q.starttime === undefined ? end - DEFAULT_SPAN : parseTime('starttime', q.starttime, false);
  if (requestedStart > end) throw invalid('starttime is after endtime');
  const start = Math.max(requestedStart, notBefore);
  if (q.next_page !== undefined && !/^[1-9][0-9]{0,15}$/.test(q.next_page)) throw invalid('next_page: not a cursor this server handed out');
  const limit = q.limit === undefined ? 50 : Number(q.limit);
  if (limit < 1 || limit > 500) throw invalid('limit: 1 to 500');
  const res = await ctx.accounts.audit.query({ ...where, kinds: kinds(q.kind), since: start, until: end, cursor: q.next_page, limit });
  return {
    start_time: httpDate(start),
    end_time: httpDate(end),
    logs: res.entries.map(view),
    ...(res.nextCursor ? { next_page: res.nextCursor } : {}),
  };
}

function view(e: AuditEntry) {
  return {
    kind: e.kind,
    metadata: e.metadata ?? {},
    ip: e.ip,
    datetime: httpDate(e.createdAt),
    performer: e.actor.kind === 'anonymous' ? null : { kind: e.actor.kind, name: e.actor.name },
    namespace: e.namespace,
    repository: e.repository,
  };
}

export const logRoutes = [
  defineRoute({
    method: 'GET',
    path: '/organization/:orgname/logs',
    summary: "The organization's audit log (organization admins)",
    tag: 'logs',
    params: z.object({ orgname: z.string().min(1).max(255) }),
    query: logsQuery,
    response: LogPageSchema,
    async handler(ctx, { params, query }) {
      // 404 for callers who cannot see the organization, before anything else is said about it.
      const { org } = await administeredOrganization(ctx, params.orgname);
      return page(ctx, { namespace: org.name }, query, org.createdAt);
    },
  }),
  defineRoute({
    method: 'GET',
    path: `${REPOSITORY_PATH}/logs`,
    summary: "The repository's audit log (repository admins)",
    tag: 'logs',
    params: z.object({ repository: repositoryPathName }),
    query: logsQuery,
    response: LogPageSchema,
    async handler(ctx, { params, query }) {
      const { repo } = await requireRepository(ctx, params.repository, 'admin');
      return page(ctx, { namespace: repo.namespace, repository: repo.name }, query, repo.createdAt);
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/user/logs',
    summary: "The audit log of the calling user's own namespace",
    tag: 'logs',
    query: logsQuery,
    response: LogPageSchema,
    async handler(ctx, { query }) {
      const me = ctx.user('user:read');
      const user = await ctx.accounts.accounts.getUser(me.name);
      if (!user) throw notFound(`user ${me.name}`);
      return page(ctx, { namespace: me.name }, query, user.createdAt);
    },
  }),
];
