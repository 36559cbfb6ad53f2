/**
 * Job leases (`worker_leases`) on both dialects: one holder at a time until release or expiry, and a
 * finished job not due again before its interval. On PostgreSQL, with two processes on one database,
 * the lease of a process that died is taken over at once; a live one holds until it expires.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openProcessDatabase, openTestDatabase } from '../../test/helpers/databases.js';
import type { DatabaseHandle } from './connect.js';
import { WorkerLeaseStore } from './worker-lease-store.js';

const LEASE = 60_000;
const INTERVAL = 3_600_000;
const NOW = 10_000_000;

for (const dialect of DIALECTS) {
  describe(`worker leases (${dialect})`, () => {
    let h: DatabaseHandle & { url: string };
    before(async () => {
      h = await openTestDatabase(dialect);
    });
    after(async () => h.close());

    it('one holder until it releases or its lease expires; a finished job is due again after its interval', async () => {
      const p = await openProcessDatabase(h.url, 'process-live');
      try {
        // One process holding its liveness lock (PostgreSQL; on SQLite the id changes nothing): its lease holds.
        const leases = new WorkerLeaseStore(p.db, p.dialect, p.processId);
        assert.equal(await leases.tryAcquire('job', 'first', NOW, LEASE, INTERVAL), true);
        assert.equal(await leases.tryAcquire('job', 'second', NOW + LEASE - 1, LEASE, INTERVAL), false);
        assert.equal(await leases.renew('job', 'first', NOW + LEASE - 1, LEASE), true);
        assert.equal(await leases.tryAcquire('job', 'second', NOW + 2 * LEASE - 2, LEASE, INTERVAL), false, 'renewed');
        assert.equal(await leases.tryAcquire('job', 'second', NOW + 2 * LEASE - 1, LEASE, INTERVAL), true, 'expired');
        assert.equal(await leases.renew('job', 'first', NOW + 2 * LEASE, LEASE), false);
        await leases.release('job', 'first', NOW + 2 * LEASE, true);
        assert.equal(await leases.tryAcquire('job', 'third', NOW + 2 * LEASE, LEASE, INTERVAL), false, "the release of a holder that lost the lease changes nothing");
        const at = NOW + 2 * LEASE + 1;
        await leases.release('job', 'second', at, true);
        const row = await h.db.selectFrom('worker_leases').select(['holder', 'holder_process', 'finished_at']).where('name', '=', 'job').executeTakeFirstOrThrow();
        assert.deepEqual({ ...row, finished_at: Number(row.finished_at) }, { holder: null, holder_process: null, finished_at: at });
        assert.equal(await leases.tryAcquire('job', 'third', at + INTERVAL - 1, LEASE, INTERVAL), false, 'not due');
        assert.equal(await leases.tryAcquire('job', 'third', at + INTERVAL, LEASE, INTERVAL), true);
      } finally {
        await p.close();
      }
    });
  });
}

describe('worker leases (postgres): the lease of a process that died is taken over at once', () => {
  let admin: DatabaseHandle & { url: string };
  before(async () => {
    admin = await openTestDatabase('postgres');
  });
  after(async () => admin.close());

  it("A cannot take B's lease while B lives, and takes it at once after B's liveness connection closes", async () => {
    const a = await openProcessDatabase(admin.url, 'process-a');
    const b = await openProcessDatabase(admin.url, 'process-b');
    try {
      const mine = new WorkerLeaseStore(a.db, a.dialect, a.processId);
      const theirs = new WorkerLeaseStore(b.db, b.dialect, b.processId);
      assert.equal(await theirs.tryAcquire('gc', 'worker-b', NOW, LEASE, INTERVAL), true);
      assert.equal(await mine.tryAcquire('gc', 'worker-a', NOW + 1, LEASE, INTERVAL), false, 'B lives and its lease is current');
      assert.equal(await theirs.renew('gc', 'worker-b', NOW + 2, LEASE), true);
      await b.close(); // B dies: its liveness connection closes with it
      assert.equal(await mine.tryAcquire('gc', 'worker-a', NOW + 3, LEASE, INTERVAL), true, 'long before the lease expires');
      const row = await admin.db.selectFrom('worker_leases').select(['holder', 'holder_process']).where('name', '=', 'gc').executeTakeFirstOrThrow();
      assert.deepEqual(row, { holder: 'worker-a', holder_process: 'process-a' });
      assert.equal(await new WorkerLeaseStore(admin.db).renew('gc', 'worker-b', NOW + 4, LEASE), false, 'worker-b no longer holds it');
      // A lives: a third process waits for A's lease to expire.
      const c = await openProcessDatabase(admin.url, 'process-c');
      try {
        const third = new WorkerLeaseStore(c.db, c.dialect, c.processId);
        assert.equal(await third.tryAcquire('gc', 'worker-c', NOW + 5, LEASE, INTERVAL), false);
        assert.equal(await third.tryAcquire('gc', 'worker-c', NOW + 3 + LEASE, LEASE, INTERVAL), true);
      } finally {
        await c.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('leaves the lease of a holder without a liveness lock (a CLI command) until it expires', async () => {
    const a = await openProcessDatabase(admin.url, 'process-a');
    try {
      assert.equal(await new WorkerLeaseStore(admin.db, admin.dialect).tryAcquire('cli-job', 'cli', NOW, LEASE, INTERVAL), true);
      const mine = new WorkerLeaseStore(a.db, a.dialect, a.processId);
      assert.equal(await mine.tryAcquire('cli-job', 'worker-a', NOW + LEASE - 1, LEASE, INTERVAL), false);
      assert.equal(await mine.tryAcquire('cli-job', 'worker-a', NOW + LEASE, LEASE, INTERVAL), true);
    } finally {
      await a.close();
    }
  });
});
