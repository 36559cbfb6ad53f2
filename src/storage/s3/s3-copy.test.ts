/**
 * Server-side copies between S3 drivers on the shared RADOS Gateway (two key prefixes of one bucket,
 * and two buckets): one CopyObject, or a multipart copy above the single-copy size, onto the final key;
 * one request for a small copy (counted through a fault proxy), a missing source failing that request;
 * checks of the source's size before a multipart copy and of the copy's after one, or after a
 * one-request copy whose answer names no MD5 (a source put in parts); 'unsupported' with nothing written for a
 * filesystem source, for other credentials, and when the store answers 501 to a copy (through a fault
 * proxy); `canCopyFrom` telling the first cases apart without a request.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, DeleteBucketCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from '../../../test/helpers/fault-proxy.js';
import { openTestS3Driver, testS3Options } from '../../../test/helpers/s3.js';
import { BlobNotFoundError, type BlobDriver } from '../blob-driver.js';
import { FsBlobDriver } from '../fs/fs-blob-driver.js';
import { S3BlobDriver } from './s3-blob-driver.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function put(driver: BlobDriver, key: string, bytes: Uint8Array): Promise<void> {
  const w = await driver.writer(key);
  for (let i = 0; i < bytes.byteLength; i += 1024 * 1024) await w.write(bytes.subarray(i, i + 1024 * 1024));
  await w.commit();
}

async function readAll(driver: BlobDriver, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await driver.reader(key)) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

async function keys(driver: BlobDriver): Promise<string[]> {
  const out: string[] = [];
  for await (const k of driver.list('')) out.push(k);
  return out;
}

describe('S3BlobDriver server-side copy', () => {
  const cleanups: Array<() => Promise<void>> = [];
  let a: S3BlobDriver;
  let b: S3BlobDriver;
  const open = async (opts: Parameters<typeof openTestS3Driver>[0] = {}) => {
    const d = await openTestS3Driver({ partSize: 5 * 1024 * 1024, ...opts });
    cleanups.push(d.cleanup);
    return d.driver;
  };

  before(async () => {
    a = await open();
    b = await open();
  });
  after(async () => {
    for (const c of cleanups) await c();
  });

  /** `driver` as a test wraps it (Object.create), which must still count as the same store. */
  const wrapped = (driver: BlobDriver): BlobDriver => Object.create(driver);

  /** Two drivers on fresh prefixes reaching the store through one fault proxy, for `body`. */
  const throughProxy = async (body: (proxy: FaultProxy, pa: S3BlobDriver, pb: S3BlobDriver) => Promise<void>) => {
    const proxy = await startFaultProxy(testS3Options().endpoint!);
    const opened: Array<() => Promise<void>> = [];
    try {
      const [pa, pb] = await Promise.all(
        [1, 2].map(async () => {
          const d = await openTestS3Driver({ endpoint: proxy.url });
          opened.push(d.cleanup);
          return d.driver;
        }),
      );
      await body(proxy, pa!, pb!);
    } finally {
      for (const c of opened) await c();
      await proxy.stop();
    }
  };

  it('copies an object to another prefix of the same endpoint without reading it, onto the final key', async () => {
    const bytes = randomBytes(300 * 1024);
    await put(a, 'blobs/small', bytes);
    // Reading through the source driver would show here: nothing may be read.
    let read = 0;
    const counted: BlobDriver = Object.create(a, { reader: { value: async (...args: Parameters<BlobDriver['reader']>) => (read++, a.reader(...args)) } });
    assert.equal(await b.copyFrom(counted, 'blobs/small', { size: bytes.byteLength }), 'copied');
    assert.equal(read, 0);
    assert.equal(sha(await readAll(b, 'blobs/small')), sha(bytes));
    assert.deepEqual(await keys(b), ['blobs/small'], 'no staging object');
  });

  it('copies a multipart object above the single-copy size with a multipart copy of its parts', async () => {
    const big = await open({ maxSingleCopy: 1024 * 1024 });
    const bytes = randomBytes(11 * 1024 * 1024 + 17);
    await put(a, 'blobs/big', bytes);
    assert.equal(await big.copyFrom(a, 'blobs/big', { size: bytes.byteLength }), 'copied');
    assert.equal((await big.stat('blobs/big'))?.size, bytes.byteLength);
    assert.equal(sha(await readAll(big, 'blobs/big')), sha(bytes));
  });

  it('refuses a source above the single-copy size whose size is not the expected one, and a missing source, writing nothing', async () => {
    const multipart = await open({ maxSingleCopy: 512 });
    const bytes = randomBytes(1000);
    await put(a, 'blobs/sized', bytes);
    await assert.rejects(multipart.copyFrom(a, 'blobs/sized', { size: 999 }), /the source object is 1000 bytes, expected 999/);
    await assert.rejects(b.copyFrom(a, 'blobs/none', { size: 1 }), BlobNotFoundError);
    await assert.rejects(multipart.copyFrom(a, 'blobs/none', { size: 1000 }), BlobNotFoundError);
    assert.equal(await multipart.stat('blobs/sized'), undefined);
    assert.equal(await b.stat('blobs/none'), undefined);
    assert.equal(await multipart.stat('blobs/none'), undefined);
  });

  it('is unsupported from a filesystem driver, from other credentials and from another endpoint (and says so beforehand)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-s3-copy-'));
    try {
      const fs = new FsBlobDriver(dir);
      await put(fs, 'blobs/fs', randomBytes(10));
      assert.equal(await b.copyFrom(fs, 'blobs/fs', { size: 10 }), 'unsupported');
      const stranger = new S3BlobDriver({ ...testS3Options(), secretAccessKey: 'not-the-secret', prefix: 'none' });
      await put(a, 'blobs/cred', randomBytes(10));
      assert.equal(await b.copyFrom(stranger, 'blobs/cred', { size: 10 }), 'unsupported');
      assert.equal(await b.copyFrom(a, 'blobs/cred', { size: 10 }), 'copied');
      const elsewhere = new S3BlobDriver({ ...testS3Options(), endpoint: testS3Options().endpoint!.replace('127.0.0.1', 'localhost'), prefix: 'none' });
      assert.equal(await elsewhere.copyFrom(a, 'blobs/cred', { size: 10 }), 'unsupported', 'another endpoint');
      assert.equal(await b.stat('blobs/fs'), undefined);
      // canCopyFrom tells the same without a request.
      assert.deepEqual([a, fs, stranger, wrapped(a)].map((s) => b.canCopyFrom(s)), [true, false, false, true]);
      assert.equal(elsewhere.canCopyFrom(a), false);
      stranger.close();
      elsewhere.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** The requests the proxy saw since `clearRequests`, as `METHOD copy|plain`. */
  const seen = (proxy: FaultProxy) => proxy.requests.map((r) => `${r.method} ${r.headers['x-amz-copy-source'] === undefined ? 'plain' : 'copy'}`);

  it('makes one request for an object put in one request: the CopyObject, whose answer names the MD5', () =>
    throughProxy(async (proxy, pa, pb) => {
      const bytes = randomBytes(5000);
      await put(pa, 'blobs/counted', bytes);
      proxy.clearRequests();
      assert.equal(await pb.copyFrom(pa, 'blobs/counted', { size: bytes.byteLength }), 'copied');
      assert.deepEqual(seen(proxy), ['PUT copy']);
      assert.equal(sha(await readAll(pb, 'blobs/counted')), sha(bytes));
    }));

  it('checks the size of a one-request copy of a multipart object with a HEAD of the copy, and deletes a copy of the wrong size', () =>
    throughProxy(async (proxy, pa, pb) => {
      // Put in parts (no size announced, more than a part): the copy keeps a multipart ETag, not an MD5.
      const bytes = randomBytes(8 * 1024 * 1024 + 3);
      await put(pa, 'blobs/parts', bytes);
      proxy.clearRequests();
      assert.equal(await pb.copyFrom(pa, 'blobs/parts', { size: bytes.byteLength }), 'copied');
      assert.deepEqual(seen(proxy), ['PUT copy', 'HEAD plain']);
      assert.equal(sha(await readAll(pb, 'blobs/parts')), sha(bytes));
      await assert.rejects(pb.copyFrom(pa, 'blobs/parts', { size: bytes.byteLength - 1 }), /the copy is \d+ bytes, expected \d+; the copy was deleted/);
      assert.equal(await pb.stat('blobs/parts'), undefined);
    }));

  it('fails with not found in its one request when the source is missing, writing nothing', () =>
    throughProxy(async (proxy, pa, pb) => {
      proxy.clearRequests();
      await assert.rejects(pb.copyFrom(pa, 'blobs/gone', { size: 5000 }), BlobNotFoundError);
      assert.deepEqual(seen(proxy), ['PUT copy']);
      assert.equal(await pb.stat('blobs/gone'), undefined);
    }));

  it('is unsupported, with nothing written, when the store answers a copy with 501', () =>
    throughProxy(async (proxy, pa, pb) => {
      await put(pa, 'blobs/x', randomBytes(2000));
      const rule = proxy.inject({ method: 'PUT', match: (r) => r.headers['x-amz-copy-source'] !== undefined, fault: { kind: 'status', status: 501, code: 'NotImplemented' } });
      assert.equal(await pb.copyFrom(pa, 'blobs/x', { size: 2000 }), 'unsupported');
      assert.equal(rule.hits, 1);
      assert.equal(await pb.stat('blobs/x'), undefined);
    }));
});

describe('S3BlobDriver server-side copy between two buckets of one endpoint', () => {
  const o = testS3Options();
  const client = new S3Client({ endpoint: o.endpoint, region: o.region, forcePathStyle: true, credentials: { accessKeyId: o.accessKeyId!, secretAccessKey: o.secretAccessKey! } });
  const second = `wharf-copy-${randomBytes(4).toString('hex')}`;
  const cleanups: Array<() => Promise<void>> = [];
  let source: S3BlobDriver;
  let target: S3BlobDriver;
  let reads = 0;
  /** The source as the copy sees it, counting every read of its bytes through this process. */
  let counted: BlobDriver;

  before(async () => {
    await client.send(new CreateBucketCommand({ Bucket: second }));
    const a = await openTestS3Driver({ partSize: 5 * 1024 * 1024 });
    cleanups.push(a.cleanup);
    source = a.driver;
    const b = await openTestS3Driver({ bucket: second, partSize: 5 * 1024 * 1024, maxSingleCopy: 1024 * 1024 });
    cleanups.push(b.cleanup);
    target = b.driver;
    counted = Object.create(source, {
      reader: { value: async (...args: Parameters<BlobDriver['reader']>) => (reads++, source.reader(...args)) },
      openPositional: { value: async (...args: Parameters<NonNullable<BlobDriver['openPositional']>>) => (reads++, source.openPositional!(...args)) },
    });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await client.send(new DeleteBucketCommand({ Bucket: second }));
    client.destroy();
  });

  it('copies into the other bucket inside the store, with one CopyObject and with a multipart copy, and the bytes are intact', async () => {
    const small = randomBytes(300 * 1024);
    const big = randomBytes(6 * 1024 * 1024 + 5);
    await put(source, 'blobs/small', small);
    await put(source, 'blobs/big', big);
    assert.equal(await target.copyFrom(counted, 'blobs/small', { size: small.byteLength }), 'copied');
    assert.equal(await target.copyFrom(counted, 'blobs/big', { size: big.byteLength }), 'copied');
    assert.equal(reads, 0, 'no byte of the source passed through this process');
    assert.equal(sha(await readAll(target, 'blobs/small')), sha(small));
    assert.equal(sha(await readAll(target, 'blobs/big')), sha(big));
    assert.deepEqual(await keys(target), ['blobs/big', 'blobs/small'], 'only the copies, under their keys');
    assert.equal(sha(await readAll(source, 'blobs/big')), sha(big), 'the source is untouched');
  });

  it('a missing source fails with not found, and leaves nothing in the other bucket (no object, no open upload)', async () => {
    await assert.rejects(target.copyFrom(counted, 'blobs/missing', { size: 10 }), BlobNotFoundError);
    await assert.rejects(target.copyFrom(counted, 'blobs/missing-big', { size: 2 * 1024 * 1024 }), BlobNotFoundError);
    assert.equal(await target.stat('blobs/missing'), undefined);
    assert.equal(await target.stat('blobs/missing-big'), undefined);
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: second }));
    assert.deepEqual(uploads.Uploads ?? [], []);
    assert.equal(reads, 0);
  });
});
