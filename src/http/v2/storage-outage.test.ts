/**
 * S3 storage failing while Wharf runs, with a fault proxy between Wharf and the test run's RADOS
 * Gateway: requests that need the storage answer 503 UNAVAILABLE naming it (never a 500), a read that
 * breaks off mid-blob aborts the client's connection instead of ending it as if complete, the health
 * check reports the storage down, and the first request after the storage is back works. Both dialects.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { waitFor } from '../../../test/helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy } from '../../../test/helpers/fault-proxy.js';
import { assertError, pushBlob, sha256 } from '../../../test/helpers/inject-client.js';
import { openTestS3Driver, testS3Options } from '../../../test/helpers/s3.js';

const blob = Buffer.from(Array.from({ length: 3 * 1024 * 1024 }, (_, i) => (i * 13) % 253));

/** A GET over a real connection: how the response ended (complete, or the connection broke off) and what arrived. */
function getOverSocket(url: string): Promise<{ status: number; bytes: number; complete: boolean; contentLength?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode!, bytes, complete: res.complete, contentLength: res.headers['content-length'] }));
      res.on('error', () => resolve({ status: res.statusCode!, bytes, complete: false, contentLength: res.headers['content-length'] }));
      res.on('aborted', () => resolve({ status: res.statusCode!, bytes, complete: false, contentLength: res.headers['content-length'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

for (const dialect of DIALECTS) {
  describe(`S3 storage outage (${dialect})`, () => {
    let t: TestApp;
    let proxy: FaultProxy;
    let bucket: Awaited<ReturnType<typeof openTestS3Driver>>;
    let digest: string;
    let base: string;

    before(async () => {
      proxy = await startFaultProxy(testS3Options().endpoint!);
      bucket = await openTestS3Driver({ endpoint: proxy.url, requestTimeoutMs: 1000 });
      t = await buildTestApp(dialect, { storage: bucket.driver, config: { 'auth.enabled': false } });
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      digest = await pushBlob(t.app, 'outage/repo', blob);
    });
    after(async () => {
      proxy?.setUpstreamDown(false);
      proxy?.clearFaults();
      await t?.close();
      await bucket?.cleanup();
      await proxy?.stop();
    });

    it('answers 503 UNAVAILABLE naming the storage while it is down; HEAD (database only) still answers', async () => {
      proxy.setUpstreamDown(true);
      try {
        const get = await t.app.inject({ method: 'GET', url: `/v2/outage/repo/blobs/${digest}` });
        assertError(get, 503, 'UNAVAILABLE');
        assert.match(get.json().errors[0].message, /^storage unavailable: S3 bucket "[^"]+" at http:\/\/127\.0\.0\.1:\d+: /);
        const push = await t.app.inject({
          method: 'POST',
          url: `/v2/outage/repo/blobs/uploads/?digest=${sha256('during the outage')}`,
          payload: 'during the outage',
          headers: { 'content-type': 'application/octet-stream' },
        });
        assertError(push, 503, 'UNAVAILABLE');
        const head = await t.app.inject({ method: 'HEAD', url: `/v2/outage/repo/blobs/${digest}` });
        assert.equal(head.statusCode, 200);
      } finally {
        proxy.setUpstreamDown(false);
      }
    });

    it('serves the very next request once the storage is back (no connection left over from the outage)', async () => {
      proxy.setUpstreamDown(true);
      assertError(await t.app.inject({ method: 'GET', url: `/v2/outage/repo/blobs/${digest}` }), 503, 'UNAVAILABLE');
      proxy.setUpstreamDown(false);
      const get = await t.app.inject({ method: 'GET', url: `/v2/outage/repo/blobs/${digest}` });
      assert.equal(get.statusCode, 200, get.body.slice(0, 300));
      assert.equal(sha256(get.rawPayload), digest);
      const pushed = await pushBlob(t.app, 'outage/repo', 'after the outage');
      assert.equal(pushed, sha256('after the outage'));
    });

    it('aborts the connection when the storage breaks off mid-blob (never a short blob ending cleanly)', async () => {
      const fault = proxy.inject({ method: 'GET', path: /\/blobs\//, times: 1, fault: { kind: 'truncate', afterBytes: 1024 * 1024 } });
      const res = await getOverSocket(`${base}/v2/outage/repo/blobs/${digest}`);
      assert.equal(fault.hits, 1);
      assert.equal(res.status, 200);
      assert.equal(res.contentLength, String(blob.length));
      assert.equal(res.complete, false, `the transfer ended as complete after ${res.bytes} of ${blob.length} bytes`);
      assert.ok(res.bytes < blob.length);
      const whole = await getOverSocket(`${base}/v2/outage/repo/blobs/${digest}`);
      assert.deepEqual([whole.status, whole.bytes, whole.complete], [200, blob.length, true]);
    });

    it('gives up on a storage that accepts connections and never answers (503, not a hung request)', async () => {
      const fault = proxy.inject({ method: 'GET', path: /\/blobs\//, fault: { kind: 'stall' } });
      try {
        assertError(await t.app.inject({ method: 'GET', url: `/v2/outage/repo/blobs/${digest}` }), 503, 'UNAVAILABLE');
      } finally {
        fault.remove();
      }
    });

    it('/health/instance reports the storage down while it is, and up again after', async () => {
      const health = async () => {
        const res = await t.app.inject({ method: 'GET', url: '/health/instance' });
        return { status: res.statusCode, storage: res.json().data.services.registry_storage as boolean };
      };
      await waitFor('storage healthy', async () => (await health()).storage);
      proxy.setUpstreamDown(true);
      try {
        await waitFor('storage reported down', async () => !(await health()).storage);
        assert.deepEqual(await health(), { status: 503, storage: false });
      } finally {
        proxy.setUpstreamDown(false);
      }
      await waitFor('storage reported up again', async () => (await health()).storage);
      assert.equal((await health()).status, 200);
    });
  });
}
