/**
 * The calling user: GET /api/v1/user/, and PUT /api/v1/user/ to change one's own password, email or
 * the time-machine window of one's namespace (`tag_expiration_s`).
 */
import { z } from 'zod';
import { isRegistryError } from '../../oci/errors.js';
import type { ApiContext } from './context.js';
import { forbidden, invalid } from './errors.js';
import { namespaceQuotaFields, NamespaceQuotaReportSchema, QuotaSummarySchema } from './quota-views.js';
import { defineRoute } from './route.js';

const MeSchema = z.strictObject({
  anonymous: z.literal(false),
  username: z.string(),
  email: z.string().nullable(),
  super_user: z.boolean(),
  /** How long deleted and expired tags of the user's namespace stay restorable, in seconds. */
  tag_expiration_s: z.int(),
  organizations: z.array(z.strictObject({ name: z.string() })),
  /** The quota of the user's namespace (none or one) and its usage. */
  quotas: z.array(QuotaSummarySchema),
  quota_report: NamespaceQuotaReportSchema,
});

async function describeMe(ctx: ApiContext) {
  const me = ctx.user('user:read');
  const user = await ctx.accounts.accounts.getUser(me.name);
  const organizations = await ctx.accounts.accounts.organizationsOf(me.name);
  const usage = await ctx.registry.quota.usage(me.name);
  return {
    anonymous: false,
    username: me.name,
    email: user?.email ?? null,
    super_user: me.superuser,
    tag_expiration_s: await ctx.registry.timeMachine.windowOf(me.name),
    organizations: organizations.map((o) => ({ name: o.name })),
    ...namespaceQuotaFields(usage),
  };
}

export const userRoutes = [
  defineRoute({
    method: 'GET',
    path: '/user/',
    summary: 'The authenticated user',
    tag: 'user',
    response: MeSchema,
    handler: (ctx) => describeMe(ctx),
  }),
  defineRoute({
    method: 'PUT',
    path: '/user/',
    summary: "Changes the caller's own password (the current one is required), email, or time-machine window (`tag_expiration_s`, one of `gc.time_machine_options`)",
    tag: 'user',
    body: z.strictObject({
      password: z.string().max(1024).optional(),
      old_password: z.string().max(1024).optional(),
      email: z.string().max(255).nullable().optional(),
      tag_expiration_s: z.int().min(0).optional(),
    }),
    response: MeSchema,
    async handler(ctx, { body }) {
      const me = ctx.user('user:admin');
      if (body.password === undefined && body.email === undefined && body.tag_expiration_s === undefined) throw invalid('give password (with old_password), email or tag_expiration_s');
      if (body.tag_expiration_s !== undefined) ctx.registry.timeMachine.assertOption(body.tag_expiration_s);
      if (body.password !== undefined) {
        // A stolen API token alone must not be enough to take the account over.
        if (body.old_password === undefined) throw forbidden('old_password is required to change the password');
        // Checked like any login: throttled (429) and recorded on failure.
        const ua = ctx.req.headers['user-agent'];
        const proven = await ctx.registry.auth?.loginForToken(me.name, body.old_password, { ip: ctx.req.ip, userAgent: typeof ua === 'string' ? ua : undefined }).catch((err: unknown) => {
          if (isRegistryError(err) && err.code === 'UNAUTHORIZED') return undefined;
          throw err;
        });
        // An API token is not the password, even though it logs in as the user.
        if (!proven || proven.apiTokenId !== undefined || proven.principal.kind !== 'user' || proven.principal.id !== me.id) throw forbidden('old_password is wrong');
        await ctx.accounts.accounts.setPassword(me.name, body.password);
        await ctx.audit('user_change_password', { namespace: me.name });
      }
      if (body.email !== undefined) {
        await ctx.accounts.accounts.setEmail(me.name, body.email);
        await ctx.audit('user_change_email', { namespace: me.name });
      }
      if (body.tag_expiration_s !== undefined) {
        const { previous } = await ctx.registry.timeMachine.setWindow(me.name, body.tag_expiration_s);
        if (previous !== body.tag_expiration_s) {
          await ctx.audit('user_change_tag_expiration', { namespace: me.name, metadata: { tag_expiration_s: body.tag_expiration_s, old_tag_expiration_s: previous } });
        }
      }
      return describeMe(ctx);
    },
  }),
];
