/**
 * The one test suite every BlobDriver passes. A driver's own test file calls `blobDriverSuite` with a
 * factory and nothing else.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BlobNotFoundError, type BlobDriver } from './blob-driver.js';

export interface DriverTraits {
  /**
   * Whether writers offer `openReader` (default true). A driver whose unfinished objects are not
   * readable (S3 multipart parts) says false, and the suite checks that it indeed leaves it out.
   */
  followsWrites?: boolean;
}

export function blobDriverSuite(name: string, make: () => Promise<{ driver: BlobDriver; cleanup?: () => Promise<void> }>, traits: DriverTraits = {}): void {
  describe(`BlobDriver contract: ${name}`, () => {
    let driver: BlobDriver;
    let cleanup: (() => Promise<void>) | undefined;
    before(async () => {
      ({ driver, cleanup } = await make());
    });
    after(async () => cleanup?.());

    const read = async (key: string, range?: { offset: number; length?: number }) => {
      const chunks: Buffer[] = [];
      for await (const c of await driver.reader(key, range)) chunks.push(Buffer.from(c as Uint8Array));
      return Buffer.concat(chunks);
    };
    const put = async (key: string, data: Buffer) => {
      const w = await driver.writer(key);
      await w.write(data);
      await w.commit();
    };

    it('reports absent objects as undefined and refuses to read them', async () => {
      assert.equal(await driver.stat('a/missing'), undefined);
      await assert.rejects(driver.reader('a/missing'), BlobNotFoundError);
    });

    it('makes an object visible only after commit', async () => {
      const w = await driver.writer('vis/one');
      await w.write(Buffer.from('hello '));
      await w.write(Buffer.from('world'));
      assert.equal(w.size, 11);
      assert.equal(await driver.stat('vis/one'), undefined);
      await w.commit();
      assert.equal((await driver.stat('vis/one'))?.size, 11);
      assert.equal((await read('vis/one')).toString(), 'hello world');
    });

    it('keeps no reference to a chunk once its write resolved (callers recycle their buffers)', async () => {
      const w = await driver.writer('reuse/one');
      const buffer = Buffer.from('first ');
      await w.write(buffer);
      buffer.set(Buffer.from('second'));
      await w.write(buffer);
      buffer.fill(0);
      await w.commit();
      assert.equal((await read('reuse/one')).toString(), 'first second');
    });

    it('leaves nothing behind on cancel', async () => {
      const w = await driver.writer('cancel/one');
      await w.write(Buffer.from('partial'));
      await w.cancel();
      assert.equal(await driver.stat('cancel/one'), undefined);
      const keys: string[] = [];
      for await (const k of driver.list('cancel')) keys.push(k);
      assert.deepEqual(keys, []);
    });

    it('takes the final size up front: the object appears whole at commit only; short or long fails and leaves nothing', async () => {
      // Larger than the S3 driver's default part (8 MiB), in 64 KiB writes from one recycled buffer.
      const data = randomBytes(9 * 1024 * 1024 + 123);
      const writeAll = async (key: string, bytes: Buffer) => {
        const w = await driver.writer(key, { size: data.length });
        const buffer = Buffer.alloc(64 * 1024);
        for (let at = 0; at < bytes.length; at += buffer.length) {
          const n = bytes.copy(buffer, 0, at, at + buffer.length);
          await w.write(buffer.subarray(0, n));
          buffer.fill(0);
        }
        return w;
      };
      const w = await writeAll('sized/one', data);
      assert.equal(w.size, data.length);
      assert.equal(await driver.stat('sized/one'), undefined, 'every byte written, not committed: not visible');
      await w.commit();
      assert.equal((await driver.stat('sized/one'))?.size, data.length);
      assert.ok((await read('sized/one')).equals(data));

      const cancelled = await writeAll('sized/cancelled', data);
      await cancelled.cancel();
      const short = await writeAll('sized/short', data.subarray(0, data.length - 1));
      await assert.rejects(short.commit(), /announced/);
      const long = await writeAll('sized/long', data);
      await assert.rejects(long.write(Buffer.from('x')), /announced/);
      await long.cancel();
      for (const key of ['sized/cancelled', 'sized/short', 'sized/long']) assert.equal(await driver.stat(key), undefined, key);
    });

    it('reports when an object was last written', async () => {
      // Filesystems keep modification times at their own granularity and from a coarse clock.
      const slack = 2000;
      const before = Date.now();
      await put('mtime/obj', Buffer.from('first'));
      const first = await driver.stat('mtime/obj');
      assert.ok(first, 'the object is there');
      assert.equal(typeof first.modifiedAt, 'number');
      assert.ok(first.modifiedAt >= before - slack && first.modifiedAt <= Date.now() + slack, `modifiedAt ${first.modifiedAt} is about now (${before})`);
      await put('mtime/obj', Buffer.from('second'));
      const second = await driver.stat('mtime/obj');
      assert.ok(second && second.modifiedAt >= first.modifiedAt, 'a later write does not move it back');
      await driver.move('mtime/obj', 'mtime/moved');
      const moved = await driver.stat('mtime/moved');
      assert.ok(moved && moved.modifiedAt >= second.modifiedAt - slack && moved.modifiedAt <= Date.now() + slack, 'a move keeps the time or sets the time of the move');
    });

    it('appends and rolls back only the cancelled append', async () => {
      const a = await driver.writer('app/obj', { append: true });
      await a.write(Buffer.from('abc'));
      await a.commit();
      const b = await driver.writer('app/obj', { append: true });
      assert.equal(b.size, 3);
      await b.write(Buffer.from('def'));
      await b.commit();
      const c = await driver.writer('app/obj', { append: true });
      await c.write(Buffer.from('XYZ'));
      await c.cancel();
      assert.equal((await read('app/obj')).toString(), 'abcdef');
    });

    it('reads ranges', async () => {
      await put('range/obj', Buffer.from('0123456789'));
      assert.equal((await read('range/obj', { offset: 3 })).toString(), '3456789');
      assert.equal((await read('range/obj', { offset: 2, length: 4 })).toString(), '2345');
      assert.equal((await read('range/obj', { offset: 10 })).toString(), '');
    });

    it('streams a large object intact', async () => {
      const data = randomBytes(5 * 1024 * 1024 + 17);
      await put('big/obj', data);
      const hash = createHash('sha256');
      let size = 0;
      for await (const c of await driver.reader('big/obj')) {
        hash.update(c as Uint8Array);
        size += (c as Uint8Array).byteLength;
      }
      assert.equal(size, data.byteLength);
      assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
    });

    it('reads at positions when the driver offers positional access', async (t) => {
      if (!driver.openPositional) {
        t.diagnostic(`${name} offers no positional reads; streaming covers it`);
        assert.equal(driver.openPositional, undefined);
        return;
      }
      await put('pos/obj', Buffer.from('0123456789'));
      const r = await driver.openPositional('pos/obj');
      try {
        assert.equal(r.size, 10);
        const buf = Buffer.alloc(4);
        assert.equal(await r.read(buf, 3, 4), 4);
        assert.equal(buf.toString(), '3456');
        assert.equal(await r.read(buf, 8, 4), 2);
        assert.equal(await r.read(buf, 10, 4), 0);
      } finally {
        await r.close();
      }
      await assert.rejects(driver.openPositional('pos/missing'), BlobNotFoundError);
    });

    it('lets a reader follow an object while it is written, and after commit or cancel', async () => {
      if (traits.followsWrites === false) {
        const w = await driver.writer('follow/none');
        assert.equal(w.openReader, undefined, `${name} declares that its writers cannot be followed`);
        await w.cancel();
        return;
      }
      for (const end of ['commit', 'cancel'] as const) {
        const w = await driver.writer(`follow/${end}`);
        // A driver without it makes proxy fills keep a spool file.
        assert.ok(w.openReader, `${name} writers offer openReader`);
        const r = await w.openReader();
        try {
          await w.write(Buffer.from('abcd'));
          const buf = Buffer.alloc(8);
          assert.equal(await r.read(buf, 0, 8), 4);
          assert.equal(buf.subarray(0, 4).toString(), 'abcd');
          await w.write(Buffer.from('efgh'));
          await w.write(Buffer.from('ij'));
          assert.equal(r.size, 10);
          assert.equal(await r.read(buf, 3, 5), 5);
          assert.equal(buf.subarray(0, 5).toString(), 'defgh');
          await (end === 'commit' ? w.commit() : w.cancel());
          assert.equal(await r.read(buf, 6, 8), 4, `still readable after ${end}`);
          assert.equal(buf.subarray(0, 4).toString(), 'ghij');
        } finally {
          await r.close();
        }
        assert.equal((await driver.stat(`follow/${end}`))?.size, end === 'commit' ? 10 : undefined);
      }
    });

    it('moves atomically and replaces the target', async () => {
      await put('mv/src', Buffer.from('new'));
      await put('mv/dst', Buffer.from('old'));
      await driver.move('mv/src', 'mv/dst');
      assert.equal(await driver.stat('mv/src'), undefined);
      assert.equal((await read('mv/dst')).toString(), 'new');
      await assert.rejects(driver.move('mv/nothing', 'mv/x'), BlobNotFoundError);
    });

    it('deletes idempotently', async () => {
      await put('del/obj', Buffer.from('x'));
      await driver.delete('del/obj');
      await driver.delete('del/obj');
      assert.equal(await driver.stat('del/obj'), undefined);
    });

    it('lists keys under a prefix, in key order', async () => {
      // Written out of order; '-' and '.' sort before '/', upper case before lower case.
      for (const k of ['ls/b/3', 'ls/a/2', 'ls/a.c', 'ls/a/1', 'ls/a-b/5', 'ls/B', 'lsx/4']) await put(k, Buffer.from('1'));
      const keys: string[] = [];
      for await (const k of driver.list('ls')) keys.push(k);
      assert.deepEqual(keys, ['ls/B', 'ls/a-b/5', 'ls/a.c', 'ls/a/1', 'ls/a/2', 'ls/b/3']);
      // Whole keys, which stat() accepts, with or without a trailing slash on the prefix.
      const slashed: string[] = [];
      for await (const k of driver.list('ls/')) slashed.push(k);
      assert.deepEqual(slashed, keys);
      for (const k of keys) assert.equal((await driver.stat(k))?.size, 1);
    });

    it('refuses keys that escape the key space', async () => {
      await assert.rejects(async () => driver.stat('../etc/passwd'));
      await assert.rejects(async () => driver.writer('/abs'));
      await assert.rejects(async () => driver.stat('a//b'));
    });
  });
}
