/**
 * The OAuth endpoints Quay's automation uses (the collection's `quay_api_token`):
 *
 *   POST /oauth/authorizeapp   form: response_type=token, client_id, redirect_uri, scope, _csrf_token
 *        → 302 Location: <redirect_uri>#access_token=<token>&token_type=Bearer&expires_in=<s>[&state=…]
 *        The implicit grant, by a signed-in user (session cookie, its CSRF token in `_csrf_token` or
 *        X-CSRF-Token) who administers the application's organization: the token is a Wharf API token
 *        with the requested scopes, acting as that user, tied to the application.
 *   POST /oauth/authorize/assignuser
 *        → 404: assigning a token to another user (Quay's FEATURE_ASSIGN_OAUTH_TOKEN) is not offered;
 *        that user creates their own token (`POST /api/v1/user/apitokens`).
 *   GET  /oauth/localapp       the page the token is handed to (its fragment holds the token)
 *
 * The authorization-code grant (`response_type=code`) is not offered (400). Errors are the JSON of `/api/v1`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Accounts } from '../registry/accounts/accounts.js';
import { API_SCOPES } from '../registry/accounts/api-scopes.js';
import { sameToken } from '../registry/accounts/session-service.js';
import type { Registry } from '../registry/registry.js';
import { ApiError, forbidden, invalid, renderApiError, unauthorized } from './api/errors.js';
import { acceptEmptyJsonBodies } from './json-body.js';
import { CSRF_HEADER, readCookie, SESSION_COOKIE } from './session-cookies.js';

/** The path Quay's local token handler has, and the collection names as the redirect URI. */
export const LOCAL_APP_PATH = '/oauth/localapp';

export async function oauthRoutes(app: FastifyInstance, opts: { registry: Registry; accounts: Accounts }): Promise<void> {
  const { accounts, registry } = opts;
  app.setErrorHandler((err, req, reply) => renderApiError(err, req, reply));
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  acceptEmptyJsonBodies(app);

  app.post('/oauth/authorizeapp', async (req, reply) => {
    req.wharfRoute = 'oauth_authorize';
    const form = field(req);
    const secret = readCookie(req, SESSION_COOKIE);
    const session = secret === undefined ? undefined : await accounts.sessions.resume(secret);
    if (!session) throw unauthorized('sign in first (POST /api/v1/signin): the grant is made by a signed-in user');
    if (!sameToken(form('_csrf_token') ?? req.headers[CSRF_HEADER], session.csrfToken)) throw forbidden('CSRF token was invalid or missing');
    const responseType = form('response_type') ?? 'code';
    if (responseType !== 'token') throw invalid('only the implicit grant (response_type=token) is offered');
    const application = await accounts.oauthApplications.byClientId(form('client_id') ?? '');
    if (!application) throw new ApiError(404, 'not_found', 'no application has this client_id');
    const redirect = form('redirect_uri') ?? '';
    const selves = origins(registry, req);
    if (!redirectAllowed(redirect, application.redirect_uri, selves)) throw invalid(`redirect_uri must be the application's redirect URI or ${selves[0]}${LOCAL_APP_PATH}`);
    const scopes = (form('scope') ?? '').split(/[\s,]+/).filter(Boolean);
    const unknown = scopes.filter((s) => !(API_SCOPES as readonly string[]).includes(s));
    if (scopes.length === 0 || unknown.length) throw invalid(`scope: give one or more of ${API_SCOPES.join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ').slice(0, 200)})` : ''}`);
    if (!(await accounts.permissions.canAdminNamespace(session.principal, application.organization))) {
      throw forbidden(`granting a token through ${application.name} requires administering organization ${application.organization}`);
    }
    const granted = await accounts.oauthApplications.grantToken(application, session.principal.name, scopes);
    const ua = typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : undefined;
    await accounts.audit.record('oauth_token_create', {
      actor: session.principal,
      ip: req.ip,
      userAgent: ua,
      namespace: application.organization,
      metadata: { application: application.name, client_id: application.client_id, scopes: granted.scopes, username: session.principal.name },
    });
    const state = form('state');
    const fragment = `access_token=${granted.secret}&token_type=Bearer&expires_in=${granted.expiresInS}${state === undefined ? '' : `&state=${encodeURIComponent(state)}`}`;
    return reply.code(302).header('Cache-Control', 'no-store').header('Location', `${redirect.split('#')[0]}#${fragment}`).send();
  });

  app.post('/oauth/authorize/assignuser', async (req) => {
    req.wharfRoute = 'oauth_assignuser';
    throw new ApiError(404, 'not_found', 'assigning an OAuth token to another user is not offered by Wharf; that user creates their own API token (POST /api/v1/user/apitokens)');
  });

  app.get(LOCAL_APP_PATH, async (req, reply) => {
    req.wharfRoute = 'oauth_localapp';
    return reply
      .header('Cache-Control', 'no-store')
      .type('text/html; charset=utf-8')
      .send('<!doctype html>\n<html><head><meta charset="utf-8"><title>Wharf token</title></head><body><p>The access token is in this page\'s address, after <code>#access_token=</code>. Keep it secret.</p></body></html>\n');
  });
}

/** A form field (or, failing that, a query parameter) as one string. */
function field(req: FastifyRequest): (name: string) => string | undefined {
  const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
  const query = (req.query && typeof req.query === 'object' ? req.query : {}) as Record<string, unknown>;
  return (name) => {
    const v = body[name] ?? query[name];
    return typeof v === 'string' ? v : undefined;
  };
}

/** scheme://host[:port] of this registry: `base_url` when set, and as this request reached it. */
function origins(registry: Registry, req: FastifyRequest): string[] {
  const own = `${req.protocol}://${req.host}`;
  return registry.options.baseUrl ? [registry.options.baseUrl.replace(/\/+$/, ''), own] : [own];
}

/** The application's own redirect URI (the same, or below it on the same origin), or this registry's local token page. */
function redirectAllowed(given: string, registered: string, selves: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    return false;
  }
  if (url.pathname === LOCAL_APP_PATH && selves.some((self) => URL.canParse(self) && new URL(self).origin === url.origin)) return true;
  if (!registered) return false;
  try {
    const reg = new URL(registered);
    return url.origin === reg.origin && (url.pathname === reg.pathname || url.pathname.startsWith(reg.pathname.endsWith('/') ? reg.pathname : `${reg.pathname}/`));
  } catch {
    return false;
  }
}
