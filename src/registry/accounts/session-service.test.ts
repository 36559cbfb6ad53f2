/** SessionService on both dialects with a moving clock: idle and absolute expiry, ending, CSRF tokens. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { RepositoryStore } from '../../db/repository-store.js';
import { SessionStore } from '../../db/session-store.js';
import { createAccounts } from '../../main/compose-accounts.js';
import { RepositoryService } from '../repositories.js';
import type { Accounts } from './accounts.js';
import { csrfTokenOf, sameToken } from './session-service.js';

const HOUR = 3_600_000;

for (const dialect of DIALECTS) {
  describe(`sessions (${dialect})`, () => {
    let h: DatabaseHandle;
    let a: Accounts;
    let clock = 1_900_000_000_000;
    let alice: number;
    before(async () => {
      h = await openTestDatabase(dialect);
      a = createAccounts(h.db, h.dialect, new RepositoryService(new RepositoryStore(h.db, h.dialect)), { now: () => clock, sessionIdleMs: 2 * HOUR, sessionMaxAgeMs: 10 * HOUR });
      alice = (await a.accounts.createUser({ name: 'alice', password: 'alice-password' })).id;
    });
    after(async () => h.close());

    it('resumes a session with its user and CSRF token, and stores only a hash of the secret', async () => {
      const opened = await a.sessions.open(alice, { ip: '192.0.2.1', userAgent: 'test' });
      assert.match(opened.secret, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(opened.csrfToken, csrfTokenOf(opened.secret));
      const resumed = await a.sessions.resume(opened.secret);
      assert.deepEqual(resumed?.principal, { kind: 'user', id: alice, name: 'alice', superuser: false });
      assert.equal(resumed?.csrfToken, opened.csrfToken);
      const rows = await h.db.selectFrom('sessions').selectAll().execute();
      assert.ok(!JSON.stringify(rows).includes(opened.secret), 'the secret is not stored');
      assert.ok(!JSON.stringify(rows).includes(opened.csrfToken), 'nor the CSRF token');
      assert.equal(await a.sessions.resume(`${opened.secret}x`), undefined);
      assert.equal(await a.sessions.resume(''), undefined);
    });

    it('ends a session unused for the idle time, and any session at its absolute end, however busy', async () => {
      const idle = await a.sessions.open(alice);
      const busy = await a.sessions.open(alice);
      for (let i = 0; i < 9; i++) {
        clock += HOUR;
        assert.ok(await a.sessions.resume(busy.secret), `busy session alive after ${i + 1} h`);
      }
      assert.equal(await a.sessions.resume(idle.secret), undefined, 'idle for 9 h');
      clock += HOUR;
      assert.equal(await a.sessions.resume(busy.secret), undefined, '10 h after sign-in');
      // Ended sessions leave no rows behind (removed when found, or swept at the next sign-in).
      await a.sessions.open(alice);
      assert.equal(await new SessionStore(h.db).countForUser(alice), 1, 'only the new one: the first test\'s idle session was swept');
    });

    it('ends one session on end(), and all of a user\'s on a password change or disabling', async () => {
      const one = await a.sessions.open(alice);
      const two = await a.sessions.open(alice);
      assert.equal(await a.sessions.end(one.secret), true);
      assert.equal(await a.sessions.end(one.secret), false);
      assert.equal(await a.sessions.resume(one.secret), undefined);
      assert.ok(await a.sessions.resume(two.secret));
      await a.accounts.setPassword('alice', 'alice-password-2');
      assert.equal(await a.sessions.resume(two.secret), undefined);
      const three = await a.sessions.open(alice);
      await a.accounts.setEnabled('alice', false);
      await a.accounts.setEnabled('alice', true);
      assert.equal(await a.sessions.resume(three.secret), undefined);
      const four = await a.sessions.open(alice);
      await a.accounts.deleteUser('alice');
      assert.equal(await a.sessions.resume(four.secret), undefined);
      assert.equal(await new SessionStore(h.db).countForUser(alice), 0, 'the rows went with the user');
    });

    it('compares tokens exactly', () => {
      assert.equal(sameToken('abc', 'abc'), true);
      for (const bad of ['abd', 'ab', 'abcd', '', undefined, ['abc'], 3]) assert.equal(sameToken(bad, 'abc'), false, String(bad));
    });
  });
}
