/**
 * What a redirected pull costs the buckets behind a located driver: two RGW locations (prefixes of the
 * test bucket), each reached through a counting proxy. A pull asks the located driver for a redirect
 * URL; the holder it found is remembered, so repeated pulls of a blob send no request at all (without
 * the cache: one HEAD per pull for a blob in the preferred location, two for one only in the other).
 * A delete through the driver forgets the holder; the presigned URL serves the bytes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../../test/helpers/fault-proxy.js';
import { openTestS3Driver } from '../../test/helpers/s3.js';
import { digestOf } from '../oci/digest.js';
import type { BlobDriver } from './blob-driver.js';
import { blobKey } from './keys.js';
import { LocatedBlobDriver } from './located-driver.js';

const PULLS = 10;

async function put(driver: BlobDriver, key: string, bytes: Uint8Array): Promise<void> {
  const w = await driver.writer(key);
  await w.write(bytes);
  await w.commit();
}

describe('located driver redirects over RGW', () => {
  const proxies: FaultProxy[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let located: LocatedBlobDriver;
  let eu: BlobDriver;
  let us: BlobDriver;

  before(async () => {
    const endpoint = process.env.WHARF_TEST_S3_ENDPOINT;
    if (!endpoint) throw new Error('WHARF_TEST_S3_ENDPOINT not set: run with `bash scripts/test.sh`');
    const drivers: BlobDriver[] = [];
    for (let i = 0; i < 2; i++) {
      const proxy = await startFaultProxy(endpoint);
      proxies.push(proxy);
      const s3 = await openTestS3Driver({ endpoint: proxy.url, redirectExpirySeconds: 60 });
      cleanups.push(s3.cleanup);
      drivers.push(s3.driver);
    }
    [eu, us] = drivers as [BlobDriver, BlobDriver];
    // Health verdicts are kept for the whole test: the requests counted are the pulls' own.
    located = new LocatedBlobDriver(
      [
        { name: 'eu', driver: eu },
        { name: 'us', driver: us },
      ],
      { cacheMs: 600_000 },
    );
    await located.check();
  });
  after(async () => {
    for (const c of cleanups) await c().catch(() => {});
    for (const p of proxies) await p.stop();
  });

  /** Requests each bucket received for `pulls` redirect URLs of `key`. */
  const requestsFor = async (key: string, pulls: number) => {
    for (const p of proxies) p.clearRequests();
    for (let i = 0; i < pulls; i++) assert.ok(await located.redirectUrl!(key));
    return proxies.map((p) => p.count());
  };

  it('sends no request for repeated redirects of a blob in the preferred location, one HEAD the first time', async (t) => {
    const bytes = randomBytes(1000);
    const key = blobKey(digestOf(bytes));
    await put(eu, key, bytes);
    const first = await requestsFor(key, 1);
    assert.deepEqual(first, [1, 0]);
    assert.deepEqual(proxies[0]!.requests.map((r) => r.method), ['HEAD']);
    const next = await requestsFor(key, PULLS);
    t.diagnostic(`requests to [eu, us] for a blob in eu: first pull ${first}, next ${PULLS} pulls ${next} (without the holder cache: ${PULLS} HEADs to eu)`);
    assert.deepEqual(next, [0, 0]);
    const url = await located.redirectUrl!(key);
    assert.ok(url!.startsWith(proxies[0]!.url), url);
    const res = await fetch(url!);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
  });

  it('sends no request for repeated redirects of a blob only in the other location, a HEAD to each the first time', async (t) => {
    const bytes = randomBytes(1000);
    const key = blobKey(digestOf(bytes));
    await put(us, key, bytes);
    const first = await requestsFor(key, 1);
    assert.deepEqual(first, [1, 1]);
    const next = await requestsFor(key, PULLS);
    t.diagnostic(`requests to [eu, us] for a blob in us only: first pull ${first}, next ${PULLS} pulls ${next} (without the holder cache: ${PULLS} HEADs to each)`);
    assert.deepEqual(next, [0, 0]);
    assert.ok((await located.redirectUrl!(key))!.startsWith(proxies[1]!.url));
  });

  it('forgets the holder when the blob is deleted through the driver', async () => {
    const bytes = randomBytes(1000);
    const key = blobKey(digestOf(bytes));
    await put(eu, key, bytes);
    assert.ok(await located.redirectUrl!(key));
    await located.delete(key);
    for (const p of proxies) p.clearRequests();
    assert.equal(await located.redirectUrl!(key), undefined);
    assert.deepEqual(
      proxies.map((p) => p.count({ method: 'HEAD' })),
      [1, 1],
      'looked up again',
    );
  });
});
