/**
 * Proxy-cache fills across processes, with real processes only: two `wharf serve` on one PostgreSQL
 * database and one S3 prefix (the test run's RADOS Gateway), a proxy-cache organization whose upstream
 * is Debian's docker-registry (CNCF Distribution) behind the fault proxy, which counts what reaches the
 * upstream and paces the big layer so that every request arrives while its one fill runs.
 *
 *   clients ─┬─► wharf A ─┐             ┌──► fault proxy (counts, paces) ──► Distribution
 *            └─► wharf B ─┴─ PostgreSQL ┤
 *                 ▲   │      + S3       │
 *                 └───┴─ /internal/fills/<digest> (the follower streams the owner's fill)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { createPostgresDatabase } from '../helpers/databases.js';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import { rethrowFailures, waitFor } from '../helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { buildImage, largeLayer, MiB, type BuiltImage } from '../helpers/oci-layout.js';
import { openTestS3Driver, testS3Options } from '../helpers/s3.js';
import { dockerRef, ociRef, skopeoCopy } from '../helpers/skopeo.js';
import { ADMIN, basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';
import type { S3BlobDriver } from '../../src/storage/s3/s3-blob-driver.js';
import { blobKeyDigest } from '../../src/storage/keys.js';

const ORG = 'hub';
/** The upstream pace of the big layers: a 64 MiB fill takes several seconds, so every client meets it in flight. */
const PACE = 8 * MiB;

/** One client's GET of a blob: its bytes' digest and length, and what the upstream was doing at its first byte. */
interface Pull {
  status: number;
  digest: string;
  bytes: number;
  /** When the first body byte arrived: had the upstream transfer of the layer finished? */
  upstreamDoneAtFirstByte: boolean | undefined;
  /** The client's error, when the response broke. */
  error?: string;
}

describe('proxy-cache fills across two processes on PostgreSQL and S3', () => {
  let work: string;
  let dist: DistributionProcess | undefined;
  let up: FaultProxy | undefined;
  let a: WharfProcess | undefined;
  let b: WharfProcess | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let s3: { driver: S3BlobDriver; prefix: string; cleanup(): Promise<void> } | undefined;
  const img = {} as Record<'single' | 'kill', BuiltImage>;

  const layerPath = (image: BuiltImage) => `/v2/library/${image.tag}/blobs/${image.layers[0]!.digest}`;
  const upstreamGets = (image: BuiltImage) => up!.count({ method: 'GET', path: layerPath(image) });
  const upstreamDone = (image: BuiltImage) => up!.requestsMatching({ method: 'GET', path: layerPath(image) }).every((r) => r.done);

  /** GET of the big layer through `w`, hashed as it arrives; `onBytes` sees the running count. */
  const pull = (w: WharfProcess, image: BuiltImage, onBytes?: (n: number) => void): Promise<Pull> =>
    new Promise((resolve) => {
      const hash = createHash('sha256');
      let bytes = 0;
      let upstreamDoneAtFirstByte: boolean | undefined;
      const req = httpRequest(`${w.url}/v2/${ORG}/library/${image.tag}/blobs/${image.layers[0]!.digest}`, { headers: { authorization: basicAuth(ADMIN) }, agent: false }, (res) => {
        res.on('data', (chunk: Buffer) => {
          if (bytes === 0) upstreamDoneAtFirstByte = upstreamDone(image);
          bytes += chunk.byteLength;
          hash.update(chunk);
          onBytes?.(bytes);
        });
        res.on('end', () => resolve({ status: res.statusCode!, digest: `sha256:${hash.digest('hex')}`, bytes, upstreamDoneAtFirstByte }));
        res.on('error', (err) => resolve({ status: res.statusCode!, digest: '', bytes, upstreamDoneAtFirstByte, error: err.message }));
        res.on('aborted', () => resolve({ status: res.statusCode!, digest: '', bytes, upstreamDoneAtFirstByte, error: 'aborted' }));
      });
      req.on('error', (err) => resolve({ status: 0, digest: '', bytes, upstreamDoneAtFirstByte, error: err.message }));
      req.end();
    });

  const metric = async (w: WharfProcess, name: string): Promise<number> => {
    const text = await (await fetch(`${w.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.slice(name.length + 1)) : 0;
  };

  /** Requests `w` answered on its internal fill endpoint with `method`, any status. */
  const internalFillRequests = async (w: WharfProcess, method: 'GET' | 'HEAD'): Promise<number> => {
    const text = await (await fetch(`${w.url}/metrics`)).text();
    const lines = text.split('\n').filter((l) => l.startsWith('wharf_http_requests_total{') && l.includes(`method="${method}"`) && l.includes('route="internal_fill"'));
    return lines.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  };

  const leaseRows = async (digest: string): Promise<number> => {
    const client = new pg.Client({ connectionString: db!.url });
    await client.connect();
    try {
      return (await client.query('select count(*)::int as n from blob_fills where digest = $1', [digest])).rows[0].n as number;
    } finally {
      await client.end();
    }
  };

  /** Every blob key under the prefix holds exactly the bytes its digest names: nothing partial is visible. */
  const assertOnlyVerifiedBlobs = async () => {
    for await (const key of s3!.driver.list('blobs/')) {
      const digest = blobKeyDigest(key);
      assert.ok(digest, `unexpected key ${key}`);
      const hash = createHash('sha256');
      for await (const chunk of await s3!.driver.reader(key)) hash.update(chunk);
      assert.equal(`sha256:${hash.digest('hex')}`, digest, `${key} holds other bytes than its digest`);
    }
  };

  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        for (const [n, w] of [['A', a], ['B', b]] as const) if (w) t.diagnostic(`wharf ${n} output (tail):\n${w.output().slice(-3000)}`);
        throw err;
      }
    });
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-scale-out-'));
    const src = join(work, 'src');
    img.single = await buildImage(src, { tag: 'single', seed: 'scale-out-single', layers: [largeLayer(64 * MiB)] });
    img.kill = await buildImage(src, { tag: 'kill', seed: 'scale-out-kill', layers: [largeLayer(64 * MiB)] });
    [dist, db, s3] = await Promise.all([startDistribution(), createPostgresDatabase(), openTestS3Driver()]);
    for (const tag of ['single', 'kill']) await skopeoCopy(ociRef(src, tag), dockerRef(dist.host, `library/${tag}`, '1'), { preserveDigests: true, creds: null });
    up = await startFaultProxy(dist.url);
    const o = testS3Options();
    const env = {
      WHARF_DB_URL: db.url,
      WHARF_STORAGE_DRIVER: 's3',
      WHARF_STORAGE_S3_ENDPOINT: o.endpoint!,
      WHARF_STORAGE_S3_BUCKET: o.bucket,
      WHARF_STORAGE_S3_REGION: o.region!,
      WHARF_STORAGE_S3_ACCESS_KEY_ID: o.accessKeyId!,
      WHARF_STORAGE_S3_SECRET_ACCESS_KEY: o.secretAccessKey!,
      WHARF_STORAGE_S3_PREFIX: s3.prefix,
      WHARF_STORAGE_S3_PART_SIZE: '5 MiB',
      WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1',
      WHARF_CLUSTER_FILL_LEASE: '3s',
    };
    // One after the other: the first migrates the new database.
    a = await startWharf({ env, organizations: [ORG] });
    b = await startWharf({ env, organizations: [] });
    const res = await fetch(`${a.url}/api/v1/organization/${ORG}/proxycache`, {
      method: 'POST',
      headers: { authorization: basicAuth(ADMIN), 'content-type': 'application/json' },
      body: JSON.stringify({ upstream_registry: up.host, insecure: true }),
    });
    assert.equal(res.status, 201, await res.text());
  });

  after(async () => {
    const stopped = await Promise.allSettled([a?.stop(), b?.stop(), up?.stop()]);
    const rest = await Promise.allSettled([dist?.stop(), s3?.cleanup(), db?.drop()]);
    if (work) await rm(work, { recursive: true, force: true });
    rethrowFailures([...stopped, ...rest]);
  });

  test('8 concurrent misses spread over both processes: one upstream GET, every client gets its first byte during the fill and the right bytes', async () => {
    const layer = img.single.layers[0]!;
    const pace = up!.inject({ method: 'GET', path: layerPath(img.single), fault: { kind: 'throttle', bytesPerSecond: PACE } });
    up!.clearRequests();
    let leaseSeenDuringFill = false;
    const pulls = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        pull(i % 2 === 0 ? a! : b!, img.single, (n) => {
          if (n >= MiB && !leaseSeenDuringFill) void leaseRows(layer.digest).then((rows) => (leaseSeenDuringFill ||= rows === 1));
        }),
      ),
    ).finally(() => pace.remove());
    for (const [i, p] of pulls.entries()) {
      assert.equal(p.error, undefined, `client ${i}: ${p.error}`);
      assert.equal(p.status, 200, `client ${i}`);
      assert.equal(p.bytes, layer.size, `client ${i}`);
      assert.equal(p.digest, layer.digest, `client ${i}`);
      assert.equal(p.upstreamDoneAtFirstByte, false, `client ${i} got its first byte only after the upstream transfer ended`);
    }
    assert.equal(upstreamGets(img.single), 1);
    assert.ok(leaseSeenDuringFill, 'the lease row named the filling process while clients received bytes');
    // One process filled, the other followed it.
    const followed = [await metric(a!, 'wharf_proxy_fills_followed_total'), await metric(b!, 'wharf_proxy_fills_followed_total')];
    assert.deepEqual(followed.sort(), [0, 1]);
    // The follower's (up to) 4 clients cost the owner one GET each, the first sent as the follower joined: no HEAD first.
    const peerGets = async () => (await internalFillRequests(a!, 'GET')) + (await internalFillRequests(b!, 'GET'));
    await waitFor('the owner to count the GETs it answered', async () => (await peerGets()) >= 1);
    assert.ok((await peerGets()) <= 4, `${await peerGets()} GETs for 4 following clients`);
    assert.deepEqual([await internalFillRequests(a!, 'HEAD'), await internalFillRequests(b!, 'HEAD')], [0, 0], 'the follower sent no HEAD');
    await waitFor('the lease to be released', async () => (await leaseRows(layer.digest)) === 0);
    // Both repositories hold the blob now: later pulls on either process come from storage.
    for (const w of [a!, b!]) {
      const again = await pull(w, img.single);
      assert.equal(again.digest, layer.digest);
    }
    assert.equal(upstreamGets(img.single), 1);
    await assertOnlyVerifiedBlobs();
  });

  test('the internal endpoint answers only the secret the processes share through the database', async () => {
    const layer = img.single.layers[0]!;
    const client = new pg.Client({ connectionString: db!.url });
    await client.connect();
    const secret = (await client.query("select value from server_settings where name = 'cluster.peer_secret'").finally(() => client.end())).rows[0]?.value as string;
    assert.ok(secret && secret.length >= 32, 'a generated secret is stored');
    const get = (w: WharfProcess, digest: string, headers: Record<string, string> = {}) => fetch(`${w.url}/internal/fills/${digest}`, { headers });
    for (const w of [a!, b!]) {
      assert.equal((await get(w, layer.digest)).status, 401);
      assert.equal((await get(w, layer.digest, { 'x-wharf-peer-secret': `${secret}x` })).status, 401);
      assert.equal((await get(w, layer.digest, { authorization: basicAuth(ADMIN) })).status, 401, "a user's credentials are no secret of the processes");
      const ok = await get(w, layer.digest, { 'x-wharf-peer-secret': secret });
      assert.equal(ok.status, 200);
      assert.equal(`sha256:${createHash('sha256').update(new Uint8Array(await ok.arrayBuffer())).digest('hex')}`, layer.digest);
      const rest = await get(w, layer.digest, { 'x-wharf-peer-secret': secret, range: `bytes=${layer.size - 10}-` });
      assert.equal(rest.status, 206);
      assert.equal((await rest.arrayBuffer()).byteLength, 10);
      const head = await fetch(`${w.url}/internal/fills/${layer.digest}`, { method: 'HEAD', headers: { 'x-wharf-peer-secret': secret } });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(layer.size));
      assert.equal((await get(w, `sha256:${'0'.repeat(64)}`, { 'x-wharf-peer-secret': secret })).status, 404);
      assert.equal((await get(w, 'sha256:nothex', { 'x-wharf-peer-secret': secret })).status, 400);
    }
  });

  test('the owner is killed mid-fill: the other process takes the fill over, its clients get every byte once, and a later pull works', async () => {
    const layer = img.kill.layers[0]!;
    const pace = up!.inject({ method: 'GET', path: layerPath(img.kill), fault: { kind: 'throttle', bytesPerSecond: PACE } });
    up!.clearRequests();
    const followedBefore = await metric(b!, 'wharf_proxy_fills_followed_total');
    const takenOverBefore = await metric(b!, 'wharf_proxy_fills_taken_over_total');
    try {
      // A owns the fill: its clients start it.
      const onA = Array.from({ length: 2 }, () => pull(a!, img.kill));
      await waitFor('A to be filling', () => up!.requestsMatching({ method: 'GET', path: layerPath(img.kill) }).some((r) => r.bytesSent >= 4 * MiB), 30_000);
      // B's clients follow A's fill: each has bytes before A dies.
      const received = [0, 0, 0, 0];
      const onB = received.map((_, i) => pull(b!, img.kill, (n) => (received[i] = n)));
      await waitFor('every client of B to have bytes from A', () => received.every((n) => n >= MiB), 30_000);
      assert.ok(!upstreamDone(img.kill), 'the fill was still running');
      assert.equal((await metric(b!, 'wharf_proxy_fills_followed_total')) - followedBefore, 1, "B follows A's fill");
      await a!.kill();
      const [fromA, fromB] = [await Promise.all(onA), await Promise.all(onB)];
      for (const p of fromA) assert.ok(p.error !== undefined || p.bytes < layer.size, 'A died before it sent the whole blob');
      for (const [i, p] of fromB.entries()) {
        assert.equal(p.error, undefined, `B's client ${i}: ${p.error}`);
        assert.equal(p.bytes, layer.size, `B's client ${i}`);
        assert.equal(p.digest, layer.digest, `B's client ${i}`);
      }
    } finally {
      pace.remove();
    }
    assert.equal((await metric(b!, 'wharf_proxy_fills_taken_over_total')) - takenOverBefore, 1);
    assert.equal(upstreamGets(img.kill), 2, "A's fill and B's");
    await waitFor('the lease to be released', async () => (await leaseRows(layer.digest)) === 0);
    await assertOnlyVerifiedBlobs();
    // A later pull through the survivor: the whole image, the layer from storage.
    const copy = await skopeoCopy(dockerRef(b!.host, `${ORG}/library/kill`, '1'), ociRef(join(work, 'out-kill'), 'pulled'), { creds: ADMIN, preserveDigests: true, timeoutMs: 120_000 });
    assert.equal(copy.digest, img.kill.manifestDigest);
    assert.equal(upstreamGets(img.kill), 2);
  });
});
