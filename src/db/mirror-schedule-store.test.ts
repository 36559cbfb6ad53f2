import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DIALECTS, openProcessDatabase, openTestDatabase } from '../../test/helpers/databases.js';
import { insertMirror, updateMirror } from '../../test/helpers/mirror-rows.js';
import type { DatabaseHandle } from './connect.js';
import { MirrorScheduleStore, nextStart } from './mirror-schedule-store.js';
import { MirrorStore } from './mirror-store.js';

const LEASE = 60_000;
const HOUR = 3600_000;
const run = (outcome: 'SUCCESS' | 'PARTIAL' | 'FAIL' | 'CANCEL', startedAt = 0) => ({ outcome, message: `it was ${outcome}`, bytes: 42, startedAt });

describe('nextStart: the start-date grid', () => {
  it('is the first grid point after now; a future start stays; none gives now + interval', () => {
    const start = Date.UTC(2026, 0, 1, 0, 0, 0);
    assert.equal(nextStart(start, 3600, start + 90 * 60_000), start + 2 * HOUR);
    assert.equal(nextStart(start, 3600, start + 2 * HOUR), start + 3 * HOUR);
    assert.equal(nextStart(start + HOUR, 3600, start), start + HOUR);
    assert.equal(nextStart(null, 60, 1_000_000), 1_060_000);
  });
});

for (const dialect of DIALECTS) {
  describe(`mirror schedule store (${dialect})`, () => {
    let db: DatabaseHandle & { url: string };
    let store: MirrorScheduleStore;
    let mirrors: MirrorStore;
    let n = 0;
    const name = () => `mirrors/app${++n}`;

    before(async () => {
      db = await openTestDatabase(dialect);
      store = new MirrorScheduleStore(db.db, db.dialect);
      mirrors = new MirrorStore(db.db, db.dialect);
    });
    after(async () => db?.close());
    beforeEach(async () => {
      await db.db.deleteFrom('repository_mirrors').execute();
    });

    it('due: scheduled and enabled with retries, SYNC_NOW even when disabled, expired SYNCING; not the rest', async () => {
      const now = Date.now();
      const scheduled = await insertMirror(db, name(), { startAt: now - 10 });
      const syncNowDisabled = await insertMirror(db, name(), { status: 'SYNC_NOW', enabled: false, startAt: null });
      const expired = await insertMirror(db, name(), { status: 'SYNCING', expiresAt: now - 1 });
      await insertMirror(db, name(), { startAt: now + HOUR }); // not yet
      await insertMirror(db, name(), { enabled: false }); // disabled
      await insertMirror(db, name(), { retries: 0, status: 'FAIL' }); // no retries left
      await insertMirror(db, name(), { status: 'SYNCING', expiresAt: now + LEASE }); // running
      await insertMirror(db, name(), { status: 'CANCEL', startAt: null, retries: 0 });
      const normal = await insertMirror(db, name());
      await db.db.updateTable('repositories').set({ state: 'NORMAL' }).where('id', '=', normal).execute(); // no longer a mirror
      const due = (await store.due(now, 100)).map((m) => m.repositoryId).sort((a, b) => a - b);
      assert.deepEqual(due, [scheduled, syncNowDisabled, expired].sort((a, b) => a - b));
    });

    it('a claim is a compare-and-swap: of two workers racing for one mirror exactly one gets it', async () => {
      const id = await insertMirror(db, name());
      const [record] = await store.due(Date.now(), 10);
      const results = await Promise.all([store.claim(record!, 'w1', Date.now(), LEASE), store.claim(record!, 'w2', Date.now(), LEASE)]);
      assert.equal(results.filter(Boolean).length, 1);
      const claimed = await mirrors.find(id);
      assert.equal(claimed!.sync.status, 'SYNCING');
      assert.ok(claimed!.sync.expiresAt! > Date.now());
      assert.equal(claimed!.sync.txn, results.find(Boolean)!.txn);
      assert.deepEqual(await store.claimDue('w3', Date.now(), LEASE, 10), [], 'a running mirror is not due');
    });

    it('concurrent claimDue calls split the due mirrors between them, each mirror claimed once', async () => {
      const ids = [];
      for (let i = 0; i < 6; i++) ids.push(await insertMirror(db, name()));
      const rounds = await Promise.all(['a', 'b', 'c'].map((w) => store.claimDue(w, Date.now(), LEASE, 2)));
      const claimed = rounds.flat().map((c) => c.record.repositoryId);
      assert.equal(new Set(claimed).size, claimed.length, 'no mirror claimed twice');
      const more = await store.claimDue('d', Date.now(), LEASE, 10);
      assert.deepEqual([...claimed, ...more.map((c) => c.record.repositoryId)].sort((a, b) => a - b), ids.sort((a, b) => a - b));
    });

    it('an expired claim is taken over; the old holder can no longer renew, report or release', async () => {
      const id = await insertMirror(db, name());
      const t0 = Date.now();
      const [first] = await store.claimDue('dead', t0, 1000, 1);
      assert.ok(first);
      assert.deepEqual(await store.claimDue('other', t0 + 500, LEASE, 1), [], 'not before the lease runs out');
      const [second] = await store.claimDue('other', t0 + 1001, LEASE, 1);
      assert.equal(second?.record.repositoryId, id);
      assert.equal(await store.renew(id, first.txn, t0 + 1002, LEASE), false);
      assert.equal(await store.progress(id, first.txn, { tagsDone: 1 }), undefined);
      assert.equal((await store.release(id, first.txn, run('SUCCESS'), t0 + 1003)).released, false);
      assert.equal(await store.renew(id, second.txn, t0 + 1004, LEASE), true);
      assert.equal((await mirrors.find(id))!.sync.holder, 'other');
    });

    it('progress is stored and answers the status: CANCEL after a cancel', async () => {
      const id = await insertMirror(db, name());
      const [c] = await store.claimDue('w', Date.now(), LEASE, 1);
      assert.equal(await store.progress(id, c!.txn, { tagsTotal: 10, tagsDone: 3, bytes: 1234, currentTag: 'v3' }), 'SYNCING');
      const r = await mirrors.find(id);
      assert.deepEqual({ ...r!.sync.run, startedAt: 0 }, { startedAt: 0, tagsTotal: 10, tagsDone: 3, bytes: 1234, currentTag: 'v3' });
      await updateMirror(db, id, { sync_status: 'CANCEL', sync_retries_remaining: 0 }); // as sync-cancel does (txn unchanged)
      assert.equal(await store.progress(id, c!.txn, { tagsDone: 4 }), 'CANCEL');
      const released = await store.release(id, c!.txn, run('SUCCESS'), Date.now());
      assert.deepEqual(released, { released: true, status: 'CANCEL' }, 'a cancelled mirror is released as CANCEL whatever the run says');
      const after = await mirrors.find(id);
      assert.equal(after!.sync.startAt, null);
      assert.equal(after!.sync.retriesRemaining, 0);
      assert.equal(after!.sync.last!.outcome, 'CANCEL');
      assert.equal(after!.sync.run, null);
    });

    it("release follows Quay's rules: FAIL keeps the date and uses a retry; the last retry and SUCCESS move to the grid; CANCEL stops", async () => {
      const start = Date.now() - 90 * 60_000;
      const id = await insertMirror(db, name(), { startAt: start, intervalS: 3600 });
      const cycle = async (outcome: 'SUCCESS' | 'PARTIAL' | 'FAIL' | 'CANCEL', now: number) => {
        await updateMirror(db, id, { sync_status: 'SYNC_NOW', sync_expires_at: null });
        const [c] = await store.claimDue('w', now, LEASE, 1);
        assert.ok(c, 'claimed');
        await store.release(id, c.txn, run(outcome, now), now);
        const r = (await mirrors.find(id))!;
        return { status: r.sync.status, retries: r.sync.retriesRemaining, startAt: r.sync.startAt, expiresAt: r.sync.expiresAt, last: r.sync.last };
      };
      const now = Date.now();
      assert.deepEqual(await cycle('FAIL', now), { status: 'FAIL', retries: 2, startAt: start, expiresAt: null, last: { startedAt: now, finishedAt: now, outcome: 'FAIL', message: 'it was FAIL', bytes: 42 } });
      assert.equal((await cycle('PARTIAL', now)).retries, 1, 'a partial run is a failure for the schedule');
      const third = await cycle('FAIL', now);
      assert.equal(third.retries, 3);
      assert.equal(third.startAt, start + 2 * HOUR, 'the last retry moves to the next grid point');
      const ok = await cycle('SUCCESS', start + 2 * HOUR + 5);
      assert.deepEqual([ok.status, ok.retries, ok.startAt], ['SUCCESS', 3, start + 3 * HOUR]);
      const cancelled = await cycle('CANCEL', now);
      assert.deepEqual([cancelled.status, cancelled.retries, cancelled.startAt], ['CANCEL', 0, null]);
      assert.deepEqual(await store.due(Date.now(), 10), [], 'a cancelled mirror waits for sync-now');
    });

    it('abandon hands the mirror on at once', async () => {
      const id = await insertMirror(db, name());
      const [c] = await store.claimDue('stopping', Date.now(), LEASE, 1);
      assert.equal(await store.abandon(id, c!.txn, Date.now()), true);
      const [again] = await store.claimDue('next', Date.now(), LEASE, 1);
      assert.equal(again?.record.repositoryId, id);
    });
  });
}

describe('mirror schedule store (postgres): the run of a process that died is taken over at once', () => {
  let admin: DatabaseHandle & { url: string };
  before(async () => {
    admin = await openTestDatabase('postgres');
  });
  after(async () => admin.close());

  it("A cannot claim B's run while B lives, and claims it at once after B's liveness connection closes", async () => {
    const a = await openProcessDatabase(admin.url, 'process-a');
    const b = await openProcessDatabase(admin.url, 'process-b');
    try {
      const id = await insertMirror(admin, 'dying/app');
      const mine = new MirrorScheduleStore(a.db, a.dialect, a.processId);
      const theirs = new MirrorScheduleStore(b.db, b.dialect, b.processId);
      const t0 = Date.now();
      const [held] = await theirs.claimDue('worker-b', t0, LEASE, 1);
      assert.equal(held?.record.repositoryId, id);
      assert.deepEqual(await mine.claimDue('worker-a', t0 + 1, LEASE, 1), [], 'B lives and its lease is current');
      await b.close(); // B dies: its liveness connection closes with it
      assert.deepEqual((await mine.due(t0 + 2, 10)).map((m) => m.repositoryId), [id]);
      const [taken] = await mine.claimDue('worker-a', t0 + 2, LEASE, 1);
      assert.equal(taken?.record.repositoryId, id, 'long before the lease expires');
      assert.equal(await new MirrorScheduleStore(admin.db, admin.dialect).renew(id, held.txn, t0 + 3, LEASE), false, 'B lost its claim');
      const row = await admin.db.selectFrom('repository_mirrors').select(['sync_holder', 'sync_process']).where('repository_id', '=', id).executeTakeFirstOrThrow();
      assert.deepEqual(row, { sync_holder: 'worker-a', sync_process: 'process-a' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
