/**
 * Write guards taken for several digests at once (a batch of replication copies), on both dialects: no
 * guard for a digest GC is deleting (a live 'delete' guard; an expired one does not count), the sizes of
 * the rows read under the guards; GC's deleting transaction, holding the row, is waited for and then
 * seen; batches over overlapping digests in opposite orders all complete (their key locks are taken in
 * one order); renewals in one statement report the guards that lapsed. On PostgreSQL, with two
 * processes on one database: a writer's guard names its process and holds GC off until it expires, even
 * after that process's liveness lock is gone (it may only have lost its connection and still be writing).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openProcessDatabase, openTestDatabase } from '../../test/helpers/databases.js';
import type { Digest } from '../oci/digest.js';
import { BlobGuardStore } from './blob-guard-store.js';
import { BlobStore } from './blob-store.js';
import type { DatabaseHandle } from './connect.js';
import { GcStore } from './gc-store.js';
import { RepositoryStore } from './repository-store.js';

const d = (n: number | string) => `sha256:${String(n).padStart(64, '0')}` as Digest;

for (const dialect of DIALECTS) {
  describe(`blob guards for a batch (${dialect})`, () => {
    let h: DatabaseHandle;
    let guards: BlobGuardStore;
    let blobs: BlobStore;
    let repoId: number;
    before(async () => {
      h = await openTestDatabase(dialect);
      guards = new BlobGuardStore(h.db, h.dialect);
      blobs = new BlobStore(h.db);
      repoId = (await new RepositoryStore(h.db, h.dialect).ensure('guards', 'app')).id;
    });
    after(async () => h.close());
    const deleteGuard = async (digest: string, expiresAt: number) => Number((await h.db.insertInto('blob_guards').values({ digest, kind: 'delete', expires_at: expiresAt }).returning('id').executeTakeFirstOrThrow()).id);

    it('guards every digest but those GC is deleting, and reads the sizes of their rows', async () => {
      await blobs.link(repoId, d('a'), 100);
      await blobs.link(repoId, d('b'), 200);
      await blobs.link(repoId, d('gone'), 300);
      const deleting = await deleteGuard(d('gone'), 10_000);
      await deleteGuard(d('b'), 999);
      const { guards: held, sizes } = await guards.beginWrites([d('a'), d('b'), d('gone'), d('norow'), d('a')], 1_000, 5_000);
      assert.deepEqual([...held.keys()].sort(), [d('a'), d('b'), d('norow')], "an expired 'delete' guard does not count");
      assert.deepEqual(sizes, new Map([[d('a'), 100], [d('b'), 200], [d('gone'), 300]]));
      const rows = await h.db.selectFrom('blob_guards').select(['id', 'digest', 'kind', 'expires_at']).where('kind', '=', 'write').execute();
      assert.deepEqual(rows.map((r) => [Number(r.id), r.digest, Number(r.expires_at)]).sort(), [...held].map(([digest, id]) => [id, digest, 5_000]).sort());

      // Renewed together: a guard that lapsed is reported and not extended.
      const [a, b, none] = [held.get(d('a'))!, held.get(d('b'))!, held.get(d('norow'))!];
      assert.deepEqual(await guards.extendAll([a, b], 4_000, 9_000), new Set([a, b]));
      assert.deepEqual(await guards.extendAll([a, none], 6_000, 9_000), new Set([a]), 'expired at 5,000');
      await guards.release([...held.values(), deleting]);
      assert.deepEqual(await guards.beginWrites([], 1_000, 5_000), { guards: new Map(), sizes: new Map() });
      await h.db.deleteFrom('blob_guards').execute();
    });

    it("waits for GC's transaction that holds a row and leaves its guard, then gives no guard for that digest", async () => {
      await blobs.link(repoId, d('raced'), 10);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const lockedNow = new Promise<void>((r) => (locked = r));
      // As GC: the row held for update, its 'delete' guard written, then (a moment later) the commit.
      const gc = h.db.transaction().execute(async (tx) => {
        let q = tx.selectFrom('blobs').select('id').where('digest', '=', d('raced'));
        if (h.dialect.supportsRowLocks) q = q.forUpdate();
        await q.execute();
        await tx.insertInto('blob_guards').values({ digest: d('raced'), kind: 'delete', expires_at: Date.now() + 60_000 }).execute();
        locked();
        await held;
      });
      await lockedNow;
      const writing = guards.beginWrites([d('other'), d('raced')], Date.now(), Date.now() + 60_000);
      await new Promise((r) => setTimeout(r, 100));
      release();
      await gc;
      const { guards: got } = await writing;
      assert.deepEqual([...got.keys()], [d('other')]);
      await h.db.deleteFrom('blob_guards').execute();
    });

    it('completes batches over overlapping digests taken in opposite orders at once', async () => {
      const digests = Array.from({ length: 12 }, (_, i) => d(`o${i}`));
      for (const x of digests) await blobs.link(repoId, x, 1);
      const batches = Array.from({ length: 8 }, (_, i) => (i % 2 ? [...digests].reverse() : digests).slice(i % 3, 12 - (i % 4)));
      const results = await Promise.all(batches.map((b) => guards.beginWrites(b, Date.now(), Date.now() + 60_000)));
      assert.deepEqual(results.map((r) => r.guards.size), batches.map((b) => b.length));
      const count = await h.db.selectFrom('blob_guards').select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirstOrThrow();
      assert.equal(Number(count.n), batches.reduce((n, b) => n + b.length, 0));
      await h.db.deleteFrom('blob_guards').execute();
    });
  });
}

describe("blob guards (postgres): a writer's guard holds GC off until it expires, whether or not its process's liveness lock is held", () => {
  const NOW = 1_000_000;
  const HOUR = 3_600_000;
  let admin: DatabaseHandle & { url: string };
  before(async () => {
    admin = await openTestDatabase('postgres');
  });
  after(async () => admin.close());
  const guardsOf = async (digest: string) =>
    (await admin.db.selectFrom('blob_guards').select(['kind', 'owner_process']).where('digest', '=', digest).orderBy('id').execute()).map((g) => `${g.kind} ${g.owner_process}`);

  it("GC leaves an unreferenced blob row that B is writing while B's guard is current, after B's liveness connection closed too", async () => {
    const a = await openProcessDatabase(admin.url, 'process-a');
    const b = await openProcessDatabase(admin.url, 'process-b');
    try {
      const digest = d('orphan');
      await admin.db.insertInto('blobs').values({ digest, size: 10, created_at: 0 }).execute();
      assert.notEqual(await new BlobGuardStore(b.db, b.dialect, b.processId).beginWrite(digest, NOW, NOW + HOUR), undefined);
      assert.deepEqual(await guardsOf(digest), ['write process-b'], 'the guard names its process');
      const gc = new GcStore(a.db, a.dialect);
      const clock = { now: NOW + 1, graceCutoff: NOW, defaultWindowMs: 0 };
      assert.deepEqual((await gc.deleteBlobs(clock, 0, 10, NOW + HOUR)).blobs, [], 'B lives and its guard is current');
      await b.close(); // B's liveness connection closes (B died, or only lost its connection and is still writing)
      assert.deepEqual((await gc.deleteBlobs({ ...clock, now: NOW + 2 }, 0, 10, NOW + HOUR)).blobs, [], "B's guard still holds until it expires");
      const { blobs: deleted, guards } = await gc.deleteBlobs({ ...clock, now: NOW + HOUR + 1 }, 0, 10, NOW + 2 * HOUR);
      assert.deepEqual(deleted.map((x) => x.digest), [digest], 'once the guard expired');
      assert.deepEqual(await guardsOf(digest), ['delete null'], "B's expired guard is dropped, GC's own holds writers off");
      await new BlobGuardStore(a.db, a.dialect, a.processId).release(guards);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("the storage sweep leaves bytes without a row that B is writing until B's guard expires, after B's liveness connection closed too", async () => {
    const a = await openProcessDatabase(admin.url, 'process-a');
    const b = await openProcessDatabase(admin.url, 'process-b');
    try {
      const digest = d('stray');
      const guard = await new BlobGuardStore(b.db, b.dialect, b.processId).beginWrite(digest, NOW, NOW + HOUR);
      assert.notEqual(guard, undefined);
      const sweep = new BlobGuardStore(a.db, a.dialect, a.processId);
      assert.deepEqual(await sweep.unrecorded([digest], NOW + 1), [], 'B lives and its guard is current');
      await b.close();
      assert.deepEqual(await sweep.unrecorded([digest], NOW + 2), [], "B's guard still holds");
      assert.equal(await sweep.beginSweep(digest, NOW + 2, NOW + HOUR), undefined);
      assert.deepEqual(await sweep.unrecorded([digest], NOW + HOUR + 1), [digest], 'once the guard expired');
      const claimed = await sweep.beginSweep(digest, NOW + HOUR + 1, NOW + 2 * HOUR);
      assert.notEqual(claimed, undefined);
      assert.deepEqual(await guardsOf(digest), ['delete null'], "B's expired guard is dropped");
      // The sweep's own guard holds another writer off.
      assert.equal(await new BlobGuardStore(admin.db, admin.dialect).beginWrite(digest, NOW + HOUR + 2, NOW + 2 * HOUR), undefined);
      await sweep.release([claimed!]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
