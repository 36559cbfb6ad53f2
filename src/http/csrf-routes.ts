/**
 * Where a client gets the CSRF token it signs in with (api/signin.ts), as Quay serves it:
 *
 *   GET /csrf_token   {"csrf_token": "…"}  (Quay 3.16 and later)
 *   GET /             a small HTML page with `window.__token = '…';`  (where earlier Quay versions put it)
 *
 * With a live session cookie the token is that session's; otherwise it is the value of the wharf_csrf
 * cookie, set here when absent. Registered only when authentication is enabled.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Accounts } from '../registry/accounts/accounts.js';
import { CSRF_COOKIE, readCookie, SESSION_COOKIE, setCookie } from './session-cookies.js';

/** How long a pre-sign-in token lasts. */
const CSRF_COOKIE_SECONDS = 3600;

export async function csrfRoutes(app: FastifyInstance, opts: { accounts: Accounts }): Promise<void> {
  const token = async (req: FastifyRequest, reply: FastifyReply): Promise<string> => {
    const secret = readCookie(req, SESSION_COOKIE);
    const session = secret === undefined ? undefined : await opts.accounts.sessions.resume(secret);
    if (session) return session.csrfToken;
    const existing = readCookie(req, CSRF_COOKIE);
    const value = existing ?? randomBytes(32).toString('base64url');
    setCookie(req, reply, CSRF_COOKIE, value, CSRF_COOKIE_SECONDS);
    return value;
  };

  app.get('/csrf_token', async (req, reply) => {
    req.wharfRoute = 'csrf_token';
    const csrf = await token(req, reply);
    return reply.header('Cache-Control', 'no-store').send({ csrf_token: csrf });
  });

  app.get('/', async (req, reply) => {
    req.wharfRoute = 'index';
    const csrf = await token(req, reply);
    const page = [
      '<!doctype html>',
      '<html><head><meta charset="utf-8"><title>Wharf</title>',
      `<script>window.__token = '${csrf}';</script>`,
      '</head><body><p>Wharf container registry. The API is at <a href="/api/v1/discovery">/api/v1</a>; registry clients use this host.</p></body></html>',
      '',
    ].join('\n');
    return reply.header('Cache-Control', 'no-store').type('text/html; charset=utf-8').send(page);
  });
}
