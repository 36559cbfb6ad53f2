/**
 * Repository mirroring end to end, on SQLite and on PostgreSQL: a real `wharf serve` keeps the nested
 * repository `mirrors/library/app` in sync with a Distribution that wants htpasswd credentials, only
 * for the tags its globs match; skopeo, podman and ctr pull the mirror; a user with write permission
 * is refused a push with the reason, the mirror robot is not; a serve process killed (SIGKILL) in the
 * middle of a run leaves the run to the next `wharf serve` on the same database, which finishes it: on
 * SQLite once the lease has expired, on PostgreSQL at once (the killed process's liveness lock went
 * with it); and (PostgreSQL, where several servers share one database) two serve processes polling
 * the same mirror run it once.
 *
 *   skopeo, podman, ctr ──► wharf serve [×2 on PostgreSQL] ──► fault proxy ──► docker-registry (htpasswd)
 *
 * The fault proxy only holds a blob back (to catch a run in the middle) or slows it down (so that a run
 * spans several polls of both workers); it records every request, which is what the upstream saw.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ctrPull, startContainerd, type ContainerdProcess } from '../helpers/containerd.js';
import { openDatabase } from '../../src/db/connect.js';
import { createPostgresDatabase, DIALECTS } from '../helpers/databases.js';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { rethrowFailures, waitFor } from '../helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { apiRequest, MirrorApi, syncStartDate, type MirrorView } from '../helpers/mirror-api.js';
import { buildImage, KiB, type BuiltImage } from '../helpers/oci-layout.js';
import { createPodmanStore, podmanPull, PodmanError, runPodman, type PodmanStore } from '../helpers/podman.js';
import { dockerRef, ociRef, skopeoCopy, SkopeoError, type Credentials } from '../helpers/skopeo.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const UPSTREAM_USER: Credentials = { username: 'mirror-puller', password: 'mirror-e2e-upstream-password' };
const REALM = 'wharf-e2e-mirror-upstream';
const UPSTREAM_REPO = 'library/app';
const REPO = 'mirrors/library/app';
const ROBOT = 'mirrors+sync';
const GLOBS = ['v1.*', 'rc[0-9]'];
/** Upstream tags at the start, and those the globs match. */
const FIRST_TAGS = ['v1.0', 'v1.1', 'v2.0', 'rc1', 'rcx', 'dev'];
const MATCHED = ['rc1', 'v1.0', 'v1.1'];
/** What a client shows when the registry refuses a write into the mirror. */
const MIRROR_REFUSAL = /is a mirror; only its mirror robot may change it/;
/**
 * Longer than a `wharf serve` takes to start and poll once, so that a process that took a live claim
 * over would do it before the lease expired (and be caught); short enough for a test on SQLite, which
 * waits for it. On PostgreSQL a dead process's run is taken over at once: there, far longer.
 */
const LEASE = { sqlite: '15s', postgres: '10m' } as const;
/** Several serve processes on one database must share the key the upstream credentials are sealed with. */
const SECRET_KEY = 'a3'.repeat(32);

for (const dialect of DIALECTS) describe(`repository mirroring end to end (${dialect})`, () => {
  let work: string;
  let src: string;
  let dataDir: string;
  let database: { url: string; drop(): Promise<void> } | undefined;
  let dist: DistributionProcess | undefined;
  let upstream: FaultProxy | undefined;
  let containerd: ContainerdProcess | undefined;
  /** The serve processes started so far (killed ones included); `current` is the one the steps use. */
  const processes: WharfProcess[] = [];
  let current: WharfProcess | undefined;
  const stores: PodmanStore[] = [];
  const images = new Map<string, BuiltImage>();
  let robot: Credentials;
  let bob: Credentials;

  const W = (): WharfProcess => {
    if (!current) throw new Error('wharf did not start');
    return current;
  };
  const admin = () => basicAuth(W().admin);
  const mirror = (w = W()) => new MirrorApi(w.url, basicAuth(w.admin), REPO);
  const api = (method: string, path: string, body?: unknown) => apiRequest(W().url, admin(), method, path, body);

  /** A `wharf serve` on the shared data directory and database, mirror worker polling every second. */
  const serve = async (): Promise<WharfProcess> => {
    const w = await startWharf({
      dataDir,
      organizations: ['mirrors'],
      env: {
        WHARF_DB_URL: database?.url,
        WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1',
        WHARF_PROXY_CACHE_SECRET_KEY: SECRET_KEY,
        WHARF_MIRROR_POLL_INTERVAL: '1s',
        WHARF_MIRROR_LEASE: LEASE[dialect],
      },
    });
    processes.push(w);
    return w;
  };

  /** Builds the image of `tag` (a base layer every tag shares, one of its own) and pushes it upstream. */
  const pushUpstream = async (tag: string): Promise<BuiltImage> => {
    const img = await buildImage(src, {
      tag,
      seed: `mirror-e2e-${tag}`,
      layers: [
        { files: [{ path: 'etc/os-release', content: 'NAME=wharf-mirror-e2e\n' }] },
        { files: [{ path: 'usr/bin/app', size: 64 * KiB, mode: 0o755 }] },
      ],
    });
    await skopeoCopy(ociRef(src, tag), dockerRef(dist!.host, UPSTREAM_REPO, tag), { preserveDigests: true, creds: UPSTREAM_USER });
    images.set(tag, img);
    return img;
  };

  const digestOf = async (w: WharfProcess, tag: string): Promise<string | null> => {
    const res = await fetch(`${w.url}/v2/${REPO}/manifests/${tag}`, {
      method: 'HEAD',
      headers: { authorization: basicAuth(w.admin), accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' },
    });
    await res.arrayBuffer();
    return res.status === 200 ? res.headers.get('docker-content-digest') : null;
  };
  const localTags = async (): Promise<string[]> => {
    const res = await fetch(`${W().url}/v2/${REPO}/tags/list`, { headers: { authorization: admin() } });
    assert.equal(res.status, 200);
    return (((await res.json()) as { tags: string[] | null }).tags ?? []).sort();
  };
  /** The audit entries of `kind` on the mirrored repository, newest first. */
  const auditEntries = async (kind: string): Promise<Array<{ kind: string; metadata: Record<string, unknown>; datetime: string }>> => {
    const r = await api('GET', `/repository/${REPO}/logs?kind=${kind}&limit=500`);
    assert.equal(r.status, 200, r.text);
    return r.json.logs;
  };
  /**
   * Upstream answers (through the proxy) with the manifest `ref` (tag or digest), by method. Only 200s:
   * a first request without credentials is answered 401 with the Basic challenge and sent again.
   */
  const manifestRequests = (ref: string, method: 'GET' | 'HEAD') => upstream!.count({ method, path: `/v2/${UPSTREAM_REPO}/manifests/${ref}`, status: 200 });
  const blobGets = (digest: string) => upstream!.count({ method: 'GET', path: `/v2/${UPSTREAM_REPO}/blobs/${digest}`, status: 200 });

  /** The schedule columns of the mirror's row, read from the database the processes share. */
  const scheduleRow = async () => {
    const db = await openDatabase({ url: W().dbUrl, dataDir, poolSize: 1 });
    try {
      return await db.db.selectFrom('repository_mirrors').select(['sync_status', 'sync_expires_at', 'sync_holder', 'last_started_at']).executeTakeFirstOrThrow();
    } finally {
      await db.close();
    }
  };

  /** Like `it`, but a failure also prints the tails of the processes' output. */
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, { timeout: 300_000 }, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        for (const [i, w] of processes.entries()) t.diagnostic(`wharf #${i + 1} output (tail):\n${w.output().slice(-3000)}`);
        if (dist) t.diagnostic(`docker-registry output (tail):\n${dist.output().slice(-1500)}`);
        throw err;
      }
    });
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-mirror-'));
    src = join(work, 'src');
    dataDir = join(work, 'wharf');
    await mkdir(dataDir);
    if (dialect === 'postgres') database = await createPostgresDatabase();
    const started = await Promise.allSettled([
      startDistribution({ auth: { htpasswd: { realm: REALM, users: { [UPSTREAM_USER.username]: UPSTREAM_USER.password } } } }).then((d) => (dist = d)),
      startContainerd().then((c) => (containerd = c)),
      serve().then((w) => (current = w)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    upstream = await startFaultProxy(dist!.url);
    for (const tag of FIRST_TAGS) await pushUpstream(tag);

    const robotRes = await api('PUT', '/organization/mirrors/robots/sync', { description: 'mirror of the upstream library/app' });
    assert.equal(robotRes.status, 201, robotRes.text);
    robot = { username: robotRes.json.name, password: robotRes.json.token };
    assert.equal(robot.username, ROBOT);
    const repo = await api('POST', '/repository', { namespace: 'mirrors', repository: 'library/app', visibility: 'private', description: 'mirror' });
    assert.equal(repo.status, 201, repo.text);
    const user = await api('POST', '/superuser/users/', { username: 'bob', email: 'bob@example.com' });
    assert.equal(user.status, 201, user.text);
    bob = { username: 'bob', password: user.json.password };
    const perm = await api('PUT', `/repository/${REPO}/permissions/user/bob`, { role: 'write' });
    assert.equal(perm.status, 200, perm.text);

    await mirror().create({
      external_reference: `${upstream.host}/${UPSTREAM_REPO}`,
      external_registry_username: UPSTREAM_USER.username,
      external_registry_password: UPSTREAM_USER.password,
      external_registry_config: { verify_tls: false },
      // Only sync-now starts a run here: the first scheduled one is a day away.
      sync_start_date: syncStartDate(new Date(Date.now() + 86_400_000)),
      sync_interval: 86_400,
      root_rule: { rule_kind: 'tag_glob_csv', rule_value: GLOBS },
      robot_username: ROBOT,
      is_enabled: true,
    });
  });

  after(async () => {
    const stopped = await Promise.allSettled([
      upstream?.stop(),
      containerd?.stop(),
      dist?.stop(),
      ...processes.map((w) => w.stop()),
      ...stores.map((s) => s.cleanup()),
    ]);
    await database?.drop();
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures(stopped);
  });

  test('mirrors the tags the globs match into a nested repository; skopeo, podman and ctr pull them', async () => {
    const view = await mirror().syncAndWait({ timeoutMs: 120_000 });
    assert.equal(view.last_run?.outcome, 'SUCCESS', JSON.stringify(view));
    assert.ok((view.last_run?.bytes ?? 0) > 0, `a first run copies bytes: ${JSON.stringify(view.last_run)}`);
    assert.equal(view.progress, null, 'no progress once the run is over');
    assert.equal((view as MirrorView & { external_registry_password?: unknown }).external_registry_password, undefined, 'the upstream password is never shown');
    assert.equal(view.external_registry_username, UPSTREAM_USER.username);
    const upstreamBasic = `Basic ${Buffer.from(`${UPSTREAM_USER.username}:${UPSTREAM_USER.password}`).toString('base64')}`;
    assert.ok(upstream!.requests.some((r) => r.headers.authorization === upstreamBasic && r.status === 200), 'Wharf pulled with the upstream credentials');

    assert.deepEqual(await localTags(), MATCHED, 'exactly the tags the globs match');
    for (const tag of MATCHED) assert.equal(await digestOf(W(), tag), images.get(tag)!.manifestDigest, `${tag} byte for byte`);

    const copied = await skopeoCopy(dockerRef(W().host, REPO, 'v1.0'), ociRef(join(work, 'skopeo-out'), 'pulled'), { creds: W().admin, preserveDigests: true });
    assert.equal(copied.digest, images.get('v1.0')!.manifestDigest);
    const pulled = await podmanPull(`${W().host}/${REPO}:v1.1`, { creds: W().admin });
    assert.equal(pulled.digest, images.get('v1.1')!.manifestDigest);
    const ctr = await ctrPull(containerd!, `${W().host}/${REPO}:rc1`, { user: W().admin });
    assert.equal(ctr.digest, images.get('rc1')!.manifestDigest);
  });

  test('a user with write permission is refused a push with the reason (skopeo, podman); the mirror robot pushes', async () => {
    await assert.rejects(
      skopeoCopy(ociRef(src, 'v2.0'), dockerRef(W().host, REPO, 'by-bob'), { creds: bob, preserveDigests: true }),
      (err: SkopeoError) => MIRROR_REFUSAL.test(err.stderr),
    );
    const store = await createPodmanStore();
    stores.push(store);
    await podmanPull(`${W().host}/${REPO}:v1.0`, { store, creds: bob });
    await assert.rejects(
      runPodman(store, ['push', '--tls-verify=false', '--creds', `${bob.username}:${bob.password}`, `${W().host}/${REPO}:v1.0`, `docker://${W().host}/${REPO}:by-bob-podman`]),
      (err: PodmanError) => MIRROR_REFUSAL.test(err.result.stderr),
    );
    assert.ok(!(await localTags()).some((t) => t.startsWith('by-bob')), 'nothing of the refused pushes is tagged');

    const byRobot = await skopeoCopy(ociRef(src, 'v2.0'), dockerRef(W().host, REPO, 'by-robot'), { creds: robot, preserveDigests: true });
    assert.equal(byRobot.digest, images.get('v2.0')!.manifestDigest);
    assert.equal(await digestOf(W(), 'by-robot'), images.get('v2.0')!.manifestDigest);
  });

  test(`a serve process killed mid-run: the next one takes the run over ${dialect === 'sqlite' ? 'once the lease has expired' : 'at once'}, and finishes it`, async () => {
    const v12 = await pushUpstream('v1.2');
    const v13 = await pushUpstream('v1.3');
    const ownLayer = v13.layers.at(-1)!.digest;
    // v1.3's own layer is held back: the run stays in the middle, with its lease held.
    const hold = upstream!.inject({ method: 'GET', path: `/v2/${UPSTREAM_REPO}/blobs/${ownLayer}`, fault: { kind: 'stall' } });
    const startedBefore = (await auditEntries('repo_mirror_sync_started')).length;
    const successBefore = (await auditEntries('repo_mirror_sync_success')).length;
    await mirror().syncNow();
    await waitFor('the run to reach the held-back blob', () => hold.hits > 0, 60_000, 50);
    const during = await mirror().get();
    assert.equal(during.sync_status, 'SYNCING');
    assert.ok(during.progress !== null, `progress is shown while it runs: ${JSON.stringify(during)}`);

    const killed = W();
    await killed.kill();
    hold.remove();
    const held = blobGets(ownLayer);
    // Nobody renews the claim any more: it lasts until this instant.
    const claim = await scheduleRow();
    assert.equal(claim.sync_status, 'SYNCING');
    assert.ok(claim.sync_holder !== null && claim.sync_expires_at !== null, JSON.stringify(claim));
    current = await serve();

    const view = await mirror().waitForRun({ timeoutMs: 120_000 });
    assert.equal(view.last_run?.outcome, 'SUCCESS', JSON.stringify(view));
    const takeover = await scheduleRow();
    if (dialect === 'sqlite') {
      assert.ok(Number(takeover.last_started_at) >= Number(claim.sync_expires_at), `the run was taken over at ${takeover.last_started_at}, before the killed process's lease expired at ${claim.sync_expires_at}`);
    } else {
      assert.ok(Number(takeover.last_started_at) < Number(claim.sync_expires_at), `the run was taken over at ${takeover.last_started_at}, only once the killed process's lease expired at ${claim.sync_expires_at}`);
    }
    assert.equal(await digestOf(W(), 'v1.2'), v12.manifestDigest);
    assert.equal(await digestOf(W(), 'v1.3'), v13.manifestDigest);
    assert.equal(blobGets(ownLayer), held + 1, 'the new process fetched the held-back blob once');
    assert.equal((await auditEntries('repo_mirror_sync_started')).length, startedBefore + 2, 'one start by the killed process, one by the process that took over');
    assert.equal((await auditEntries('repo_mirror_sync_success')).length, successBefore + 1);
  });

  if (dialect === 'postgres') {
    test('two serve processes on one PostgreSQL race for the mirror: exactly one runs each sync', async () => {
      const other = await serve();
      const v14 = await pushUpstream('v1.4');
      const ownLayer = v14.layers.at(-1)!.digest;
      // The new layer arrives slowly, so that the run spans several polls of both processes.
      upstream!.inject({ method: 'GET', path: `/v2/${UPSTREAM_REPO}/blobs/${ownLayer}`, fault: { kind: 'throttle', bytesPerSecond: 24 * KiB } });
      const tags = [...MATCHED, 'v1.2', 'v1.3', 'v1.4'];
      for (const round of ['v1.4 is new', 'nothing changed']) {
        upstream!.clearRequests();
        const started = (await auditEntries('repo_mirror_sync_started')).length;
        const success = (await auditEntries('repo_mirror_sync_success')).length;
        await mirror(other).syncNow();
        const view = await mirror(W()).waitForRun({ timeoutMs: 120_000 });
        assert.equal(view.last_run?.outcome, 'SUCCESS', `${round}: ${JSON.stringify(view)}`);
        assert.equal((await auditEntries('repo_mirror_sync_started')).length, started + 1, `${round}: one run started`);
        assert.equal((await auditEntries('repo_mirror_sync_success')).length, success + 1, `${round}: one run finished`);
        assert.equal(upstream!.count({ method: 'GET', path: `/v2/${UPSTREAM_REPO}/tags/list`, status: 200 }), 1, `${round}: the tags were listed once`);
        for (const tag of tags) assert.equal(manifestRequests(tag, 'HEAD'), 1, `${round}: one HEAD of ${tag}`);
        const fresh = round === 'v1.4 is new' ? 1 : 0;
        assert.equal(manifestRequests(v14.manifestDigest, 'GET'), fresh, `${round}: GETs of v1.4's manifest`);
        assert.equal(upstream!.count({ method: 'GET', path: /\/manifests\//, status: 200 }), fresh, `${round}: no other manifest is fetched`);
        assert.equal(blobGets(ownLayer), fresh, `${round}: GETs of v1.4's own layer`);
        if (round === 'nothing changed') assert.equal(upstream!.count({ method: 'GET', path: /\/blobs\// }), 0, 'nothing changed: no blob is fetched');
      }
      assert.equal(await digestOf(other, 'v1.4'), v14.manifestDigest);
      assert.equal(await digestOf(W(), 'v1.4'), v14.manifestDigest);
    });
  }
});
