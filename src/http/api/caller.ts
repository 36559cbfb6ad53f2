/**
 * Who calls `/api/v1`, the one place that decides it for every route:
 *
 *   Authorization: Bearer <API token>     the token's user, capped by its scopes (app tokens refused)
 *   Authorization: Basic <name:secret>    a password, robot token, API or app token (throttled as /v2 logins)
 *   Cookie: wharf_session=<secret>        the signed-in user (`POST /signin`), with no scope cap; a
 *                                         state-changing call (not GET/HEAD/OPTIONS) must also send the
 *                                         session's CSRF token in X-CSRF-Token, else 403
 *   nothing                               anonymous
 *
 * An Authorization header wins over the cookie (the cookie is then ignored, as Quay ignores the session
 * of a request with an OAuth token). A cookie whose session has ended answers 401 and is cleared, so
 * that a client notices the sign-out rather than silently seeing only public content.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ANONYMOUS, type Principal } from '../../registry/access.js';
import type { Accounts } from '../../registry/accounts/accounts.js';
import { sameToken } from '../../registry/accounts/session-service.js';
import type { Registry } from '../../registry/registry.js';
import { clearCookie, CSRF_HEADER, readCookie, SESSION_COOKIE } from '../session-cookies.js';
import { forbidden, unauthorized } from './errors.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export async function apiCaller(registry: Registry, accounts: Accounts, req: FastifyRequest, reply: FastifyReply): Promise<Principal> {
  const header = req.headers.authorization;
  if (typeof header === 'string' && header.trim() !== '') return fromAuthorization(registry, accounts, req, header);
  const secret = readCookie(req, SESSION_COOKIE);
  if (secret === undefined) return ANONYMOUS;
  const session = await accounts.sessions.resume(secret);
  if (!session) {
    clearCookie(req, reply, SESSION_COOKIE);
    throw unauthorized('the session has ended (signed out, expired, password changed or account disabled); sign in again');
  }
  if (!SAFE_METHODS.has(req.method) && !sameToken(req.headers[CSRF_HEADER], session.csrfToken)) {
    throw forbidden('CSRF token was invalid or missing: send the X-CSRF-Token that sign-in returned (X-Next-CSRF-Token) or GET /csrf_token gives');
  }
  return session.principal;
}

async function fromAuthorization(registry: Registry, accounts: Accounts, req: FastifyRequest, header: string): Promise<Principal> {
  const [scheme, value = ''] = header.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme!)) {
    const verified = await accounts.apiTokens.verify(value, 'api');
    if (!verified) throw unauthorized('invalid, expired or revoked API token');
    return verified.principal;
  }
  if (/^basic$/i.test(scheme!) && registry.auth) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i <= 0) throw unauthorized('malformed Basic credentials');
    const ua = req.headers['user-agent'];
    return registry.auth.login(decoded.slice(0, i), decoded.slice(i + 1), { ip: req.ip, userAgent: typeof ua === 'string' ? ua : undefined });
  }
  throw unauthorized('unsupported Authorization scheme; use Bearer (API token) or Basic');
}
