/**
 * Sign-in and sign-out, as Quay's web session and its automation use them:
 *
 *   GET  /csrf_token           {csrf_token} (csrf-routes.ts; sets the wharf_csrf cookie before sign-in)
 *   POST /api/v1/signin        {username, password} with X-CSRF-Token → 200 {success: true}, the session
 *                              cookie, and the session's CSRF token in X-Next-CSRF-Token
 *   POST /api/v1/signout       with the cookie and X-CSRF-Token → 200 {success: true}; the session ends
 *
 * Sign-in takes the user's password only (not an API, app or robot token: a session is never capped by
 * token scopes, so a token must not open one), through the same throttled, audited login as `/v2`
 * (429 with Retry-After after `auth.login_failures_per_minute` failures). Wrong credentials answer 401;
 * a missing or wrong CSRF token 403. Signing out ends this session only, not the user's others.
 */
import { z } from 'zod';
import { sameToken } from '../../registry/accounts/session-service.js';
import { clearCookie, CSRF_COOKIE, CSRF_HEADER, NEXT_CSRF_HEADER, readCookie, SESSION_COOKIE, setCookie } from '../session-cookies.js';
import type { ApiContext } from './context.js';
import { forbidden, unauthorized } from './errors.js';
import { defineRoute } from './route.js';
import { SuccessSchema } from './schemas.js';

const CSRF_MISSING = 'CSRF token was invalid or missing: GET /csrf_token first (keeping its cookie) and send its csrf_token in X-CSRF-Token';

/** The CSRF token a sign-in must carry: the pre-sign-in cookie's, or that of a session the client still has. */
async function expectedCsrf(ctx: ApiContext): Promise<string[]> {
  const tokens: string[] = [];
  const pre = readCookie(ctx.req, CSRF_COOKIE);
  if (pre) tokens.push(pre);
  const secret = readCookie(ctx.req, SESSION_COOKIE);
  const session = secret === undefined ? undefined : await ctx.accounts.sessions.resume(secret);
  if (session) tokens.push(session.csrfToken);
  return tokens;
}

export const signinRoutes = [
  defineRoute({
    method: 'POST',
    path: '/signin',
    summary: 'Sign in with a user name and password: opens a session (cookie) and returns its CSRF token in X-Next-CSRF-Token',
    tag: 'signin',
    caller: 'none',
    body: z.object({ username: z.string().min(1).max(255), password: z.string().min(1).max(1024), invite_code: z.string().max(255).optional() }),
    response: SuccessSchema,
    async handler(ctx, { body }) {
      const given = ctx.req.headers[CSRF_HEADER];
      if (!(await expectedCsrf(ctx)).some((t) => sameToken(given, t))) throw forbidden(CSRF_MISSING);
      const auth = ctx.registry.auth;
      if (!auth) throw unauthorized('authentication is disabled on this registry');
      const ua = typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined;
      // Throttled per user name and client address; a failure is recorded as login_failure.
      const login = await auth.loginForToken(body.username, body.password, { ip: ctx.req.ip, userAgent: ua });
      if (login.method !== 'password' || login.principal.kind !== 'user') {
        throw unauthorized('sign in with the password: API, app and robot tokens cannot open a session');
      }
      const opened = await ctx.accounts.sessions.open(login.principal.id, { ip: ctx.req.ip, userAgent: ua });
      await ctx.accounts.audit.record('login_success', { actor: login.principal, ip: ctx.req.ip, userAgent: ua, namespace: login.principal.name, metadata: { type: 'session' } });
      setCookie(ctx.req, ctx.reply, SESSION_COOKIE, opened.secret, ctx.accounts.sessions.maxAgeSeconds);
      clearCookie(ctx.req, ctx.reply, CSRF_COOKIE);
      ctx.reply.header(NEXT_CSRF_HEADER, opened.csrfToken).header('Cache-Control', 'no-store');
      return { success: true };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/signout',
    summary: 'Sign out: ends the session of the cookie (with its X-CSRF-Token); succeeds when there is none',
    tag: 'signin',
    caller: 'none',
    response: SuccessSchema,
    async handler(ctx) {
      const secret = readCookie(ctx.req, SESSION_COOKIE);
      const session = secret === undefined ? undefined : await ctx.accounts.sessions.resume(secret);
      if (session) {
        if (!sameToken(ctx.req.headers[CSRF_HEADER], session.csrfToken)) throw forbidden(CSRF_MISSING.replace('GET /csrf_token first (keeping its cookie) and send its csrf_token', 'send the token sign-in returned'));
        await ctx.accounts.sessions.end(secret!);
        const ua = typeof ctx.req.headers['user-agent'] === 'string' ? ctx.req.headers['user-agent'] : undefined;
        await ctx.accounts.audit.record('logout_success', { actor: session.principal, ip: ctx.req.ip, userAgent: ua, namespace: session.principal.name });
      }
      if (secret !== undefined) clearCookie(ctx.req, ctx.reply, SESSION_COOKIE);
      return { success: true };
    },
  }),
];
