import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LoginFailureStore } from '../../db/login-failure-store.js';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import { LoginThrottle } from './login-throttle.js';

for (const dialect of DIALECTS) {
  describe(`login throttling on the database (${dialect})`, () => {
    let db: Awaited<ReturnType<typeof openTestDatabase>>;
    let now = 1_000_000;
    const clock = { now: () => now };

    before(async () => {
      db = await openTestDatabase(dialect);
    });
    after(async () => {
      await db?.close();
    });

    it('two throttles on one database share one limit per key within a sliding minute', async () => {
      const a = new LoginThrottle(3, new LoginFailureStore(db.db), clock);
      const b = new LoginThrottle(3, new LoginFailureStore(db.db), clock);
      const keys = ['user:alice', 'ip:192.0.2.1'];
      await a.fail(keys);
      now += 10_000;
      await b.fail(keys);
      assert.equal(await a.retryAfter(keys), 0);
      assert.equal(await b.retryAfter(['user:alice']), 0);
      now += 10_000;
      await a.fail(['user:alice']);
      // Three failures of alice: 1 000 000, 1 010 000, 1 020 000; the oldest leaves the window at 1 060 000.
      assert.equal(await b.retryAfter(['user:alice']), 40);
      assert.equal(await b.retryAfter(['user:alice', 'ip:192.0.2.9']), 40);
      assert.equal(await a.retryAfter(['ip:192.0.2.1']), 0, 'the address failed twice only');
      now = 1_060_000;
      assert.equal(await a.retryAfter(['user:alice']), 0, 'the oldest failure left the window');
      now = 1_060_001;
      await b.fail(['user:alice']);
      assert.equal(await a.retryAfter(['user:alice']), 10);
    });

    it('forgets failures older than the window when it records new ones', async () => {
      const store = new LoginFailureStore(db.db);
      const t = new LoginThrottle(2, store, clock);
      now = 5_000_000;
      await t.fail(['user:old']);
      now += 61_000;
      await t.fail(['user:new']);
      const rows = await db.db.selectFrom('login_failures').select(['key', 'at']).where('key', '=', 'user:old').execute();
      assert.deepEqual(rows, []);
      assert.deepEqual([...(await store.since(['user:new', 'user:old'], 0)).keys()], ['user:new']);
    });
  });
}
