import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { digestOf, type Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { FsBlobDriver } from '../../storage/fs/fs-blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import { MemoryBlobDriver } from '../../storage/memory/memory-blob-driver.js';
import type { BlobBody } from '../blobs.js';
import { storeVerified } from '../verified-write.js';
import { BlobFills, type FillSource } from './blob-fills.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 64 * KiB;

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(name: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `wharf-${name}-`));
  dirs.push(d);
  return d;
}

interface World {
  storage: BlobDriver;
  fills: BlobFills;
  spoolDir: string;
  storageRoot?: string;
}

const drivers: Array<[string, () => Promise<World>]> = [
  ['memory', async () => {
    const spoolDir = join(await tempDir('spool'), 'spool');
    const storage = new MemoryBlobDriver();
    return { storage, spoolDir, fills: new BlobFills({ storage, spoolDir }) };
  }],
  ['filesystem', async () => {
    const storageRoot = await tempDir('fs');
    const spoolDir = join(await tempDir('spool'), 'spool');
    const storage = new FsBlobDriver(storageRoot, { fsync: false });
    return { storage, spoolDir, storageRoot, fills: new BlobFills({ storage, spoolDir }) };
  }],
  ['filesystem, spool file', async () => {
    const storageRoot = await tempDir('fs-spool');
    const spoolDir = join(await tempDir('spool'), 'spool');
    const storage = withoutFollowing(new FsBlobDriver(storageRoot, { fsync: false }));
    return { storage, spoolDir, storageRoot, fills: new BlobFills({ storage, spoolDir }) };
  }],
];

/** The driver as one whose unfinished objects cannot be read (like object storage): fills keep a spool file. */
function withoutFollowing(driver: BlobDriver): BlobDriver {
  const d = Object.create(driver) as BlobDriver;
  d.writer = async (key, opts) => {
    const w = await driver.writer(key, opts);
    return { get size() { return w.size; }, write: (c) => w.write(c), commit: () => w.commit(), cancel: () => w.cancel() };
  };
  return d;
}

/** A source the test feeds by hand: `send` bytes (in CHUNK slices), `end`, or `fail`. */
class Feed {
  readonly stream = new PassThrough();
  sent = 0;
  constructor(private readonly data: Buffer) {}
  sendUpTo(offset: number): void {
    while (this.sent < offset) {
      const next = Math.min(offset, this.sent + CHUNK);
      this.stream.write(this.data.subarray(this.sent, next));
      this.sent = next;
    }
  }
  end(): void {
    this.stream.end();
  }
  fail(message = 'upstream connection reset'): void {
    this.stream.destroy(new Error(message));
  }
}

/** A source that yields `data` in CHUNK slices, yielding to the event loop every few chunks. */
async function* paced(data: Buffer, every = 4): AsyncGenerator<Uint8Array> {
  let n = 0;
  for (let i = 0; i < data.length; i += CHUNK) {
    if (++n % every === 0) await new Promise((r) => setImmediate(r));
    yield data.subarray(i, i + CHUNK);
  }
}

/** Follows a reader: the bytes so far, and how it finished. */
function follow(stream: Readable) {
  const state = {
    chunks: [] as Buffer[],
    bytes: 0,
    ended: false,
    error: undefined as Error | undefined,
    finished: undefined as unknown as Promise<void>,
    data: () => Buffer.concat(state.chunks),
  };
  state.finished = new Promise<void>((resolve) => {
    stream.on('data', (c: Buffer) => {
      state.chunks.push(c);
      state.bytes += c.length;
    });
    stream.on('end', () => {
      state.ended = true;
      resolve();
    });
    stream.on('error', (err) => {
      state.error = err;
      resolve();
    });
    stream.on('close', () => resolve());
  });
  return state;
}

/** Reads a body as send-blob.ts sends one: positional reads into one buffer it reuses (copied out here). */
function drain(body: BlobBody, bufferBytes = 200_000) {
  if (body.kind === 'stream') return follow(body.stream);
  const state = {
    chunks: [] as Buffer[],
    bytes: 0,
    ended: false,
    error: undefined as Error | undefined,
    finished: undefined as unknown as Promise<void>,
    data: () => Buffer.concat(state.chunks),
  };
  const { reader, offset, length } = body;
  state.finished = (async () => {
    const buffer = Buffer.allocUnsafe(bufferBytes);
    try {
      for (let at = offset; at < offset + length; ) {
        const n = await reader.read(buffer, at, Math.min(buffer.length, offset + length - at));
        if (n === 0) throw new Error(`body ended at ${at - offset} of ${length} bytes`);
        state.chunks.push(Buffer.from(buffer.subarray(0, n)));
        buffer.fill(0xee); // a reader must never depend on what it handed out before
        state.bytes += n;
        at += n;
      }
      state.ended = true;
    } catch (err) {
      state.error = err as Error;
    } finally {
      await reader.close();
    }
  })();
  return state;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Spool files still present, and file descriptors of this process still pointing into the spool dir. */
/** Spool files, and descriptors open on the spool directory or (readers follow storage) the storage root. */
async function spoolLeftovers(spoolDir: string, storageRoot?: string): Promise<{ files: string[]; fds: number }> {
  const files = await readdir(spoolDir).catch(() => []);
  let fds = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(spoolDir) || (storageRoot !== undefined && target.startsWith(storageRoot))) fds++;
  }
  return { files, fds };
}

async function assertNoLeftovers(w: World): Promise<void> {
  // Closing the last handle is asynchronous; give it a moment.
  const deadline = Date.now() + 2000;
  let left = await spoolLeftovers(w.spoolDir, w.storageRoot);
  while ((left.files.length || left.fds) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    left = await spoolLeftovers(w.spoolDir, w.storageRoot);
  }
  assert.deepEqual(left, { files: [], fds: 0 }, 'spool files and descriptors are released');
  if (w.storageRoot) assert.deepEqual(await readdir(join(w.storageRoot, '.tmp')).catch(() => []), [], 'no staged storage writes left');
}

function blob(size: number): { data: Buffer; digest: Digest } {
  const data = randomBytes(size);
  return { data, digest: digestOf(data) };
}

async function stored(storage: BlobDriver, digest: Digest): Promise<Buffer | undefined> {
  if (!(await storage.stat(blobKey(digest)))) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of await storage.reader(blobKey(digest))) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

for (const [driverName, world] of drivers) {
  describe(`BlobFills (${driverName} storage)`, () => {
    it('starts one fetch for 8 concurrent joins and streams identical, complete bytes to all', async () => {
      const w = await world();
      const { data, digest } = blob(6 * MiB + 123);
      let starts = 0;
      const start = async (): Promise<FillSource> => {
        starts++;
        await new Promise((r) => setTimeout(r, 5));
        return { stream: Readable.from(paced(data)), size: data.length };
      };
      const handles = await Promise.all(Array.from({ length: 8 }, () => w.fills.join(digest, start)));
      assert.equal(starts, 1);
      assert.equal(handles.filter((h) => !h.joined).length, 1);
      assert.ok(w.fills.inFlight(digest));
      const readers = handles.map((h) => follow(h.open()));
      await Promise.all(readers.map((r) => r.finished));
      for (const r of readers) {
        assert.equal(r.error, undefined);
        assert.ok(r.ended);
        assert.ok(r.data().equals(data));
      }
      assert.deepEqual(await handles[0]!.done, { size: data.length });
      assert.ok((await stored(w.storage, digest))!.equals(data));
      await until(() => !w.fills.inFlight(digest), 'the fill to be forgotten');
      assert.deepEqual(w.fills.stats(), { started: 1, joined: 7, failed: 0, committed: 1, bytesFromUpstream: data.length, inFlight: 0 });
      await assertNoLeftovers(w);
    });

    it('gives a late joiner the whole blob, and holds back the end until verified', async () => {
      const w = await world();
      const { data, digest } = blob(3 * MiB);
      const feed = new Feed(data);
      const first = await w.fills.join(digest, async () => ({ stream: feed.stream, size: data.length }));
      const early = follow(first.open());
      feed.sendUpTo(data.length / 2);
      await until(() => early.bytes >= data.length / 2 - CHUNK, 'the first reader to get half');
      const late = await w.fills.join(digest, async () => assert.fail('a second fetch was started'));
      assert.ok(late.joined);
      const lateReader = follow(late.open());
      await until(() => lateReader.bytes >= data.length / 2 - CHUNK, 'the late reader to catch up');
      feed.sendUpTo(data.length);
      await until(() => early.bytes === data.length - 1, 'all but the held-back byte');
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(early.bytes, data.length - 1, 'the last byte waits for the end of the upstream body');
      assert.ok(!early.ended);
      feed.end();
      await Promise.all([early.finished, lateReader.finished]);
      assert.ok(early.data().equals(data));
      assert.ok(lateReader.data().equals(data));
      await first.done;
      await assertNoLeftovers(w);
    });

    it('streams the first chunk at once (or, size unknown, once the next one shows it was not the last)', async () => {
      const w = await world();
      const { data, digest } = blob(MiB);
      const known = new Feed(data);
      const h = await w.fills.join(digest, async () => ({ stream: known.stream, size: data.length }));
      const r = follow(h.open());
      known.sendUpTo(CHUNK);
      await until(() => r.bytes === CHUNK, 'the first chunk');
      known.sendUpTo(data.length);
      known.end();
      await h.done;

      const other = blob(MiB);
      const unknown = new Feed(other.data);
      const h2 = await w.fills.join(other.digest, async () => ({ stream: unknown.stream }));
      const r2 = follow(h2.open());
      unknown.sendUpTo(CHUNK);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(r2.bytes, 0, 'the only chunk so far might be the last: held back');
      unknown.sendUpTo(2 * CHUNK);
      await until(() => r2.bytes === CHUNK, 'the first chunk');
      unknown.sendUpTo(other.data.length);
      unknown.end();
      await r2.finished;
      assert.ok(r2.ended && r2.data().equals(other.data));
      assert.deepEqual(await h2.done, { size: MiB });
      await assertNoLeftovers(w);
    });

    it('serves ranges during a fill, ending them only after verification', async () => {
      const w = await world();
      const { data, digest } = blob(2 * MiB + 17);
      const feed = new Feed(data);
      const h = await w.fills.join(digest, async () => ({ stream: feed.stream, size: data.length }));
      const ranges = [
        { start: 0, end: 99 },
        { start: MiB - 5, end: MiB + 70_000 },
        { start: data.length - 10, end: data.length - 1 },
        { start: 12_345, end: 12_345 },
      ];
      const readers = ranges.map((r) => follow(h.open(r)));
      assert.throws(() => h.open({ start: 10, end: data.length }), (err: unknown) => err instanceof RegistryError && err.code === 'RANGE_INVALID');
      feed.sendUpTo(MiB + 200_000);
      await until(() => readers[1]!.bytes === 70_005, 'the middle range minus its last byte');
      assert.equal(readers[0]!.bytes, 99);
      assert.ok(!readers[0]!.ended && !readers[1]!.ended, 'no range ends before the blob is verified');
      assert.equal(readers[2]!.bytes, 0);
      feed.sendUpTo(data.length);
      feed.end();
      await Promise.all(readers.map((r) => r.finished));
      ranges.forEach((r, i) => assert.ok(readers[i]!.data().equals(data.subarray(r.start, r.end + 1)), `range ${i}`));
      await h.done;
      await assertNoLeftovers(w);
    });

    it('sends positional bodies: whole and ranges, each holding back its last byte until verified', async () => {
      const w = await world();
      const { data, digest } = blob(2 * MiB + 17);
      const feed = new Feed(data);
      const h = await w.fills.join(digest, async () => ({ stream: feed.stream, size: data.length }));
      const whole = await h.body();
      assert.equal(whole.kind, 'positional');
      const ranges = [
        { start: MiB - 5, end: MiB + 70_000 },
        { start: data.length - 10, end: data.length - 1 },
      ];
      const readers = [drain(whole), ...(await Promise.all(ranges.map((r) => h.body(r)))).map((b) => drain(b))];
      await assert.rejects(h.body({ start: 10, end: data.length }), (err: unknown) => err instanceof RegistryError && err.code === 'RANGE_INVALID');
      feed.sendUpTo(CHUNK);
      await until(() => readers[0]!.bytes === CHUNK, 'the first chunk at once');
      feed.sendUpTo(data.length);
      await until(() => readers[0]!.bytes === data.length - 1 && readers[2]!.bytes === 9, 'all but the held-back bytes');
      await until(() => readers[1]!.bytes === 70_005, 'the middle range minus its last byte');
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(readers[0]!.bytes, data.length - 1, 'the last byte waits for the end of the upstream body');
      assert.ok(!readers[0]!.ended && !readers[1]!.ended && !readers[2]!.ended, 'no body ends before the blob is verified');
      feed.end();
      await Promise.all(readers.map((r) => r.finished));
      assert.ok(readers[0]!.ended && readers[0]!.data().equals(data));
      ranges.forEach((r, i) => assert.ok(readers[i + 1]!.data().equals(data.subarray(r.start, r.end + 1)), `range ${i}`));
      await h.done;
      // After the fill, a body reads the committed blob from storage.
      const again = drain(await h.body({ start: 10, end: 20 }));
      await again.finished;
      assert.ok(again.ended && again.data().equals(data.subarray(10, 21)));
      await assertNoLeftovers(w);
    });

    it('gives a reader far behind the fill the right bytes after the fill reused its buffers', async () => {
      const w = await world();
      const { data, digest } = blob(24 * MiB + 5);
      const feed = new Feed(data);
      const h = await w.fills.join(digest, async () => ({ stream: feed.stream, size: data.length }));
      const behind = (await h.body()) as Extract<BlobBody, { kind: 'positional' }>;
      const head = drain(await h.body());
      const start = Buffer.alloc(1000);
      feed.sendUpTo(MiB);
      assert.equal(await behind.reader.read(start, 0, start.length), start.length);
      assert.ok(start.equals(data.subarray(0, 1000)));
      feed.sendUpTo(20 * MiB);
      await until(() => head.bytes >= 20 * MiB - CHUNK, 'the head reader to follow the fill to 20 MiB');
      const rest = drain({ ...behind, offset: 1000, length: data.length - 1000 }, 777_777);
      await until(() => rest.bytes >= 20 * MiB - 1000 - CHUNK, 'the reader behind to catch up');
      feed.sendUpTo(data.length);
      feed.end();
      await Promise.all([head.finished, rest.finished]);
      assert.ok(head.ended && head.data().equals(data));
      assert.ok(rest.ended && rest.data().equals(data.subarray(1000)), 'bytes read from storage and from the buffers match the blob');
      await h.done;
      await assertNoLeftovers(w);
    });

    it('fails positional reads when the fill fails, and lets go of the spool when a body closes', async () => {
      const w = await world();
      const { data, digest } = blob(3 * MiB);
      const feed = new Feed(data);
      const h = await w.fills.join(digest, async () => ({ stream: feed.stream, size: data.length }));
      const failing = drain(await h.body());
      const closed = (await h.body()) as Extract<BlobBody, { kind: 'positional' }>;
      feed.sendUpTo(MiB + CHUNK);
      await until(() => failing.bytes >= MiB, 'a MiB');
      await closed.reader.close(); // a client that hung up
      feed.fail();
      await assert.rejects(h.done, /upstream connection reset/);
      await failing.finished;
      assert.ok(failing.error && !failing.ended && /upstream connection reset/.test(failing.error.message));
      const late = drain(await h.body());
      await late.finished;
      assert.ok(late.error && late.bytes === 0, 'a body of a failed fill fails');
      assert.equal(await w.storage.stat(blobKey(digest)), undefined);
      await assertNoLeftovers(w);
    });

    it('sends a blob of unannounced size as a stream', async () => {
      const w = await world();
      const { data, digest } = blob(MiB);
      const h = await w.fills.join(digest, async () => ({ stream: Readable.from(paced(data)) }));
      const body = await h.body();
      assert.equal(body.kind, 'stream');
      const r = drain(body);
      await r.finished;
      assert.ok(r.ended && r.data().equals(data));
      await h.done;
      await assertNoLeftovers(w);
    });

    it('finishes and commits the fill when a client hangs up', async () => {
      const w = await world();
      const { data, digest } = blob(4 * MiB);
      const feed = new Feed(data);
      const h = await w.fills.join(digest, async () => ({ stream: feed.stream, size: data.length }));
      const stream = h.open();
      const r = follow(stream);
      feed.sendUpTo(MiB);
      await until(() => r.bytes > 0, 'some bytes');
      stream.destroy();
      feed.sendUpTo(data.length);
      feed.end();
      assert.deepEqual(await h.done, { size: data.length });
      assert.ok((await stored(w.storage, digest))!.equals(data));
      // After the fill, a handle reads the committed blob from storage.
      const again = follow(h.open({ start: 10, end: 20 }));
      await again.finished;
      assert.ok(again.data().equals(data.subarray(10, 21)));
      await assertNoLeftovers(w);
    });

    for (const [name, announce] of [['announced', true], ['unannounced', false]] as const) {
      it(`discards a body with the wrong digest (size ${name}): readers error, nothing is cached`, async () => {
        const w = await world();
        const { data } = blob(3 * MiB);
        const digest = digestOf(Buffer.from('something else'));
        const handles = await Promise.all(
          Array.from({ length: 4 }, () => w.fills.join(digest, async () => ({ stream: Readable.from(paced(data)), size: announce ? data.length : undefined }))),
        );
        const readers = [follow(handles[0]!.open()), follow(handles[1]!.open()), follow(handles[2]!.open({ start: 0, end: 9 }))];
        await assert.rejects(handles[3]!.done, (err: unknown) => err instanceof RegistryError && err.code === 'DIGEST_INVALID');
        await Promise.all(readers.map((r) => r.finished));
        for (const r of readers) {
          assert.ok(r.error, 'the reader errors');
          assert.ok(!r.ended, 'the reader never ends cleanly');
        }
        assert.ok(readers[0]!.bytes < data.length && readers[1]!.bytes < data.length, 'the last bytes were held back');
        assert.ok(readers[2]!.bytes < 10);
        assert.equal(await w.storage.stat(blobKey(digest)), undefined);
        const afterwards = follow(handles[0]!.open());
        await afterwards.finished;
        assert.ok(afterwards.error && !afterwards.ended);
        assert.equal(w.fills.stats().failed, 1);
        await assertNoLeftovers(w);
      });
    }

    it('discards a truncated body: readers error, nothing is cached', async () => {
      const w = await world();
      const { data, digest } = blob(2 * MiB);
      const h = await w.fills.join(digest, async () => ({ stream: Readable.from(paced(data.subarray(0, MiB + 5))), size: data.length }));
      const r = follow(h.open());
      await assert.rejects(h.done, (err: unknown) => err instanceof RegistryError && err.code === 'SIZE_INVALID');
      await r.finished;
      assert.ok(r.error && !r.ended);
      assert.ok(r.data().equals(data.subarray(0, r.bytes)), 'what was delivered is a prefix');
      assert.equal(await w.storage.stat(blobKey(digest)), undefined);
      await assertNoLeftovers(w);
    });

    it('discards a body that is longer than announced', async () => {
      const w = await world();
      const { data, digest } = blob(MiB);
      const h = await w.fills.join(digest, async () => ({ stream: Readable.from(paced(data)), size: MiB - 1 }));
      const r = follow(h.open());
      await assert.rejects(h.done, (err: unknown) => err instanceof RegistryError && err.code === 'SIZE_INVALID');
      await r.finished;
      assert.ok(r.error && !r.ended && r.bytes < MiB - 1);
      assert.equal(await w.storage.stat(blobKey(digest)), undefined);
      await assertNoLeftovers(w);
    });

    it('fails every reader when the source errors mid-way', async () => {
      const w = await world();
      const { data, digest } = blob(2 * MiB);
      const feed = new Feed(data);
      const h = await w.fills.join(digest, async () => ({ stream: feed.stream, size: data.length }));
      const readers = [follow(h.open()), follow(h.open({ start: MiB, end: 2 * MiB - 1 }))];
      feed.sendUpTo(MiB + CHUNK);
      await until(() => readers[0]!.bytes >= MiB, 'half the blob');
      feed.fail();
      await assert.rejects(h.done, /upstream connection reset/);
      await Promise.all(readers.map((r) => r.finished));
      for (const r of readers) assert.ok(r.error && !r.ended);
      assert.equal(await w.storage.stat(blobKey(digest)), undefined);
      assert.ok(!w.fills.inFlight(digest));
      await assertNoLeftovers(w);
    });

    it('fails cleanly when the body errors before the fill reads it', async () => {
      const w = await world();
      const { data, digest } = blob(MiB);
      const h = await w.fills.join(digest, async () => {
        const stream = new PassThrough();
        stream.write(data.subarray(0, CHUNK));
        process.nextTick(() => stream.destroy(new Error('reset before the first read')));
        return { stream, size: data.length };
      });
      const r = follow(h.open());
      await assert.rejects(h.done, /reset before the first read/);
      await r.finished;
      assert.ok(r.error && !r.ended);
      assert.equal(await w.storage.stat(blobKey(digest)), undefined);
      await assertNoLeftovers(w);
    });

    it('rejects every joiner of a failing start, and the next join starts anew', async () => {
      const w = await world();
      const { data, digest } = blob(100 * KiB);
      let starts = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const failing = async (): Promise<FillSource> => {
        starts++;
        await gate;
        throw new Error('upstream unreachable');
      };
      const joins = Array.from({ length: 5 }, () => w.fills.join(digest, failing));
      release();
      const results = await Promise.allSettled(joins);
      assert.equal(starts, 1);
      assert.ok(results.every((r) => r.status === 'rejected' && /unreachable/.test(String(r.reason))));
      assert.ok(!w.fills.inFlight(digest));
      const h = await w.fills.join(digest, async () => {
        starts++;
        return { stream: Readable.from(paced(data)), size: data.length };
      });
      assert.equal(starts, 2);
      assert.ok(!h.joined);
      const r = follow(h.open());
      await r.finished;
      assert.ok(r.data().equals(data));
      await h.done;
      // The blob is committed; a later join (the caller checks storage first) would start a new fetch.
      await until(() => !w.fills.inFlight(digest), 'the fill to be forgotten');
      const again = await w.fills.join(digest, async () => {
        starts++;
        return { stream: Readable.from(paced(data)), size: data.length };
      });
      assert.equal(starts, 3);
      await again.done;
      assert.deepEqual(w.fills.stats(), { started: 3, joined: 4, failed: 1, committed: 2, bytesFromUpstream: 2 * data.length, inFlight: 0 });
      await assertNoLeftovers(w);
    });

    it('refuses blobs larger than maxBlobSize', async () => {
      const w = await world();
      const fills = new BlobFills({ storage: w.storage, spoolDir: w.spoolDir, maxBlobSize: MiB });
      const { data, digest } = blob(MiB + 1);
      const announced = Readable.from(paced(data));
      await assert.rejects(
        fills.join(digest, async () => ({ stream: announced, size: data.length })),
        (err: unknown) => err instanceof RegistryError && err.code === 'DENIED',
      );
      assert.ok(announced.destroyed, 'the upstream body is dropped');
      const h = await fills.join(digest, async () => ({ stream: Readable.from(paced(data)) }));
      const r = follow(h.open());
      await assert.rejects(h.done, (err: unknown) => err instanceof RegistryError && err.code === 'DENIED');
      await r.finished;
      assert.ok(r.error && !r.ended);
      assert.equal(await w.storage.stat(blobKey(digest)), undefined);
      await assertNoLeftovers(w);
    });

    it('fills an empty blob', async () => {
      const w = await world();
      const digest = digestOf(Buffer.alloc(0));
      const h = await w.fills.join(digest, async () => ({ stream: Readable.from([]), size: 0 }));
      const r = follow(h.open());
      await r.finished;
      assert.ok(r.ended && r.bytes === 0);
      assert.deepEqual(await h.done, { size: 0 });
      assert.equal((await w.storage.stat(blobKey(digest)))?.size, 0);
      await assertNoLeftovers(w);
    });
  });
}

describe('BlobFills memory and spool housekeeping', () => {
  it('fills 256 MiB past a stalled reader with bounded memory', async () => {
    const storageRoot = await tempDir('fs-big');
    const spoolDir = join(await tempDir('spool-big'), 'spool');
    const w: World = { storage: new FsBlobDriver(storageRoot, { fsync: false }), spoolDir, storageRoot, fills: undefined as unknown as BlobFills };
    w.fills = new BlobFills({ storage: w.storage, spoolDir });
    const size = 256 * MiB;
    // Fresh chunks from a pattern, so nothing but the fill can hold on to the blob's bytes.
    const pattern = randomBytes(CHUNK);
    async function* generate(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < size / CHUNK; i++) {
        const c = Buffer.from(pattern);
        c.writeUInt32BE(i, 0);
        if (i % 64 === 0) await new Promise((r) => setImmediate(r));
        yield c;
      }
    }
    const hash = createHash('sha256');
    const scratch = Buffer.from(pattern);
    for (let i = 0; i < size / CHUNK; i++) hash.update((scratch.writeUInt32BE(i, 0), scratch));
    const digest = `sha256:${hash.digest('hex')}` as Digest;

    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    try {
      const h = await w.fills.join(digest, async () => ({ stream: Readable.from(generate()), size }));
      const stalled = h.open();
      const first = await new Promise<Buffer>((resolve) => stalled.once('readable', () => resolve(stalled.read(CHUNK) as Buffer)));
      assert.equal(first.length, CHUNK);
      assert.deepEqual(await h.done, { size }, 'the fill completes while a reader stalls');
      // The stalled reader now drains the rest.
      const rest = createHash('sha256').update(first);
      for await (const c of stalled) rest.update(c as Buffer);
      assert.equal(`sha256:${rest.digest('hex')}`, digest);
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - baseline;
    assert.ok(growth < 128 * MiB, `RSS grew by ${Math.round(growth / MiB)} MiB for a ${size / MiB} MiB blob`);
    await assertNoLeftovers(w);
  });

  it('sweeps spool files left by a crash but not those in use', async () => {
    const spoolDir = join(await tempDir('spool-sweep'), 'spool');
    const storage = withoutFollowing(new MemoryBlobDriver());
    const fills = new BlobFills({ storage, spoolDir });
    assert.equal(await fills.sweepSpool(), 0, 'a missing spool dir is fine');
    const { data, digest } = blob(MiB);
    const feed = new Feed(data);
    const h = await fills.join(digest, async () => ({ stream: feed.stream, size: data.length }));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(spoolDir, 'fill-left-by-a-crash'), 'x');
    assert.equal(await fills.sweepSpool(), 1);
    assert.equal((await readdir(spoolDir)).length, 1, 'the live spool stays');
    const r = follow(h.open());
    feed.sendUpTo(data.length);
    feed.end();
    await r.finished;
    assert.ok(r.data().equals(data));
    await h.done;
    assert.deepEqual(await readdir(spoolDir), []);
  });
});

describe('storeVerified', () => {
  const digestOfAbc = digestOf(Buffer.from('abc'));
  const body = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p)));

  it('commits matching content and nothing else', async () => {
    const storage = new MemoryBlobDriver();
    assert.deepEqual(await storeVerified(storage, body('a', 'bc'), { digest: digestOfAbc, size: 3 }), { size: 3 });
    assert.equal((await storage.stat(blobKey(digestOfAbc)))?.size, 3);
    const other = digestOf(Buffer.from('abd'));
    await assert.rejects(storeVerified(storage, body('abc'), { digest: other }), (e: unknown) => e instanceof RegistryError && e.code === 'DIGEST_INVALID');
    await assert.rejects(storeVerified(storage, body('ab', 'cd'), { digest: other, size: 3 }), (e: unknown) => e instanceof RegistryError && e.code === 'SIZE_INVALID');
    await assert.rejects(storeVerified(storage, body('ab'), { digest: other, size: 3 }), (e: unknown) => e instanceof RegistryError && e.code === 'SIZE_INVALID');
    assert.equal(await storage.stat(blobKey(other)), undefined);
  });
});
