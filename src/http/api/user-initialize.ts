/**
 * `POST /api/v1/user/initialize`: Quay's first-user bootstrap, for automation that installs a registry
 * and then configures it (the collection's `quay_first_user`).
 *
 *   {username, password, email?, access_token?: bool}
 *     → 200 {username, email, access_token?}   the first user, a superuser; with `access_token`, an API
 *                                               token with every scope, valid for 2 h 30 min (as Quay's)
 *     → 404 when `auth.user_initialize` is off (the first start then creates the superuser itself)
 *     → 409 once the registry has any user
 *
 * It needs no credentials (there is nobody to have them) and no CSRF token. Creating the user and
 * checking that there was none happen atomically, so concurrent calls create one user at most.
 */
import { z } from 'zod';
import { API_SCOPES } from '../../registry/accounts/api-scopes.js';
import { defineRoute } from './route.js';

/** How long the returned token lives (Quay's first-user token lasts as long). */
const TOKEN_LIFETIME_MS = 9000 * 1000;

export const userInitializeRoutes = [
  defineRoute({
    method: 'POST',
    path: '/user/initialize',
    summary: 'Create the first user, a superuser, while the registry has none (with `auth.user_initialize`); optionally returns an API token',
    tag: 'user',
    caller: 'none',
    body: z.object({
      username: z.string().min(1).max(255),
      password: z.string().min(1).max(1024),
      email: z.string().max(254).nullable().optional(),
      access_token: z.boolean().optional(),
    }),
    response: z.strictObject({ username: z.string(), email: z.string().nullable(), access_token: z.string().optional() }),
    async handler(ctx, { body }) {
      const user = await ctx.accounts.accounts.createFirstUser({ name: body.username, password: body.password, email: body.email });
      const ua = typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined;
      await ctx.accounts.audit.record('user_create', { actor: { kind: 'system', name: 'user_initialize' }, ip: ctx.req.ip, userAgent: ua, namespace: user.name, metadata: { username: user.name, email: user.email, superuser: true } });
      let accessToken: string | undefined;
      if (body.access_token) {
        const { token, secret } = await ctx.accounts.apiTokens.create(user.name, { name: 'user/initialize', scopes: API_SCOPES, expiresAt: Date.now() + TOKEN_LIFETIME_MS });
        await ctx.accounts.audit.record('create_api_token', { actor: { kind: 'user', id: user.id, name: user.name, superuser: true }, namespace: user.name, metadata: { token_id: token.id, token_name: token.name, token_scopes: token.scopes, token_expires_at: token.expiresAt } });
        accessToken = secret;
      }
      return { username: user.name, email: user.email, ...(accessToken === undefined ? {} : { access_token: accessToken }) };
    },
  }),
];
