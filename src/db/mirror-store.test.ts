/** MirrorStore's writes and MirrorHealthStore on SQLite and PostgreSQL: races, and what each write leaves of a run's lease. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import type { DatabaseHandle } from './connect.js';
import { MirrorHealthStore } from './mirror-health-store.js';
import { MirrorStore, type MirrorFields } from './mirror-store.js';
import { RepositoryStore } from './repository-store.js';

const fields: MirrorFields = {
  enabled: true,
  externalReference: '203.0.113.10/lib/app',
  usernameEnc: null,
  passwordEnc: null,
  verifyTls: true,
  unsignedImages: false,
  proxy: {},
  tagGlobs: ['*'],
  architectures: [],
  rollbackOnFailure: false,
  syncIntervalS: 60,
  timeoutS: 300,
};

for (const dialect of DIALECTS) {
  describe(`MirrorStore (${dialect})`, () => {
    let h: DatabaseHandle;
    let store: MirrorStore;
    let repos: RepositoryStore;
    let n = 0;
    const repo = async () => (await repos.ensure('ns', `team/app${++n}`)).id;
    const set = (id: number, values: Record<string, unknown>) => h.db.updateTable('repository_mirrors').set(values as never).where('repository_id', '=', id).execute();
    before(async () => {
      h = await openTestDatabase(dialect);
      store = new MirrorStore(h.db, h.dialect);
      repos = new RepositoryStore(h.db, h.dialect);
    });
    after(async () => h.close());

    it('of concurrent creates for one repository exactly one wins; the repository becomes MIRROR with its robot', async () => {
      const id = await repo();
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => store.create(id, { ...fields, syncIntervalS: 60 + i }, { startAt: 1000, robotId: 42, now: 5 })));
      assert.equal(results.filter(Boolean).length, 1);
      const record = (await store.find(id))!;
      assert.deepEqual([record.sync.status, record.sync.retriesRemaining, record.sync.startAt, record.robotId], ['NEVER_RUN', 3, 1000, 42]);
      const details = await repos.findDetails('ns', `team/app${n}`);
      assert.deepEqual([details!.state, details!.mirrorRobotId], ['MIRROR', 42]);
    });

    it('a change keeps the lease, txn and progress of the run in flight', async () => {
      const id = await repo();
      await store.create(id, fields, { startAt: 1000, robotId: 7, now: 5 });
      await set(id, { sync_status: 'SYNCING', sync_expires_at: 9999, sync_holder: 'w1', run_started_at: 10, run_tags_done: 2 });
      const before = (await store.find(id))!;
      const after = (await store.update(id, { syncIntervalS: 120, tagGlobs: ['v*'], startAt: 2000, robotId: 8 }, 6))!;
      assert.deepEqual([after.syncIntervalS, after.tagGlobs, after.sync.startAt, after.robotId, after.updatedAt], [120, ['v*'], 2000, 8, 6]);
      assert.deepEqual([after.sync.txn, after.sync.expiresAt, after.sync.holder, after.sync.run, after.sync.status], [before.sync.txn, 9999, 'w1', before.sync.run, 'SYNCING']);
      assert.equal(await store.update(-1, { syncIntervalS: 1 }, 6), undefined);
    });

    it('sync-now: never while SYNCING; retries at least 1; new txn, no lease', async () => {
      const id = await repo();
      await store.create(id, fields, { startAt: 1000, robotId: 7, now: 5 });
      await set(id, { sync_status: 'SYNCING', sync_expires_at: 9999 });
      assert.equal(await store.syncNow(id, 6), undefined);
      await set(id, { sync_status: 'CANCEL', sync_retries_remaining: 0 });
      const txn = (await store.find(id))!.sync.txn;
      const r = (await store.syncNow(id, 6))!;
      assert.deepEqual([r.sync.status, r.sync.retriesRemaining, r.sync.expiresAt], ['SYNC_NOW', 1, null]);
      assert.notEqual(r.sync.txn, txn);
    });

    it('cancel: only from SYNCING (txn and lease kept) or SYNC_NOW (txn rotated)', async () => {
      const id = await repo();
      await store.create(id, fields, { startAt: 1000, robotId: 7, now: 5 });
      assert.equal(await store.cancel(id, 6), undefined, 'NEVER_RUN');
      await set(id, { sync_status: 'SYNCING', sync_expires_at: 9999 });
      const txn = (await store.find(id))!.sync.txn;
      const r = (await store.cancel(id, 6))!;
      assert.deepEqual([r.sync.status, r.sync.retriesRemaining, r.sync.txn, r.sync.expiresAt], ['CANCEL', 0, txn, 9999]);
      assert.equal(await store.cancel(id, 6), undefined, 'CANCEL');
      await store.syncNow(id, 7);
      const queued = (await store.find(id))!.sync.txn;
      assert.notEqual((await store.cancel(id, 8))!.sync.txn, queued);
    });

    it('delete: refused while a live lease is held; the repository is NORMAL again', async () => {
      const id = await repo();
      assert.equal(await store.delete(id, 10), 'missing');
      await store.create(id, fields, { startAt: 1000, robotId: 7, now: 5 });
      await set(id, { sync_status: 'SYNCING', sync_expires_at: 100 });
      assert.equal(await store.delete(id, 99), 'syncing');
      assert.equal(await store.delete(id, 100), 'deleted');
      const details = await repos.findDetails('ns', `team/app${n}`);
      assert.deepEqual([details!.state, details!.mirrorRobotId], ['NORMAL', null]);
      assert.equal(await store.find(id), undefined);
    });

    it('health counts enabled mirrors of MIRROR repositories, per namespace', async () => {
      const health = new MirrorHealthStore(h.db);
      const before = await health.counts('ns', 50);
      const id = await repo();
      await store.create(id, fields, { startAt: 1000, robotId: 7, now: 5 });
      await set(id, { sync_status: 'SYNCING', sync_expires_at: 100, run_tags_total: 9, run_tags_done: 4 });
      const after = await health.counts('ns', 50);
      assert.equal(after.total, before.total + 1);
      assert.equal(after.byStatus.SYNCING, before.byStatus.SYNCING + 1);
      assert.equal(after.tagsPending - before.tagsPending, 5);
      assert.equal(after.activeRuns - before.activeRuns, 1);
      assert.equal((await health.counts('ns', 100)).activeRuns, after.activeRuns - 1, 'an expired lease is no active run');
      assert.equal((await health.counts('other', 50)).total, 0);
      await h.db.updateTable('repositories').set({ state: 'NORMAL' }).where('id', '=', id).execute();
      assert.equal((await health.counts('ns', 50)).total, before.total);
    });
  });
}
