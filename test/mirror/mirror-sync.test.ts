/**
 * Mirror runs through the worker against a real upstream — Debian's docker-registry (Distribution) with
 * htpasswd, behind the fault-injecting proxy that counts what reaches it — on SQLite and PostgreSQL.
 * Mirror rows are written straight into the database (test/helpers/mirror-rows.ts); credentials are
 * sealed with the registry's own SecretBox key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { MirrorScheduleStore } from '../../src/db/mirror-schedule-store.js';
import { MirrorStore, type MirrorRecord } from '../../src/db/mirror-store.js';
import { createMirrorWorker } from '../../src/main/compose-mirror.js';
import { MirrorWorker } from '../../src/workers/mirror/mirror-worker.js';
import { parseRepositoryName, type RepositoryName } from '../../src/oci/reference.js';
import type { Digest } from '../../src/oci/digest.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { DIALECTS } from '../helpers/databases.js';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { sha256, waitFor } from '../helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { insertMirror, testSecretBox, updateMirror, type MirrorRowInput } from '../helpers/mirror-rows.js';
import { MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST } from '../helpers/oci-layout.js';
import { pushBlobTo, pushRandomImage, pushRandomIndex, putManifestTo } from '../helpers/registry-push.js';

const USER = { name: 'mirror-reader', password: 'mirror-reader-password' };
const basic = `${USER.name}:${USER.password}`;

/** An image whose layers are the given blobs (shared between images when the same bytes are passed). */
async function pushImageWithLayers(base: string, name: string, tag: string, layers: Buffer[]): Promise<string> {
  for (const l of layers) await pushBlobTo(base, name, l, { basic });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l)) }, tag }));
  await pushBlobTo(base, name, config, { basic });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, digest: sha256(l), size: l.length })),
    }),
  );
  return putManifestTo(base, name, tag, manifest, MEDIA_TYPE_OCI_MANIFEST, { basic });
}

for (const dialect of DIALECTS) {
  describe(`repository mirrors: sync runs against Distribution with htpasswd (${dialect})`, () => {
    let dist: DistributionProcess;
    let up: FaultProxy;
    let t: TestApp;
    let mirrors: MirrorStore;
    const { box, key } = testSecretBox();
    const creds = { username: USER.name, password: USER.password, box };

    const worker = (holder = 'w1') => createMirrorWorker(t.db, t.registry, t.config, { holder });
    const mirror = (local: string, upstreamPath: string, m: MirrorRowInput = {}) => insertMirror(t.db, local, { externalReference: `${up.host}/${upstreamPath}`, credentials: creds, ...m });
    const record = async (id: number): Promise<MirrorRecord> => (await mirrors.find(id))!;
    const syncNow = (id: number) => updateMirror(t.db, id, { sync_status: 'SYNC_NOW', sync_expires_at: null });
    const name = (s: string): RepositoryName => {
      const p = parseRepositoryName(s);
      assert.ok(p.ok);
      return p.name;
    };
    const liveTags = async (local: string): Promise<Map<string, Digest>> => {
      const repo = await t.registry.repositories.get(name(local));
      return t.registry.tags.liveTargets(repo);
    };
    const manifestBytes = async (local: string, ref: string) =>
      (await t.registry.manifests.get(name(local), ref.startsWith('sha256:') ? { kind: 'digest', digest: ref as Digest } : { kind: 'tag', tag: ref as never })).content;
    const hasBlob = async (local: string, digest: string) => {
      const repo = await t.registry.repositories.get(name(local));
      return t.registry.blobs.stat(repo, digest as Digest).then(
        () => true,
        () => false,
      );
    };
    const auditKinds = async (local: string) => {
      const slash = local.indexOf('/');
      const { entries } = await t.registry.audit!.query({ namespace: local.slice(0, slash), repository: local.slice(slash + 1), limit: 500 });
      return entries.map((e) => ({ kind: e.kind, metadata: e.metadata ?? {} })).reverse();
    };

    before(async () => {
      dist = await startDistribution({ auth: { htpasswd: { realm: 'mirror-test', users: { [USER.name]: USER.password } } } });
      up = await startFaultProxy(dist.url);
      t = await buildTestApp(dialect, {
        config: { proxy_cache: { allow_private_upstreams: ['127.0.0.1'], secret_key: key }, mirror: { enabled: false, tag_concurrency: 2, lease: '10s' } },
      });
      mirrors = new MirrorStore(t.db.db, t.db.dialect);
    });
    // Each test runs the mirrors it creates: those of earlier tests (failed ones are due again) sit out.
    beforeEach(async () => {
      await t.db.db.updateTable('repository_mirrors').set({ is_enabled: 0, sync_status: 'SUCCESS', sync_expires_at: null }).execute();
    });
    after(async () => {
      await t?.close();
      await up?.stop();
      await dist?.stop();
    });

    it('syncs the tags the globs select into a nested repository; a tag removed upstream goes into the time machine', async () => {
      const imgs: Record<string, string> = {};
      for (const tag of ['v1.0', 'v1.1', 'v2.0', 'latest']) imgs[tag] = (await pushRandomImage(dist.url, 'globs/app', tag, { basic })).digest;
      const id = await mirror('mirrors/library/globs', 'globs/app', { globs: ['v1.*', 'lat?st'] });
      const [report] = await worker().runOnce();
      assert.equal(report?.outcome, 'SUCCESS', report?.message);
      const tags = await liveTags('mirrors/library/globs');
      assert.deepEqual(Object.fromEntries(tags), { 'v1.0': imgs['v1.0'], 'v1.1': imgs['v1.1'], latest: imgs.latest });
      const upstreamManifest = await (await fetch(`${dist.url}/v2/globs/app/manifests/v1.1`, { headers: { authorization: `Basic ${Buffer.from(basic).toString('base64')}`, accept: MEDIA_TYPE_OCI_MANIFEST } })).arrayBuffer();
      assert.deepEqual(await manifestBytes('mirrors/library/globs', 'v1.1'), Buffer.from(upstreamManifest), 'manifests are stored byte for byte');
      const r = await record(id);
      assert.equal(r.sync.status, 'SUCCESS');
      assert.equal(r.sync.last?.outcome, 'SUCCESS');
      assert.ok(r.sync.startAt! > Date.now(), 'the next run is on the grid, in the future');
      assert.equal(r.sync.run, null);

      // v1.1 disappears upstream: the next run deletes it locally, restorable from the history.
      const del = await fetch(`${dist.url}/v2/globs/app/manifests/${imgs['v1.1']}`, { method: 'DELETE', headers: { authorization: `Basic ${Buffer.from(basic).toString('base64')}` } });
      assert.equal(del.status, 202);
      await syncNow(id);
      const [second] = await worker().runOnce();
      assert.equal(second?.outcome, 'SUCCESS', second?.message);
      assert.deepEqual(second?.tags.deleted, ['v1.1']);
      assert.deepEqual([...(await liveTags('mirrors/library/globs')).keys()].sort(), ['latest', 'v1.0']);
      const repo = await t.registry.repositories.get(name('mirrors/library/globs'));
      await t.registry.tags.restore(repo, 'v1.1' as never, imgs['v1.1'] as Digest);
      assert.equal((await liveTags('mirrors/library/globs')).get('v1.1'), imgs['v1.1']);

      const kinds = (await auditKinds('mirrors/library/globs')).map((e) => e.kind);
      assert.equal(kinds[0], 'repo_mirror_sync_started');
      assert.equal(kinds.filter((k) => k === 'repo_mirror_sync_tag_success').length, 5, 'three tags, then the two left');
      assert.equal(kinds.filter((k) => k === 'repo_mirror_sync_success').length, 2);
    });

    it('a re-sync of an unchanged repository moves no blob bytes and makes one HEAD per tag', async () => {
      for (const tag of ['a', 'b', 'c']) await pushRandomImage(dist.url, 'warm/app', tag, { basic, layerSizes: [256 * 1024, 128 * 1024] });
      const id = await mirror('mirrors/warm', 'warm/app');
      const [cold] = await worker().runOnce();
      assert.equal(cold?.outcome, 'SUCCESS', cold?.message);
      assert.ok(cold!.bytes > 3 * 384 * 1024);
      up.clearRequests();
      await syncNow(id);
      const [warm] = await worker().runOnce();
      assert.equal(warm?.outcome, 'SUCCESS', warm?.message);
      assert.equal(warm!.bytes, 0);
      assert.deepEqual(warm!.tags.unchanged.sort(), ['a', 'b', 'c']);
      assert.equal(up.count({ path: /\/blobs\// }), 0, 'no blob request');
      assert.equal(up.count({ method: 'GET', path: /\/manifests\// }), 0, 'no manifest GET');
      for (const tag of ['a', 'b', 'c']) assert.equal(up.count({ method: 'HEAD', path: `/v2/warm/app/manifests/${tag}` }), 1);
      assert.equal((await record(id)).sync.last?.bytes, 0);
    });

    it('a blob shared by several tags is fetched from the upstream once', async () => {
      const shared = randomBytes(512 * 1024);
      const sharedDigest = sha256(shared);
      for (let i = 0; i < 5; i++) await pushImageWithLayers(dist.url, 'shared/app', `t${i}`, [shared, randomBytes(1024)]);
      up.clearRequests();
      await mirror('mirrors/shared', 'shared/app');
      const [report] = await worker().runOnce();
      assert.equal(report?.outcome, 'SUCCESS', report?.message);
      assert.equal(up.count({ method: 'GET', path: `/v2/shared/app/blobs/${sharedDigest}` }), 1);
      assert.ok(await hasBlob('mirrors/shared', sharedDigest));
    });

    it('multi-arch: without a filter every platform; with one the index is kept byte for byte and only its platforms are fetched', async () => {
      const idx = await pushRandomIndex(dist.url, 'multi/app', 'v1', [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ], { basic });
      const [amd64, arm64] = idx.images as [(typeof idx.images)[0], (typeof idx.images)[0]];
      await mirror('mirrors/multi-all', 'multi/app', { globs: ['v1'] });
      await mirror('mirrors/multi-arm', 'multi/app', { globs: ['v1'], architectures: ['arm64'] });
      up.clearRequests();
      const reports = await worker().runOnce();
      assert.deepEqual(reports.map((r) => r.outcome), ['SUCCESS', 'SUCCESS'], reports.map((r) => r.message).join('; '));
      for (const local of ['mirrors/multi-all', 'mirrors/multi-arm']) assert.deepEqual(await manifestBytes(local, 'v1'), idx.index);
      assert.deepEqual(await manifestBytes('mirrors/multi-all', amd64.digest), amd64.manifest);
      assert.deepEqual(await manifestBytes('mirrors/multi-all', arm64.digest), arm64.manifest);
      assert.deepEqual(await manifestBytes('mirrors/multi-arm', arm64.digest), arm64.manifest);
      await assert.rejects(manifestBytes('mirrors/multi-arm', amd64.digest), /not found/);
      assert.ok(await hasBlob('mirrors/multi-arm', arm64.layers[0]!.digest));
      assert.ok(!(await hasBlob('mirrors/multi-arm', amd64.layers[0]!.digest)));
      assert.equal(up.count({ method: 'GET', path: `/v2/multi/app/blobs/${amd64.layers[0]!.digest}` }), 1, 'fetched once, for the unfiltered mirror');
    });

    it('wrong credentials: FAIL with the reason, a retry used, nothing stored', async () => {
      await pushRandomImage(dist.url, 'auth/app', 'v1', { basic });
      const id = await mirror('mirrors/badauth', 'auth/app', { credentials: { username: USER.name, password: 'wrong-password', box } });
      const [report] = await worker().runOnce();
      assert.equal(report?.outcome, 'FAIL');
      assert.equal(report?.reason, 'auth_failed');
      assert.match(report!.message, /cannot list the tags .*(denied|401|unauthorized)/i);
      const r = await record(id);
      assert.deepEqual([r.sync.status, r.sync.retriesRemaining, r.sync.last?.outcome], ['FAIL', 2, 'FAIL']);
      assert.match(r.sync.last!.message!, /401|denied|unauthorized/i);
      assert.deepEqual([...(await liveTags('mirrors/badauth')).keys()], []);
      const failed = (await auditKinds('mirrors/badauth')).find((e) => e.kind === 'repo_mirror_sync_failed');
      assert.ok(failed, 'audited');
      assert.match(String(failed.metadata.message), /401|denied|unauthorized/i);
    });

    it('a failed tag: without rollback it alone keeps its old target (PARTIAL); with rollback every change of the run is undone (FAIL)', async () => {
      for (const [path, local, rollback] of [['partial/app', 'mirrors/partial', false], ['rollback/app', 'mirrors/rollback', true]] as const) {
        const old = await pushRandomImage(dist.url, path, 'moved', { basic });
        const oldBroken = await pushRandomImage(dist.url, path, 'broken', { basic });
        const gone = await pushRandomImage(dist.url, path, 'gone', { basic });
        const id = await mirror(local, path, { rollback });
        const [first] = await worker().runOnce();
        assert.equal(first?.outcome, 'SUCCESS', first?.message);
        const moved = await pushRandomImage(dist.url, path, 'moved', { basic });
        const created = await pushRandomImage(dist.url, path, 'created', { basic });
        const broken = await pushRandomImage(dist.url, path, 'broken', { basic });
        await fetch(`${dist.url}/v2/${path}/manifests/${gone.digest}`, { method: 'DELETE', headers: { authorization: `Basic ${Buffer.from(basic).toString('base64')}` } });
        const fault = up.inject({ method: 'GET', path: `/v2/${path}/blobs/${broken.layers[0]!.digest}`, fault: { kind: 'corrupt' } });
        await syncNow(id);
        const [second] = await worker().runOnce();
        fault.remove();
        const tags = Object.fromEntries(await liveTags(local));
        if (rollback) {
          assert.equal(second?.outcome, 'FAIL', second?.message);
          assert.deepEqual(tags, { moved: old.digest, broken: oldBroken.digest, gone: gone.digest });
          assert.deepEqual(second!.tags.rolledBack.sort(), ['created', 'moved']);
        } else {
          assert.equal(second?.outcome, 'PARTIAL', second?.message);
          assert.match(second!.message, /PARTIAL SYNC: broken \(FAILED/);
          assert.deepEqual(tags, { moved: moved.digest, created: created.digest, broken: oldBroken.digest });
        }
        const r = await record(id);
        assert.deepEqual([r.sync.status, r.sync.retriesRemaining, r.sync.last?.outcome], ['FAIL', 2, rollback ? 'FAIL' : 'PARTIAL']);
        const tagFailed = (await auditKinds(local)).filter((e) => e.kind === 'repo_mirror_sync_tag_failed');
        assert.deepEqual(tagFailed.map((e) => e.metadata.tag), ['broken']);
      }
    });

    it('cancel stops the run between tags; the mirror waits for sync-now', async () => {
      const tags = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'];
      const layers: string[] = [];
      for (const tag of tags) layers.push((await pushRandomImage(dist.url, 'cancel/app', tag, { basic, layerSizes: [256 * 1024] })).layers[0]!.digest);
      const slow = up.inject({ method: 'GET', path: /^\/v2\/cancel\/app\/blobs\//, fault: { kind: 'throttle', bytesPerSecond: 256 * 1024 } });
      const id = await mirror('mirrors/cancel', 'cancel/app');
      const running = worker().runOnce();
      await waitFor('the first tag to be done', async () => ((await record(id)).sync.run?.tagsDone ?? 0) >= 1, 30_000);
      await updateMirror(t.db, id, { sync_status: 'CANCEL', sync_retries_remaining: 0 });
      const [report] = await running;
      slow.remove();
      assert.equal(report?.outcome, 'CANCEL', report?.message);
      const synced = report!.tags.changed.length;
      assert.ok(synced >= 1 && synced < tags.length, `${synced} tags synced before the cancel took effect`);
      const r = await record(id);
      assert.deepEqual([r.sync.status, r.sync.startAt, r.sync.retriesRemaining, r.sync.last?.outcome], ['CANCEL', null, 0, 'CANCEL']);
      assert.deepEqual(await new MirrorScheduleStore(t.db.db, t.db.dialect).due(Date.now(), 100), []);
    });

    it('two workers racing for one mirror: exactly one runs it', async () => {
      await pushRandomImage(dist.url, 'race/app', 'v1', { basic });
      await mirror('mirrors/race', 'race/app');
      up.clearRequests();
      const [a, b] = await Promise.all([worker('racer-a').runOnce(), worker('racer-b').runOnce()]);
      assert.equal(a.length + b.length, 1, JSON.stringify([...a, ...b].map((r) => [r.message, r.startedAt])));
      assert.equal([...a, ...b][0]!.outcome, 'SUCCESS');
      assert.equal(up.count({ method: 'GET', path: '/v2/race/app/tags/list', status: 200 }), 1, 'the tags were listed once (a 401 challenge comes first)');
    });

    it('a worker that dies mid-run (its claim not renewed) is taken over once the claim expires', async () => {
      await pushRandomImage(dist.url, 'killed/app', 'v1', { basic });
      const id = await mirror('mirrors/killed', 'killed/app');
      const schedule = new MirrorScheduleStore(t.db.db, t.db.dialect);
      const [dead] = await schedule.claimDue('dead-worker', Date.now(), 1500, 10);
      assert.equal(dead?.record.repositoryId, id);
      assert.deepEqual(await worker('survivor').runOnce(), [], 'not while the claim holds');
      await waitFor('the claim to expire', async () => (await schedule.due(Date.now(), 10)).some((m) => m.repositoryId === id), 10_000, 100);
      const [report] = await worker('survivor').runOnce();
      assert.equal(report?.outcome, 'SUCCESS', report?.message);
      const r = await record(id);
      assert.equal(r.sync.status, 'SUCCESS');
      assert.equal((await schedule.release(id, dead!.txn, { outcome: 'FAIL', message: 'late', bytes: 0, startedAt: 0 }, Date.now())).released, false, 'the dead worker cannot overwrite the outcome');
    });

    it('a long run renews its claim: no other worker takes the mirror while it runs', async () => {
      for (const tag of ['r0', 'r1', 'r2']) await pushRandomImage(dist.url, 'renew/app', tag, { basic, layerSizes: [256 * 1024] });
      const slow = up.inject({ method: 'GET', path: /^\/v2\/renew\/app\/blobs\//, fault: { kind: 'throttle', bytesPerSecond: 192 * 1024 } });
      const id = await mirror('mirrors/renew', 'renew/app');
      const schedule = new MirrorScheduleStore(t.db.db, t.db.dialect);
      const short = new MirrorWorker({ schedule, run: t.registry.mirrors, pollMs: 1000, concurrentRuns: 1, leaseMs: 600, holder: 'short-lease' });
      const runs = await short.poll();
      assert.equal(runs.length, 1, 'the short-lease worker has the mirror');
      const running = Promise.all(runs);
      let stolen = 0;
      let polls = 0;
      let finished = false;
      void running.finally(() => (finished = true));
      while (!finished) {
        stolen += (await worker('thief').runOnce()).length;
        polls++;
        await new Promise((r) => setTimeout(r, 100));
      }
      slow.remove();
      const [report] = await running;
      assert.equal(report?.outcome, 'SUCCESS', report?.message);
      assert.ok(report!.finishedAt - report!.startedAt > 1200, 'the run outlasted its lease twice over');
      assert.ok(polls > 5);
      assert.equal(stolen, 0);
      assert.equal((await record(id)).sync.status, 'SUCCESS');
    });

    it('a worker that stops mid-run hands its mirror on at once', async () => {
      for (const tag of ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7']) await pushRandomImage(dist.url, 'stop/app', tag, { basic, layerSizes: [256 * 1024] });
      const slow = up.inject({ method: 'GET', path: /^\/v2\/stop\/app\/blobs\//, fault: { kind: 'throttle', bytesPerSecond: 256 * 1024 } });
      const id = await mirror('mirrors/stop', 'stop/app');
      const stopping = worker('stopping');
      const runs = await stopping.poll();
      assert.equal(runs.length, 1);
      await waitFor('the first tag to be done', async () => ((await record(id)).sync.run?.tagsDone ?? 0) >= 1, 30_000);
      await stopping.stop();
      slow.remove();
      const [report] = await Promise.all(runs);
      assert.ok(report!.tags.changed.length < 8, 'stopped before the end');
      const r = await record(id);
      assert.equal(r.sync.status, 'SYNCING');
      assert.ok(r.sync.expiresAt! <= Date.now(), 'the claim ran out at once');
      const [next] = await worker('next').runOnce();
      assert.equal(next?.outcome, 'SUCCESS', next?.message);
      assert.equal([...(await liveTags('mirrors/stop')).keys()].length, 8);
    });

    it('proxy settings: the run goes through the HTTP proxy, unless no_proxy names the upstream', async () => {
      await pushRandomImage(dist.url, 'proxied/app', 'v1', { basic });
      const tunnels: string[] = [];
      const proxy = createServer();
      proxy.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
        tunnels.push(req.url ?? '');
        const [host, port] = (req.url ?? '').split(':') as [string, string];
        const upstream = connect(Number(port), host, () => {
          socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          upstream.write(head);
          upstream.pipe(socket);
          socket.pipe(upstream);
        });
        upstream.on('error', () => socket.destroy());
        socket.on('error', () => upstream.destroy());
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
      try {
        const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
        const id = await mirror('mirrors/proxied', 'proxied/app');
        await updateMirror(t.db, id, { proxy: JSON.stringify({ http_proxy: proxyUrl, https_proxy: proxyUrl }) });
        const [report] = await worker().runOnce();
        assert.equal(report?.outcome, 'SUCCESS', report?.message);
        assert.ok(tunnels.includes(up.host), `tunnels: ${tunnels.join(', ')}`);
        const through = tunnels.length;
        await updateMirror(t.db, id, { proxy: JSON.stringify({ http_proxy: proxyUrl, https_proxy: proxyUrl, no_proxy: 'example.com,127.0.0.1' }), sync_status: 'SYNC_NOW', sync_expires_at: null });
        const [direct] = await worker().runOnce();
        assert.equal(direct?.outcome, 'SUCCESS', direct?.message);
        assert.equal(tunnels.length, through, 'no_proxy: no tunnel');
      } finally {
        proxy.closeAllConnections();
        await new Promise((r) => proxy.close(r));
      }
    });

    it('upstream down mid-run: the tags done stay, the rest fail (PARTIAL); the next run fetches only what is missing', async () => {
      const tags = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'];
      const layers = new Map<string, string>();
      for (const tag of tags) layers.set(tag, (await pushRandomImage(dist.url, 'midrun/app', tag, { basic, layerSizes: [256 * 1024] })).layers[0]!.digest);
      const slow = up.inject({ method: 'GET', path: /^\/v2\/midrun\/app\/blobs\//, fault: { kind: 'throttle', bytesPerSecond: 256 * 1024 } });
      const id = await mirror('mirrors/midrun', 'midrun/app');
      const running = worker().runOnce();
      await waitFor('the first tag to be done', async () => ((await record(id)).sync.run?.tagsDone ?? 0) >= 1, 30_000);
      up.setUpstreamDown(true);
      const [report] = await running;
      up.setUpstreamDown(false);
      slow.remove();
      assert.equal(report?.outcome, 'PARTIAL', report?.message);
      assert.equal(report?.reason, 'connection_error', report?.message);
      const done = report!.tags.changed;
      assert.ok(done.length >= 1 && report!.tags.failed.length >= 1, report!.message);
      assert.deepEqual([...(await liveTags('mirrors/midrun')).keys()].sort(), [...done].sort(), 'failed tags are not created');
      up.clearRequests();
      await syncNow(id);
      const [again] = await worker().runOnce();
      assert.equal(again?.outcome, 'SUCCESS', again?.message);
      assert.deepEqual([...(await liveTags('mirrors/midrun')).keys()].sort(), tags);
      assert.deepEqual(again!.tags.unchanged.sort(), [...done].sort());
      for (const tag of done) assert.equal(up.count({ method: 'GET', path: `/v2/midrun/app/blobs/${layers.get(tag)}` }), 0, `${tag} is not fetched again`);
    });

    it('upstream down: FAIL with a connection error and no local tag deleted; retried on the next poll, then on the grid', async () => {
      await pushRandomImage(dist.url, 'down/app', 'v1', { basic });
      const id = await mirror('mirrors/down', 'down/app');
      const [ok] = await worker().runOnce();
      assert.equal(ok?.outcome, 'SUCCESS');
      await updateMirror(t.db, id, { sync_start_at: Date.now() - 10, sync_status: 'SUCCESS' });
      const start = (await record(id)).sync.startAt;
      up.setUpstreamDown(true);
      try {
        for (const retries of [2, 1]) {
          const [report] = await worker().runOnce();
          assert.equal(report?.outcome, 'FAIL');
          assert.equal(report?.reason, 'connection_error', report?.message);
          const r = await record(id);
          assert.deepEqual([r.sync.retriesRemaining, r.sync.startAt], [retries, start], 'the same start: retried on the next poll');
        }
        const [last] = await worker().runOnce();
        assert.equal(last?.outcome, 'FAIL');
        const r = await record(id);
        assert.equal(r.sync.retriesRemaining, 3);
        assert.ok(r.sync.startAt! > Date.now(), 'after the last retry the next start is on the grid');
      } finally {
        up.setUpstreamDown(false);
      }
      assert.deepEqual([...(await liveTags('mirrors/down')).keys()], ['v1']);
    });
  });
}
