import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FaultyDriver } from '../../test/helpers/faulty-driver.js';
import type { Digest } from '../oci/digest.js';
import { BlobNotFoundError, StorageUnavailableError, type BlobDriver } from './blob-driver.js';
import { blobDriverSuite } from './driver-test-suite.js';
import { FsBlobDriver } from './fs/fs-blob-driver.js';
import { blobKey, uploadKey } from './keys.js';
import { LocatedBlobDriver, type LocatedDriverOptions } from './located-driver.js';
import { MemoryBlobDriver } from './memory/memory-blob-driver.js';

blobDriverSuite('located (two memory locations)', async () => ({
  driver: new LocatedBlobDriver([
    { name: 'a', driver: new MemoryBlobDriver() },
    { name: 'b', driver: new MemoryBlobDriver() },
  ]),
}));

blobDriverSuite('located (two filesystem locations)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-located-'));
  return {
    driver: new LocatedBlobDriver([
      { name: 'a', driver: new FsBlobDriver(join(root, 'a')) },
      { name: 'b', driver: new FsBlobDriver(join(root, 'b')) },
    ]),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

const digestOf = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}` as Digest;

async function put(driver: BlobDriver, key: string, text: string): Promise<void> {
  const w = await driver.writer(key);
  await w.write(Buffer.from(text));
  await w.commit();
}

async function read(driver: BlobDriver, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await driver.reader(key)) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks).toString();
}

/** Two memory locations behind fault doubles; every verdict is checked afresh unless `opts` says otherwise. */
function twoLocations(opts: LocatedDriverOptions = { cacheMs: 0 }) {
  const a = new FaultyDriver(new MemoryBlobDriver(), 'location a');
  const b = new FaultyDriver(new MemoryBlobDriver(), 'location b');
  const located = new LocatedBlobDriver(
    [
      { name: 'a', driver: a },
      { name: 'b', driver: b },
    ],
    opts,
  );
  const committed: Array<[Digest, string]> = [];
  located.onCommitted((digest, location) => committed.push([digest, location]));
  return { a, b, located, committed };
}

describe('LocatedBlobDriver', () => {
  it('writes to the first preferred location and reports committed blob keys with it', async () => {
    const { a, b, located, committed } = twoLocations();
    assert.deepEqual(
      located.preferred.map((l) => l.name),
      ['a', 'b'],
    );
    assert.equal(located.get('b')?.driver, b);
    await put(located, blobKey(digestOf('one')), 'one');
    await put(located, 'other/key', 'not a blob');
    assert.equal(await a.inner.stat(blobKey(digestOf('one'))).then((s) => s?.size), 3);
    assert.equal(await b.inner.stat(blobKey(digestOf('one'))), undefined);
    assert.deepEqual(committed, [[digestOf('one'), 'a']]);
    assert.deepEqual(await located.holders(blobKey(digestOf('one'))), { holders: ['a'], failed: [] });
  });

  it('reads from the first preferred holder and falls back to the next when it lacks the key or fails', async () => {
    const { a, b, located } = twoLocations();
    await put(b, 'k/only-in-b', 'from b');
    await put(a, 'k/both', 'from a');
    await put(b, 'k/both', 'from b');
    assert.equal(await read(located, 'k/only-in-b'), 'from b');
    assert.equal((await located.stat('k/only-in-b'))?.size, 6);
    assert.equal(await read(located, 'k/both'), 'from a');
    a.down = true;
    assert.equal(await read(located, 'k/both'), 'from b');
    assert.equal((await located.stat('k/both'))?.size, 6);
    assert.deepEqual(await located.holders('k/both'), { holders: ['b'], failed: ['a'] });
    // Absent where it answered, and a location failed: maybe there, so unavailable rather than missing.
    await assert.rejects(located.reader('k/missing'), StorageUnavailableError);
    a.down = false;
    await assert.rejects(located.reader('k/missing'), BlobNotFoundError);
    assert.equal(await located.stat('k/missing'), undefined);
  });

  it('places writes in the next location while the first is down, and in the first again once it is back', async () => {
    const { a, b, located, committed } = twoLocations();
    a.down = true;
    await located.check();
    await put(located, blobKey(digestOf('during')), 'during');
    assert.equal(await b.inner.stat(blobKey(digestOf('during'))).then((s) => s?.size), 6);
    assert.deepEqual(committed, [[digestOf('during'), 'b']]);
    assert.equal(await read(located, blobKey(digestOf('during'))), 'during');
    a.down = false;
    await put(located, blobKey(digestOf('after')), 'after');
    assert.equal(await a.inner.stat(blobKey(digestOf('after'))).then((s) => s?.size), 5);
    assert.deepEqual(committed.at(-1), [digestOf('after'), 'a']);
  });

  it('marks a location that fails during a write down until its next check', async () => {
    const { a, b, located } = twoLocations({ cacheMs: 60_000 });
    await put(located, 'k/first', 'first');
    const checks = a.checks;
    const w = await located.writer('k/second');
    a.down = true;
    await assert.rejects(w.write(Buffer.from('second')), StorageUnavailableError);
    await w.cancel();
    // The verdict is still fresh (60 s) but the failure counts: the retry goes to b without a check of a.
    a.down = false;
    await put(located, 'k/second', 'second');
    assert.equal(a.checks, checks);
    assert.equal(await b.inner.stat('k/second').then((s) => s?.size), 6);
  });

  it('does not ask a location that just failed again until its next check (reads go straight to the next)', async () => {
    const { a, b, located } = twoLocations({ cacheMs: 60_000 });
    await put(b, 'k/in-b', 'from b');
    a.down = true;
    assert.equal(await read(located, 'k/in-b'), 'from b');
    const calls = a.calls;
    assert.equal(await read(located, 'k/in-b'), 'from b');
    assert.equal(await located.stat('k/missing'), undefined);
    await assert.rejects(located.reader('k/missing'), (err: unknown) => err instanceof StorageUnavailableError && /storage location "a": location a: switched down/.test(err.message));
    await assert.rejects(located.delete('k/in-b'), StorageUnavailableError);
    assert.equal(a.calls, calls, 'a was not asked again');
    assert.equal(await b.inner.stat('k/in-b'), undefined, 'the delete went on in b');
  });

  it('fails with StorageUnavailableError when every location is down, and not found when none holds the key', async () => {
    const { a, b, located } = twoLocations();
    await put(located, 'k/there', 'x');
    a.down = true;
    b.down = true;
    await assert.rejects(located.check(), StorageUnavailableError);
    await assert.rejects(located.writer('k/new'), (err: unknown) => err instanceof StorageUnavailableError && /no location can take writes/.test(err.message));
    await assert.rejects(located.reader('k/there'), StorageUnavailableError);
    await assert.rejects(located.stat('k/there'), StorageUnavailableError);
    a.down = false;
    b.down = false;
    await located.check();
    await assert.rejects(located.move('k/nothing', 'k/x'), BlobNotFoundError);
  });

  it('continues an upload and moves it in the location that holds it, reporting that location', async () => {
    const { a, b, located, committed } = twoLocations();
    a.down = true;
    const first = await located.writer(uploadKey('u1'), { append: true });
    await first.write(Buffer.from('hello '));
    await first.commit();
    a.down = false;
    const second = await located.writer(uploadKey('u1'), { append: true });
    assert.equal(second.size, 6);
    await second.write(Buffer.from('world'));
    await second.commit();
    assert.equal(await a.inner.stat(uploadKey('u1')), undefined);
    const digest = digestOf('hello world');
    await located.move(uploadKey('u1'), blobKey(digest));
    assert.equal(await read(b.inner, blobKey(digest)), 'hello world');
    assert.equal(await a.inner.stat(blobKey(digest)), undefined);
    assert.deepEqual(committed, [[digest, 'b']]);
  });

  it('deletes from every location (a down one does not stop the others) and lists each key once', async () => {
    const { a, b, located } = twoLocations();
    await put(a, 'ls/1', '1');
    await put(b, 'ls/1', '1');
    await put(b, 'ls/2', '2');
    const keys: string[] = [];
    for await (const k of located.list('ls')) keys.push(k);
    assert.deepEqual(keys, ['ls/1', 'ls/2']);
    b.down = true;
    await assert.rejects(located.delete('ls/1'), StorageUnavailableError);
    assert.equal(await a.inner.stat('ls/1'), undefined);
    b.down = false;
    await located.delete('ls/1');
    assert.equal(await b.inner.stat('ls/1'), undefined);
  });

  it('lists the union of overlapping, disjoint and interleaved key sets once each, in key order', async () => {
    const cases: Array<[string, string[], string[]]> = [
      ['overlapping', ['k/1', 'k/2', 'k/3'], ['k/2', 'k/3', 'k/4']],
      ['the same', ['k/1', 'k/2'], ['k/1', 'k/2']],
      ['disjoint, a first', ['k/1', 'k/2'], ['k/3', 'k/4']],
      ['disjoint, b first', ['k/3', 'k/4'], ['k/1', 'k/2']],
      ['interleaved', ['k/1', 'k/3', 'k/5', 'k/a-b', 'k/a/1'], ['k/2', 'k/3', 'k/4', 'k/a.c', 'k/a/1', 'k/b']],
      ['one empty', [], ['k/2', 'k/1']],
      ['both empty', [], []],
    ];
    for (const [name, inA, inB] of cases) {
      const { a, b, located } = twoLocations();
      for (const k of inA) await put(a, k, 'a');
      for (const k of inB) await put(b, k, 'b');
      const keys: string[] = [];
      for await (const k of located.list('k')) keys.push(k);
      assert.deepEqual(keys, [...new Set([...inA, ...inB])].sort(), name);
    }
  });

  it('reads each location at most one key ahead of what it yielded, and closes the listings when stopped early', async () => {
    /** An ordered listing of `count` keys, counting the keys pulled and whether it was closed. */
    const counted = (count: number, step: number, offset: number) => {
      const seen = { pulled: 0, closed: false };
      const driver = Object.assign(new MemoryBlobDriver(), {
        async *list(): AsyncIterable<string> {
          try {
            for (let i = 0; i < count; i++) {
              seen.pulled++;
              yield `k/${String(offset + i * step).padStart(8, '0')}`;
            }
          } finally {
            seen.closed = true;
          }
        },
      });
      return { driver, seen };
    };
    const a = counted(1_000_000, 2, 0);
    const b = counted(1_000_000, 2, 1);
    const located = new LocatedBlobDriver([
      { name: 'a', driver: a.driver },
      { name: 'b', driver: b.driver },
    ]);
    const keys: string[] = [];
    for await (const k of located.list('k')) {
      keys.push(k);
      if (keys.length === 10) break;
    }
    assert.deepEqual(keys, Array.from({ length: 10 }, (_, i) => `k/${String(i).padStart(8, '0')}`));
    assert.ok(a.seen.pulled <= 6 && b.seen.pulled <= 6, `pulled ${a.seen.pulled} and ${b.seen.pulled} keys for 10 yielded`);
    assert.ok(a.seen.closed && b.seen.closed);
  });

  it('refuses a location whose listing is out of key order, and fails a listing when a location fails', async () => {
    const unordered = Object.assign(new MemoryBlobDriver(), {
      async *list(): AsyncIterable<string> {
        yield 'k/2';
        yield 'k/1';
      },
    });
    const located = new LocatedBlobDriver([
      { name: 'a', driver: unordered },
      { name: 'b', driver: new MemoryBlobDriver() },
    ]);
    await assert.rejects(async () => {
      for await (const _ of located.list('k'));
    }, /storage location "a" listed k\/1 after k\/2/);
    const { a, b, located: two } = twoLocations();
    await put(a, 'k/1', 'a');
    b.down = true;
    await assert.rejects(async () => {
      for await (const _ of two.list('k'));
    }, StorageUnavailableError);
  });

  it('remembers the holder a redirect found until its lifetime ends or the location is found down, and keeps a bounded number', async () => {
    let clock = 0;
    const a = new FaultyDriver(new MemoryBlobDriver(), 'location a');
    const b = new FaultyDriver(new MemoryBlobDriver(), 'location b');
    for (const [name, d] of [['a', a], ['b', b]] as const) Object.assign(d, { redirectUrl: async (key: string) => `https://${name}.example/${key}` });
    const located = new LocatedBlobDriver(
      [
        { name: 'a', driver: a },
        { name: 'b', driver: b },
      ],
      { cacheMs: 0, holders: { ttlMs: 1000, size: 2, now: () => clock } },
    );
    for (const k of ['k/1', 'k/2', 'k/3']) {
      await put(a.inner, k, k);
      await put(b.inner, k, k);
    }
    const calls = () => a.calls + b.calls;
    assert.equal(await located.redirectUrl!('k/1'), 'https://a.example/k/1');
    const afterFirst = calls();
    assert.equal(await located.redirectUrl!('k/1'), 'https://a.example/k/1');
    assert.equal(calls(), afterFirst, 'remembered: no stat');
    clock = 1000;
    await located.redirectUrl!('k/1');
    assert.equal(calls(), afterFirst + 1, 'expired: looked up again');
    // Down (its check fails): the other holder, without waiting for the lifetime to end.
    a.down = true;
    assert.equal(await located.redirectUrl!('k/1'), 'https://b.example/k/1');
    a.down = false;
    // Two keys remembered at most: the least recently used is looked up again.
    await located.redirectUrl!('k/2');
    await located.redirectUrl!('k/3');
    const before = calls();
    await located.redirectUrl!('k/3');
    await located.redirectUrl!('k/2');
    assert.equal(calls(), before);
    await located.redirectUrl!('k/1');
    assert.ok(calls() > before, 'k/1 was dropped');
  });

  it('with requireIdentity, uses a location not verified at start, or back after being down, only once its verification passed', async () => {
    const { a, b, located } = twoLocations();
    const key = blobKey(digestOf('held by a'));
    await put(a.inner, key, 'held by a');
    const verified: string[] = [];
    let verdict: Error | undefined = new Error('storage location "a" is not the storage the database knows');
    located.requireIdentity(async (l) => {
      verified.push(l.name);
      if (l.name === 'a' && verdict) throw verdict;
    }, ['b']);
    // a was not verified at start (down then): its verification fails, so it is used for nothing.
    await put(located, blobKey(digestOf('new')), 'new');
    assert.ok(await b.inner.stat(blobKey(digestOf('new'))), 'written to b');
    assert.equal(await a.inner.stat(blobKey(digestOf('new'))), undefined, 'nothing written to a');
    await assert.rejects(read(located, key), (err: unknown) => err instanceof StorageUnavailableError && /not the storage the database knows/.test(err.message));
    assert.equal(await located.stat(key), undefined);
    assert.deepEqual(await located.holders(key), { holders: [], failed: ['a'] });
    await located.delete(key).catch(() => undefined);
    assert.ok(await a.inner.stat(key), 'a delete leaves an unverified location alone');
    assert.ok(verified.includes('a') && !verified.includes('b'), verified.join());

    // Its verification passes: a is used again, and not verified on every request.
    verdict = undefined;
    assert.equal(await read(located, key), 'held by a');
    assert.deepEqual(await located.holders(key), { holders: ['a'], failed: [] });
    const checksWhileUp = verified.length;
    await read(located, key);
    await put(located, blobKey(digestOf('to a')), 'to a');
    assert.ok(await a.inner.stat(blobKey(digestOf('to a'))));
    assert.equal(verified.length, checksWhileUp, 'no verification while it stays up');

    // a fails, then comes back as other storage: it is not used until it is verified again.
    a.down = true;
    await assert.rejects(read(located, key), StorageUnavailableError);
    a.down = false;
    verdict = new Error('storage location "a" is not the storage the database knows');
    const before = verified.length;
    await assert.rejects(read(located, key), /not the storage the database knows/);
    await put(located, blobKey(digestOf('while other')), 'while other');
    assert.equal(await a.inner.stat(blobKey(digestOf('while other'))), undefined);
    assert.ok(verified.length > before, 'verified again once back');
    verdict = undefined;
    assert.equal(await read(located, key), 'held by a');
  });

  it('labels a location whose directory fails (a system error) unavailable and falls back', async () => {
    const root = await mkdtemp(join(tmpdir(), 'wharf-located-fs-'));
    try {
      const memory = new MemoryBlobDriver();
      const located = new LocatedBlobDriver(
        [
          // A file where the first location's directory should be: every path under it is ENOTDIR.
          { name: 'fs', driver: new FsBlobDriver(join(root, 'file', 'blobs')) },
          { name: 'mem', driver: memory },
        ],
        { cacheMs: 0 },
      );
      await put(memory, 'k/one', 'in memory');
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(root, 'file'), 'not a directory');
      assert.equal(await read(located, 'k/one'), 'in memory');
      await put(located, 'k/two', 'placed');
      assert.equal(await read(memory, 'k/two'), 'placed');
      await assert.rejects(located.reader('k/none'), (err: unknown) => err instanceof StorageUnavailableError && /storage location "fs": ENOTDIR/.test(err.message));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('offers positional reads only when every location does, and redirect URLs of the holder', async () => {
    const root = await mkdtemp(join(tmpdir(), 'wharf-located-pos-'));
    try {
      const fs = new FsBlobDriver(root);
      assert.equal(new LocatedBlobDriver([{ name: 'fs', driver: fs }, { name: 'mem', driver: new MemoryBlobDriver() }]).openPositional, undefined);
      const memory = new MemoryBlobDriver();
      const urls = Object.assign(memory, { redirectUrl: async (key: string) => `https://mem.example/${key}` });
      const located = new LocatedBlobDriver([
        { name: 'fs', driver: fs },
        { name: 'mem', driver: urls },
      ]);
      await put(fs, 'k/fs', 'fs');
      await put(memory, 'k/mem', 'mem');
      assert.equal(await located.redirectUrl!('k/fs'), undefined, 'the filesystem holds it and has no URLs');
      assert.equal(await located.redirectUrl!('k/mem'), 'https://mem.example/k/mem');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
