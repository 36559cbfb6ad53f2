/**
 * The edge of `/v2` authentication: reads `Authorization` (Bearer token or Basic credentials), parses
 * token requests, and writes the `WWW-Authenticate` challenge. RegistryAuth decides everything.
 *
 *   GET /v2/auth?service=<host>&scope=repository:<name>:pull,push&scope=registry:catalog:*[&account=<user>]
 *     → 200 {"token","access_token","expires_in","issued_at"}
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../../oci/errors.js';
import { parseRepositoryName } from '../../oci/reference.js';
import { ANONYMOUS, OpenAccess, type Principal } from '../../registry/access.js';
import type { Caller, ClientInfo, ScopeRequest } from '../../registry/accounts/registry-auth.js';
import type { Registry } from '../../registry/registry.js';
import * as parse from './parse.js';

const OPEN: Caller = { principal: ANONYMOUS, access: new OpenAccess(), via: 'anonymous' };

/** The caller of a `/v2` request; with auth off, everyone is an anonymous caller with open access. */
export async function identify(registry: Registry, req: FastifyRequest): Promise<Caller> {
  const auth = registry.auth;
  if (!auth) return { ...OPEN, access: registry.access };
  const header = req.headers.authorization;
  if (typeof header !== 'string' || header.trim() === '') return auth.anonymous();
  const [scheme, value = ''] = header.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme!)) return auth.bearer(value, service(registry, req));
  const basic = /^basic$/i.test(scheme!) ? decodeBasic(value) : undefined;
  if (!basic) throw new RegistryError('UNAUTHORIZED', 'unsupported Authorization header; use Bearer or Basic');
  return auth.basic(basic.username, basic.password, client(req));
}

/** GET /v2/auth: the Docker registry token endpoint. */
export async function tokenEndpoint(registry: Registry, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const auth = registry.auth;
  if (!auth) throw new RegistryError('UNSUPPORTED', 'authentication is disabled on this registry', undefined, 404);
  const header = req.headers.authorization;
  let login: { principal: Principal; apiTokenId?: number } = { principal: ANONYMOUS };
  if (typeof header === 'string' && header.trim() !== '') {
    const [scheme, value = ''] = header.trim().split(/\s+/, 2);
    const basic = /^basic$/i.test(scheme!) ? decodeBasic(value) : undefined;
    if (!basic) throw new RegistryError('UNAUTHORIZED', 'the token endpoint accepts Basic credentials or none');
    login = await auth.loginForToken(basic.username, basic.password, client(req));
  }
  const issued = await auth.issue(login.principal, service(registry, req), await scopes(registry, req), login.apiTokenId);
  reply.header('Cache-Control', 'no-store').header('Content-Type', 'application/json');
  return reply.send({ token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt });
}

/**
 * The challenge for a 401: `Bearer realm="<base>/v2/auth",service="<host>"`, plus the refused scope
 * when the error's detail names it (distribution's `{Type, Name, Action}` entries).
 */
export function challenge(registry: Registry, req: FastifyRequest, err: RegistryError): string {
  let value = `Bearer realm="${baseUrl(registry, req)}/v2/auth",service="${service(registry, req)}"`;
  const wanted = new Map<string, string[]>();
  if (Array.isArray(err.detail)) {
    for (const d of err.detail as Array<Record<string, unknown>>) {
      if (d && typeof d.Type === 'string' && typeof d.Name === 'string' && typeof d.Action === 'string') {
        const key = `${d.Type}:${d.Name}`;
        wanted.set(key, [...(wanted.get(key) ?? []), d.Action]);
      }
    }
  }
  if (wanted.size > 0) value += `,scope="${[...wanted].map(([k, actions]) => `${k}:${[...new Set(actions)].join(',')}`).join(' ')}"`;
  if (err.code === 'UNAUTHORIZED' && req.headers.authorization?.match(/^\s*bearer\s/i) && wanted.size > 0) value += ',error="insufficient_scope"';
  return value;
}

async function scopes(registry: Registry, req: FastifyRequest): Promise<ScopeRequest[]> {
  const raw = (req.query as Record<string, string | string[] | undefined>).scope;
  const list = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).flatMap((s) => s.split(' ')).filter((s) => s !== '');
  const out: ScopeRequest[] = [];
  for (const s of list.slice(0, 100)) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first < 0 || last === first) continue;
    const type = s.slice(0, first);
    const name = s.slice(first + 1, last);
    const actions = s.slice(last + 1).split(',').filter((a) => a !== '');
    if (type === 'registry' && name === 'catalog') out.push({ type, name, actions });
    else if (type === 'repository') {
      // Distribution ignores scopes it cannot parse; so does Wharf (they grant nothing).
      try {
        out.push({ type, name: parse.repositoryName(name, registry.options.defaultNamespace), actions });
      } catch {
        continue;
      }
      // A pull through a mirror without `ns=` (Docker's registry-mirrors, a podman mirror) asks for the
      // name as the client knows it; /v2 may serve it under another name (a proxy organization's), so
      // the token must also carry that name (granted only if the caller may pull there).
      const served = actions.includes('pull') || actions.includes('*') ? await registry.content.pullName(name, undefined) : name;
      const parsed = served === name ? undefined : parseRepositoryName(served, registry.options.defaultNamespace);
      if (parsed?.ok) out.push({ type, name: parsed.name, actions: ['pull'] });
    }
  }
  return out;
}

function decodeBasic(value: string): { username: string; password: string } | undefined {
  const text = Buffer.from(value, 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { username: text.slice(0, i), password: text.slice(i + 1) };
}

function client(req: FastifyRequest): ClientInfo {
  const ua = req.headers['user-agent'];
  return { ip: req.ip, userAgent: typeof ua === 'string' ? ua : undefined };
}

/** scheme://host[:port] as clients reach the registry: `base_url`, else from the request. */
function baseUrl(registry: Registry, req: FastifyRequest): string {
  return registry.options.baseUrl?.replace(/\/+$/, '') ?? `${req.protocol}://${req.host}`;
}

/** The token service name: the registry's host[:port]. */
function service(registry: Registry, req: FastifyRequest): string {
  return registry.options.baseUrl ? new URL(registry.options.baseUrl).host : req.host;
}

export { client as clientInfo };
