/**
 * The proxy cache end to end, with real processes only: a `wharf serve` process is the proxy; the
 * upstreams are Debian's docker-registry (CNCF Distribution) with htpasswd auth and a second Wharf
 * process (token auth), each behind the fault-injecting proxy so that every upstream request can be
 * counted; the clients are skopeo, podman (vfs) and containerd's ctr with a hosts.toml mirror.
 *
 *   skopeo/podman ─────────────────────────► wharf (proxy) ──► fault proxy ──► Distribution (htpasswd)
 *   ctr ─ hosts.toml ─► fault proxy (ns=…) ─►      │       ──► fault proxy ──► Wharf (token auth)
 *                                                  └─────────────────────────► Distribution (stopped later)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import { CTR_BIN, ctrPull, ctrRemoveImages, CtrError, startContainerd, writeHostsToml, type ContainerdProcess } from '../helpers/containerd.js';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { rethrowFailures, waitFor } from '../helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { buildImage, buildMultiArchImage, KiB, largeLayer, MiB, type BuiltImage, type BuiltMultiArchImage } from '../helpers/oci-layout.js';
import { createPodmanStore, podmanLogin, podmanPull, PodmanError } from '../helpers/podman.js';
import { digestOf, dockerRef, ociRef, SKOPEO, skopeoCopy, skopeoInspect, SkopeoError, type Credentials } from '../helpers/skopeo.js';
import { createRobot, withAccounts } from '../helpers/wharf-accounts.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

/** Credentials of the upstream Distribution (htpasswd), given to the proxy organizations. */
const PULLER: Credentials = { username: 'puller', password: 'puller-upstream-password' };
/** A user of the proxy Wharf who belongs to every proxy organization. */
const MEMBER: Credentials = { username: 'member', password: 'member-e2e-password' };
/** The registry host the `node` organization answers for (containerd sends it as `ns=`). */
const NODE_REGISTRY = 'registry.wharf.test';
/** Nothing listens here: the hosts.toml `server` fallback fails at once. */
const DEAD_SERVER = 'http://127.0.0.1:1';
/** A registry podman reaches only through its registries.conf mirror: the proxy's default organization. */
const MIRRORED_REGISTRY = 'mirrored.wharf.test';
const PROXY_ORGS = ['hub', 'team', 'node', 'wupall', 'wup', 'flaky'];
const FLAKY_EXPIRATION_S = 4;
const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';
const UNAUTHORIZED = /401|unauthorized|authorization|authentication required/i;

interface OciError {
  errors: Array<{ code: string; message: string }>;
}

describe('proxy cache end to end: real clients through a Wharf process to real upstreams', () => {
  let work: string;
  let dist: DistributionProcess | undefined;
  let flakyDist: DistributionProcess | undefined;
  let upWharf: WharfProcess | undefined;
  let wharf: WharfProcess | undefined;
  let containerd: ContainerdProcess | undefined;
  /** In front of `dist`: what the proxy asked of Distribution. */
  let distUp: FaultProxy;
  /** In front of `upWharf`. */
  let wharfUp: FaultProxy;
  /** In front of the proxy Wharf, for ctr: what containerd sent (the `ns=` query). */
  let front: FaultProxy | undefined;
  let robot: Credentials;
  let outCounter = 0;
  const img = {} as Record<'hub' | 'team' | 'wup' | 'pod' | 'node' | 'mirrored' | 'moveA' | 'moveB' | 'flaky' | 'big' | 'hang' | 'resume' | 'bad', BuiltImage>;
  let multi: BuiltMultiArchImage;

  const W = (): WharfProcess => wharf!;
  const outLayout = (): string => ociRef(join(work, `out-${outCounter++}`), 'pulled');
  /** skopeo copy of `<wharf>/<repo>:<tag>` into a new OCI layout, as the member. */
  const pullWithSkopeo = (repo: string, tag: string, creds: Credentials | null = MEMBER) =>
    skopeoCopy(dockerRef(W().host, repo, tag), outLayout(), { creds, preserveDigests: true, timeoutMs: 60_000 });
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> => {
    const res = await fetch(`${W().url}/api/v1${path}`, {
      method,
      headers: { authorization: basicAuth(W().admin), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, text: await res.text() };
  };
  const v2 = (path: string, init: RequestInit = {}) =>
    fetch(`${W().url}/v2/${path}`, { ...init, headers: { accept: MANIFEST_ACCEPT, authorization: basicAuth(MEMBER), ...(init.headers as Record<string, string> | undefined) } });
  const blobGets = (up: FaultProxy, repo: string, digest: string): number => up.count({ method: 'GET', path: `/v2/${repo}/blobs/${digest}` });
  /** Where the proxy Wharf keeps a committed blob (filesystem driver under <data_dir>/blobs). */
  const storedBlob = (digest: string): string => {
    const hex = digest.slice('sha256:'.length);
    return join(W().dataDir, 'blobs', 'blobs', 'sha256', hex.slice(0, 2), hex);
  };

  /** Blob requests of `org` that joined a fill in flight (the proxy's wharf_proxy_joined_waiters_total). */
  const joinedWaiters = async (org: string): Promise<number> => {
    const text = await (await fetch(`${W().url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`wharf_proxy_joined_waiters_total{organization="${org}",`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };

  /** Like `it`, but a failure also prints the tails of the processes' output. */
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        if (wharf) t.diagnostic(`proxy wharf output (tail):\n${wharf.output().slice(-4000)}`);
        if (upWharf) t.diagnostic(`upstream wharf output (tail):\n${upWharf.output().slice(-1500)}`);
        for (const d of [dist, flakyDist]) if (d) t.diagnostic(`docker-registry output (tail):\n${d.output().slice(-1500)}`);
        if (containerd) t.diagnostic(`containerd output (tail):\n${containerd.output().slice(-1500)}`);
        throw err;
      }
    });
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-proxy-'));
    const src = join(work, 'src');
    const small = (tag: keyof typeof img, extra: number) =>
      buildImage(src, {
        tag,
        seed: `proxy-${tag}`,
        layers: [{ files: [{ path: 'etc/os-release', content: `NAME=${tag}\n` }, { path: 'usr/lib/base.bin', size: 48 * KiB + extra }] }, { files: [{ path: 'usr/bin/app', size: 16 * KiB, mode: 0o755 }] }],
      });
    // One layout, so the builds run one after the other (each rewrites index.json).
    for (const [i, tag] of (['hub', 'team', 'wup', 'pod', 'node', 'mirrored', 'moveA', 'moveB', 'flaky'] as const).entries()) img[tag] = await small(tag, i);
    img.big = await buildImage(src, { tag: 'big', seed: 'proxy-big', layers: [largeLayer(32 * MiB)] });
    img.hang = await buildImage(src, { tag: 'hang', seed: 'proxy-hang', layers: [largeLayer(24 * MiB)] });
    img.resume = await buildImage(src, { tag: 'resume', seed: 'proxy-resume', layers: [largeLayer(24 * MiB)] });
    img.bad = await buildImage(src, { tag: 'bad', seed: 'proxy-bad', layers: [largeLayer(1 * MiB)] });
    multi = await buildMultiArchImage(src, { tag: 'multi', seed: 'proxy-multi', platforms: ['linux/amd64', 'linux/arm64'] });

    const htpasswd = { htpasswd: { realm: 'wharf-e2e-upstream', users: { [PULLER.username]: PULLER.password } } };
    // Every process starts even if another fails, so that after() can stop them all.
    const started = await Promise.allSettled([
      startDistribution({ auth: htpasswd }).then((d) => (dist = d)),
      startDistribution({ auth: htpasswd }).then((d) => (flakyDist = d)),
      startWharf({ organizations: ['acme'] }).then((w) => (upWharf = w)),
      startWharf({ organizations: PROXY_ORGS, env: { WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1', WHARF_PROXY_CACHE_DEFAULT_ORGANIZATION: 'hub' } }).then((w) => (wharf = w)),
      startContainerd().then((c) => (containerd = c)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    distUp = await startFaultProxy(dist!.url);
    wharfUp = await startFaultProxy(upWharf!.url);
    front = await startFaultProxy(W().url);

    robot = await createRobot(upWharf!, 'acme+puller', ['acme/app', 'acme/moving'], 'read');
    await withAccounts(W(), async (a) => {
      await a.accounts.createUser({ name: MEMBER.username, password: MEMBER.password });
      for (const org of PROXY_ORGS) {
        await a.teams.createTeam(org, 'pullers', { role: 'member' });
        await a.teams.addMember(org, 'pullers', MEMBER.username);
      }
    });

    const push = (layoutTag: string, host: string, repo: string, creds: Credentials, opts: { tag?: string; all?: boolean } = {}) =>
      skopeoCopy(ociRef(src, layoutTag), dockerRef(host, repo, opts.tag ?? '1'), { preserveDigests: true, creds, all: opts.all });
    await Promise.all([
      push('hub', dist!.host, 'library/app', PULLER),
      push('team', dist!.host, 'team/app', PULLER),
      push('pod', dist!.host, 'library/podapp', PULLER),
      push('node', dist!.host, 'library/nodeapp', PULLER),
      push('mirrored', dist!.host, 'library/mirrored', PULLER),
      push('multi', dist!.host, 'library/multi', PULLER, { all: true }),
      push('big', dist!.host, 'library/big', PULLER),
      push('hang', dist!.host, 'library/hang', PULLER),
      push('resume', dist!.host, 'library/resume', PULLER),
      push('bad', dist!.host, 'library/bad', PULLER),
      push('flaky', flakyDist!.host, 'library/app', PULLER),
      push('wup', upWharf!.host, 'acme/app', upWharf!.admin),
      push('moveA', upWharf!.host, 'acme/moving', upWharf!.admin, { tag: 'latest' }),
    ]);

    const creds = (c: Credentials) => ({ upstream_registry_username: c.username, upstream_registry_password: c.password });
    const orgs: Array<[string, Record<string, unknown>]> = [
      // hub first: it answers for the upstream's host by default; the others then answer for nothing unless told.
      ['hub', { upstream_registry: distUp.host, ...creds(PULLER) }],
      ['team', { upstream_registry: `${distUp.host}/team`, ...creds(PULLER) }],
      ['node', { upstream_registry: distUp.host, ...creds(PULLER), answers_for: [NODE_REGISTRY] }],
      ['wupall', { upstream_registry: wharfUp.host, ...creds(robot) }],
      ['wup', { upstream_registry: `${wharfUp.host}/acme`, ...creds(robot) }],
      ['flaky', { upstream_registry: flakyDist!.host, ...creds(PULLER), expiration_s: FLAKY_EXPIRATION_S }],
    ];
    for (const [org, body] of orgs) {
      const res = await api('POST', `/organization/${org}/proxycache`, { insecure: true, ...body });
      assert.equal(res.status, 201, `${org}: ${res.text}`);
    }
  });

  after(async () => {
    const upstreams = await Promise.allSettled([distUp?.stop(), wharfUp?.stop(), front?.stop()]);
    const rest = await Promise.allSettled([containerd?.stop(), dist?.stop(), flakyDist?.stop(), upWharf?.stop(), wharf?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures([...upstreams, ...rest]);
  });

  test('skopeo copies through whole-registry and single-namespace organizations of Distribution (htpasswd) and of a Wharf (token auth)', async () => {
    const cases: Array<{ repo: string; image: BuiltImage; up: FaultProxy; upstreamRepo: string }> = [
      { repo: 'hub/library/app', image: img.hub, up: distUp, upstreamRepo: 'library/app' },
      { repo: 'team/app', image: img.team, up: distUp, upstreamRepo: 'team/app' },
      { repo: 'wupall/acme/app', image: img.wup, up: wharfUp, upstreamRepo: 'acme/app' },
      { repo: 'wup/app', image: img.wup, up: wharfUp, upstreamRepo: 'acme/app' },
    ];
    distUp.clearRequests();
    wharfUp.clearRequests();
    for (const c of cases) {
      const manifestGets = () => c.up.requestsMatching({ method: 'GET', path: `/v2/${c.upstreamRepo}/manifests/1`, status: 200 });
      const before = manifestGets().length;
      const copied = await pullWithSkopeo(c.repo, '1');
      assert.equal(copied.digest, c.image.manifestDigest, c.repo);
      const gets = manifestGets().slice(before);
      assert.equal(gets.length, 1, `${c.repo}: one upstream manifest GET`);
      const scheme = c.up === distUp ? /^Basic / : /^Bearer /;
      assert.match(String(gets[0]!.headers.authorization), scheme, `${c.repo}: the upstream credentials were used`);
      const head = await v2(`${c.repo}/manifests/1`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('x-wharf-cache'), 'hit');
    }
    // The Wharf upstream was asked with a token from its own token endpoint (realm rewritten to the fault proxy).
    assert.ok(wharfUp.count({ method: 'GET', path: '/v2/auth', status: 200 }) >= 1);
    // Layers crossed each upstream once: wup/app found the blobs wupall/acme/app had cached.
    for (const l of img.wup.layers) assert.equal(blobGets(wharfUp, 'acme/app', l.digest), 1);
    for (const l of img.team.layers) assert.equal(blobGets(distUp, 'team/app', l.digest), 1);
    // Without credentials nothing is pulled through (anonymous_pull is off).
    await assert.rejects(pullWithSkopeo('team/app', '1', null), (err: SkopeoError) => UNAUTHORIZED.test(err.stderr));
  });

  test('podman pulls through the proxy with an org member\'s credentials; the next pull is all cache hits; none without credentials', async () => {
    const ref = `${W().host}/hub/library/podapp:1`;
    distUp.clearRequests();
    const first = await podmanPull(ref, { creds: MEMBER });
    assert.equal(first.digest, img.pod.manifestDigest);
    assert.equal(first.imageId, img.pod.configDigest.slice('sha256:'.length));
    for (const d of [img.pod.configDigest, ...img.pod.layers.map((l) => l.digest)]) assert.equal(blobGets(distUp, 'library/podapp', d), 1);

    distUp.clearRequests();
    const second = await podmanPull(ref, { creds: MEMBER });
    assert.equal(second.digest, img.pod.manifestDigest);
    assert.equal(distUp.count({ method: 'GET', path: /\/blobs\// }), 0, 'no blob fetched upstream again');
    assert.equal(distUp.count({ method: 'GET', path: '/v2/library/podapp/manifests/1' }), 0, 'the tag was revalidated with a HEAD only');

    await assert.rejects(podmanPull(ref), (err: PodmanError) => UNAUTHORIZED.test(err.message));
    await assert.rejects(podmanPull(ref, { creds: { ...MEMBER, password: 'not-the-password' } }), (err: PodmanError) => UNAUTHORIZED.test(err.message));
  });

  test('containerd mirror: hosts.toml sends ?ns=<registry>, routed to the organization answering for it; anonymous node pulls follow anonymous_pull', async (t) => {
    const C = containerd!;
    const F = front!;
    await writeHostsToml(C.hostsDir, NODE_REGISTRY, { server: DEAD_SERVER, hosts: [{ url: F.url }] });
    const ref = `${NODE_REGISTRY}/library/nodeapp:1`;
    const seen = () => F.requests.filter((r) => r.path.startsWith('/v2/library/nodeapp/'));

    await t.test('anonymous_pull off: ctr without credentials is refused and fills nothing', async () => {
      distUp.clearRequests();
      await assert.rejects(ctrPull(C, ref), (err: CtrError) => /insufficient_scope: authorization failed/.test(err.message));
      assert.equal(distUp.count({ path: /^\/v2\/library\/nodeapp\// }), 0);
    });

    await t.test('ctr with a member\'s credentials pulls through the organization answering for the host', async () => {
      F.clearRequests();
      distUp.clearRequests();
      const pulled = await ctrPull(C, ref, { user: MEMBER });
      assert.equal(pulled.digest, img.node.manifestDigest);
      assert.ok(seen().some((r) => r.path === `/v2/library/nodeapp/blobs/${img.node.layers[0]!.digest}` && r.status === 200));
      for (const r of seen()) assert.equal(r.query.get('ns'), NODE_REGISTRY, `${r.method} ${r.url}`);
      for (const l of img.node.layers) assert.equal(blobGets(distUp, 'library/nodeapp', l.digest), 1);
      await ctrRemoveImages(C);
    });

    await t.test('anonymous_pull on: ctr without credentials pulls (from the cache)', async () => {
      const on = await api('PUT', '/organization/node/proxycache', { anonymous_pull: true });
      assert.equal(on.status, 200, on.text);
      F.clearRequests();
      distUp.clearRequests();
      const pulled = await ctrPull(C, ref);
      assert.equal(pulled.digest, img.node.manifestDigest);
      assert.ok(seen().length > 0 && seen().every((r) => r.headers.authorization === undefined && r.status !== 401));
      assert.equal(distUp.count({ method: 'GET', path: /\/blobs\// }), 0);
      await ctrRemoveImages(C);
      const off = await api('PUT', '/organization/node/proxycache', { anonymous_pull: false });
      assert.equal(off.status, 200, off.text);
      await assert.rejects(ctrPull(C, ref), (err: CtrError) => UNAUTHORIZED.test(err.message));
    });

    await t.test('an organization answers for its upstream\'s own host by default', async () => {
      await writeHostsToml(C.hostsDir, distUp.host, { server: DEAD_SERVER, hosts: [{ url: F.url }] });
      F.clearRequests();
      const pulled = await ctrPull(C, `${distUp.host}/library/app:1`, { user: MEMBER });
      assert.equal(pulled.digest, img.hub.manifestDigest);
      const mine = F.requests.filter((r) => r.path.startsWith('/v2/library/app/'));
      assert.ok(mine.length > 0 && mine.every((r) => r.query.get('ns') === distUp.host));
      await ctrRemoveImages(C);
    });

    await t.test('a hosts.toml endpoint that names the organization (override_path, as k3s writes for an endpoint with a path) is served as named', async () => {
      await writeHostsToml(C.hostsDir, NODE_REGISTRY, { server: DEAD_SERVER, hosts: [{ url: `${F.url}/v2/node`, overridePath: true }] });
      try {
        F.clearRequests();
        const pulled = await ctrPull(C, ref, { user: MEMBER });
        assert.equal(pulled.digest, img.node.manifestDigest);
        const mine = F.requests.filter((r) => r.path.startsWith('/v2/node/library/nodeapp/'));
        assert.ok(mine.some((r) => r.path === `/v2/node/library/nodeapp/blobs/${img.node.layers[0]!.digest}` && r.status === 200));
        for (const r of mine) assert.equal(r.query.get('ns'), NODE_REGISTRY, `${r.method} ${r.url}`);
        assert.deepEqual(mine.filter((r) => r.status === 404).map((r) => `${r.method} ${r.url}`), []);
        await ctrRemoveImages(C);
      } finally {
        await writeHostsToml(C.hostsDir, NODE_REGISTRY, { server: DEAD_SERVER, hosts: [{ url: F.url }] });
      }
    });
  });

  test('podman with a registries.conf mirror (no ns=) pulls through the default organization', async () => {
    const store = await createPodmanStore({ registries: [{ prefix: MIRRORED_REGISTRY, location: DEAD_SERVER.slice('http://'.length), mirrors: [{ location: front!.host, insecure: true }] }] });
    try {
      front!.clearRequests();
      distUp.clearRequests();
      // podman sends --creds to the registry named in the reference only; a mirror gets the login stored for it.
      await podmanLogin(store, front!.host, MEMBER);
      const pulled = await podmanPull(`${MIRRORED_REGISTRY}/library/mirrored:1`, { store, tlsVerify: 'config' });
      assert.equal(pulled.digest, img.mirrored.manifestDigest);
      const pulls = front!.requests.filter((r) => r.path.startsWith('/v2/library/mirrored/'));
      assert.ok(pulls.length > 0 && pulls.every((r) => r.query.size === 0), 'a podman mirror sends no ns=');
      // The first token already covers the name the default organization serves: no request is refused for its scope.
      assert.deepEqual(pulls.filter((r) => r.status !== 200).map((r) => `${r.method} ${r.url} ${r.status}`), []);
      for (const l of img.mirrored.layers) assert.equal(blobGets(distUp, 'library/mirrored', l.digest), 1);
      assert.equal((await v2('hub/library/mirrored/manifests/1', { method: 'HEAD' })).headers.get('x-wharf-cache'), 'hit');
    } finally {
      await store.cleanup();
    }
  });

  test('multi-arch: ctr pulls linux/amd64, then linux/arm64; a platform is fetched upstream only once asked for', async () => {
    const C = containerd!;
    await writeHostsToml(C.hostsDir, NODE_REGISTRY, { server: DEAD_SERVER, hosts: [{ url: front!.url }] });
    const amd = multi.images.find((i) => i.platform.architecture === 'amd64')!;
    const arm = multi.images.find((i) => i.platform.architecture === 'arm64')!;
    const armOnly = arm.layers.filter((l) => !amd.layers.some((a) => a.digest === l.digest));
    const amdOnly = amd.layers.filter((l) => !arm.layers.some((a) => a.digest === l.digest));
    assert.ok(armOnly.length > 0 && amdOnly.length > 0 && amdOnly.length < amd.layers.length, 'a shared layer and platform layers');
    const manifestGets = (d: string) => distUp.count({ method: 'GET', path: `/v2/library/multi/manifests/${d}` });
    const ref = `${NODE_REGISTRY}/library/multi:1`;
    distUp.clearRequests();

    const first = await ctrPull(C, ref, { user: MEMBER, platform: 'linux/amd64' });
    assert.equal(first.digest, multi.indexDigest);
    assert.equal(manifestGets(amd.manifestDigest), 1);
    assert.equal(manifestGets(arm.manifestDigest), 0);
    for (const d of [amd.configDigest, ...amd.layers.map((l) => l.digest)]) assert.equal(blobGets(distUp, 'library/multi', d), 1, `amd64 ${d}`);
    for (const d of [arm.configDigest, ...armOnly.map((l) => l.digest)]) assert.equal(blobGets(distUp, 'library/multi', d), 0, `arm64 ${d} not yet`);

    const second = await ctrPull(C, ref, { user: MEMBER, platform: 'linux/arm64' });
    assert.equal(second.digest, multi.indexDigest);
    assert.equal(manifestGets(arm.manifestDigest), 1);
    for (const d of [arm.configDigest, ...arm.layers.map((l) => l.digest)]) assert.equal(blobGets(distUp, 'library/multi', d), 1, `arm64 ${d}`);
    // The index was stored byte for byte.
    const index = await v2('node/library/multi/manifests/1');
    assert.equal(index.headers.get('docker-content-digest'), multi.indexDigest);
    assert.deepEqual(Buffer.from(await index.arrayBuffer()), multi.indexBytes);
    await ctrRemoveImages(C);
  });

  test('a tag moved upstream: skopeo inspect through the proxy sees the new digest', async () => {
    const before1 = await skopeoInspect(dockerRef(W().host, 'wup/moving', 'latest'), { creds: MEMBER });
    assert.equal(before1.Digest, img.moveA.manifestDigest);
    assert.deepEqual(before1.RepoTags, ['latest']);
    await skopeoCopy(ociRef(join(work, 'src'), 'moveB'), dockerRef(upWharf!.host, 'acme/moving', 'latest'), { preserveDigests: true, creds: upWharf!.admin });
    const moved = await skopeoInspect(dockerRef(W().host, 'wup/moving', 'latest'), { creds: MEMBER });
    assert.equal(moved.Digest, img.moveB.manifestDigest);
    assert.equal((await v2('wup/moving/manifests/latest', { method: 'HEAD' })).headers.get('x-wharf-cache'), 'hit');
  });

  test('8 concurrent first pulls of an image with a 32 MiB layer: one upstream GET of the layer', async () => {
    const layer = img.big.layers[0]!;
    // A 4 s upstream transfer, so that every pull arrives while the one fill is in flight.
    const slow = distUp.inject({ method: 'GET', path: `/v2/library/big/blobs/${layer.digest}`, fault: { kind: 'throttle', bytesPerSecond: 8 * MiB } });
    const config = await v2(`hub/library/big/blobs/${img.big.configDigest}`);
    assert.equal(config.status, 200);
    await config.arrayBuffer();
    await waitFor('the config blob to be committed', () => existsSync(storedBlob(img.big.configDigest)));
    distUp.clearRequests();
    const joinedBefore = await joinedWaiters('hub');
    try {
      const copies = await Promise.all(Array.from({ length: 8 }, () => pullWithSkopeo('hub/library/big', '1')));
      for (const c of copies) assert.equal(c.digest, img.big.manifestDigest);
    } finally {
      slow.remove();
    }
    assert.equal(blobGets(distUp, 'library/big', layer.digest), 1);
    // The other seven requests for the layer joined the fill in flight (the config blob was cached before).
    assert.equal((await joinedWaiters('hub')) - joinedBefore, 7);
    assert.equal(blobGets(distUp, 'library/big', img.big.configDigest), 0);
  });

  test('a skopeo killed mid-fill does not stop the fill: the blob is cached and the next pull fetches nothing upstream', async () => {
    const layer = img.hang.layers[0]!;
    const path = `/v2/library/hang/blobs/${layer.digest}`;
    const slow = distUp.inject({ method: 'GET', path, times: 1, fault: { kind: 'throttle', bytesPerSecond: 8 * MiB } });
    distUp.clearRequests();
    const copy = spawnSkopeoCopy(dockerRef(W().host, 'hub/library/hang', '1'), outLayout(), MEMBER);
    try {
      await waitFor('the layer to be half-way through the fill', () => distUp.requestsMatching({ method: 'GET', path }).some((r) => r.bytesSent >= 4 * MiB), 30_000);
    } finally {
      copy.child.kill('SIGKILL');
    }
    assert.equal((await copy.exited).signal, 'SIGKILL');
    assert.ok(!distUp.requestsMatching({ method: 'GET', path }).some((r) => r.done), 'the upstream transfer was still running when skopeo died');
    await waitFor('the fill to be committed', () => existsSync(storedBlob(layer.digest)), 30_000);
    const head = await v2(`hub/library/hang/blobs/${layer.digest}`, { method: 'HEAD' });
    assert.equal(head.headers.get('x-wharf-cache'), 'hit');
    assert.equal(head.headers.get('content-length'), String(layer.size));

    const again = await pullWithSkopeo('hub/library/hang', '1');
    assert.equal(again.digest, img.hang.manifestDigest);
    assert.equal(slow.hits, 1);
    assert.equal(blobGets(distUp, 'library/hang', layer.digest), 1, 'no second upstream GET');
  });

  test('a ctr killed mid-fill resumes with a Range request that is served from the fill still in flight', async () => {
    const C = containerd!;
    await writeHostsToml(C.hostsDir, NODE_REGISTRY, { server: DEAD_SERVER, hosts: [{ url: front!.url }] });
    const layer = img.resume.layers[0]!;
    const upstreamPath = `/v2/library/resume/blobs/${layer.digest}`;
    const slow = distUp.inject({ method: 'GET', path: upstreamPath, times: 1, fault: { kind: 'throttle', bytesPerSecond: 6 * MiB } });
    distUp.clearRequests();
    front!.clearRequests();
    const ref = `${NODE_REGISTRY}/library/resume:1`;
    const joinedBefore = await joinedWaiters('node');
    const args = ['--address', C.address, '--namespace', C.namespace, 'images', 'pull', '--hosts-dir', C.hostsDir, '--user', `${MEMBER.username}:${MEMBER.password}`, ref];
    const ctr = spawn(CTR_BIN, args, { stdio: 'ignore' });
    const ctrExited = new Promise<NodeJS.Signals | null>((resolve) => ctr.once('close', (_code, signal) => resolve(signal)));
    const clientPath = `/v2/library/resume/blobs/${layer.digest}`;
    try {
      await waitFor('ctr to be receiving the layer', () => front!.requestsMatching({ method: 'GET', path: clientPath }).some((r) => r.bytesSent >= 4 * MiB), 30_000);
    } finally {
      ctr.kill('SIGKILL');
    }
    assert.equal(await ctrExited, 'SIGKILL');
    const pulled = await ctrPull(C, ref, { user: MEMBER });
    assert.equal(pulled.digest, img.resume.manifestDigest);
    // (A new ctr process asks without a token first: those 401s are not transfers.)
    const gets = front!.requestsMatching({ method: 'GET', path: clientPath }).filter((r) => r.status !== 401);
    assert.equal(gets.length, 2, gets.map((r) => `${r.status} ${r.headers.range}`).join(', '));
    assert.equal(gets[1]!.status, 206);
    assert.match(String(gets[1]!.headers.range), /^bytes=[1-9]\d*-$/);
    assert.equal((await joinedWaiters('node')) - joinedBefore, 1, 'the ranged request joined the fill in flight');
    assert.equal(slow.hits, 1);
    assert.equal(blobGets(distUp, 'library/resume', layer.digest), 1, 'one upstream GET for both');
    await ctrRemoveImages(C);
  });

  test('a corrupted upstream body: skopeo fails, nothing is cached, the next pull fetches it again and succeeds', async () => {
    const layer = img.bad.layers[0]!;
    const corrupt = distUp.inject({ method: 'GET', path: `/v2/library/bad/blobs/${layer.digest}`, times: 1, fault: { kind: 'corrupt' } });
    distUp.clearRequests();
    // The proxy broke the transfer off before its end: skopeo never got a complete body to check the digest of.
    await assert.rejects(pullWithSkopeo('hub/library/bad', '1'), (e: SkopeoError) => /unexpected EOF/.test(e.stderr));
    assert.equal(corrupt.hits, 1);
    assert.equal(existsSync(storedBlob(layer.digest)), false, 'the corrupt bytes were not committed');

    const again = await pullWithSkopeo('hub/library/bad', '1');
    assert.equal(again.digest, img.bad.manifestDigest);
    assert.equal(blobGets(distUp, 'library/bad', layer.digest), 2, 'one more upstream GET');
    assert.ok(existsSync(storedBlob(layer.digest)));
  });

  test('upstream stopped: the cached image still pulls with podman and skopeo; after expiry a clear error, never a 500', async () => {
    const ref = `${W().host}/flaky/library/app:1`;
    const pulled = await podmanPull(ref, { creds: MEMBER });
    assert.equal(pulled.digest, img.flaky.manifestDigest);
    // A successful revalidation pushes the tag's expiry to now + expiration_s; then the upstream goes away.
    const refreshed = Date.now();
    assert.equal((await v2('flaky/library/app/manifests/1', { method: 'HEAD' })).headers.get('x-wharf-cache'), 'hit');
    await flakyDist!.kill();

    const stale = await v2('flaky/library/app/manifests/1', { method: 'HEAD' });
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get('x-wharf-cache'), 'stale');
    assert.equal((await podmanPull(ref, { creds: MEMBER })).digest, img.flaky.manifestDigest);
    assert.equal((await pullWithSkopeo('flaky/library/app', '1')).digest, img.flaky.manifestDigest);

    // One more stale serve shortly before the expiry: had it extended the expiry, the tag would live on for expiration_s.
    await sleep(Math.max(0, refreshed + (FLAKY_EXPIRATION_S - 0.8) * 1000 - Date.now()));
    assert.equal((await v2('flaky/library/app/manifests/1', { method: 'HEAD' })).headers.get('x-wharf-cache'), 'stale');
    await waitFor('the cached tag to expire', async () => (await v2('flaky/library/app/manifests/1', { method: 'HEAD' })).status !== 200, 5_000, 100);
    assert.ok(Date.now() - refreshed < (FLAKY_EXPIRATION_S + 1) * 1000, 'serving the stale copy did not extend its expiry');
    // containers/image (skopeo, podman) reads the error body of 4xx answers only: of a 503 it shows the status line.
    const unavailable = /reading manifest 1 in 127\.0\.0\.1:\d+\/flaky\/library\/app: received unexpected HTTP status: 503 Service Unavailable/;
    await assert.rejects(skopeoInspect(dockerRef(W().host, 'flaky/library/app', '1'), { creds: MEMBER, noTags: true }), (err: SkopeoError) => unavailable.test(err.stderr));
    await assert.rejects(podmanPull(ref, { creds: MEMBER }), (err: PodmanError) => unavailable.test(err.message));
    const reason = /upstream registry 127\.0\.0\.1:\d+ is unavailable/;
    for (const path of ['flaky/library/app/manifests/1', 'flaky/library/other/manifests/1', `flaky/library/app/blobs/${digestOf('a blob no one has')}`]) {
      const res = await v2(path);
      assert.equal(res.status, 503, path);
      assert.match(res.headers.get('content-type') ?? '', /json/);
      const body = (await res.json()) as OciError;
      assert.equal(body.errors[0]!.code, 'UNAVAILABLE', path);
      assert.match(body.errors[0]!.message, reason);
    }
    // Content addressed by digest cannot be stale: it is still served.
    assert.equal((await pullWithSkopeo('flaky/library/app', img.flaky.manifestDigest)).digest, img.flaky.manifestDigest);
  });
});

/** `skopeo copy` as a child process the test can kill mid-transfer. */
function spawnSkopeoCopy(src: string, dest: string, creds: Credentials) {
  const child = spawn(SKOPEO, ['copy', '--src-tls-verify=false', '--retry-times', '0', '--src-creds', `${creds.username}:${creds.password}`, src, dest], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exited };
}
