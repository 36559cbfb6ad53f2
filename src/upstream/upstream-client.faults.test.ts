/** The upstream client against a fake upstream, for faults a real registry cannot produce. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import { startFaultServer, sendError, type FaultHandler, type FaultServer } from '../../test/helpers/fault-server.js';
import { freePort } from '../../test/helpers/ports.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { UpstreamAuthError, UpstreamNotFoundError, UpstreamProtocolError, UpstreamRateLimitedError, UpstreamUnavailableError } from './errors.js';
import { SsrfGuard, parseUpstreamSpec } from './ssrf.js';
import { UpstreamClient, type UpstreamClientOptions } from './upstream-client.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('{}'), size: 2 },
    layers: [],
  }),
);
const MANIFEST_DIGEST = sha(MANIFEST);
const BLOB = Buffer.alloc(200_000, 7);
const BLOB_DIGEST = sha(BLOB);
const guard = new SsrfGuard({ allow: ['127.0.0.0/8'] });

const servers: FaultServer[] = [];
const clients: UpstreamClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
});

async function setup(handler: FaultHandler, opts: Partial<UpstreamClientOptions> = {}): Promise<{ server: FaultServer; client: UpstreamClient }> {
  const server = await startFaultServer(handler);
  servers.push(server);
  const client = new UpstreamClient({ spec: parseUpstreamSpec(server.host, { insecure: true }), guard, ...opts });
  clients.push(client);
  return { server, client };
}

function sendManifest(res: ServerResponse, bytes = MANIFEST, digest = sha(bytes)): void {
  res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': digest, 'content-length': bytes.length });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function clock() {
  let t = 1_700_000_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** An upstream that wants `Bearer <token>` from its own /token endpoint (Basic alice:secret if `creds`). */
function tokenUpstream(opts: { creds?: boolean; expiresIn?: number } = {}): FaultHandler {
  let issued = 0;
  return (req, res, server) => {
    const url = new URL(req.url!, server.url);
    if (url.pathname === '/token') {
      if (opts.creds && req.headers.authorization !== `Basic ${Buffer.from('alice:secret').toString('base64')}`) return sendError(res, 401, 'UNAUTHORIZED', 'bad credentials');
      const token = `tok-${++issued}-${url.searchParams.get('scope')}`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: opts.expiresIn ?? 300 }));
      return;
    }
    const repo = /^\/v2\/(.+)\/(manifests|blobs|tags)\//.exec(url.pathname)?.[1];
    const scope = `repository:${repo}:pull`;
    if (!req.headers.authorization?.startsWith('Bearer tok-') || !req.headers.authorization.endsWith(scope)) {
      return sendError(res, 401, 'UNAUTHORIZED', 'authentication required', {
        'www-authenticate': `Bearer realm="${server.url}/token",service="fake.registry",scope="${scope}"`,
      });
    }
    sendManifest(res);
  };
}

describe('upstream auth', () => {
  it('Bearer: anonymous first, 401 → token (service, scope, Basic credentials) → retry; token cached', async () => {
    const { server, client } = await setup(tokenUpstream({ creds: true }), { credentials: { username: 'alice', password: 'secret' } });
    const m = await client.getManifest('team/app', 'v1');
    assert.equal(m.digest, MANIFEST_DIGEST);
    assert.deepEqual(server.requests.map((r) => [r.method, r.url.split('?')[0], r.headers.authorization?.split(' ')[0]]), [
      ['GET', '/v2/team/app/manifests/v1', undefined],
      ['GET', '/token', 'Basic'],
      ['GET', '/v2/team/app/manifests/v1', 'Bearer'],
    ]);
    const tokenUrl = new URL(server.requests[1]!.url, server.url);
    assert.equal(tokenUrl.searchParams.get('service'), 'fake.registry');
    assert.equal(tokenUrl.searchParams.get('scope'), 'repository:team/app:pull');
    await client.headManifest('team/app', 'v1');
    await client.getManifest('team/app', 'v1');
    assert.equal(server.count('/token'), 1);
    // Another repository: the remembered challenge gets its token up front, without a 401 round trip.
    await client.getManifest('team/other', 'v1');
    assert.equal(server.count('/token'), 2);
    assert.equal(server.requests.filter((r) => !r.headers.authorization && r.url.startsWith('/v2/')).length, 1);
  });

  it('fetches a new token once the cached one is within the margin of expiry', async () => {
    const c = clock();
    const { server, client } = await setup(tokenUpstream({ expiresIn: 30 }), { now: c.now, tokenMarginMs: 10_000 });
    await client.getManifest('a/b', 'v1');
    c.advance(19_000);
    await client.getManifest('a/b', 'v1');
    assert.equal(server.count('/token'), 1);
    c.advance(2_000);
    await client.getManifest('a/b', 'v1');
    assert.equal(server.count('/token'), 2);
  });

  it('concurrent requests for one scope share one token request', async () => {
    const { server, client } = await setup(tokenUpstream());
    await client.getManifest('a/b', 'v1'); // learn the challenge
    const fresh = new UpstreamClient({ spec: client.spec, guard });
    clients.push(fresh);
    await fresh.getManifest('a/b', 'v1');
    const before = server.count('/token');
    await Promise.all(Array.from({ length: 5 }, () => fresh.getManifest('x/y', 'v1')));
    assert.equal(server.count('/token') - before, 1);
  });

  it('Basic challenge: retries with the configured credentials', async () => {
    const expected = `Basic ${Buffer.from('alice:secret').toString('base64')}`;
    const handler: FaultHandler = (req, res) => {
      if (req.headers.authorization !== expected) return sendError(res, 401, 'UNAUTHORIZED', 'login', { 'www-authenticate': 'Basic realm="Registry Realm"' });
      sendManifest(res);
    };
    const { server, client } = await setup(handler, { credentials: { username: 'alice', password: 'secret' } });
    await client.getManifest('a/b', 'v1');
    await client.getManifest('a/b', 'v2');
    assert.deepEqual(server.requests.map((r) => r.headers.authorization ?? null), [null, expected, expected]);
    const { client: anonymous } = await setup(handler);
    await assert.rejects(anonymous.getManifest('a/b', 'v1'), UpstreamAuthError);
  });

  it('401 after re-authentication, 403, refused credentials and a 401 without challenge are UpstreamAuthError', async () => {
    const { client: always401 } = await setup((req, res, server) => {
      if (req.url!.startsWith('/token')) return void res.writeHead(200).end('{"token":"t"}');
      sendError(res, 401, 'UNAUTHORIZED', 'no', { 'www-authenticate': `Bearer realm="${server.url}/token"` });
    });
    await assert.rejects(always401.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamAuthError && /after re-authentication/.test(e.message));
    const { client: forbidden } = await setup((_req, res) => sendError(res, 403, 'DENIED', 'nope'));
    await assert.rejects(forbidden.getManifest('a/b', 'v1'), UpstreamAuthError);
    const { client: badCreds } = await setup(tokenUpstream({ creds: true }), { credentials: { username: 'alice', password: 'wrong' } });
    await assert.rejects(badCreds.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamAuthError && /refused the configured credentials/.test(e.message));
    const { client: noChallenge } = await setup((_req, res) => sendError(res, 401, 'UNAUTHORIZED', 'x'));
    await assert.rejects(noChallenge.getManifest('a/b', 'v1'), UpstreamAuthError);
    assert.equal(badCreds.breaker.state, 'closed');
  });

  it('checkAccess: valid, anonymous, refused', async () => {
    const { client: open } = await setup((_req, res) => void res.writeHead(200).end('{}'));
    assert.equal(await open.checkAccess(), 'valid');
    const challenge: FaultHandler = (req, res, server) => {
      if (req.url!.startsWith('/token')) {
        if (req.headers.authorization) return void res.writeHead(200).end('{"token":"t"}');
        return sendError(res, 401, 'UNAUTHORIZED', 'creds');
      }
      if (req.headers.authorization === 'Bearer t') return void res.writeHead(200).end('{}');
      sendError(res, 401, 'UNAUTHORIZED', 'x', { 'www-authenticate': `Bearer realm="${server.url}/token",service="s"` });
    };
    const { client: anon } = await setup(challenge);
    assert.equal(await anon.checkAccess(), 'anonymous');
    const { client: withCreds } = await setup(challenge, { credentials: { username: 'u', password: 'p' } });
    assert.equal(await withCreds.checkAccess(), 'valid');
  });
});

describe('upstream response faults', () => {
  it('a wrong Docker-Content-Digest, a by-digest mismatch and invalid JSON are UpstreamProtocolError', async () => {
    const other = sha('something else');
    const { client } = await setup((req, res) => {
      if (req.url!.endsWith('/wrong-header')) return sendManifest(res, MANIFEST, other);
      if (req.url!.endsWith('/not-json')) return sendManifest(res, Buffer.from('{not json'));
      sendManifest(res, MANIFEST, MANIFEST_DIGEST);
    });
    await assert.rejects(client.getManifest('a/b', 'wrong-header'), (e: unknown) => e instanceof UpstreamProtocolError && /digest mismatch/.test(e.message));
    await assert.rejects(client.getManifest('a/b', other), (e: unknown) => e instanceof UpstreamProtocolError && e.message.includes(other));
    await assert.rejects(client.getManifest('a/b', 'not-json'), (e: unknown) => e instanceof UpstreamProtocolError && /not valid JSON/.test(e.message));
    assert.equal((await client.getManifest('a/b', MANIFEST_DIGEST)).digest, MANIFEST_DIGEST);
    assert.equal(client.breaker.state, 'closed');
  });

  it('tag list pagination follows the Link header', async () => {
    const { server, client } = await setup((req, res) => {
      const url = new URL(req.url!, 'http://x');
      const last = url.searchParams.get('last');
      const page = last === null ? ['a', 'b'] : ['c'];
      if (last === null) res.setHeader('link', '</v2/x/y/tags/list?last=b&n=2>; rel="next"');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'x/y', tags: page }));
    });
    const first = await client.listTags('x/y', { n: 2 });
    assert.deepEqual(first, { name: 'x/y', tags: ['a', 'b'], next: { last: 'b', n: 2 } });
    assert.deepEqual(await client.listTags('x/y', first.next), { name: 'x/y', tags: ['c'] });
    assert.deepEqual(server.requests.map((r) => r.url), ['/v2/x/y/tags/list?n=2', '/v2/x/y/tags/list?n=2&last=b']);
  });

  it('referrers from the referrers API, filtered by artifactType when the upstream did not filter', async () => {
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha('sig'), size: 10, artifactType: 'application/vnd.dev.cosign' },
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha('sbom'), size: 11, artifactType: 'application/spdx+json' },
      ],
    });
    const { server, client } = await setup((_req, res) => void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(index));
    const all = await client.referrers('a/b', MANIFEST_DIGEST);
    assert.equal(all.source, 'api');
    assert.equal(all.manifests.length, 2);
    const sboms = await client.referrers('a/b', MANIFEST_DIGEST, { artifactType: 'application/spdx+json' });
    assert.deepEqual(sboms.manifests.map((m) => m.digest), [sha('sbom')]);
    assert.equal(server.requests.at(-1)!.url, `/v2/a/b/referrers/${MANIFEST_DIGEST}?artifactType=application%2Fspdx%2Bjson`);
  });

  it('HEAD without Docker-Content-Digest falls back to GET and computes the digest', async () => {
    const { server, client } = await setup((req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(req.method === 'HEAD' ? undefined : MANIFEST);
    });
    assert.deepEqual(await client.headManifest('a/b', 'v1'), { digest: MANIFEST_DIGEST, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: MANIFEST.length });
    assert.deepEqual(server.requests.map((r) => r.method), ['HEAD', 'GET']);
  });

  it('a 404 carries the upstream code and message', async () => {
    const { client } = await setup((_req, res) => sendError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown: tag v9 not found'));
    await assert.rejects(client.getManifest('a/b', 'v9'), (e: unknown) => e instanceof UpstreamNotFoundError && e.code === 'MANIFEST_UNKNOWN' && e.message.includes('tag v9 not found'));
  });

  it('a truncated blob body (Content-Length larger than sent) errors the stream with UpstreamUnavailableError', async () => {
    const { client } = await setup((_req, res) => {
      res.writeHead(200, { 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 50_000), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const blob = await client.getBlob('a/b', BLOB_DIGEST);
    assert.equal(blob.size, BLOB.length);
    let received = 0;
    blob.stream.on('data', (c: Buffer) => (received += c.length));
    await assert.rejects(drain(blob.stream), UpstreamUnavailableError);
    assert.ok(received < 50_000, `held back the last bytes (got ${received})`);
  });

  it('a blob body that does not hash to its digest never completes', async () => {
    const corrupt = Buffer.from(BLOB);
    corrupt[corrupt.length - 1] = 0;
    const { client } = await setup((_req, res) => void res.writeHead(200, { 'content-length': corrupt.length }).end(corrupt));
    const blob = await client.getBlob('a/b', BLOB_DIGEST);
    let received = 0;
    blob.stream.on('data', (c: Buffer) => (received += c.length));
    await assert.rejects(drain(blob.stream), (e: unknown) => e instanceof UpstreamProtocolError && /digest mismatch/.test(e.message));
    assert.ok(received < corrupt.length);
  });

  it('a manifest body that breaks off is UpstreamUnavailableError and counts against the breaker', async () => {
    const breaker = new CircuitBreaker('127.0.0.1', { failureThreshold: 2 });
    const { client } = await setup(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': MANIFEST.length });
        res.write(MANIFEST.subarray(0, 20), () => setTimeout(() => res.socket?.destroy(), 20));
      },
      { breaker, retries: 0 },
    );
    await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamUnavailableError && /broke off/.test(e.message));
    assert.equal(breaker.snapshot().consecutiveFailures, 1);
  });

  it('a stall before the response headers times out (bounded), and so does a stalled body', async () => {
    const { client } = await setup(
      (req, res) => {
        if (req.url!.includes('/blobs/')) {
          res.writeHead(200, { 'content-length': BLOB.length });
          res.write(BLOB.subarray(0, 1000));
          return; // then nothing
        }
        // never answer
      },
      { timeouts: { headersMs: 200, bodyIdleMs: 200 } },
    );
    await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamUnavailableError && /no response headers within 200 ms/.test(e.message));
    const blob = await client.getBlob('a/b', BLOB_DIGEST);
    await assert.rejects(drain(blob.stream), (e: unknown) => e instanceof UpstreamUnavailableError && /stalled/.test(e.message));
  });

  it('connection refused is UpstreamUnavailableError', async () => {
    const port = await freePort();
    const client = new UpstreamClient({ spec: parseUpstreamSpec(`127.0.0.1:${port}`, { insecure: true }), guard });
    clients.push(client);
    await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamUnavailableError && /ECONNREFUSED/.test(e.message));
  });

  it('a connection that breaks before any response is retried once', async () => {
    let n = 0;
    const { server, client } = await setup((req, res) => {
      if (n++ === 0) return void req.socket.destroy();
      sendManifest(res);
    });
    assert.equal((await client.getManifest('a/b', 'v1')).digest, MANIFEST_DIGEST);
    assert.equal(server.requests.length, 2);
  });
});

describe('circuit breaking and rate limits', () => {
  it('5xx opens the breaker, it then fails fast without contacting the upstream, and a half-open probe recovers', async () => {
    const c = clock();
    let healthy = false;
    const breaker = new CircuitBreaker('127.0.0.1', { failureThreshold: 3, baseCooldownMs: 5_000, now: c.now });
    const { server, client } = await setup(
      (req, res) => {
        if (req.url!.endsWith('/missing')) return sendError(res, 404, 'MANIFEST_UNKNOWN', 'no');
        if (!healthy) return sendError(res, 503, 'UNAVAILABLE', 'down for maintenance');
        sendManifest(res);
      },
      { breaker },
    );
    for (let i = 0; i < 2; i++) await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamUnavailableError && e.status === 503);
    await assert.rejects(client.getManifest('a/b', 'missing'), UpstreamNotFoundError); // a 404 is a healthy answer
    assert.equal(breaker.state, 'closed');
    await assert.rejects(client.getManifest('a/b', 'v1'), UpstreamUnavailableError);
    assert.equal(breaker.snapshot().consecutiveFailures, 1);
    await assert.rejects(client.getManifest('a/b', 'v1'), UpstreamUnavailableError);
    await assert.rejects(client.getManifest('a/b', 'v1'), UpstreamUnavailableError);
    assert.equal(breaker.state, 'open');
    const seen = server.requests.length;
    for (let i = 0; i < 20; i++) await assert.rejects(client.getBlob('a/b', BLOB_DIGEST), (e: unknown) => e instanceof UpstreamUnavailableError && /circuit open/.test(e.message));
    await assert.rejects(client.headManifest('a/b', 'v1'), /circuit open/);
    assert.equal(server.requests.length, seen, 'no request reached the upstream while open');
    c.advance(5_000);
    healthy = true;
    assert.equal((await client.getManifest('a/b', 'v1')).digest, MANIFEST_DIGEST);
    assert.equal(breaker.state, 'closed');
    assert.equal(server.requests.length, seen + 1);
  });

  it('a failed half-open probe reopens the breaker with a longer cool-down', async () => {
    const c = clock();
    const breaker = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 1_000, now: c.now });
    const { server, client } = await setup((_req, res) => sendError(res, 500, 'UNKNOWN', 'boom'), { breaker });
    await assert.rejects(client.getManifest('a/b', 'v1'), UpstreamUnavailableError);
    c.advance(1_000);
    await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamUnavailableError && e.status === 500);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.snapshot().cooldownMs, 2_000);
    c.advance(1_000);
    await assert.rejects(client.getManifest('a/b', 'v1', { fallback: true }), /circuit open/);
    assert.equal(server.requests.length, 2);
    // A call without a fallback probes (a second after the last probe) and leaves the cool-down alone.
    await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamUnavailableError && e.status === 500);
    assert.equal(server.requests.length, 3);
    assert.deepEqual([breaker.state, breaker.snapshot().cooldownMs], ['open', 2_000]);
  });

  it('while open, every kind of call with a fallback fails fast; one without a fallback probes once a second and recovers', async () => {
    const c = clock();
    let healthy = false;
    const breaker = new CircuitBreaker('127.0.0.1', { failureThreshold: 1, baseCooldownMs: 60_000, now: c.now });
    const { server, client } = await setup(
      (req, res) => {
        if (!healthy) return sendError(res, 503, 'UNAVAILABLE', 'down');
        if (req.url!.includes('/tags/')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"name":"a/b","tags":["v1"]}');
        if (req.url!.includes('/referrers/')) return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end('{"schemaVersion":2,"manifests":[]}');
        if (req.url!.includes('/blobs/')) return void res.writeHead(200, { 'content-length': BLOB.length }).end(BLOB);
        sendManifest(res);
      },
      { breaker },
    );
    await assert.rejects(client.headManifest('a/b', 'v1'), UpstreamUnavailableError);
    assert.equal(breaker.state, 'open');
    healthy = true;
    const fallback = { fallback: true };
    const calls = [
      () => client.headManifest('a/b', 'v1', fallback),
      () => client.getManifest('a/b', 'v1', fallback),
      () => client.getBlob('a/b', BLOB_DIGEST, undefined, fallback),
      () => client.listTags('a/b', {}, fallback),
      () => client.referrers('a/b', MANIFEST_DIGEST, fallback),
    ];
    c.advance(30_000);
    for (const call of calls) await assert.rejects(call(), /circuit open/);
    assert.equal(server.requests.length, 1, 'no call with a fallback reached the upstream');
    assert.equal((await client.getManifest('a/b', 'v1')).digest, MANIFEST_DIGEST);
    assert.equal(breaker.state, 'closed');
    for (const call of calls) {
      const result = await call();
      if ('stream' in result) assert.deepEqual(await drain(result.stream), BLOB);
    }
  });

  it('429 with Retry-After: typed error, GETs back off without contacting the upstream, HEADs still go', async () => {
    const c = clock();
    let limited = true;
    const { server, client } = await setup(
      (_req, res) => {
        if (limited) return sendError(res, 429, 'TOOMANYREQUESTS', 'pull rate limit', { 'retry-after': '30', 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' });
        res.setHeader('ratelimit-limit', '100;w=21600');
        res.setHeader('ratelimit-remaining', '99;w=21600');
        sendManifest(res);
      },
      { now: c.now },
    );
    await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamRateLimitedError && e.retryAfterSeconds === 30);
    assert.deepEqual(client.rateLimit, { limit: 100, remaining: 0, windowSeconds: 21600, observedAt: c.now() });
    await assert.rejects(client.getBlob('a/b', BLOB_DIGEST), (e: unknown) => e instanceof UpstreamRateLimitedError && e.retryAfterSeconds === 30);
    assert.equal(server.requests.length, 1);
    limited = false;
    await client.headManifest('a/b', 'v1');
    assert.equal(server.requests.length, 2);
    c.advance(30_000);
    await client.getManifest('a/b', 'v1');
    assert.equal(client.rateLimit?.remaining, 99);
    assert.equal(client.breaker.state, 'closed');
  });
});

describe('rate-limit exhaustion', () => {
  it('a success reporting no pulls left pauses GETs for a minute; a 429 without Retry-After too', async () => {
    const c = clock();
    let mode: 'last' | 'limited' | 'ok' = 'last';
    const { server, client } = await setup(
      (_req, res) => {
        if (mode === 'limited') return sendError(res, 429, 'TOOMANYREQUESTS', 'pull rate limit');
        res.setHeader('ratelimit-limit', '100;w=21600');
        res.setHeader('ratelimit-remaining', mode === 'last' ? '0;w=21600' : '50;w=21600');
        sendManifest(res);
      },
      { now: c.now },
    );
    await client.getManifest('a/b', 'v1');
    assert.equal(client.rateLimit?.remaining, 0);
    await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamRateLimitedError && e.retryAfterSeconds === 60);
    assert.equal(server.requests.length, 1);
    c.advance(60_000);
    mode = 'limited';
    await assert.rejects(client.getManifest('a/b', 'v1'), UpstreamRateLimitedError);
    assert.equal(server.requests.length, 2);
    await assert.rejects(client.getManifest('a/b', 'v1'), (e: unknown) => e instanceof UpstreamRateLimitedError && e.retryAfterSeconds === 60);
    assert.equal(server.requests.length, 2);
    c.advance(60_000);
    mode = 'ok';
    await client.getManifest('a/b', 'v1');
    assert.equal(client.rateLimit?.remaining, 50);
  });
});

describe('blob redirects', () => {
  it('follows a redirect to another host without forwarding Authorization', async () => {
    const cdn = await startFaultServer((req, res) => {
      res.writeHead(200, { 'content-length': BLOB.length, 'content-type': 'application/octet-stream' });
      res.end(BLOB);
    });
    servers.push(cdn);
    const { server, client } = await setup((req, res, s) => {
      if (req.url!.startsWith('/token')) return void res.writeHead(200).end('{"token":"secret-token"}');
      if (req.headers.authorization !== 'Bearer secret-token') {
        return sendError(res, 401, 'UNAUTHORIZED', 'x', { 'www-authenticate': `Bearer realm="${s.url}/token",service="s"` });
      }
      if (req.url!.endsWith('/same-origin')) return void res.writeHead(200).end();
      res.writeHead(307, { location: `http://localhost:${cdn.port}/bucket/blob?sig=abc` }).end();
    });
    const blob = await client.getBlob('a/b', BLOB_DIGEST);
    assert.equal(blob.status, 200);
    assert.deepEqual(await drain(blob.stream), BLOB);
    assert.equal(cdn.requests.length, 1);
    assert.equal(cdn.requests[0]!.url, '/bucket/blob?sig=abc');
    assert.equal(cdn.requests[0]!.headers.authorization, undefined);
    assert.equal(server.requests.at(-1)!.headers.authorization, 'Bearer secret-token');
  });

  it('does not follow a redirect to a refused address', async () => {
    const { client } = await setup((_req, res) => void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end());
    await assert.rejects(client.getBlob('a/b', BLOB_DIGEST), /link-local, metadata or reserved/);
  });
});
