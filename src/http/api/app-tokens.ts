/**
 * The calling user's app-specific tokens, at Quay's paths and with its fields (the collection's
 * `quay_docker_token`). A token is a password for registry clients: `podman login -u '$app' -p <token_code>`.
 * Its `token_code` is in the reply to POST only (Quay shows it again on GET; Wharf stores only a hash).
 *
 *   GET    /user/apptoken[?expiring=true]   {tokens: [{uuid, title, last_accessed, created, expiration}], only_expiring}
 *   POST   /user/apptoken                   {title} → 200 {token: {uuid, title, …, token_code}}
 *   GET    /user/apptoken/{uuid}            {token: {uuid, title, last_accessed, created, expiration}}
 *   DELETE /user/apptoken/{uuid}            204; logins with it, and /v2 bearer tokens issued to them, stop at once
 *
 * Dates are RFC 7231 texts; `expiration` is null unless `auth.app_token_expiration` is set. `expiring`
 * lists only tokens that expire within a tenth of that lifetime (of four weeks when none is set).
 */
import { z } from 'zod';
import type { AppTokenInfo } from '../../registry/accounts/app-token-service.js';
import { defineRoute } from './route.js';
import { httpDate, queryBool } from './params.js';

const AppTokenSchema = z.strictObject({
  uuid: z.string(),
  title: z.string(),
  last_accessed: z.string().nullable(),
  created: z.string(),
  expiration: z.string().nullable(),
});

const UuidParams = z.object({ uuid: z.string().min(1).max(64) });

const FOUR_WEEKS_MS = 28 * 86_400_000;

function view(t: AppTokenInfo) {
  return {
    uuid: t.uuid,
    title: t.title,
    last_accessed: t.lastAccessedAt === null ? null : httpDate(t.lastAccessedAt),
    created: httpDate(t.createdAt),
    expiration: t.expiresAt === null ? null : httpDate(t.expiresAt),
  };
}

export const appTokenRoutes = [
  defineRoute({
    method: 'GET',
    path: '/user/apptoken',
    summary: "The calling user's app-specific tokens (never their secrets)",
    tag: 'apptoken',
    query: z.object({ expiring: queryBool(false) }),
    response: z.strictObject({ tokens: z.array(AppTokenSchema), only_expiring: z.boolean().nullable() }),
    async handler(ctx, { query }) {
      const me = ctx.user('user:admin');
      const window = Math.max(1000, Math.ceil((ctx.accounts.appTokens.lifetimeMs ?? FOUR_WEEKS_MS) * 0.1));
      const tokens = await ctx.accounts.appTokens.list(me.name, query.expiring ? { expiringWithinMs: window } : {});
      return { tokens: tokens.map(view), only_expiring: query.expiring ? true : null };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/user/apptoken',
    summary: 'Create an app-specific token (a password for registry clients, user name `$app`); its token_code is shown only in this reply',
    tag: 'apptoken',
    body: z.object({ title: z.string().trim().min(1).max(255) }),
    response: z.strictObject({ token: AppTokenSchema.extend({ token_code: z.string() }) }),
    async handler(ctx, { body }) {
      const me = ctx.user('user:admin');
      const { token, secret } = await ctx.accounts.appTokens.create(me.name, body.title);
      await ctx.audit('create_app_specific_token', { namespace: me.name, metadata: { app_specific_token_name: token.title, app_specific_token_id: token.uuid } });
      return { token: { ...view(token), token_code: secret } };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/user/apptoken/:uuid',
    summary: "One of the calling user's app-specific tokens (without its secret)",
    tag: 'apptoken',
    params: UuidParams,
    response: z.strictObject({ token: AppTokenSchema }),
    async handler(ctx, { params }) {
      const me = ctx.user('user:admin');
      return { token: view(await ctx.accounts.appTokens.get(me.name, params.uuid)) };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/user/apptoken/:uuid',
    summary: "Revoke one of the calling user's app-specific tokens",
    tag: 'apptoken',
    status: 204,
    params: UuidParams,
    async handler(ctx, { params }) {
      const me = ctx.user('user:admin');
      const token = await ctx.accounts.appTokens.revoke(me.name, params.uuid);
      await ctx.audit('revoke_app_specific_token', { namespace: me.name, metadata: { app_specific_token_name: token.title, app_specific_token_id: token.uuid } });
    },
  }),
];
