import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AlignedBuffers, DIRECT_BLOCK, isPageAligned } from '../aligned-buffers.js';
import { DIRECT_MIN, DirectWrites } from './direct-writes.js';
import { FsBlobDriver } from './fs-blob-driver.js';

// Under the repository, not the system's temporary directory: /tmp may be a tmpfs, which refuses O_DIRECT.
const base = resolve(import.meta.dirname, '../../../.tmp');

/** Writes that cover every case: small, large and unaligned, a 1 MiB slot, larger than a staging buffer. */
const SIZES = [100, DIRECT_MIN + 7, 1024 * 1024, 3 * 1024 * 1024 + 4095, 10, DIRECT_MIN, 5000, 1024 * 1024];

describe('direct writes', () => {
  let dir: string;
  before(async () => {
    await mkdir(base, { recursive: true });
    dir = await mkdtemp(join(base, 'direct-writes-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Writes SIZES through `direct`, reading back what is written after every write. */
  async function writeAndFollow(path: string, direct: DirectWrites): Promise<Buffer> {
    const fh = await open(path, 'r+');
    try {
      const cached = async (bytes: Uint8Array, position: number) => {
        let done = 0;
        while (done < bytes.byteLength) done += (await fh.write(bytes, done, bytes.byteLength - done, position + done)).bytesWritten;
      };
      const parts: Buffer[] = [];
      let at = 0;
      for (const size of SIZES) {
        const chunk = randomBytes(size);
        await direct.write(chunk, at, cached);
        parts.push(chunk);
        at += size;
        const soFar = Buffer.concat(parts);
        const back = Buffer.alloc(soFar.length);
        const { bytesRead } = await fh.read(back, 0, back.length, 0);
        assert.equal(bytesRead, soFar.length, `readable after the write of ${size} bytes`);
        assert.ok(back.equals(soFar), `every byte written so far reads back after the write of ${size} bytes`);
      }
      return Buffer.concat(parts);
    } finally {
      await fh.close();
      await direct.close();
    }
  }

  it('writes whole blocks around the page cache and the rest through it, every byte readable at once', async () => {
    const path = join(dir, 'direct');
    await (await open(path, 'wx')).close();
    const direct = await DirectWrites.open(path);
    assert.ok(direct, "the repository's filesystem takes O_DIRECT");
    const expected = await writeAndFollow(path, direct);
    assert.ok((await readFile(path)).equals(expected));
    assert.equal(direct.unsupported, false);
  });

  it('writes through the page cache when no staging buffer is free', async () => {
    const path = join(dir, 'no-buffers');
    await (await open(path, 'wx')).close();
    const none = new AlignedBuffers(DIRECT_BLOCK, 1, 0);
    const direct = await DirectWrites.open(path, none);
    assert.ok(direct);
    const expected = await writeAndFollow(path, direct);
    assert.ok((await readFile(path)).equals(expected));
  });

  it('falls back to the page cache for good when the filesystem refuses a direct write', async () => {
    const path = join(dir, 'refused');
    await (await open(path, 'wx')).close();
    const direct = await DirectWrites.open(path);
    assert.ok(direct);
    // A handle whose writes fail as a filesystem without direct I/O answers.
    const refusing = { write: async () => Promise.reject(Object.assign(new Error('invalid argument'), { code: 'EINVAL' })), close: async () => {} };
    (direct as unknown as { fh: unknown }).fh = refusing;
    const expected = await writeAndFollow(path, direct);
    assert.ok((await readFile(path)).equals(expected));
    assert.equal(direct.unsupported, true);
  });

  it('a staging buffer is page-aligned: the kernel takes it for a direct write at offset 0', async () => {
    const path = join(dir, 'aligned');
    const fh = await open(path, constants.O_CREAT | constants.O_WRONLY | constants.O_DIRECT);
    try {
      const buffers = new AlignedBuffers(4 * DIRECT_BLOCK, 3, 1);
      for (let i = 0; i < 3; i++) {
        const b = buffers.take()!;
        b.fill(i + 1);
        assert.equal((await fh.write(b, 0, b.length, i * b.length)).bytesWritten, b.length);
      }
      assert.equal(buffers.take(), undefined, 'one arena of three: no fourth buffer');
    } finally {
      await fh.close();
    }
    const bytes = await readFile(path);
    assert.equal(bytes.length, 12 * DIRECT_BLOCK);
    assert.deepEqual([bytes[0], bytes[4 * DIRECT_BLOCK], bytes[8 * DIRECT_BLOCK]], [1, 2, 3]);
  });

  it('the filesystem driver writes a blob of mixed chunk sizes that reads back whole, and follows it', async () => {
    const driver = new FsBlobDriver(join(dir, 'driver'), { fsync: true });
    const w = await driver.writer('blobs/mixed');
    const reader = await w.openReader!();
    const parts: Buffer[] = [];
    for (const size of SIZES) {
      const chunk = randomBytes(size);
      parts.push(chunk);
      await w.write(chunk);
      const soFar = Buffer.concat(parts);
      const back = Buffer.alloc(soFar.length);
      assert.equal(await reader.read(back, 0, back.length), soFar.length);
      assert.ok(back.equals(soFar));
    }
    await reader.close();
    await w.commit();
    assert.ok((await readFile(join(dir, 'driver', 'blobs/mixed'))).equals(Buffer.concat(parts)));
  });

  it('the filesystem driver takes writes in flight several at once and places them in call order', async () => {
    const driver = new FsBlobDriver(join(dir, 'concurrent'), { fsync: false });
    const w = await driver.writer('blobs/concurrent');
    assert.equal(w.concurrentWrites, true);
    // Block-aligned slots in flight together, then an unaligned write and the slots after it.
    const sizes = [1024 * 1024, 1024 * 1024, 1024 * 1024, DIRECT_MIN + 123, 1024 * 1024, 1024 * 1024, 77];
    const parts = sizes.map((n) => randomBytes(n));
    const settled: number[] = [];
    await Promise.all(parts.map((p, i) => w.write(p).then(() => settled.push(i))));
    assert.deepEqual(settled, [...settled].sort((a, b) => a - b), 'a write resolves only after those before it');
    await w.commit();
    assert.ok((await readFile(join(dir, 'concurrent', 'blobs/concurrent'))).equals(Buffer.concat(parts)));
  });

  it('writes a chunk in page-aligned memory as it is, without a staging buffer', async () => {
    const path = join(dir, 'slots');
    await (await open(path, 'wx')).close();
    const direct = await DirectWrites.open(path, new AlignedBuffers(DIRECT_BLOCK, 1, 0));
    assert.ok(direct);
    const fh = (direct as unknown as { fh: { write: (...a: unknown[]) => Promise<{ bytesWritten: number }> } }).fh;
    let directCalls = 0;
    const realWrite = fh.write.bind(fh);
    fh.write = (...a: unknown[]) => {
      directCalls++;
      return realWrite(...a);
    };
    const slots = new AlignedBuffers(1024 * 1024, 2, 1);
    const slot = slots.take()!;
    assert.ok(isPageAligned(slot) && !isPageAligned(slot.subarray(1)) && !isPageAligned(Buffer.alloc(DIRECT_BLOCK)));
    slot.set(randomBytes(slot.length));
    const plain = randomBytes(1024 * 1024);
    const cachedFh = await open(path, 'r+');
    try {
      const cached = async (bytes: Uint8Array, position: number) => void (await cachedFh.write(bytes, 0, bytes.byteLength, position));
      await direct.write(slot.subarray(0, 1024 * 1024 - 100), 0, cached);
      assert.equal(directCalls, 1, 'the slot went to the disk as it is, though no staging buffer is free');
      await direct.write(plain, 1024 * 1024 - 100, cached);
      assert.equal(directCalls, 1, 'memory that is not known to be aligned needs a staging buffer (none free): through the cache');
    } finally {
      await cachedFh.close();
      await direct.close();
    }
    assert.ok((await readFile(path)).equals(Buffer.concat([slot.subarray(0, 1024 * 1024 - 100), plain])));
  });
});
