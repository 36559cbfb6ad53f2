/**
 * The harness of the proxy-cache end-to-end tests, proved against what exists today: real clients
 * (skopeo, podman with vfs storage, containerd's ctr with a private daemon) pull from real registries
 * (Distribution with htpasswd auth, a Wharf process) directly and through the fault-injecting proxy,
 * and every injected fault is seen by a client or a plain fetch.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ctrPull, ctrRemoveImages, CtrError, startContainerd, writeHostsToml, type ContainerdProcess } from '../helpers/containerd.js';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { buildImage, buildMultiArchImage, KiB, type BuiltImage, type BuiltMultiArchImage } from '../helpers/oci-layout.js';
import { createPodmanStore, podmanImageDigest, podmanLogin, podmanPull, PodmanError, writeRegistriesConf, type PodmanStore } from '../helpers/podman.js';
import { rethrowFailures } from '../helpers/e2e-utils.js';
import { freePort } from '../helpers/ports.js';
import { digestOf, dockerRef, ociRef, skopeoCopy, skopeoInspect, skopeoInspectRaw, SkopeoError, type Credentials } from '../helpers/skopeo.js';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const ALICE: Credentials = { username: 'alice', password: 'alice-e2e-password' };
const WRONG: Credentials = { username: 'alice', password: 'not-her-password' };
const REALM = 'wharf-e2e-distribution';
const UNAUTHORIZED = /unauthorized|authentication required|invalid username\/password|401/i;

describe('real clients and upstreams: the proxy-cache test harness', () => {
  let work: string;
  let single: BuiltImage;
  let multi: BuiltMultiArchImage;
  let open: DistributionProcess | undefined;
  let secured: DistributionProcess | undefined;
  let wharf: WharfProcess | undefined;
  let containerd: ContainerdProcess | undefined;
  /** In front of `open`. */
  let proxy: FaultProxy | undefined;
  /** In front of `wharf`. */
  let wharfProxy: FaultProxy | undefined;
  const stores: PodmanStore[] = [];
  let outCounter = 0;

  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} did not start`);
    return value;
  };
  const layerPath = (img: BuiltImage, i = 0): string => `/v2/library/app/blobs/${img.layers[i]!.digest}`;
  const outLayout = (): string => ociRef(join(work, `out-${outCounter++}`), 'pulled');
  const podmanStore = async (): Promise<PodmanStore> => {
    const s = await createPodmanStore();
    stores.push(s);
    return s;
  };

  /** Like `it`, but a failure also prints the tails of the processes' output. */
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        if (wharf) t.diagnostic(`wharf output (tail):\n${wharf.output().slice(-3000)}`);
        for (const d of [open, secured]) if (d) t.diagnostic(`docker-registry output (tail):\n${d.output().slice(-1500)}`);
        if (containerd) t.diagnostic(`containerd output (tail):\n${containerd.output().slice(-1500)}`);
        throw err;
      }
    });
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-clients-'));
    const src = join(work, 'src');
    single = await buildImage(src, {
      tag: 'single',
      seed: 'e2e-clients',
      layers: [
        { files: [{ path: 'etc/os-release', content: 'NAME=wharf-clients\n' }, { path: 'usr/lib/base.bin', size: 192 * KiB }] },
        { files: [{ path: 'usr/bin/app', size: 48 * KiB, mode: 0o755 }] },
      ],
    });
    multi = await buildMultiArchImage(src, { tag: 'multi', seed: 'e2e-clients-multi', platforms: ['linux/amd64', 'linux/arm64'] });

    const wharfPort = await freePort();
    // Every process starts even if another fails, so that after() can stop them all.
    const started = await Promise.allSettled([
      startDistribution().then((d) => (open = d)),
      startDistribution({ auth: { htpasswd: { realm: REALM, users: { [ALICE.username]: ALICE.password } } } }).then((d) => (secured = d)),
      // base_url makes the token realm an absolute URL naming Wharf, which the proxy must rewrite.
      startWharf({ port: wharfPort, env: { WHARF_BASE_URL: `http://127.0.0.1:${wharfPort}` } }).then((w) => (wharf = w)),
      startContainerd().then((c) => (containerd = c)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    proxy = await startFaultProxy(need(open, 'docker-registry').url);
    wharfProxy = await startFaultProxy(need(wharf, 'wharf').url);

    const W = need(wharf, 'wharf');
    await Promise.all([
      skopeoCopy(ociRef(src, 'single'), dockerRef(open!.host, 'library/app', '1'), { preserveDigests: true }),
      skopeoCopy(ociRef(src, 'multi'), dockerRef(open!.host, 'library/multi', '1'), { all: true, preserveDigests: true }),
      skopeoCopy(ociRef(src, 'single'), dockerRef(secured!.host, 'team/app', '1'), { preserveDigests: true, creds: ALICE }),
      skopeoCopy(ociRef(src, 'single'), dockerRef(W.host, 'e2e/clients', '1'), { preserveDigests: true, creds: W.admin }),
      skopeoCopy(ociRef(src, 'multi'), dockerRef(W.host, 'e2e/clients-multi', '1'), { all: true, preserveDigests: true, creds: W.admin }),
    ]);
  });

  after(async () => {
    const stopped = await Promise.allSettled([
      proxy?.stop(),
      wharfProxy?.stop(),
      containerd?.stop(),
      open?.stop(),
      secured?.stop(),
      wharf?.stop(),
      ...stores.map((s) => s.cleanup()),
    ]);
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures(stopped);
  });

  test('Distribution with htpasswd: Basic challenge; skopeo with the right, wrong and no password', async () => {
    const D = need(secured, 'docker-registry');
    const res = await fetch(`${D.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Basic realm="${REALM}"`);
    const ok = await fetch(`${D.url}/v2/team/app/manifests/1`, {
      method: 'HEAD',
      headers: { authorization: `Basic ${Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64')}`, accept: single.manifestMediaType },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('docker-content-digest'), single.manifestDigest);

    const info = await skopeoInspect(dockerRef(D.host, 'team/app', '1'), { creds: ALICE, noTags: true });
    assert.equal(info.Digest, single.manifestDigest);
    await assert.rejects(skopeoInspect(dockerRef(D.host, 'team/app', '1'), { creds: WRONG, noTags: true }), (err: SkopeoError) => UNAUTHORIZED.test(err.stderr));
    await assert.rejects(skopeoInspect(dockerRef(D.host, 'team/app', '1'), { creds: null, noTags: true }), (err: SkopeoError) => UNAUTHORIZED.test(err.stderr));
  });

  test('podman pulls from Distribution with htpasswd: --creds, after podman login; a wrong password fails clearly', async () => {
    const D = need(secured, 'docker-registry');
    const ref = `${D.host}/team/app:1`;
    const pulled = await podmanPull(ref, { creds: ALICE });
    assert.equal(pulled.digest, single.manifestDigest);
    assert.equal(pulled.imageId, single.configDigest.slice('sha256:'.length));

    const store = await podmanStore();
    await assert.rejects(podmanPull(ref, { store }), (err: PodmanError) => UNAUTHORIZED.test(err.message));
    await assert.rejects(podmanLogin(store, D.host, WRONG), (err: PodmanError) => UNAUTHORIZED.test(err.message));
    await podmanLogin(store, D.host, ALICE);
    await podmanPull(`${D.host}/team/app@${single.manifestDigest}`, { store });
    assert.equal(await podmanImageDigest(store, `${D.host}/team/app@${single.manifestDigest}`), single.manifestDigest);
    await assert.rejects(podmanPull(ref, { creds: WRONG }), (err: PodmanError) => UNAUTHORIZED.test(err.message));
  });

  test('ctr pulls from Distribution with htpasswd with --user; a wrong password fails clearly', async () => {
    const D = need(secured, 'docker-registry');
    const C = need(containerd, 'containerd');
    const pulled = await ctrPull(C, `${D.host}/team/app:1`, { user: ALICE });
    assert.equal(pulled.digest, single.manifestDigest);
    await assert.rejects(ctrPull(C, `${D.host}/team/app@${single.manifestDigest}`, { user: WRONG }), (err: CtrError) => UNAUTHORIZED.test(err.message));
    await assert.rejects(ctrPull(C, `${D.host}/team/app@${single.manifestDigest}`), (err: CtrError) => UNAUTHORIZED.test(err.message));
    await ctrRemoveImages(C);
  });

  test('pass-through: podman and ctr pull through the fault proxy; each blob crosses it once per client', async () => {
    const P = need(proxy, 'fault proxy');
    const C = need(containerd, 'containerd');
    P.clearRequests();
    const viaPodman = await podmanPull(`${P.host}/library/app:1`);
    assert.equal(viaPodman.digest, single.manifestDigest);
    for (const l of single.layers) assert.equal(P.count({ method: 'GET', path: `/v2/library/app/blobs/${l.digest}`, status: 200 }), 1, `podman GET ${l.digest}`);
    assert.ok(P.requests.every((r) => r.done && r.fault === undefined));

    P.clearRequests();
    const viaCtr = await ctrPull(C, `${P.host}/library/app:1`);
    assert.equal(viaCtr.digest, single.manifestDigest);
    for (const d of [single.configDigest, ...single.layers.map((l) => l.digest)]) {
      assert.equal(P.count({ method: 'GET', path: `/v2/library/app/blobs/${d}`, status: 200 }), 1, `ctr GET ${d}`);
    }
    await ctrRemoveImages(C);
  });

  test('containerd sends ?ns=docker.io to a docker.io mirror from hosts.toml; a podman registries.conf mirror sends no query', async () => {
    const P = need(proxy, 'fault proxy');
    const C = need(containerd, 'containerd');
    await writeHostsToml(C.hostsDir, 'docker.io', { server: 'https://registry-1.docker.io', hosts: [{ url: P.url, capabilities: ['pull', 'resolve'] }] });
    P.clearRequests();
    const pulled = await ctrPull(C, 'docker.io/library/app:1', { plainHttp: false });
    assert.equal(pulled.digest, single.manifestDigest);
    const seen = P.requests.filter((r) => r.path.startsWith('/v2/library/app/'));
    assert.ok(seen.some((r) => r.method === 'HEAD' && r.path === '/v2/library/app/manifests/1'), 'tag resolved at the mirror');
    assert.ok(seen.some((r) => r.method === 'GET' && r.path === layerPath(single)), 'layer fetched from the mirror');
    for (const r of seen) assert.equal(r.query.get('ns'), 'docker.io', `${r.method} ${r.url}`);
    await ctrRemoveImages(C);

    // podman's registries.conf mirror, by contrast, sends plain requests: nothing names the upstream.
    const store = await podmanStore();
    await writeRegistriesConf(store, [{ prefix: 'docker.io', location: 'registry-1.docker.io', mirrors: [{ location: P.host, insecure: true }] }]);
    P.clearRequests();
    assert.equal((await podmanPull('docker.io/library/app:1', { store })).digest, single.manifestDigest);
    assert.ok(P.count({ method: 'GET', path: layerPath(single) }) === 1);
    for (const r of P.requests) assert.equal(r.query.size, 0, `${r.method} ${r.url}`);
  });

  test('a truncated blob makes skopeo and podman fail; ctr resumes it with a Range request, and fails when no byte comes', async () => {
    const P = need(proxy, 'fault proxy');
    const C = need(containerd, 'containerd');
    const layer = layerPath(single);
    P.clearRequests();
    const always = P.inject({ method: 'GET', path: layer, fault: { kind: 'truncate', afterBytes: 1000 } });
    try {
      await assert.rejects(skopeoCopy(dockerRef(P.host, 'library/app', '1'), outLayout()), SkopeoError);
      await assert.rejects(podmanPull(`${P.host}/library/app:1`), (err: PodmanError) => /unexpected EOF/i.test(err.message));
      const broken = P.requestsMatching({ method: 'GET', path: layer });
      assert.ok(broken.length >= 1);
      assert.ok(broken.every((r) => r.fault === 'truncate' && r.status === 200 && r.bytesSent === 1000 && r.error !== undefined));
    } finally {
      always.remove();
    }

    // containerd keeps the partial download and asks for the rest: upstreams (and Wharf) must serve ranges.
    P.clearRequests();
    P.inject({ method: 'GET', path: layer, times: 1, fault: { kind: 'truncate', afterBytes: 1000 } });
    assert.equal((await ctrPull(C, `${P.host}/library/app:1`)).digest, single.manifestDigest);
    const gets = P.requestsMatching({ method: 'GET', path: layer });
    assert.deepEqual(
      gets.map((r) => [r.status, r.headers.range, r.fault]),
      [
        [200, undefined, 'truncate'],
        [206, 'bytes=1000-', undefined],
      ],
    );
    await ctrRemoveImages(C);

    const nothing = P.inject({ method: 'GET', path: layer, fault: { kind: 'truncate', afterBytes: 0 } });
    try {
      await assert.rejects(ctrPull(C, `${P.host}/library/app:1`), (err: CtrError) => /unexpected EOF/i.test(err.message));
    } finally {
      nothing.remove();
      await ctrRemoveImages(C);
    }
  });

  test('a corrupted blob (same length, wrong bytes) is refused by skopeo with a digest error', async () => {
    const P = need(proxy, 'fault proxy');
    const corrupt = P.inject({ method: 'GET', path: `/v2/library/app/blobs/${single.configDigest}`, times: 1, fault: { kind: 'corrupt' } });
    await assert.rejects(skopeoCopy(dockerRef(P.host, 'library/app', '1'), outLayout()), (err: SkopeoError) => /digest/i.test(err.stderr));
    assert.equal(corrupt.hits, 1);
    // The bytes really differ only in content: same length, wrong digest.
    const res = await fetch(`${P.url}/v2/library/app/blobs/${single.configDigest}`);
    const good = Buffer.from(await res.arrayBuffer());
    assert.equal(digestOf(good), single.configDigest, 'the rule was used up; the next GET is intact');
    P.inject({ method: 'GET', path: `/v2/library/app/blobs/${single.configDigest}`, times: 1, fault: { kind: 'corrupt', at: 0, length: 3 } });
    const bad = Buffer.from(await (await fetch(`${P.url}/v2/library/app/blobs/${single.configDigest}`)).arrayBuffer());
    assert.equal(bad.length, good.length);
    assert.notEqual(digestOf(bad), single.configDigest);
    assert.deepEqual(bad.subarray(3), good.subarray(3));
  });

  test('429 with Docker Hub rate-limit headers reaches fetch and skopeo; pass-through can add rate-limit headers', async () => {
    const P = need(proxy, 'fault proxy');
    const limited = P.inject({ path: /\/manifests\//, fault: { kind: 'rateLimited', retryAfterS: 120 } });
    try {
      const res = await fetch(`${P.url}/v2/library/app/manifests/1`, { headers: { accept: single.manifestMediaType } });
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('ratelimit-limit'), '100;w=21600');
      assert.equal(res.headers.get('ratelimit-remaining'), '0;w=21600');
      assert.equal(res.headers.get('retry-after'), '120');
      assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]?.code, 'TOOMANYREQUESTS');
    } finally {
      limited.remove();
    }
    // containers/image (skopeo, podman) honours Retry-After and tries 5 times in all before giving up.
    P.clearRequests();
    const zero = P.inject({ path: /\/manifests\//, fault: { kind: 'rateLimited', retryAfterS: 0 } });
    try {
      await assert.rejects(skopeoInspectRaw(dockerRef(P.host, 'library/app', '1')), (err: SkopeoError) => /toomanyrequests/i.test(err.stderr));
      assert.equal(zero.hits, 5);
    } finally {
      zero.remove();
    }
    const headers = P.inject({ path: /\/manifests\//, fault: { kind: 'rateLimitHeaders', remaining: 42 } });
    try {
      const res = await fetch(`${P.url}/v2/library/app/manifests/1`, { headers: { accept: single.manifestMediaType } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('ratelimit-remaining'), '42;w=21600');
      assert.equal(res.headers.get('docker-content-digest'), single.manifestDigest);
      assert.equal(digestOf(Buffer.from(await res.arrayBuffer())), single.manifestDigest);
    } finally {
      headers.remove();
    }
  });

  test('5xx, connection reset, stalls and a downed upstream, seen by fetch', async () => {
    const P = need(proxy, 'fault proxy');
    const blobUrl = `${P.url}${layerPath(single, 1)}`;
    const once = (fault: Parameters<FaultProxy['inject']>[0]['fault']) => P.inject({ method: 'GET', path: layerPath(single, 1), times: 1, fault });

    once({ kind: 'status', status: 503 });
    const unavailable = await fetch(blobUrl);
    assert.equal(unavailable.status, 503);
    assert.equal(((await unavailable.json()) as { errors: { code: string }[] }).errors[0]?.code, 'UNAVAILABLE');

    once({ kind: 'reset' });
    await assert.rejects(fetch(blobUrl), (err: Error & { cause?: { code?: string } }) => err.cause?.code === 'ECONNRESET' || /reset|socket/i.test(String(err.cause)));

    once({ kind: 'stall' });
    await assert.rejects(fetch(blobUrl, { signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' });

    once({ kind: 'stall', afterHeaders: true, ms: 300 });
    const t0 = Date.now();
    const slow = await fetch(blobUrl);
    assert.equal(slow.status, 200);
    const headersAfter = Date.now() - t0;
    const body = Buffer.from(await slow.arrayBuffer());
    const bodyAfter = Date.now() - t0;
    assert.ok(bodyAfter - headersAfter >= 250, `headers after ${headersAfter} ms, body after ${bodyAfter} ms`);
    assert.equal(digestOf(body), single.layers[1]!.digest);

    P.setUpstreamDown(true);
    const refusedBefore = P.refusedConnections;
    await assert.rejects(fetch(blobUrl));
    await assert.rejects(fetch(blobUrl));
    assert.ok(P.refusedConnections > refusedBefore);
    P.setUpstreamDown(false);
    assert.equal((await fetch(blobUrl)).status, 200);
  });

  test('through a proxy in front of Wharf, the token realm is rewritten and skopeo authenticates through it', async () => {
    const W = need(wharf, 'wharf');
    const P = need(wharfProxy, 'fault proxy');
    const direct = await fetch(`${W.url}/v2/`);
    assert.match(direct.headers.get('www-authenticate') ?? '', new RegExp(`realm="${W.url}/v2/auth"`));
    const proxied = await fetch(`${P.url}/v2/`);
    assert.equal(proxied.status, 401);
    assert.match(proxied.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="${P.url}/v2/auth"`));

    P.clearRequests();
    const info = await skopeoInspect(dockerRef(P.host, 'e2e/clients', '1'), { creds: W.admin, noTags: true });
    assert.equal(info.Digest, single.manifestDigest);
    assert.ok(P.count({ method: 'GET', path: '/v2/auth', status: 200 }) >= 1, 'token fetched through the proxy');
  });

  test('podman and ctr pull from Wharf by tag and by digest', async () => {
    const W = need(wharf, 'wharf');
    const C = need(containerd, 'containerd');
    const byTag = await podmanPull(`${W.host}/e2e/clients:1`, { creds: W.admin });
    assert.equal(byTag.digest, single.manifestDigest);
    const byDigest = await podmanPull(`${W.host}/e2e/clients@${single.manifestDigest}`, { creds: W.admin });
    assert.equal(byDigest.digest, single.manifestDigest);
    await assert.rejects(podmanPull(`${W.host}/e2e/clients:1`, { creds: { ...W.admin, password: 'wrong-password-1' } }), (err: PodmanError) => UNAUTHORIZED.test(err.message));

    assert.equal((await ctrPull(C, `${W.host}/e2e/clients:1`, { user: W.admin })).digest, single.manifestDigest);
    assert.equal((await ctrPull(C, `${W.host}/e2e/clients@${single.manifestDigest}`, { user: W.admin })).digest, single.manifestDigest);
    await ctrRemoveImages(C);
  });

  test('multi-arch index from Wharf: ctr --platform linux/arm64 fetches only that platform; podman too', async () => {
    const W = need(wharf, 'wharf');
    const P = need(wharfProxy, 'fault proxy');
    const C = need(containerd, 'containerd');
    const arm = multi.images.find((i) => i.platform.architecture === 'arm64')!;
    const amd = multi.images.find((i) => i.platform.architecture === 'amd64')!;
    P.clearRequests();
    const pulled = await ctrPull(C, `${P.host}/e2e/clients-multi:1`, { user: W.admin, platform: 'linux/arm64' });
    assert.equal(pulled.digest, multi.indexDigest);
    assert.equal(pulled.mediaType, multi.indexMediaType);
    const manifestGets = (d: string): number => P.count({ method: 'GET', path: `/v2/e2e/clients-multi/manifests/${d}`, status: 200 });
    assert.equal(manifestGets(arm.manifestDigest), 1);
    assert.equal(manifestGets(amd.manifestDigest), 0);
    const blobGets = (d: string): number => P.count({ method: 'GET', path: `/v2/e2e/clients-multi/blobs/${d}`, status: 200 });
    assert.equal(blobGets(arm.configDigest), 1);
    assert.equal(blobGets(amd.configDigest), 0);
    for (const l of arm.layers) assert.equal(blobGets(l.digest), 1, `arm64 layer ${l.digest}`);
    const amdOnly = amd.layers.filter((l) => !arm.layers.some((a) => a.digest === l.digest));
    assert.ok(amdOnly.length > 0);
    for (const l of amdOnly) assert.equal(blobGets(l.digest), 0, `amd64 layer ${l.digest}`);
    await ctrRemoveImages(C);

    const viaPodman = await podmanPull(`${W.host}/e2e/clients-multi:1`, { creds: W.admin, platform: 'linux/arm64' });
    assert.equal(viaPodman.architecture, 'arm64');
    assert.equal(viaPodman.digest, multi.indexDigest);
    assert.ok(viaPodman.repoDigests.includes(`${W.host}/e2e/clients-multi@${arm.manifestDigest}`));
  });
});
