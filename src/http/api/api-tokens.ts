/**
 * The calling user's API tokens. The secret is in the reply to POST only; revoking a token ends every
 * request made with it from the next one (and `/v2` bearer tokens issued to it). A token may only
 * create tokens with scopes it holds itself, so that a narrow token cannot mint a wider one.
 *
 *   GET    /user/apitokens        {tokens: [{id, name, scopes, created, expires, last_used, revoked}]}
 *   POST   /user/apitokens        {name, scopes, expiration?} → 201 {id, name, scopes, created, expires, token}
 *   DELETE /user/apitokens/{id}   204
 *
 * `expiration` is a duration ("30d", "12h", "1h30m", or a number of seconds) or an ISO 8601 date.
 */
import { z } from 'zod';
import { parseDuration } from '../../config/units.js';
import { API_SCOPES, hasScope } from '../../registry/accounts/api-scopes.js';
import { apiTokenView } from './account-views.js';
import { forbidden, invalid } from './errors.js';
import { defineRoute } from './route.js';
import { ApiTokenSchema } from './schemas.js';

const ISO_DATE = /^\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?$/;

/** The expiry time for `expiration`, or null for none; 400 for anything unparseable or not in the future. */
export function expiryOf(expiration: string | number | null | undefined, now: number): number | null {
  if (expiration === undefined || expiration === null) return null;
  const ms = parseDuration(expiration);
  if (ms !== undefined) {
    if (ms <= 0) throw invalid('expiration: a duration must be longer than zero');
    return now + ms;
  }
  const at = typeof expiration === 'string' && ISO_DATE.test(expiration.trim()) ? Date.parse(expiration.trim()) : NaN;
  if (!Number.isFinite(at)) throw invalid('expiration: use a duration such as "30d" or "12h", or an ISO 8601 date such as "2030-01-31T00:00:00Z"');
  if (at <= now) throw invalid('expiration: the date is in the past');
  return at;
}

export const apiTokenRoutes = [
  defineRoute({
    method: 'GET',
    path: '/user/apitokens',
    summary: "The calling user's API tokens (never their secrets)",
    tag: 'apitoken',
    response: z.strictObject({ tokens: z.array(ApiTokenSchema) }),
    async handler(ctx) {
      const me = ctx.user('user:read');
      return { tokens: (await ctx.accounts.apiTokens.list(me.name)).map(apiTokenView) };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/user/apitokens',
    summary: 'Create an API token; the reply holds its secret, shown only this once',
    tag: 'apitoken',
    status: 201,
    body: z.object({
      name: z.string().trim().min(1).max(255),
      scopes: z.array(z.enum(API_SCOPES)).min(1),
      expiration: z.union([z.string().max(64), z.number().positive()]).nullable().optional(),
    }),
    response: ApiTokenSchema.omit({ last_used: true, revoked: true }).extend({ token: z.string() }),
    async handler(ctx, { body }) {
      const me = ctx.user('user:admin');
      const wider = body.scopes.filter((s) => !hasScope(me, s));
      if (wider.length) throw forbidden(`an API token cannot create a token with scopes it lacks (${wider.join(', ')})`);
      const expiresAt = expiryOf(body.expiration, Date.now());
      const { token, secret } = await ctx.accounts.apiTokens.create(me.name, { name: body.name, scopes: body.scopes, expiresAt });
      await ctx.audit('create_api_token', { namespace: me.name, metadata: { token_id: token.id, token_name: token.name, token_scopes: token.scopes, token_expires_at: token.expiresAt } });
      const view = apiTokenView(token);
      return { id: view.id, name: view.name, scopes: view.scopes, created: view.created, expires: view.expires, token: secret };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/user/apitokens/:id',
    summary: 'Revoke one of the calling user\'s API tokens',
    tag: 'apitoken',
    status: 204,
    params: z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) }),
    async handler(ctx, { params }) {
      const me = ctx.user('user:admin');
      await ctx.accounts.apiTokens.revoke(me.name, params.id);
      await ctx.audit('revoke_api_token', { namespace: me.name, metadata: { token_id: params.id } });
    },
  }),
];
