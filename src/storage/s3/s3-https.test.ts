/**
 * The S3 driver against an `https://` endpoint: the test bucket behind Debian's haproxy terminating TLS
 * with a throwaway certificate authority (test/helpers/tls.ts), trusted through the driver's `ca`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openTestS3Driver, testS3Options } from '../../../test/helpers/s3.js';
import { makeTestPki, startTlsFront, type TestPki, type TlsFront } from '../../../test/helpers/tls.js';
import { StorageUnavailableError } from '../blob-driver.js';
import { blobDriverSuite } from '../driver-test-suite.js';

let pki: TestPki | undefined;
let front: TlsFront | undefined;
/** The TLS front, started once for every test of this file. */
async function tls(): Promise<{ pki: TestPki; front: TlsFront }> {
  pki ??= await makeTestPki();
  front ??= await startTlsFront(pki, testS3Options().endpoint!);
  return { pki, front };
}
after(async () => {
  await front?.stop();
  await pki?.remove();
});

blobDriverSuite('s3 over https', async () => {
  const { pki, front } = await tls();
  return openTestS3Driver({ endpoint: front.url, ca: pki.ca });
}, { followsWrites: false });

describe('S3BlobDriver over https', () => {
  let endpoint: string;
  let ca: string;
  before(async () => {
    const t = await tls();
    endpoint = t.front.url;
    ca = t.pki.ca;
  });

  it('reads a multi-megabyte object in order straight from the TLS connection, whole and in ranges', async () => {
    const { driver, cleanup } = await openTestS3Driver({ endpoint, ca });
    try {
      const data = randomBytes(6 * 1024 * 1024 + 11);
      const w = await driver.writer('big/obj');
      await w.write(data);
      await w.commit();
      for (const range of [undefined, { offset: 1_000_003, length: 4_000_000 }]) {
        const start = range?.offset ?? 0;
        const length = range?.length ?? data.length;
        const r = await driver.openPositional('big/obj', range);
        try {
          assert.equal(r.size, data.length);
          const out = Buffer.alloc(length);
          let at = 0;
          while (at < length) {
            const n = await r.read(out.subarray(at), start + at, Math.min(256 * 1024, length - at));
            assert.ok(n > 0, `bytes at ${start + at}`);
            at += n;
          }
          assert.ok(out.equals(data.subarray(start, start + length)));
        } finally {
          await r.close();
        }
      }
    } finally {
      await cleanup();
    }
  });

  it('answers a certificate it cannot verify with StorageUnavailableError from every request, never a crash', async () => {
    // The same store, trusting only Node's own authorities: the test CA is not among them.
    const good = await openTestS3Driver({ endpoint, ca });
    const w = await good.driver.writer('cert/obj');
    await w.write(Buffer.from('hello'));
    await w.commit();
    const { S3BlobDriver } = await import('./s3-blob-driver.js');
    const untrusting = new S3BlobDriver({ ...testS3Options(), endpoint, prefix: good.prefix });
    const other = await makeTestPki();
    const wrongCa = new S3BlobDriver({ ...testS3Options(), endpoint, prefix: good.prefix, ca: other.ca });
    try {
      for (const d of [untrusting, wrongCa]) {
        const unavailable = (err: unknown) => err instanceof StorageUnavailableError && /CERT|SIGNATURE|certificate/i.test(err.message);
        await assert.rejects(d.stat('cert/obj'), unavailable);
        await assert.rejects(d.reader('cert/obj'), unavailable);
        await assert.rejects(d.openPositional('cert/obj'), unavailable);
        await assert.rejects(d.check(), unavailable);
      }
      const r = await good.driver.openPositional('cert/obj');
      const buf = Buffer.alloc(5);
      assert.equal(await r.read(buf, 0, 5), 5);
      assert.equal(buf.toString(), 'hello');
      await r.close();
    } finally {
      untrusting.close();
      wrongCa.close();
      await other.remove();
      await good.cleanup();
    }
  });
});
