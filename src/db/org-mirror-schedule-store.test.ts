/**
 * The schedule of organization-mirror discoveries on both dialects: what is due, one claim per due
 * mirror however many workers race for it, an expired lease taken over, and Quay's release rules. On
 * PostgreSQL, with two processes: the run of a process that died is taken over at once.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DIALECTS, openProcessDatabase, openTestDatabase } from '../../test/helpers/databases.js';
import type { DatabaseHandle } from './connect.js';
import { OrgMirrorScheduleStore } from './org-mirror-schedule-store.js';
import { OrgMirrorStore, type OrgMirrorFields } from './org-mirror-store.js';

const HOUR = 3600_000;
const FIELDS: OrgMirrorFields = {
  enabled: true,
  registryType: 'quay',
  registryUrl: 'https://quay.example.test',
  externalNamespace: 'projectquay',
  usernameEnc: null,
  passwordEnc: null,
  verifyTls: true,
  proxy: {},
  robotId: null,
  visibility: 'public',
  repositoryFilters: [],
  syncIntervalS: 3600,
  timeoutS: 300,
};

for (const dialect of DIALECTS) {
  describe(`organization mirror schedule store (${dialect})`, () => {
    let db: DatabaseHandle & { url: string };
    let store: OrgMirrorStore;
    let schedule: OrgMirrorScheduleStore;
    let n = 0;

    /** A new organization with a mirror due at `startAt`; its namespace id. */
    const orgMirror = async (startAt: number, change: Record<string, unknown> = {}): Promise<number> => {
      const ns = await db.db.insertInto('namespaces').values({ name: `org${++n}`, kind: 'org', email: null, created_at: 1 }).returning('id').executeTakeFirstOrThrow();
      const id = Number(ns.id);
      assert.notEqual(typeof (await store.create(id, FIELDS, { startAt, now: 1 })), 'string');
      if (Object.keys(change).length) await db.db.updateTable('organization_mirrors').set(change).where('namespace_id', '=', id).execute();
      return id;
    };

    before(async () => {
      db = await openTestDatabase(dialect);
      store = new OrgMirrorStore(db.db, db.dialect);
      schedule = new OrgMirrorScheduleStore(db.db, db.dialect);
    });
    after(async () => db?.close());
    beforeEach(async () => {
      await db.db.deleteFrom('organization_mirrors').execute();
    });

    it('due: scheduled and enabled with retries, SYNC_NOW even when disabled, an expired SYNCING; not the rest', async () => {
      const now = Date.now();
      const scheduled = await orgMirror(now - 10);
      const syncNow = await orgMirror(now + HOUR, { sync_status: 'SYNC_NOW', is_enabled: 0 });
      const expired = await orgMirror(now - 10, { sync_status: 'SYNCING', sync_expires_at: now - 1 });
      await orgMirror(now + HOUR);
      await orgMirror(now - 10, { is_enabled: 0 });
      await orgMirror(now - 10, { sync_status: 'FAIL', sync_retries_remaining: 0 });
      await orgMirror(now - 10, { sync_status: 'SYNCING', sync_expires_at: now + HOUR });
      await orgMirror(now - 10, { sync_status: 'CANCEL', sync_start_at: null, sync_retries_remaining: 0 });
      const claims = await schedule.claimDue('w', now, 60_000, 50);
      assert.deepEqual(claims.map((c) => c.record.namespaceId).sort(), [scheduled, syncNow, expired].sort());
      assert.deepEqual(claims.filter((c) => c.requested).map((c) => c.record.namespaceId), [syncNow]);
    });

    it('workers racing for one due mirror: exactly one claims it', async () => {
      const id = await orgMirror(Date.now() - 10);
      const results = await Promise.all(['a', 'b', 'c', 'd'].map((h) => schedule.claimDue(h, Date.now(), 60_000, 5)));
      const won = results.flat();
      assert.equal(won.length, 1);
      assert.equal(won[0]!.record.namespaceId, id);
      const row = await db.db.selectFrom('organization_mirrors').selectAll().where('namespace_id', '=', id).executeTakeFirstOrThrow();
      assert.equal(row.sync_status, 'SYNCING');
      assert.equal(row.sync_holder, won[0]!.record.sync.holder);
    });

    it('release: SUCCESS on the grid with 3 retries; FAIL keeps the start with one retry less; a lost claim changes nothing', async () => {
      const start = Date.now() - 90 * 60_000;
      const id = await orgMirror(start);
      let [claim] = await schedule.claimDue('w', Date.now(), 60_000, 1);
      assert.equal(await schedule.release(id, claim!.txn, 'FAIL', 'no', Date.now()), true);
      let r = (await store.find(id))!;
      assert.deepEqual([r.sync.status, r.sync.retriesRemaining, r.sync.startAt, r.lastMessage], ['FAIL', 2, start, 'no']);
      [claim] = await schedule.claimDue('w', Date.now(), 60_000, 1);
      const now = Date.now();
      assert.equal(await schedule.release(id, claim!.txn, 'SUCCESS', 'ok', now), true);
      r = (await store.find(id))!;
      assert.equal(r.sync.status, 'SUCCESS');
      assert.equal(r.sync.retriesRemaining, 3);
      assert.equal(r.sync.startAt, start + 2 * HOUR);
      assert.equal(r.sync.expiresAt, null);
      assert.equal(await schedule.release(id, claim!.txn, 'FAIL', 'late', now), false, 'the txn rotated: the claim is spent');
      assert.equal((await store.find(id))!.sync.status, 'SUCCESS');
    });

    it('a claim whose worker stopped renewing expires and another worker takes the mirror over', async () => {
      const id = await orgMirror(Date.now() - 10);
      const t0 = Date.now();
      const [first] = await schedule.claimDue('dead', t0, 1000, 1);
      assert.ok(first);
      assert.deepEqual(await schedule.claimDue('alive', t0 + 500, 1000, 1), [], 'not while the lease runs');
      const [second] = await schedule.claimDue('alive', t0 + 1001, 1000, 1);
      assert.equal(second?.record.namespaceId, id);
      assert.equal(await schedule.renew(id, first!.txn, t0 + 1002, 1000), false, 'the first worker lost its claim');
      assert.equal(await schedule.holds(id, first!.txn), false);
      assert.equal(await schedule.holds(id, second!.txn), true);
    });
  });
}

describe('organization mirror schedule store (postgres): the run of a process that died is taken over at once', () => {
  let admin: DatabaseHandle & { url: string };
  before(async () => {
    admin = await openTestDatabase('postgres');
  });
  after(async () => admin.close());

  it("A cannot claim B's discovery while B lives, and claims it at once after B's liveness connection closes", async () => {
    const a = await openProcessDatabase(admin.url, 'process-a');
    const b = await openProcessDatabase(admin.url, 'process-b');
    try {
      const ns = await admin.db.insertInto('namespaces').values({ name: 'dying', kind: 'org', email: null, created_at: 1 }).returning('id').executeTakeFirstOrThrow();
      const id = Number(ns.id);
      assert.notEqual(typeof (await new OrgMirrorStore(admin.db, admin.dialect).create(id, FIELDS, { startAt: Date.now() - 10, now: 1 })), 'string');
      const mine = new OrgMirrorScheduleStore(a.db, a.dialect, a.processId);
      const theirs = new OrgMirrorScheduleStore(b.db, b.dialect, b.processId);
      const t0 = Date.now();
      const [held] = await theirs.claimDue('worker-b', t0, HOUR, 1);
      assert.equal(held?.record.namespaceId, id);
      assert.deepEqual(await mine.claimDue('worker-a', t0 + 1, HOUR, 1), [], 'B lives and its lease is current');
      await b.close(); // B dies: its liveness connection closes with it
      const [taken] = await mine.claimDue('worker-a', t0 + 2, HOUR, 1);
      assert.equal(taken?.record.namespaceId, id, 'long before the lease expires');
      assert.equal(await new OrgMirrorScheduleStore(admin.db, admin.dialect).holds(id, held.txn), false, 'B lost its claim');
      assert.equal(await mine.holds(id, taken.txn), true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
