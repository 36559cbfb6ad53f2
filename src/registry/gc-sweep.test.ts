/**
 * The storage sweep of garbage collection (gc-sweep.ts) on SQLite and PostgreSQL with the filesystem
 * driver: which bytes without a blob row it deletes and which it keeps (age, rows, guards, non-blob
 * keys, uploads in progress), the dry run, the bounded pass and its cursor, the report and the audit
 * entry; and pushes of the same digest meeting the sweep at its most delicate points. Bytes are aged
 * with utimes, so that the collector's clock stays the real one.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobGuardStore } from '../db/blob-guard-store.js';
import { GcPreviewStore } from '../db/gc-preview-store.js';
import { GcStore } from '../db/gc-store.js';
import { digestOf, type Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/reference.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { FsBlobDriver } from '../storage/fs/fs-blob-driver.js';
import { blobKey, uploadKey } from '../storage/keys.js';
import { buildTestApp, type TestApp } from '../../test/helpers/app.js';
import { DIALECTS } from '../../test/helpers/databases.js';
import { GarbageCollector } from './gc.js';

const HOUR = 3_600_000;

/** A point where a storage call waits until the test lets it go; `hit` resolves once a call arrived. */
function gate() {
  let open!: () => void;
  let reached!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const hit = new Promise<void>((r) => (reached = r));
  return {
    hit,
    open,
    wait: async () => {
      reached();
      await opened;
    },
  };
}

/** The driver with hooks before deletes and moves, to hold the sweep or a push at a chosen point. */
function hooked(driver: BlobDriver, hooks: { beforeDelete?: (key: string) => Promise<void>; beforeMove?: (to: string) => Promise<void> }): BlobDriver {
  return new Proxy(driver, {
    get(target, prop, receiver) {
      if (prop === 'delete') {
        return async (key: string) => {
          await hooks.beforeDelete?.(key);
          return target.delete(key);
        };
      }
      if (prop === 'move') {
        return async (from: string, to: string) => {
          await hooks.beforeMove?.(to);
          return target.move(from, to);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const body = (data: Buffer) =>
  (async function* () {
    yield data;
  })();

for (const dialect of DIALECTS) {
  describe(`storage sweep of garbage collection (${dialect})`, () => {
    let t: TestApp;
    let dir: string;
    let fs: FsBlobDriver;
    let storage: BlobDriver;
    let guards: BlobGuardStore;
    const hooks: { beforeDelete?: (key: string) => Promise<void>; beforeMove?: (to: string) => Promise<void> } = {};
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'wharf-sweep-'));
      fs = new FsBlobDriver(dir, { fsync: false });
      storage = hooked(fs, hooks);
      t = await buildTestApp(dialect, { storage });
      guards = new BlobGuardStore(t.db.db, t.db.dialect);
    });
    after(async () => {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    });

    // Lookups in the database two at a time, so that the sweep pages.
    const collector = (sweepBatch: number, over: BlobDriver = storage) =>
      new GarbageCollector(
        { store: new GcStore(t.db.db, t.db.dialect), preview: new GcPreviewStore(t.db.db), guards, storage: over },
        { gracePeriodMs: HOUR, timeMachineDefaultMs: 14 * 24 * HOUR, batchSize: 2, sweepBatch, audit: t.accounts!.audit },
      );
    let seq = 0;
    /** Bytes a writer committed under their blob key before it died: no row records them. */
    const plant = async (label: string, root: FsBlobDriver = fs): Promise<Digest> => {
      const data = Buffer.from(`${label} ${dialect} ${seq++}`);
      const digest = digestOf(data);
      const w = await root.writer(blobKey(digest));
      await w.write(data);
      await w.commit();
      return digest;
    };
    const age = async (key: string, root = dir) => {
      const then = new Date(Date.now() - 2 * HOUR);
      await utimes(join(root, key), then, then);
    };
    const stored = async (d: Digest) => (await fs.stat(blobKey(d))) !== undefined;
    const repo = (name: string) => t.registry.repositories.ensure(name as RepositoryName);
    const rowOf = (d: Digest) => t.db.db.selectFrom('blobs').select(['id', 'size']).where('digest', '=', d).executeTakeFirst();

    it('deletes bytes no row records once older than the grace period, and keeps everything else', async () => {
      const gc = collector(1000);
      const stray = await plant('left by a crash');
      await age(blobKey(stray));
      const young = await plant('committed a moment ago');
      // A blob with a row, pushed (and so linked) now, whose file is old.
      const data = Buffer.from(`recorded ${dialect}`);
      const recorded = digestOf(data);
      await t.registry.uploads.monolithic(await repo('sweep/app'), recorded, body(data), data.length);
      await age(blobKey(recorded));
      // Not blob keys: a stray file under blobs/ and an upload in progress.
      const junk = await fs.writer('blobs/sha256/zz/not-a-digest');
      await junk.write(Buffer.from('junk'));
      await junk.commit();
      await age('blobs/sha256/zz/not-a-digest');
      const upload = await fs.writer(uploadKey('upload-in-progress'), { append: true });
      await upload.write(Buffer.from('half a layer'));
      await upload.commit();
      await age(uploadKey('upload-in-progress'));

      const dry = await gc.run({ dryRun: true });
      assert.deepEqual(dry.swept, { count: 1, bytes: `left by a crash ${dialect} 0`.length, sample: [stray] });
      assert.equal(dry.sweptKeys, 4, 'the four blob keys, not the upload');
      assert.equal(await stored(stray), true, 'a dry run deletes nothing');

      const r = await gc.run();
      assert.deepEqual(r.swept, dry.swept);
      assert.equal(await stored(stray), false);
      for (const d of [young, recorded]) assert.equal(await stored(d), true, d);
      assert.notEqual(await fs.stat('blobs/sha256/zz/not-a-digest'), undefined);
      assert.notEqual(await fs.stat(uploadKey('upload-in-progress')), undefined);
      assert.notEqual(await rowOf(recorded), undefined);
      const entry = (await t.accounts!.audit.query({ kinds: ['garbage_collection'], limit: 1 })).entries[0];
      assert.deepEqual([entry?.metadata?.swept_blobs, entry?.metadata?.swept_bytes, entry?.metadata?.swept_digests], [1, r.swept.bytes, [stray]]);
      assert.deepEqual(await t.db.db.selectFrom('blob_guards').selectAll().execute(), [], 'the guard is released');
      assert.equal((await gc.run()).swept.count, 0, 'nothing is left for the next pass');
      await fs.delete('blobs/sha256/zz/not-a-digest');
      await fs.delete(uploadKey('upload-in-progress'));
    });

    it('leaves a digest alone while a writer or another deletion holds its guard; takes over from a collector that died', async () => {
      const gc = collector(1000);
      const digest = await plant('guarded');
      await age(blobKey(digest));
      const write = await guards.beginWrite(digest, Date.now(), Date.now() + HOUR);
      assert.notEqual(write, undefined);
      assert.equal((await gc.run()).swept.count, 0);
      assert.equal(await stored(digest), true);
      await guards.release([write!]);
      // GC deleted the row and left its 'delete' guard; while it lives, the bytes are that pass's.
      const del = await t.db.db.insertInto('blob_guards').values({ digest, kind: 'delete', expires_at: Date.now() + HOUR }).returning('id').executeTakeFirstOrThrow();
      assert.equal((await gc.run()).swept.count, 0);
      assert.equal(await stored(digest), true);
      // That collector died before deleting the bytes: its guard expires and the sweep finds them.
      await t.db.db.updateTable('blob_guards').set({ expires_at: Date.now() - 1 }).where('id', '=', Number(del.id)).execute();
      assert.deepEqual((await gc.run()).swept.sample, [digest]);
      assert.equal(await stored(digest), false);
    });

    it('examines sweep_batch keys per pass, continuing where the last pass stopped; all of them when asked; none at 0', async () => {
      const root = await mkdtemp(join(tmpdir(), 'wharf-sweep-cursor-'));
      try {
        const other = new FsBlobDriver(root, { fsync: false });
        const planted: Digest[] = [];
        for (let i = 0; i < 7; i++) {
          const d = await plant(`cursor ${i}`, other);
          await age(blobKey(d), root);
          planted.push(d);
        }
        assert.equal((await collector(0, other).run()).sweptKeys, 0, 'sweep_batch 0: no sweep');
        const gc = collector(3, other);
        const passes = [];
        for (let i = 0; i < 4; i++) {
          const r = await gc.run();
          passes.push([r.sweptKeys, r.swept.count]);
        }
        // 3 + 3 + 1 (the listing ends); the next pass starts a new listing, now empty.
        assert.deepEqual(passes, [[3, 3], [3, 3], [1, 1], [0, 0]]);
        for (const d of planted) assert.equal(await other.stat(blobKey(d)), undefined);

        for (let i = 0; i < 5; i++) await age(blobKey(await plant(`all ${i}`, other)), root);
        const all = await collector(3, other).run({ sweepAll: true });
        assert.deepEqual([all.sweptKeys, all.swept.count], [5, 5]);
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    });

    it('makes a push that meets its guard wait, then store its bytes', async () => {
      const gc = collector(1000);
      const data = Buffer.from(`pushed while swept ${dialect}`);
      const digest = digestOf(data);
      const w = await fs.writer(blobKey(digest));
      await w.write(data);
      await w.commit();
      await age(blobKey(digest));
      const held = gate();
      hooks.beforeDelete = (key) => (key === blobKey(digest) ? held.wait() : Promise.resolve());
      try {
        const sweeping = gc.run();
        await held.hit; // the sweep holds the digest's guard and is about to delete its bytes
        let pushed = false;
        const push = t.registry.uploads.monolithic(await repo('sweep/race'), digest, body(data), data.length).then((r) => ((pushed = true), r));
        await new Promise((r) => setTimeout(r, 150));
        assert.equal(pushed, false, 'the push waits for the guard');
        held.open();
        const [report] = await Promise.all([sweeping, push]);
        assert.deepEqual(report.swept.sample, [digest]);
      } finally {
        delete hooks.beforeDelete;
      }
      assert.equal((await rowOf(digest))?.size, data.length);
      const chunks: Buffer[] = [];
      for await (const c of await fs.reader(blobKey(digest))) chunks.push(c as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), data.toString(), 'the pushed bytes are there');
    });

    it('leaves alone the bytes of a digest whose push is committing', async () => {
      const gc = collector(1000);
      const data = Buffer.from(`committing ${dialect}`);
      const digest = digestOf(data);
      const w = await fs.writer(blobKey(digest));
      await w.write(data);
      await w.commit();
      await age(blobKey(digest));
      const target = await repo('sweep/commit');
      const upload = await t.registry.uploads.start(target);
      await t.registry.uploads.append(target, upload.id, body(data));
      const held = gate();
      hooks.beforeMove = (to) => (to === blobKey(digest) ? held.wait() : Promise.resolve());
      try {
        const completing = t.registry.uploads.complete(target, upload.id, digest);
        await held.hit; // the push holds its 'write' guard and is about to move its bytes into place
        const r = await gc.run();
        assert.equal(r.swept.count, 0);
        assert.equal(await stored(digest), true);
        held.open();
        await completing;
      } finally {
        delete hooks.beforeMove;
      }
      assert.notEqual(await rowOf(digest), undefined);
      assert.equal(await stored(digest), true);
    });

    it("serialises the sweep's claim and a writer's registration of a digest that has no row", async () => {
      // Both at once, many times: exactly one of them wins each digest, never both.
      const digests = Array.from({ length: 60 }, (_, i) => digestOf(Buffer.from(`claim ${dialect} ${i}`)));
      const results = await Promise.all(
        digests.map(async (d, i) => {
          const now = Date.now();
          const claim = () => guards.beginSweep(d, now, now + HOUR);
          const write = () => guards.beginWrite(d, now, now + HOUR);
          const [a, b] = i % 2 ? await Promise.all([claim(), write()]) : (await Promise.all([write(), claim()])).reverse();
          return { sweep: a !== undefined, write: b !== undefined };
        }),
      );
      assert.deepEqual(results.filter((r) => r.sweep === r.write), [], 'one winner per digest');
      await t.db.db.deleteFrom('blob_guards').execute();
    });
  });
}
