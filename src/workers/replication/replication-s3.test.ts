/**
 * Replication over S3 locations on the shared RADOS Gateway (key prefixes of one bucket) and a
 * filesystem location, on both databases: between two S3 locations of one endpoint the worker copies
 * inside the store (no byte read through the source driver, `method="server_side"` in the metric);
 * from S3 to the filesystem and from the filesystem to S3 it streams (and a second S3 location then copies
 * from the first inside the store); a job prefers a holder the target can copy from inside the store
 * to a more preferred one it would stream from (no byte read from the filesystem), and streams when that
 * holder lacks the bytes; when the store answers a copy with
 * 501 (a fault proxy in front of it) the job falls back to streaming and still copies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import { startFaultProxy, type FaultProxy } from '../../../test/helpers/fault-proxy.js';
import { openTestS3Driver, testS3Options } from '../../../test/helpers/s3.js';
import { TestLocations } from '../../../test/helpers/storage-locations.js';
import { BlobGuardStore } from '../../db/blob-guard-store.js';
import { BlobPlacementStore } from '../../db/blob-placement-store.js';
import { BlobStore } from '../../db/blob-store.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { ReplicationJobStore } from '../../db/replication-job-store.js';
import { ReplicationTargetStore } from '../../db/replication-target-store.js';
import { RepositoryStore } from '../../db/repository-store.js';
import { Metrics } from '../../observability/metrics.js';
import { ReplicationService } from '../../registry/replication/replication-service.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { FsBlobDriver } from '../../storage/fs/fs-blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import { ReplicationWorker } from './replication-worker.js';

/** `driver` with every byte read through it counted (a stream or positional reads). */
function counted(driver: BlobDriver): { driver: BlobDriver; read: () => number } {
  let bytes = 0;
  const wrapped: BlobDriver = Object.create(driver, {
    reader: {
      value: async (key: string, range?: { offset: number; length?: number }) => {
        const r = await driver.reader(key, range);
        const count = new Transform({
          transform(chunk: Buffer, _enc, done) {
            bytes += chunk.byteLength;
            done(null, chunk);
          },
        });
        r.once('error', (err) => count.destroy(err));
        return r.pipe(count);
      },
    },
    openPositional: {
      value: async (key: string, range?: { offset: number; length: number }) => {
        const p = await driver.openPositional!(key, range);
        return { ...p, size: p.size, read: async (b: Uint8Array, at: number, n: number) => { const got = await p.read(b, at, n); bytes += got; return got; } };
      },
    },
  });
  return { driver: wrapped, read: () => bytes };
}

async function readAll(driver: BlobDriver, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await driver.reader(key)) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

for (const dialect of DIALECTS) {
  describe(`replication between S3 locations (${dialect})`, () => {
    let h: DatabaseHandle;
    let dir: string;
    const cleanups: Array<() => Promise<void>> = [];
    let proxy: FaultProxy;
    let repos: RepositoryStore;
    let blobs: BlobStore;
    let jobs: ReplicationJobStore;
    const s3 = async (endpoint?: string) => {
      const d = await openTestS3Driver(endpoint ? { endpoint } : {});
      cleanups.push(d.cleanup);
      return d.driver;
    };
    const setUp = (locations: TestLocations, metrics: Metrics, concurrency = 2) => {
      const service = new ReplicationService(
        locations,
        { jobs, placements: new BlobPlacementStore(h.db), targets: new ReplicationTargetStore(h.db), blobs, guards: new BlobGuardStore(h.db, h.dialect) },
        { targets: [], leaseMs: 30_000, backoff: { baseMs: 10_000, maxMs: 80_000 }, orphanMs: 3_600_000 },
      );
      return { service, worker: new ReplicationWorker({ service, concurrency, pollMs: 1000, metrics }) };
    };
    /** A blob pushed into acme/app whose bytes were committed in `location`, replication queued. */
    const push = async (locations: TestLocations, service: ReplicationService, location: string, size: number) => {
      const bytes = randomBytes(size);
      const digest = await locations.commit(location, bytes);
      await blobs.link((await repos.ensure('acme', 'app')).id, digest, size);
      await service.onCommitted(digest, location);
      return { digest, bytes };
    };

    before(async () => {
      h = await openTestDatabase(dialect);
      repos = new RepositoryStore(h.db, h.dialect);
      blobs = new BlobStore(h.db);
      jobs = new ReplicationJobStore(h.db, h.dialect);
      dir = await mkdtemp(join(tmpdir(), 'wharf-replication-s3-'));
      proxy = await startFaultProxy(testS3Options().endpoint!);
    });
    after(async () => {
      for (const c of cleanups) await c();
      await proxy.stop();
      await rm(dir, { recursive: true, force: true });
      await h.close();
    });

    it('copies inside the store between S3 locations of one endpoint, and streams to and from a filesystem', async () => {
      const a = counted(await s3());
      const fs = counted(new FsBlobDriver(join(dir, 'fs')));
      const b = await s3();
      const locations = new TestLocations([
        { name: 's3a', driver: a.driver },
        { name: 's3b', driver: b },
        { name: 'fs', driver: fs.driver },
      ]);
      const metrics = new Metrics({ defaultMetrics: false });
      const { service, worker } = setUp(locations, metrics);

      const first = await push(locations, service, 's3a', 6 * 1024 * 1024 + 5);
      const results = await worker.runOnce();
      const how = Object.fromEntries(results.filter((r) => r.outcome === 'copied').map((r) => [r.location, r.outcome === 'copied' && r.method]));
      assert.deepEqual(how, { s3b: 'server_side', fs: 'streamed' });
      // Only the copy to the filesystem read the bytes out of s3a, once.
      assert.equal(a.read(), first.bytes.byteLength);
      for (const l of ['s3b', 'fs']) assert.deepEqual(await readAll(locations.driver(l), blobKey(first.digest)), first.bytes, l);

      // From the filesystem: streamed to s3a; then s3b, whose most preferred holder is now s3a, copies from it in the store.
      const fsReadBefore = fs.read();
      const second = await push(locations, service, 'fs', 300 * 1024);
      const again = await setUp(locations, metrics, 1).worker.runOnce();
      assert.deepEqual(again.filter((r) => r.outcome === 'copied').map((r) => r.outcome === 'copied' && `${r.location}:${r.method}`), ['s3a:streamed', 's3b:server_side']);
      assert.equal(fs.read() - fsReadBefore, second.bytes.byteLength);
      for (const l of ['s3a', 's3b']) assert.deepEqual(await readAll(locations.driver(l), blobKey(second.digest)), second.bytes, l);
      assert.deepEqual(await new BlobPlacementStore(h.db).list(second.digest), ['fs', 's3a', 's3b']);

      const text = await metrics.registry.getSingleMetricAsString('wharf_replication_bytes_total');
      assert.match(text, new RegExp(`location="s3b",method="server_side"} ${first.bytes.byteLength + second.bytes.byteLength}\\b`));
      assert.match(text, new RegExp(`location="s3a",method="streamed"} ${second.bytes.byteLength}\\b`));
      assert.match(text, new RegExp(`location="fs",method="streamed"} ${first.bytes.byteLength}\\b`));
    });

    it('copies inside the store from a less preferred S3 holder rather than streaming from the preferred filesystem, and streams when that holder lacks the bytes', async () => {
      const fs = counted(new FsBlobDriver(join(dir, 'fs-preferred')));
      const a = counted(await s3());
      const b = await s3();
      const locations = new TestLocations([
        { name: 'fs', driver: fs.driver },
        { name: 's3a', driver: a.driver },
        { name: 's3b', driver: b },
      ]);
      const placements = new BlobPlacementStore(h.db);
      const { worker } = setUp(locations, new Metrics({ defaultMetrics: false }));
      /** A blob recorded in fs and s3a (its bytes in `holding`), queued for s3b only. */
      const held = async (holding: string[]) => {
        const bytes = randomBytes(200 * 1024);
        const digest = await locations.commit(holding[0]!, bytes);
        for (const l of holding.slice(1)) await locations.commit(l, bytes);
        await blobs.link((await repos.ensure('acme', 'app')).id, digest, bytes.byteLength);
        for (const l of ['fs', 's3a']) await placements.add(digest, l, Date.now());
        await jobs.enqueue(digest, ['s3b'], Date.now());
        return { digest, bytes };
      };

      const both = await held(['fs', 's3a']);
      const [fsBefore, aBefore] = [fs.read(), a.read()];
      const results = await worker.runOnce();
      assert.deepEqual(results.map((r) => r.outcome === 'copied' && `${r.location}:${r.method}`), ['s3b:server_side']);
      assert.equal(fs.read() - fsBefore, 0, 'no byte read from the preferred filesystem holder');
      assert.equal(a.read() - aBefore, 0, 'nor through the S3 holder');
      assert.deepEqual(await readAll(b, blobKey(both.digest)), both.bytes);

      // The placement of s3a is stale (no bytes there): the copy from s3a fails, the one from fs streams.
      const fsOnly = await held(['fs']);
      const again = await worker.runOnce();
      assert.deepEqual(again.map((r) => r.outcome === 'copied' && `${r.location}:${r.method}`), ['s3b:streamed']);
      assert.equal(fs.read() - fsBefore, fsOnly.bytes.byteLength);
      assert.deepEqual(await readAll(b, blobKey(fsOnly.digest)), fsOnly.bytes);
      assert.deepEqual(await placements.list(fsOnly.digest), ['fs', 's3a', 's3b']);
    });

    it('replicates a small blob in one storage request, inside the store from S3 and as one PUT from the filesystem', async () => {
      const fs = new FsBlobDriver(join(dir, 'fs-counted'));
      const locations = new TestLocations([
        { name: 'pa', driver: await s3(proxy.url) },
        { name: 'pb', driver: await s3(proxy.url) },
        { name: 'fs', driver: fs },
      ]);
      const { service, worker } = setUp(locations, new Metrics({ defaultMetrics: false }), 1);
      const seen = () => proxy.requests.map((r) => `${r.method} ${r.headers['x-amz-copy-source'] === undefined ? 'plain' : 'copy'}`);
      const placements = new BlobPlacementStore(h.db);

      // Held in pa and fs, queued for pb: one CopyObject, no stat of the target, no HEAD of the source.
      const inStore = await push(locations, service, 'pa', 50 * 1024);
      await locations.commit('fs', inStore.bytes);
      await placements.add(inStore.digest, 'fs', Date.now());
      await h.db.deleteFrom('replication_jobs').where('digest', '=', inStore.digest).where('location', '=', 'fs').execute();
      proxy.clearRequests();
      assert.deepEqual((await worker.runOnce()).map((r) => r.outcome === 'copied' && `${r.location}:${r.method}`), ['pb:server_side']);
      assert.deepEqual(seen(), ['PUT copy']);
      assert.deepEqual(await readAll(locations.driver('pb'), blobKey(inStore.digest)), inStore.bytes);

      // Held in fs only, queued for pa and pb: the first copy is one PUT of the bytes, the second one
      // CopyObject from the first (one copy at a time), and neither target is asked first.
      const streamed = await push(locations, service, 'fs', 50 * 1024);
      proxy.clearRequests();
      const methods = (await worker.runOnce()).map((r) => r.outcome === 'copied' && r.method);
      assert.deepEqual(methods, ['streamed', 'server_side']);
      assert.deepEqual(seen(), ['PUT plain', 'PUT copy']);
      for (const l of ['pa', 'pb']) assert.deepEqual(await readAll(locations.driver(l), blobKey(streamed.digest)), streamed.bytes, l);
    });

    it('falls back to the next holder when the source the placements name lacks the bytes, with nothing wrong visible', async () => {
      const fs = new FsBlobDriver(join(dir, 'fs-fallback'));
      const locations = new TestLocations([
        { name: 'pa', driver: await s3(proxy.url) },
        { name: 'pb', driver: await s3(proxy.url) },
        { name: 'fs', driver: fs },
      ]);
      const placements = new BlobPlacementStore(h.db);
      const { worker } = setUp(locations, new Metrics({ defaultMetrics: false }), 1);
      // Recorded in pa (a stale placement: no bytes there) and fs, queued for pb.
      const bytes = randomBytes(40 * 1024);
      const digest = await locations.commit('fs', bytes);
      await blobs.link((await repos.ensure('acme', 'app')).id, digest, bytes.byteLength);
      for (const l of ['pa', 'fs']) await placements.add(digest, l, Date.now());
      await jobs.enqueue(digest, ['pb'], Date.now());
      proxy.clearRequests();
      const results = await worker.runOnce();
      assert.deepEqual(results.map((r) => r.outcome === 'copied' && `${r.location}:${r.method}`), ['pb:streamed']);
      // The CopyObject from pa finds no source (and writes nothing); the bytes then go up from fs in one PUT.
      assert.deepEqual(
        proxy.requests.map((r) => `${r.method} ${r.headers['x-amz-copy-source'] === undefined ? 'plain' : 'copy'} ${r.status ?? ''}`.trim()),
        ['PUT copy 404', 'PUT plain 200'],
      );
      assert.deepEqual(await readAll(locations.driver('pb'), blobKey(digest)), bytes);
      assert.equal(await locations.driver('pa').stat(blobKey(digest)), undefined, 'nothing appeared in the stale holder');
      assert.deepEqual(await placements.list(digest), ['fs', 'pa', 'pb']);
    });

    it('falls back to streaming when the store answers the copy with 501, and the copy still lands', async () => {
      const a = counted(await s3(proxy.url));
      const b = await s3(proxy.url);
      const locations = new TestLocations([
        { name: 'pa', driver: a.driver },
        { name: 'pb', driver: b },
      ]);
      const { service, worker } = setUp(locations, new Metrics({ defaultMetrics: false }));
      const rule = proxy.inject({ method: 'PUT', match: (r) => r.headers['x-amz-copy-source'] !== undefined, fault: { kind: 'status', status: 501, code: 'NotImplemented' } });
      try {
        const { digest, bytes } = await push(locations, service, 'pa', 200 * 1024);
        const results = await worker.runOnce();
        assert.deepEqual(results.map((r) => r.outcome === 'copied' && `${r.location}:${r.method}`), ['pb:streamed']);
        assert.equal(rule.hits, 1);
        assert.equal(a.read(), bytes.byteLength);
        assert.deepEqual(await readAll(b, blobKey(digest)), bytes);
      } finally {
        rule.remove();
      }
    });
  });
}
