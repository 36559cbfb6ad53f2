/**
 * Geo-replication with two `wharf serve` processes on one PostgreSQL database, as two regions would run
 * it: the same two locations for both (a filesystem directory `fs`, and a prefix of the test run's RADOS
 * Gateway bucket `s3`), process A preferring [fs, s3] and process B [s3, fs]
 * (WHARF_STORAGE_PREFERENCE), replication on in both with every location a target. Each process reaches
 * RGW through its own fault proxy (test/helpers/fault-proxy.ts), which records what each process reads
 * and writes there and lets the test hold copies back, cut the bucket off, or slow a copy down. The test
 * talks to each process directly.
 *
 * 1. A push to A lands in `fs`; B pulls it at once, before any copy exists (both proxies answer every
 *    write with a 503 until then, so neither worker can copy): the bytes come from `fs` (B asked `s3`
 *    first and found nothing). Once the copies ran, B pulls again and every blob's bytes pass through
 *    B's proxy in full: B now reads from its preferred location. A still reads from `fs`.
 * 2. `s3` down for both processes (both proxies reset every connection): both pull from `fs` and accept
 *    pushes; the copies to `s3` queue up with their failures. `s3` back: the backlog drains and both
 *    locations hold the bytes (read from each location directly).
 * 3. SIGKILL of the process copying a 64 MiB layer to `s3` in the middle of the copy (its PUT held at
 *    the proxies): the other process takes the job over at once, while the dead one's lease is still
 *    current (its liveness lock is gone), the copy completes, the bucket holds one object per blob and
 *    nothing else, no multipart upload is left, and the job is gone with its placement recorded.
 * 4. Deleting the images: garbage collection removes their bytes from both locations.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { LOCATION_MARKER_KEY } from '../../src/storage/keys.js';
import { createPostgresDatabase, pgRows as rows } from '../helpers/databases.js';
import { rethrowFailures, waitFor } from '../helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy.js';
import { blobsOf, keyOf, openGeoLocations, replicationStatus, type GeoLocations, type LocationView } from '../helpers/geo-e2e.js';
import { buildImage, expectedDigestTree, largeLayer, layoutDigestTree, MiB, verifyLayoutBlobs, type BuiltImage } from '../helpers/oci-layout.js';
import { freePort } from '../helpers/ports.js';
import { openMultipartUploads, testS3Options } from '../helpers/s3.js';
import { dockerRef, ociRef, registerCredentials, skopeoCopy } from '../helpers/skopeo.js';
import { adminFetch, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const LEASE_S = 3;
/** Longer than the slowed copy takes, so the sweep never aborts a copy still running. */
const UPLOAD_TIMEOUT_S = 20;
const PREFERENCES = ['fs,s3', 's3,fs'] as const;
const NAMES = ['A', 'B'] as const;
type ImageName = 'one' | 'two' | 'three' | 'big';
const repoOf = (name: ImageName) => `e2e/geo-cluster/${name}`;

describe('two processes with opposite preferences on one PostgreSQL: fallback, outage, takeover, GC', () => {
  let work: string;
  let geo: GeoLocations;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>> | undefined;
  const proxies: FaultProxy[] = [];
  const processes: WharfProcess[] = [];
  let ports: number[];
  const images = {} as Record<ImageName, BuiltImage>;

  const env = (i: number): Record<string, string> => ({
    WHARF_DB_URL: database!.url,
    WHARF_LOG_LEVEL: 'info',
    WHARF_STORAGE_LOCATIONS: geo.locationsEnv({ s3Endpoint: proxies[i]!.url, partSize: '5 MiB' }),
    WHARF_STORAGE_PREFERENCE: PREFERENCES[i]!,
    WHARF_REPLICATION_POLL_INTERVAL: '200ms',
    WHARF_REPLICATION_LEASE: `${LEASE_S}s`,
    WHARF_REPLICATION_RETRY_BASE: '200ms',
    WHARF_REPLICATION_RETRY_MAX: '1s',
    WHARF_REGISTRY_UPLOAD_TIMEOUT: `${UPLOAD_TIMEOUT_S}s`,
    WHARF_GC_INTERVAL: '1s',
    // Long enough that a blob pushed before its manifest is not collected meanwhile.
    WHARF_GC_GRACE_PERIOD: '10s',
    WHARF_GC_TIME_MACHINE_DEFAULT: '0s',
  });
  const start = async (i: number, organizations?: readonly string[]) => {
    processes[i] = await startWharf({ port: ports[i], env: env(i), organizations });
    registerCredentials(processes[i].host, processes[i].admin);
    return processes[i];
  };
  const P = (i: number) => processes[i]!;

  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      // A process an earlier test killed is started again first (a new process, same port and settings).
      for (const [i, p] of processes.entries()) {
        if (alive(p)) continue;
        await p.stop();
        await start(i, []);
      }
      try {
        await fn(t);
      } catch (err) {
        for (const [i, p] of processes.entries()) t.diagnostic(`process ${NAMES[i]} output (tail):\n${p.output().slice(-4000)}`);
        throw err;
      }
    });
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-geo-cluster-'));
    const build = (name: ImageName, layers: Parameters<typeof buildImage>[1]['layers']) => buildImage(join(work, name), { tag: 'v1', seed: `geo-cluster-${name}`, layers });
    for (const name of ['one', 'two', 'three'] as const) images[name] = await build(name, [largeLayer(2 * MiB), { files: [{ path: `etc/${name}`, content: `${name}\n` }] }]);
    images.big = await build('big', [largeLayer(64 * MiB), { files: [{ path: 'etc/big', content: 'big\n' }] }]);
    geo = await openGeoLocations(work);
    database = await createPostgresDatabase();
    const endpoint = testS3Options().endpoint!;
    proxies.push(await startFaultProxy(endpoint), await startFaultProxy(endpoint));
    ports = [await freePort(), await freePort()];
    // A migrates the database and creates the organizations; B only serves.
    await start(0);
    await start(1, []);
  });

  after(async () => {
    const stopped = await Promise.allSettled([...processes.map((p) => p.stop()), ...proxies.map((p) => p.stop())]);
    const cleaned = await Promise.allSettled([database?.drop(), geo?.cleanup()]);
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures([...stopped, ...cleaned]);
  });

  const push = async (i: number, name: ImageName) => {
    const pushed = await skopeoCopy(ociRef(join(work, name), 'v1'), dockerRef(P(i).host, repoOf(name), 'v1'), { preserveDigests: true });
    assert.equal(pushed.digest, images[name].manifestDigest);
  };
  let pulls = 0;
  const pull = async (i: number, name: ImageName) => {
    const out = join(work, `pulled-${pulls++}`);
    const pulled = await skopeoCopy(dockerRef(P(i).host, repoOf(name), 'v1'), ociRef(out, 'pulled'), { preserveDigests: true });
    assert.equal(pulled.digest, images[name].manifestDigest);
    assert.deepEqual(await layoutDigestTree(out, 'pulled'), expectedDigestTree(images[name]));
    await verifyLayoutBlobs(out);
    await rm(out, { recursive: true, force: true });
  };
  const sizeOf = (image: BuiltImage, digest: string) => (digest === image.configDigest ? image.configSize : image.layers.find((l) => l.digest === digest)!.size);
  /** Requests through proxy `i` about the blob key of `digest`. */
  const aboutBlob = (i: number, digest: string) => proxies[i]!.requests.filter((r) => r.path.endsWith(`/${keyOf(digest)}`));
  const isRead = (r: ProxiedRequest) => r.method === 'GET' && r.status !== undefined && r.status >= 200 && r.status < 300;
  const isWrite = (r: ProxiedRequest) => r.method === 'PUT' || r.method === 'POST';
  const alive = (p: WharfProcess) => p.child.exitCode === null && p.child.signalCode === null;
  /** The status API, asked of a live process (they share the database). */
  const status = (scope?: string) => replicationStatus(processes.find(alive)!.url, scope);
  const everywhere = (s: LocationView[], blobs: number) => s.length === 2 && s.every((l) => l.blobs === blobs && l.backlog === 0);

  test('a push to A is pulled from B at once, from fs; once replicated, B reads it from s3, its preferred location', async () => {
    const image = images.one;
    const blobs = blobsOf(image);
    // Until the copies are let through, every write to the bucket is refused, whichever process tries.
    const held = proxies.map((p) => p.inject({ match: isWrite, fault: { kind: 'status', status: 503, code: 'UNAVAILABLE', message: 'copies held back by the test' } }));
    try {
      await push(0, 'one');
      assert.deepEqual(await geo.held('fs', blobs), [true, true, true]);
      for (const p of proxies) p.clearRequests();
      await pull(1, 'one');
      assert.deepEqual(await geo.held('s3', blobs), [false, false, false], 'no copy existed during the pull: its bytes came from fs');
      for (const d of blobs) {
        const asked = aboutBlob(1, d);
        // Only a pull GETs a blob from s3 here (the copies read from fs, and look at s3 with HEADs).
        assert.ok(asked.some((r) => r.method === 'GET' && r.status === 404), `B looked for ${d} in s3 first (${asked.map((r) => `${r.method} ${r.status}`).join(', ')})`);
        assert.equal(asked.filter(isRead).length, 0);
      }
      assert.ok(held.some((h) => h.hits > 0), 'a worker tried to copy meanwhile');
    } finally {
      for (const h of held) h.remove();
    }

    await waitFor('the status API to show both locations holding every blob, nothing queued', async () => everywhere(await status(repoOf('one')), blobs.length), 30_000, 200);
    assert.deepEqual(await geo.held('s3', blobs), [true, true, true]);
    for (const p of proxies) p.clearRequests();
    await pull(1, 'one');
    for (const d of blobs) {
      const served = aboutBlob(1, d).filter(isRead).reduce((n, r) => n + r.bytesSent, 0);
      assert.equal(served, sizeOf(image, d), `B read every byte of ${d} from s3`);
    }
    await pull(0, 'one');
    for (const d of blobs) assert.equal(aboutBlob(0, d).filter(isRead).length, 0, `A read ${d} from fs, not from s3`);
  });

  test('with s3 down for both: pulls are served from fs and pushes accepted by both, copies queue up; s3 back: the backlog drains', async () => {
    for (const p of proxies) p.setUpstreamDown(true);
    try {
      await pull(0, 'one');
      await pull(1, 'one');
      await push(0, 'two');
      await push(1, 'three');
      for (const name of ['two', 'three'] as const) {
        assert.deepEqual(await geo.held('fs', blobsOf(images[name])), [true, true, true], `${name} landed in fs`);
        assert.deepEqual(await geo.held('s3', blobsOf(images[name])), [false, false, false]);
      }
      // Each process serves what the other one received.
      await pull(1, 'two');
      await pull(0, 'three');

      const queued = 2 * 3;
      await waitFor(
        'the copies to s3 queued, each having failed',
        async () => {
          const s3 = (await status('e2e')).find((l) => l.location === 's3')!;
          return s3.backlog === queued && s3.failing === queued;
        },
        30_000,
        200,
      );
      const view = await status('e2e');
      const [fs, s3] = ['fs', 's3'].map((name) => view.find((l) => l.location === name));
      assert.deepEqual([fs!.location, fs!.blobs, fs!.backlog, fs!.failing], ['fs', 9, 0, 0]);
      assert.deepEqual([s3!.location, s3!.blobs, s3!.backlog], ['s3', 3, queued]);
      assert.match(s3!.last_error ?? '', /s3|S3/);
      assert.ok(proxies.every((p) => p.refusedConnections > 0), 'both processes tried s3');
    } finally {
      for (const p of proxies) p.setUpstreamDown(false);
    }

    await waitFor('the backlog to drain', async () => everywhere(await status(), 9), 60_000, 200);
    for (const name of ['one', 'two', 'three'] as const) {
      for (const d of blobsOf(images[name])) {
        for (const location of ['fs', 's3'] as const) {
          const bytes = await geo.bytesOf(location, d);
          assert.ok(bytes, `${location} holds ${d}`);
          assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, d, `${location}'s copy of ${d}`);
        }
      }
    }
  });

  test('SIGKILL of the process copying a 64 MiB layer mid-copy: the other takes the job over at once, one visible object, nothing left over', async () => {
    const layer = images.big.layers[0]!.digest;
    // The copy is one PutObject of the layer's key (its size is known), or its parts.
    const isLayerWrite = (r: ProxiedRequest) => r.method === 'PUT' && r.path.endsWith(`/${keyOf(layer)}`);
    // The write is held at the proxy before it reaches RGW: the copy takes seconds, the kill lands in it.
    const slow = proxies.map((p) => p.inject({ match: isLayerWrite, fault: { kind: 'stall', ms: 3000 } }));
    try {
      for (const p of proxies) p.clearRequests();
      await push(0, 'big');
      assert.deepEqual(await geo.held('fs', blobsOf(images.big)), [true, true, true]);
      let victim = -1;
      await waitFor(
        'the layer copy to reach a proxy',
        () => {
          victim = proxies.findIndex((p) => p.requests.some(isLayerWrite));
          return victim >= 0;
        },
        60_000,
        20,
      );
      const survivor = 1 - victim;
      const [job] = await rows(database!.url, `select lease_owner, lease_expires_at, attempts from replication_jobs where digest = '${layer}' and location = 's3'`);
      assert.ok(job, 'the copy is a queued job');
      assert.equal(String(job.lease_owner).split(':')[1], String(P(victim).child.pid), `process ${NAMES[victim]} holds the job`);
      assert.equal(Number(job.attempts), 0);
      await P(victim).kill();
      assert.equal(await geo.driver('s3').stat(keyOf(layer)), undefined, 'nothing of the killed copy is visible');

      let takenOver: Record<string, unknown> | undefined;
      await waitFor(
        `process ${NAMES[survivor]} to take the job over`,
        async () => {
          const [r] = await rows(database!.url, `select lease_owner, attempts, last_error from replication_jobs where digest = '${layer}' and location = 's3'`);
          if (r && String(r.lease_owner).split(':')[1] === String(P(survivor).child.pid)) takenOver = r;
          return takenOver !== undefined;
        },
        (LEASE_S + 30) * 1000,
        50,
      );
      // Taken over because the dead process's liveness lock went with it, not because its lease ran out
      // (that would read "the lease of … expired"); the interrupted copy counts as an attempt.
      assert.equal(Number(takenOver!.attempts), 1);
      assert.match(String(takenOver!.last_error), new RegExp(`the process of .*:${P(victim).child.pid}:.* died before its copy finished`));
      await waitFor('the copy to complete', async () => (await rows(database!.url, `select id from replication_jobs where digest = '${layer}'`)).length === 0, 60_000, 200);
      const placed = await rows(database!.url, `select location from blob_placements where digest = '${layer}' order by location`);
      assert.deepEqual(
        placed.map((r) => r.location),
        ['fs', 's3'],
      );

      // One object per blob in the bucket: the layer once, under its key, with the right bytes.
      const keys: string[] = [];
      for await (const k of geo.driver('s3').list('')) keys.push(k);
      const expected = (['one', 'two', 'three', 'big'] as const).flatMap((n) => blobsOf(images[n])).map(keyOf);
      assert.deepEqual(keys.filter((k) => k !== LOCATION_MARKER_KEY).sort(), [...new Set(expected)].sort());
      const bytes = (await geo.bytesOf('s3', layer))!;
      assert.equal(bytes.byteLength, images.big.layers[0]!.size);
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer);
      await waitFor('the status to show the big image in both locations', async () => everywhere(await status(repoOf('big')), 3), 30_000, 200);
      assert.equal(await openMultipartUploads(geo.prefix), 0, 'no multipart upload left');
      assert.deepEqual(await readdir(join(geo.fsDir, '.tmp')).catch(() => []), [], 'no staged file left in fs');
    } finally {
      for (const h of slow) h.remove();
    }
  });

  test('garbage collection after the images are deleted removes their bytes from both locations', async () => {
    const names = ['one', 'two', 'three', 'big'] as const;
    for (const [k, name] of names.entries()) {
      const del = await adminFetch(`${P(k % 2).url}/v2/${repoOf(name)}/manifests/${images[name].manifestDigest}`, { method: 'DELETE' });
      assert.equal(del.status, 202, await del.text());
    }
    const blobs = names.flatMap((n) => blobsOf(images[n]));
    await waitFor(
      "every image's bytes gone from both locations",
      async () => (await geo.held('fs', blobs)).every((h) => !h) && (await geo.held('s3', blobs)).every((h) => !h),
      60_000,
      250,
    );
    assert.deepEqual(
      (await status()).map((l) => [l.location, l.blobs, l.backlog]).sort(),
      [
        ['fs', 0, 0],
        ['s3', 0, 0],
      ],
    );
    const left: string[] = [];
    for await (const k of geo.driver('s3').list('')) left.push(k);
    assert.deepEqual(left, [LOCATION_MARKER_KEY], "only the location's identity marker is left");
  });
});

