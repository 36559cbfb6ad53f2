/**
 * Inputs that once made Wharf answer 500, log an internal error, or answer outside its error shapes;
 * every fuzz run sends them first, whatever the seed.
 */
import { serialize } from './framing.js';
import type { RawRequest } from '../helpers/raw-http.js';
import { BASE_IMAGE, type FuzzWorld, type Sent } from './world.js';

export interface FixedCase {
  label: string;
  /** Sent with `inject`, or, for `raw`, on a socket (the id goes into `X-Request-Id`). */
  inject?: Sent;
  raw?: (id: string) => RawRequest;
}

const json = (body: unknown) => JSON.stringify(body);
const DIGEST = `sha256:${'ab'.repeat(32)}`;

export async function corpus(w: FuzzWorld): Promise<FixedCase[]> {
  const root = { authorization: w.auth.root };
  const api = { ...root, 'content-type': 'application/json' };
  const tagUrl = `/api/v1/repository/${BASE_IMAGE}/tag/v1`;
  const manifest = { method: 'PUT', url: `/v2/${BASE_IMAGE}/manifests/cut`, headers: { ...root, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: '{"schemaVersion":2,' };
  const blob = { method: 'POST', url: `/v2/${BASE_IMAGE}/blobs/uploads/?digest=${DIGEST}`, headers: { ...root, 'content-type': 'application/octet-stream' }, body: 'short' };
  const raw = (sent: Sent, opts: { framing?: string[]; body?: string; extra?: string[]; then?: RawRequest['then'] }) => (id: string): RawRequest => ({
    method: sent.method,
    path: sent.url,
    then: opts.then,
    bytes: serialize(sent, { id, framing: opts.framing, extraHeaders: opts.extra, bodyOverride: opts.body === undefined ? undefined : Buffer.from(opts.body, 'latin1') }),
  });
  const longer = (sent: Sent) => [`Content-Length: ${Buffer.byteLength(sent.body ?? '') + 100}`];
  const get = (url: string): Sent => ({ method: 'GET', url, headers: root });
  const started = await w.inject({ method: 'POST', url: `/v2/${BASE_IMAGE}/blobs/uploads/`, headers: root });
  const upload = String(started.headers.location);
  const patch = { method: 'PATCH', url: upload, headers: { ...root, 'content-type': 'application/octet-stream' }, body: 'chunk' };
  const put = { ...patch, method: 'PUT', url: `${upload}?digest=${DIGEST}` };
  return [
    // A tag expiration past JavaScript's dates: stored, then every view of the tag failed.
    { label: 'tag expiration 1e13 s', inject: { method: 'PUT', url: tagUrl, headers: api, body: json({ expiration: 1e13 }) } },
    { label: 'tag expiration past year 275760', inject: { method: 'PUT', url: tagUrl, headers: api, body: json({ expiration: 8.64e12 + 1 }) } },
    { label: 'tag list after a huge expiration', inject: get(`/api/v1/repository/${BASE_IMAGE}/tag/?onlyActiveTags=false`) },
    { label: 'tag expiration cleared', inject: { method: 'PUT', url: tagUrl, headers: api, body: json({ expiration: null }) } },
    { label: 'API token expiration 1e13 s', inject: { method: 'POST', url: '/api/v1/user/apitokens', headers: api, body: json({ name: 'far', scopes: ['repo:read'], expiration: 1e13 }) } },
    { label: 'API token expiration "+275760-09-13T00:00:01Z"', inject: { method: 'POST', url: '/api/v1/user/apitokens', headers: api, body: json({ name: 'far', scopes: ['repo:read'], expiration: '275760-09-14' }) } },
    { label: 'API token expiration 8.9e12 s (a safe integer of ms, past year 275760)', inject: { method: 'POST', url: '/api/v1/user/apitokens', headers: api, body: json({ name: 'far', scopes: ['repo:read'], expiration: 8.9e12 }) } },
    { label: 'API token expiration "8900000000000000ms"', inject: { method: 'POST', url: '/api/v1/user/apitokens', headers: api, body: json({ name: 'far', scopes: ['repo:read'], expiration: '8900000000000000ms' }) } },
    { label: 'API tokens listed after a far expiry', inject: get('/api/v1/user/apitokens') },
    { label: 'API token expiration "1000000000000000000s"', inject: { method: 'POST', url: '/api/v1/user/apitokens', headers: api, body: json({ name: 'far', scopes: ['repo:read'], expiration: '100000000000000000000s' }) } },
    { label: 'audit log starttime/endtime far away', inject: get('/api/v1/user/logs?starttime=0&endtime=999999999999999') },
    { label: 'audit log dates past year 9999', inject: get('/api/v1/user/logs?starttime=9999-12-31&endtime=12/31/9999') },
    { label: 'quota 1e300 bytes', inject: { method: 'POST', url: '/api/v1/organization/fz/quota', headers: api, body: json({ limit_bytes: 1e300 }) } },
    { label: 'auto-prune creation_date 999999y', inject: { method: 'POST', url: '/api/v1/organization/fz/autoprunepolicy/', headers: api, body: json({ method: 'creation_date', value: '9999999999999999w' }) } },
    { label: 'proxy cache expiration_s 1e300', inject: { method: 'POST', url: '/api/v1/organization/fy/proxycache', headers: api, body: json({ upstream_registry: 'up.invalid', expiration_s: 1e300 }) } },
    // NUL characters, which SQLite stores and PostgreSQL refuses.
    { label: 'NUL in a team description', inject: { method: 'PUT', url: '/api/v1/organization/fz/team/devs', headers: api, body: json({ role: 'member', description: 'a\u0000b' }) } },
    { label: 'NUL in a robot description', inject: { method: 'PUT', url: '/api/v1/organization/fz/robots/bot', headers: api, body: json({ description: '\u0000' }) } },
    { label: 'NUL in a repository description', inject: { method: 'POST', url: '/api/v1/repository', headers: api, body: json({ namespace: 'fz', repository: 'nul', visibility: 'private', description: 'x\u0000' }) } },
    { label: 'NUL in an auto-prune tag pattern', inject: { method: 'POST', url: '/api/v1/organization/fz/autoprunepolicy/', headers: api, body: json({ method: 'number_of_tags', value: 5, tagPattern: 'a\u0000' }) } },
    { label: 'NUL in an e-mail address', inject: { method: 'PUT', url: '/api/v1/superuser/users/victim', headers: api, body: json({ email: 'a\u0000@b.c' }) } },
    { label: 'NUL in an API token name', inject: { method: 'POST', url: '/api/v1/user/apitokens', headers: api, body: json({ name: 'n\u0000', scopes: ['repo:read'] }) } },
    { label: 'NUL in a manifest artifactType and annotations', inject: { method: 'PUT', url: `/v2/${BASE_IMAGE}/manifests/nul`, headers: { ...root, 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: 'application/x\u0000y', manifests: [], annotations: { 'a\u0000': 'b\u0000' } }) } },
    { label: 'NUL in manifest annotations (recorded as JSON text)', inject: { method: 'PUT', url: `/v2/${BASE_IMAGE}/manifests/nul`, headers: { ...root, 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], annotations: { 'a\u0000': 'b\u0000' } }) } },
    { label: 'NUL in a tag list cursor', inject: get(`/v2/${BASE_IMAGE}/tags/list?last=a%00b`) },
    // A superuser's push into a namespace that cannot be an organization (one character).
    { label: 'push into a one-character namespace', inject: { method: 'POST', url: '/v2/b/x/blobs/uploads/', headers: root } },
    { label: 'push into a one-character namespace, nested', inject: { method: 'POST', url: '/v2/q/a/b/c/d/blobs/uploads/', headers: root } },
    // Errors before routing, which Fastify answered in its own shape.
    { label: 'bad percent-encoding in a /v2 path', raw: raw(get(`/v2/${BASE_IMAGE}/manifests/%`), {}) },
    { label: 'bad percent-encoding in a /v2 name', raw: raw(get('/v2/fz/%zz/manifests/v1'), {}) },
    { label: 'bad percent-encoding in an /api/v1 path', raw: raw(get('/api/v1/repository/fz/%e0%80/tag/'), {}) },
    { label: 'oversized headers on /v2', raw: raw(get('/v2/'), { extra: [`X-Big: ${'a'.repeat(20_000)}`] }) },
    { label: 'oversized headers on /api/v1', raw: raw(get('/api/v1/user/'), { extra: [`X-Big: ${'a'.repeat(20_000)}`] }) },
    { label: 'Expect: garbage on /v2', raw: raw(get('/v2/'), { extra: ['Expect: garbage'] }) },
    { label: 'Expect: garbage on /api/v1', raw: raw(get('/api/v1/user/'), { extra: ['Expect: garbage'] }) },
    // Bodies that end early.
    { label: 'manifest PUT, client hangs up mid-body', raw: raw(manifest, { framing: longer(manifest), then: 'destroy' }) },
    { label: 'manifest PUT, body shorter than Content-Length', raw: raw(manifest, { framing: longer(manifest) }) },
    { label: 'manifest PUT, bad chunk size', raw: raw(manifest, { framing: ['Transfer-Encoding: chunked'], body: '5\r\n{"sch\r\nzz\r\n' }) },
    { label: 'monolithic blob POST, client hangs up mid-body', raw: raw(blob, { framing: longer(blob), then: 'destroy' }) },
    { label: 'monolithic blob POST, bad chunk size', raw: raw(blob, { framing: ['Transfer-Encoding: chunked'], body: '3\r\nsho\r\nzz\r\n' }) },
    { label: 'monolithic blob POST, chunked body cut short', raw: raw(blob, { framing: ['Transfer-Encoding: chunked'], body: '10\r\nsho' }) },
    { label: 'upload PATCH, client hangs up mid-body', raw: raw(patch, { framing: longer(patch), then: 'destroy' }) },
    { label: 'upload PUT, client hangs up mid-body', raw: raw(put, { framing: longer(put), then: 'destroy' }) },
    { label: 'upload PUT, bad chunk size', raw: raw(put, { framing: ['Transfer-Encoding: chunked'], body: '2\r\nab\r\nzz\r\n' }) },
  ];
}
