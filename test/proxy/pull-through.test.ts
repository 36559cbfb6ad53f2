/**
 * Pull-through behaviour of proxy organizations against a real upstream (Debian's docker-registry,
 * i.e. CNCF Distribution) behind the fault-injecting proxy, on SQLite and PostgreSQL. Wharf listens on
 * a port so that broken transfers are seen as a real client sees them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { basicOf } from '../helpers/api-client.js';
import { DIALECTS } from '../helpers/databases.js';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { sha256, waitFor } from '../helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushRandomImage, pushRandomIndex } from '../helpers/registry-push.js';

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';

for (const dialect of DIALECTS) {
  describe(`proxy cache: pull-through (${dialect})`, () => {
    let dist: DistributionProcess;
    let up: FaultProxy;
    let t: TestApp;
    let base: string;
    const member = basicOf('member', 'member-password-1');
    const root = basicOf('root', 'root-password-1');
    const outsider = basicOf('outsider', 'outsider-password-1');

    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}/api/v1${path}`, {
        method,
        headers: { authorization: root, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, text };
    };
    const get = (path: string, auth: string | null = member, init: RequestInit = {}) =>
      fetch(`${base}${path}`, { ...init, headers: { accept: MANIFEST_ACCEPT, ...(auth ? { authorization: auth } : {}), ...(init.headers as Record<string, string> | undefined) } });
    const makeProxyOrg = async (org: string, upstream: FaultProxy, settings: Record<string, unknown> = {}) => {
      await t.accounts!.accounts.createOrganization({ name: org, creator: 'root' });
      await t.accounts!.teams.createTeam(org, 'pullers', { role: 'member' });
      await t.accounts!.teams.addMember(org, 'pullers', 'member');
      const res = await api('POST', `/organization/${org}/proxycache`, { upstream_registry: upstream.host, insecure: true, ...settings });
      assert.equal(res.status, 201, res.text);
    };
    const blobGets = (name: string, digest: string) => up.count({ method: 'GET', path: `/v2/${name}/blobs/${digest}` });

    before(async () => {
      dist = await startDistribution();
      up = await startFaultProxy(dist.url);
      t = await buildTestApp(dialect, { config: { proxy_cache: { allow_private_upstreams: ['127.0.0.1'], default_organization: 'hub' } } });
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const addr = t.app.server.address() as { port: number };
      base = `http://127.0.0.1:${addr.port}`;
      for (const name of ['root', 'member', 'outsider']) await t.accounts!.accounts.createUser({ name, password: `${name}-password-1`, superuser: name === 'root' });
      await makeProxyOrg('hub', up, { expiration_s: 3600 });
    });
    after(async () => {
      await t?.close();
      await up?.stop();
      await dist?.stop();
    });

    it('pulls a tag through the cache: a miss fetches and stores, then hits need one upstream HEAD and no GET', async () => {
      const img = await pushRandomImage(dist.url, 'app/one', 'v1');
      up.clearRequests();
      const first = await get('/v2/hub/app/one/manifests/v1');
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('x-wharf-cache'), 'miss');
      assert.equal(first.headers.get('docker-content-digest'), img.digest);
      assert.deepEqual(Buffer.from(await first.arrayBuffer()), img.manifest);
      const second = await get('/v2/hub/app/one/manifests/v1');
      assert.equal(second.headers.get('x-wharf-cache'), 'hit');
      assert.equal(sha256(Buffer.from(await second.arrayBuffer())), img.digest);
      assert.equal(up.count({ method: 'GET', path: '/v2/app/one/manifests/v1' }), 1);
      assert.equal(up.count({ method: 'HEAD', path: '/v2/app/one/manifests/v1' }), 2);

      const layer = img.layers[0]!;
      const b1 = await get(`/v2/hub/app/one/blobs/${layer.digest}`);
      assert.equal(b1.status, 200);
      assert.equal(b1.headers.get('x-wharf-cache'), 'miss');
      assert.deepEqual(Buffer.from(await b1.arrayBuffer()), layer.bytes);
      await waitFor('the blob to be recorded', async () => (await get(`/v2/hub/app/one/blobs/${layer.digest}`, member, { method: 'HEAD' })).headers.get('x-wharf-cache') === 'hit');
      const b2 = await get(`/v2/hub/app/one/blobs/${layer.digest}`, member, { headers: { range: 'bytes=10-19' } });
      assert.equal(b2.status, 206);
      assert.deepEqual(Buffer.from(await b2.arrayBuffer()), layer.bytes.subarray(10, 20));
      assert.equal(blobGets('app/one', layer.digest), 1);
    });

    it('concurrent pulls of a cached tag share one upstream HEAD', async () => {
      await pushRandomImage(dist.url, 'app/shared', 'v1');
      assert.equal((await get('/v2/hub/app/shared/manifests/v1')).status, 200);
      up.clearRequests();
      const slow = up.inject({ method: 'HEAD', path: '/v2/app/shared/manifests/v1', fault: { kind: 'stall', ms: 300 }, times: 1 });
      const results = await Promise.all(Array.from({ length: 10 }, () => get('/v2/hub/app/shared/manifests/v1')));
      for (const r of results) assert.equal(r.status, 200);
      assert.equal(slow.hits, 1);
      assert.equal(up.count({ method: 'HEAD', path: '/v2/app/shared/manifests/v1' }), 1);
    });

    it('records every cache pull in the audit log with its result', async () => {
      await pushRandomImage(dist.url, 'app/audited', 'v1');
      await get('/v2/hub/app/audited/manifests/v1');
      await get('/v2/hub/app/audited/manifests/v1');
      await t.registry.audit!.flush();
      const logs = await api('GET', '/repository/hub/app%2Faudited/logs');
      assert.equal(logs.status, 200, logs.text);
      const pulls = (JSON.parse(logs.text) as { logs: Array<{ kind: string; metadata: Record<string, unknown> }> }).logs.filter((l) => l.kind === 'pull_repo');
      assert.deepEqual(pulls.map((l) => l.metadata.cache).sort(), ['hit', 'miss']);
      const miss = pulls.find((l) => l.metadata.cache === 'miss')!;
      assert.ok(Number(miss.metadata.upstream_bytes) > 0);
      assert.equal(miss.metadata.tag, 'v1');
    });

    it('serves the new target when the tag moved upstream and keeps the old one in the tag history', async () => {
      const old = await pushRandomImage(dist.url, 'app/moving', 'latest');
      assert.equal((await get('/v2/hub/app/moving/manifests/latest')).headers.get('docker-content-digest'), old.digest);
      const next = await pushRandomImage(dist.url, 'app/moving', 'latest');
      const res = await get('/v2/hub/app/moving/manifests/latest');
      assert.equal(res.headers.get('x-wharf-cache'), 'miss');
      assert.equal(res.headers.get('docker-content-digest'), next.digest);
      const history = await api('GET', '/repository/hub/app%2Fmoving/tag/?onlyActiveTags=false');
      assert.equal(history.status, 200, history.text);
      const digests = (JSON.parse(history.text) as { tags: Array<{ manifest_digest: string }> }).tags.map((x) => x.manifest_digest);
      assert.ok(digests.includes(old.digest) && digests.includes(next.digest), history.text);
    });

    it('pulls by digest: fetched once, kept by a hidden tag that tag lists never show', async () => {
      const img = await pushRandomImage(dist.url, 'app/bydigest', 'v1');
      up.clearRequests();
      const r1 = await get(`/v2/hub/app/bydigest/manifests/${img.digest}`);
      assert.equal(r1.status, 200);
      assert.equal(r1.headers.get('x-wharf-cache'), 'miss');
      const r2 = await get(`/v2/hub/app/bydigest/manifests/${img.digest}`);
      assert.equal(r2.headers.get('x-wharf-cache'), 'hit');
      assert.equal(up.count({ path: `/v2/app/bydigest/manifests/${img.digest}` }), 1);
      const tags = await api('GET', '/repository/hub/app%2Fbydigest/tag/');
      assert.equal(tags.status, 200, tags.text);
      assert.deepEqual((JSON.parse(tags.text) as { tags: unknown[] }).tags, []);
    });

    it('an index is stored as is and each platform is fetched when asked for', async () => {
      const idx = await pushRandomIndex(dist.url, 'app/multi', 'v1', [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ]);
      up.clearRequests();
      const r = await get('/v2/hub/app/multi/manifests/v1');
      assert.equal(r.status, 200);
      assert.deepEqual(Buffer.from(await r.arrayBuffer()), idx.index);
      assert.equal(up.count({ method: 'GET', path: `/v2/app/multi/manifests/${idx.images[0]!.digest}` }), 0);
      for (const img of idx.images) {
        const child = await get(`/v2/hub/app/multi/manifests/${img.digest}`);
        assert.equal(child.status, 200);
        assert.deepEqual(Buffer.from(await child.arrayBuffer()), img.manifest);
        const layer = await get(`/v2/hub/app/multi/blobs/${img.layers[0]!.digest}`);
        assert.deepEqual(Buffer.from(await layer.arrayBuffer()), img.layers[0]!.bytes);
      }
    });

    it('8 concurrent first pulls of one large layer make exactly one upstream GET and all get the bytes', async () => {
      const img = await pushRandomImage(dist.url, 'app/big', 'v1', { layerSizes: [24 * 1024 * 1024] });
      const layer = img.layers[0]!;
      up.clearRequests();
      const bodies = await Promise.all(Array.from({ length: 8 }, async () => Buffer.from(await (await get(`/v2/hub/app/big/blobs/${layer.digest}`)).arrayBuffer())));
      for (const b of bodies) assert.equal(sha256(b), layer.digest);
      assert.equal(blobGets('app/big', layer.digest), 1);
    });

    it('a client that hangs up mid-fill does not stop the fill: the blob is cached', async () => {
      const img = await pushRandomImage(dist.url, 'app/hangup', 'v1', { layerSizes: [16 * 1024 * 1024] });
      const layer = img.layers[0]!;
      const slow = up.inject({ method: 'GET', path: `/v2/app/hangup/blobs/${layer.digest}`, fault: { kind: 'throttle', bytesPerSecond: 32 * 1024 * 1024 }, times: 1 });
      const ac = new AbortController();
      const res = await get(`/v2/hub/app/hangup/blobs/${layer.digest}`, member, { signal: ac.signal });
      const reader = res.body!.getReader();
      await reader.read();
      ac.abort();
      await waitFor('the fill to finish', async () => (await get(`/v2/hub/app/hangup/blobs/${layer.digest}`, member, { method: 'HEAD' })).headers.get('x-wharf-cache') === 'hit', 20_000);
      const again = Buffer.from(await (await get(`/v2/hub/app/hangup/blobs/${layer.digest}`)).arrayBuffer());
      assert.equal(sha256(again), layer.digest);
      assert.equal(slow.hits, 1);
      assert.equal(blobGets('app/hangup', layer.digest), 1);
    });

    it('a corrupted upstream body breaks the transfer off and caches nothing', async () => {
      const img = await pushRandomImage(dist.url, 'app/corrupt', 'v1', { layerSizes: [2 * 1024 * 1024] });
      const layer = img.layers[0]!;
      const protocolErrors = async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith('wharf_proxy_upstream_errors_total{') && l.includes('organization="hub"') && l.includes('kind="protocol"'));
        return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
      };
      const before = await protocolErrors();
      up.inject({ method: 'GET', path: `/v2/app/corrupt/blobs/${layer.digest}`, fault: { kind: 'corrupt' }, times: 1 });
      const res = await get(`/v2/hub/app/corrupt/blobs/${layer.digest}`);
      await assert.rejects(res.arrayBuffer());
      await waitFor('the failed fill to be counted as an upstream protocol error', async () => (await protocolErrors()) === before + 1, 5_000);
      // Nothing was cached: the next pull goes upstream again and gets the right bytes.
      const again = await get(`/v2/hub/app/corrupt/blobs/${layer.digest}`);
      assert.equal(again.headers.get('x-wharf-cache'), 'miss');
      assert.equal(sha256(Buffer.from(await again.arrayBuffer())), layer.digest);
      assert.equal(blobGets('app/corrupt', layer.digest), 2);
    });

    it('a truncated upstream body breaks the transfer off and caches nothing', async () => {
      const img = await pushRandomImage(dist.url, 'app/short', 'v1', { layerSizes: [2 * 1024 * 1024] });
      const layer = img.layers[0]!;
      up.inject({ method: 'GET', path: `/v2/app/short/blobs/${layer.digest}`, fault: { kind: 'truncate', afterBytes: 1024 * 1024 }, times: 1 });
      const res = await get(`/v2/hub/app/short/blobs/${layer.digest}`);
      await assert.rejects(res.arrayBuffer());
      const again = await get(`/v2/hub/app/short/blobs/${layer.digest}`);
      assert.equal(again.headers.get('x-wharf-cache'), 'miss');
      assert.equal(sha256(Buffer.from(await again.arrayBuffer())), layer.digest);
    });

    it('refuses pushes and deletes into a proxy organization with DENIED and the reason', async () => {
      const start = await fetch(`${base}/v2/hub/app/one/blobs/uploads/`, { method: 'POST', headers: { authorization: root } });
      assert.equal(start.status, 403);
      const body = (await start.json()) as { errors: Array<{ code: string; message: string }> };
      assert.equal(body.errors[0]!.code, 'DENIED');
      assert.match(body.errors[0]!.message, /proxy cache/);
      const del = await fetch(`${base}/v2/hub/app/one/manifests/v1`, { method: 'DELETE', headers: { authorization: root } });
      assert.equal(del.status, 403);
    });

    it('an upstream 404 for an uncached tag is a 404 MANIFEST_UNKNOWN, not a 500', async () => {
      const res = await get('/v2/hub/app/none/manifests/v1');
      assert.equal(res.status, 404);
      const body = (await res.json()) as { errors: Array<{ code: string }> };
      assert.equal(body.errors[0]!.code, 'MANIFEST_UNKNOWN');
    });

    it('only organization members pull through unless anonymous_pull is on', async () => {
      await pushRandomImage(dist.url, 'app/anon', 'v1');
      assert.equal((await get('/v2/hub/app/anon/manifests/v1', null)).status, 401);
      assert.equal((await get('/v2/hub/app/anon/manifests/v1', outsider)).status, 401);
      assert.equal((await api('PUT', '/organization/hub/proxycache', { anonymous_pull: true })).status, 200);
      const anon = await get('/v2/hub/app/anon/manifests/v1', null);
      assert.equal(anon.status, 200, await anon.clone().text());
      assert.equal((await api('PUT', '/organization/hub/proxycache', { anonymous_pull: false })).status, 200);
      assert.equal((await get('/v2/hub/app/anon/manifests/v1', null)).status, 401);
    });

    it('routes containerd mirror requests (?ns=<registry>) to the organization answering for that registry', async () => {
      const img = await pushRandomImage(dist.url, 'app/mirror', 'v1');
      const res = await get(`/v2/app/mirror/manifests/v1?ns=${encodeURIComponent(up.host)}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), img.digest);
      const blob = await get(`/v2/app/mirror/blobs/${img.layers[0]!.digest}?ns=${encodeURIComponent(up.host)}`);
      assert.deepEqual(Buffer.from(await blob.arrayBuffer()), img.layers[0]!.bytes);
      // An unknown ns is never dialled: the name is served (or not) locally.
      assert.equal((await get('/v2/app/mirror/manifests/v1?ns=registry.example.org')).status, 401);
    });

    it('a mirror request whose path names the organization (hosts.toml override_path) is served as named; ns= only says which registry was meant', async () => {
      const ns = `?ns=${encodeURIComponent(up.host)}`;
      const img = await pushRandomImage(dist.url, 'app/inpath', 'v1');
      const res = await get(`/v2/hub/app/inpath/manifests/v1${ns}`);
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get('docker-content-digest'), img.digest);
      const blob = await get(`/v2/hub/app/inpath/blobs/${img.layers[0]!.digest}${ns}`);
      assert.deepEqual(Buffer.from(await blob.arrayBuffer()), img.layers[0]!.bytes);
      const tags = await get(`/v2/hub/app/inpath/tags/list${ns}`);
      assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['v1']);
      assert.equal(up.count({ method: 'GET', path: '/v2/hub/app/inpath/manifests/v1' }), 0, 'the organization is not sent upstream');
    });

    it('with ns=, a path naming a local repository is served locally; a local namespace alone does not capture upstream names', async () => {
      await t.accounts!.accounts.createOrganization({ name: 'shadow', creator: 'root' });
      const ns = `?ns=${encodeURIComponent(up.host)}`;
      const local = await pushRandomImage(base, 'shadow/img', 'v1', { basic: 'root:root-password-1' });
      await pushRandomImage(dist.url, 'shadow/img', 'v1');
      const other = await pushRandomImage(dist.url, 'shadow/other', 'v1');
      const mine = await get(`/v2/shadow/img/manifests/v1${ns}`, root);
      assert.equal(mine.status, 200);
      assert.equal(mine.headers.get('docker-content-digest'), local.digest);
      assert.equal(mine.headers.get('x-wharf-cache'), null);
      const theirs = await get(`/v2/shadow/other/manifests/v1${ns}`);
      assert.equal(theirs.status, 200, await theirs.clone().text());
      assert.equal(theirs.headers.get('docker-content-digest'), other.digest);
      assert.equal(theirs.headers.get('x-wharf-cache'), 'miss');
      assert.equal((await get('/v2/hub/shadow/other/manifests/v1', member, { method: 'HEAD' })).headers.get('x-wharf-cache'), 'hit');
    });

    it('serves names of no local namespace through the default organization (Docker registry-mirrors)', async () => {
      const img = await pushRandomImage(dist.url, 'app/default', 'v1');
      const res = await get('/v2/app/default/manifests/v1');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), img.digest);
    });

    it('prefetch_layers caches every layer of a pulled manifest in the background', async () => {
      await makeProxyOrg('prefetch', up, { prefetch_layers: true });
      const img = await pushRandomImage(dist.url, 'app/pre', 'v1', { layerSizes: [100_000, 200_000] });
      assert.equal((await get('/v2/prefetch/app/pre/manifests/v1')).status, 200);
      for (const d of [img.config.digest, ...img.layers.map((l) => l.digest)]) {
        await waitFor(`prefetch of ${d}`, async () => (await get(`/v2/prefetch/app/pre/blobs/${d}`, member, { method: 'HEAD' })).headers.get('x-wharf-cache') === 'hit');
      }
    });

    it('an organization caching one upstream namespace maps names without it, also for ns= requests', async () => {
      await t.accounts!.accounts.createOrganization({ name: 'teamcache', creator: 'root' });
      await t.accounts!.teams.createTeam('teamcache', 'pullers', { role: 'member' });
      await t.accounts!.teams.addMember('teamcache', 'pullers', 'member');
      const created = await api('POST', '/organization/teamcache/proxycache', { upstream_registry: `${up.host}/team`, insecure: true, answers_for: ['registry.team.example'] });
      assert.equal(created.status, 201, created.text);
      const img = await pushRandomImage(dist.url, 'team/tool', 'v2');
      const direct = await get('/v2/teamcache/tool/manifests/v2');
      assert.equal(direct.status, 200);
      assert.equal(direct.headers.get('docker-content-digest'), img.digest);
      const mirrored = await get('/v2/team/tool/manifests/v2?ns=registry.team.example');
      assert.equal(mirrored.status, 200);
      assert.equal(mirrored.headers.get('docker-content-digest'), img.digest);
    });

    it('revalidate_interval_s lets a burst of pulls share one upstream answer', async () => {
      await pushRandomImage(dist.url, 'app/burst', 'v1');
      assert.equal((await api('PUT', '/organization/hub/proxycache', { revalidate_interval_s: 60 })).status, 200);
      try {
        await get('/v2/hub/app/burst/manifests/v1');
        up.clearRequests();
        for (let i = 0; i < 10; i++) assert.equal((await get('/v2/hub/app/burst/manifests/v1')).status, 200);
        assert.equal(up.count({ path: '/v2/app/burst/manifests/v1' }), 0);
      } finally {
        await api('PUT', '/organization/hub/proxycache', { revalidate_interval_s: 0 });
      }
    });

    describe('when the upstream fails', () => {
      let down: FaultProxy;
      before(async () => {
        down = await startFaultProxy(dist.url);
        await makeProxyOrg('flaky', down, { expiration_s: 2 });
      });
      after(async () => down?.stop());

      it('serves the cached tag while it has not expired, then a clear 503 — never a 500', async () => {
        const img = await pushRandomImage(dist.url, 'lib/stale', 'v1');
        assert.equal((await get('/v2/flaky/lib/stale/manifests/v1')).status, 200);
        down.setUpstreamDown(true);
        try {
          const stale = await get('/v2/flaky/lib/stale/manifests/v1');
          assert.equal(stale.status, 200);
          assert.equal(stale.headers.get('x-wharf-cache'), 'stale');
          assert.equal(stale.headers.get('docker-content-digest'), img.digest);
          await new Promise((r) => setTimeout(r, 2_100));
          const expired = await get('/v2/flaky/lib/stale/manifests/v1');
          assert.equal(expired.status, 503);
          assert.equal(((await expired.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAVAILABLE');
          const uncached = await get('/v2/flaky/lib/none/manifests/v1');
          assert.equal(uncached.status, 503);
        } finally {
          down.setUpstreamDown(false);
        }
      });

      it('a successful upstream check pushes the expiry forward', async () => {
        await pushRandomImage(dist.url, 'lib/renewed', 'v1');
        assert.equal((await get('/v2/flaky/lib/renewed/manifests/v1')).status, 200);
        await new Promise((r) => setTimeout(r, 1_300));
        assert.equal((await get('/v2/flaky/lib/renewed/manifests/v1')).headers.get('x-wharf-cache'), 'hit');
        await new Promise((r) => setTimeout(r, 1_300));
        down.setUpstreamDown(true);
        try {
          // 2.6 s after the first pull, but only 1.3 s after the renewal: still servable.
          const res = await get('/v2/flaky/lib/renewed/manifests/v1');
          assert.equal(res.status, 200);
          assert.equal(res.headers.get('x-wharf-cache'), 'stale');
        } finally {
          down.setUpstreamDown(false);
        }
      });

      it('an upstream 403 is not answered from the cache', async () => {
        await pushRandomImage(dist.url, 'lib/revoked', 'v1');
        assert.equal((await get('/v2/flaky/lib/revoked/manifests/v1')).status, 200);
        const h = down.inject({ method: 'HEAD', path: '/v2/lib/revoked/manifests/v1', fault: { kind: 'status', status: 403, code: 'DENIED' }, times: 1 });
        try {
          const res = await get('/v2/flaky/lib/revoked/manifests/v1');
          assert.equal(res.status, 404);
        } finally {
          h.remove();
        }
      });
      it('a 429 for uncached content is a 429 with Retry-After; cached content is served', async () => {
        await pushRandomImage(dist.url, 'lib/limited', 'v1');
        assert.equal((await get('/v2/flaky/lib/limited/manifests/v1')).status, 200);
        const h = down.inject({ path: /^\/v2\/lib\/limited2\//, fault: { kind: 'rateLimited', retryAfterS: 30 } });
        const h2 = down.inject({ method: 'HEAD', path: '/v2/lib/limited/manifests/v1', fault: { kind: 'rateLimited', retryAfterS: 30 }, times: 1 });
        try {
          const cached = await get('/v2/flaky/lib/limited/manifests/v1');
          assert.equal(cached.status, 200);
          assert.equal(cached.headers.get('x-wharf-cache'), 'stale');
          const limited = await get('/v2/flaky/lib/limited2/manifests/v1');
          assert.equal(limited.status, 429);
          assert.ok(Number(limited.headers.get('retry-after')) > 0);
        } finally {
          h.remove();
          h2.remove();
        }
      });

    });
  });
}
