import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { openTestS3Driver } from '../../../test/helpers/s3.js';
import { blobDriverSuite } from '../driver-test-suite.js';

blobDriverSuite('s3', () => openTestS3Driver(), { followsWrites: false });

describe('S3BlobDriver streamed PUT (a writer given its size)', () => {
  it('writes nothing to the console when cancelled (the SDK would warn there), leaves nothing, and commits whole', async () => {
    const { driver, cleanup } = await openTestS3Driver({ partSize: 5 * 1024 * 1024 });
    const printed: unknown[][] = [];
    const original = { warn: console.warn, error: console.error, log: console.log };
    // The SDK, given no logger, warns on the console about a failed streamed request: that would be a
    // line of plain text among the JSON log lines.
    console.warn = console.error = console.log = (...args: unknown[]) => void printed.push(args);
    try {
      const data = randomBytes(6 * 1024 * 1024);
      const w = await driver.writer('stream/cancelled', { size: data.length });
      await w.write(data.subarray(0, 4 * 1024 * 1024));
      await w.cancel();
      assert.equal(await driver.stat('stream/cancelled'), undefined);
      const whole = await driver.writer('stream/whole', { size: data.length });
      await whole.write(data);
      await whole.commit();
      assert.equal((await driver.stat('stream/whole'))?.size, data.length);
    } finally {
      Object.assign(console, original);
      await cleanup();
    }
    assert.deepEqual(printed, []);
  });
});

describe('S3BlobDriver multipart', () => {
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const readAll = async (r: AsyncIterable<unknown>) => {
    const chunks: Buffer[] = [];
    for await (const c of r) chunks.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(chunks);
  };

  it('writes an object of several parts, invisible until the upload completes', async () => {
    const { driver, cleanup } = await openTestS3Driver({ partSize: 5 * 1024 * 1024 });
    try {
      const data = randomBytes(12 * 1024 * 1024 + 3);
      const w = await driver.writer('mp/obj');
      for (let i = 0; i < data.byteLength; i += 1024 * 1024 + 7) await w.write(data.subarray(i, i + 1024 * 1024 + 7));
      assert.equal(await driver.stat('mp/obj'), undefined, 'parts are uploaded but the object is not there');
      await w.commit();
      assert.equal((await driver.stat('mp/obj'))?.size, data.byteLength);
      assert.equal(sha(await readAll(await driver.reader('mp/obj'))), sha(data));
      const mid = await readAll(await driver.reader('mp/obj', { offset: 5 * 1024 * 1024 - 10, length: 20 }));
      assert.deepEqual(mid, data.subarray(5 * 1024 * 1024 - 10, 5 * 1024 * 1024 + 10));
    } finally {
      await cleanup();
    }
  });

  it('appends to an object above the part minimum by copying it server side, and a cancelled append keeps it', async () => {
    const { driver, cleanup } = await openTestS3Driver({ partSize: 5 * 1024 * 1024 });
    try {
      const first = randomBytes(6 * 1024 * 1024);
      const second = randomBytes(1024 * 1024 + 5);
      const a = await driver.writer('ap/obj', { append: true });
      await a.write(first);
      await a.commit();
      const b = await driver.writer('ap/obj', { append: true });
      assert.equal(b.size, first.byteLength);
      await b.write(second);
      await b.commit();
      const c = await driver.writer('ap/obj', { append: true });
      await c.write(randomBytes(100));
      await c.cancel();
      const all = Buffer.concat([first, second]);
      assert.equal((await driver.stat('ap/obj'))?.size, all.byteLength);
      assert.equal(sha(await readAll(await driver.reader('ap/obj'))), sha(all));
    } finally {
      await cleanup();
    }
  });

  it('aborts multipart uploads left by a crash, and only old ones', async () => {
    const { driver, cleanup } = await openTestS3Driver({ partSize: 5 * 1024 * 1024 });
    try {
      const abandoned = await driver.writer('crash/obj');
      await abandoned.write(randomBytes(5 * 1024 * 1024));
      // Neither committed nor cancelled, as after a crash: one multipart upload stays open.
      assert.equal(await driver.sweepStaging(60 * 60_000), 0);
      assert.equal(await driver.sweepStaging(-60_000), 1);
      assert.equal(await driver.sweepStaging(-60_000), 0);
      await assert.rejects(abandoned.commit());
      assert.equal(await driver.stat('crash/obj'), undefined);
    } finally {
      await cleanup();
    }
  });
});
