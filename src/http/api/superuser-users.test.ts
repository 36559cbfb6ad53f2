/** /api/v1/superuser/users, on both dialects. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import type { Accounts } from '../../registry/accounts/accounts.js';
import { apiClient, basicOf } from '../../../test/helpers/api-client.js';

const basic = (user: string) => basicOf(user, `${user}-password`);

for (const dialect of DIALECTS) {
  describe(`/api/v1 superuser user management (${dialect})`, () => {
    let t: TestApp;
    let a: Accounts;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.login_failures_per_minute': 1000 } });
      a = t.accounts!;
      await a.accounts.createUser({ name: 'admin', password: 'admin-password', superuser: true });
      await a.accounts.createUser({ name: 'alice', password: 'alice-password' });
    });
    after(() => t?.close());

    const { call, expectError } = apiClient(() => t.app);
    const v2 = async (authorization: string) => (await t.app.inject({ url: '/v2/', headers: { authorization } })).statusCode;
    const admin = basic('admin');

    it('is for superusers only', async () => {
      for (const [method, path, body] of [
        ['GET', '/superuser/users/', undefined],
        ['POST', '/superuser/users/', { username: 'zed' }],
        ['PUT', '/superuser/users/alice', { enabled: false }],
        ['DELETE', '/superuser/users/alice', undefined],
      ] as const) {
        await expectError(call(method, path, undefined, body), 401);
        await expectError(call(method, path, basic('alice'), body), 403);
      }
      const noSuper = (await a.apiTokens.create('admin', { name: 'plain', scopes: ['user:admin'] })).secret;
      await expectError(call('GET', '/superuser/users/', `Bearer ${noSuper}`), 403);
    });

    it('lists users with paging', async () => {
      const all = await call('GET', '/superuser/users/', admin);
      assert.equal(all.status, 200);
      assert.deepEqual(all.body!.users.map((u: { username: string }) => u.username), ['admin', 'alice']);
      assert.equal(all.body!.users[0].super_user, true);
      assert.ok(!all.raw.includes('scrypt'), 'no password hash');
      const first = await call('GET', '/superuser/users/?limit=1', admin);
      assert.equal(first.body!.next_page, 'admin');
      const second = await call('GET', `/superuser/users/?limit=1&next_page=${first.body!.next_page}`, admin);
      assert.deepEqual(second.body!.users.map((u: { username: string }) => u.username), ['alice']);
      await expectError(call('GET', '/superuser/users/?limit=0', admin), 400);
    });

    it('creates users, generating a password shown once when none is given', async () => {
      await expectError(call('POST', '/superuser/users/', admin, { username: 'Bad Name' }), 400);
      await expectError(call('POST', '/superuser/users/', admin, { username: 'zed', password: 'short' }), 400);
      await expectError(call('POST', '/superuser/users/', admin, { username: 'zed', email: 'nope' }), 400);
      await expectError(call('POST', '/superuser/users/', admin, { username: 'alice' }), 409);
      const gen = await call('POST', '/superuser/users/', admin, { username: 'zed', email: 'zed@example.com' });
      assert.equal(gen.status, 201, gen.raw);
      assert.equal(gen.body!.username, 'zed');
      assert.equal(typeof gen.body!.password, 'string');
      assert.equal(await v2(basicOf('zed', gen.body!.password)), 200);
      const given = await call('POST', '/superuser/users/', admin, { username: 'yan', password: 'yan-password' });
      assert.equal(given.status, 201);
      assert.equal(given.body!.password, undefined, 'a given password is not echoed');
      const entries = (await a.audit.query({ kinds: ['user_create'] })).entries;
      assert.deepEqual(entries.map((e) => e.namespace).sort(), ['yan', 'zed']);
      assert.ok(!JSON.stringify(entries).includes(gen.body!.password));
    });

    it('changes password, email, enabled and superuser flags', async () => {
      await expectError(call('PUT', '/superuser/users/nosuch', admin, { enabled: false }), 404);
      await expectError(call('PUT', '/superuser/users/yan', admin, { enabled: 'no' }), 400);
      await expectError(call('PUT', '/superuser/users/yan', admin, { password: 'short' }), 400);
      await expectError(call('PUT', '/superuser/users/admin', admin, { enabled: false }), 400);
      await expectError(call('PUT', '/superuser/users/admin', admin, { superuser: false }), 400);

      let res = await call('PUT', '/superuser/users/yan', admin, { password: 'new-yan-password', email: 'yan@example.com' });
      assert.equal(res.status, 200, res.raw);
      assert.equal(res.body!.email, 'yan@example.com');
      assert.equal(await v2(basicOf('yan', 'yan-password')), 401);
      assert.equal(await v2(basicOf('yan', 'new-yan-password')), 200);

      res = await call('PUT', '/superuser/users/yan', admin, { enabled: false });
      assert.equal(res.body!.enabled, false);
      assert.equal(await v2(basicOf('yan', 'new-yan-password')), 401, 'a disabled user cannot log in');
      await call('PUT', '/superuser/users/yan', admin, { enabled: true, superuser: true });
      const yan = basicOf('yan', 'new-yan-password');
      assert.equal((await call('GET', '/superuser/users/', yan)).status, 200, 'promoted');

      const kinds = (await a.audit.query({ namespace: 'yan' })).entries.map((e) => e.kind);
      for (const k of ['user_change_password', 'user_change_email', 'user_disable', 'user_enable', 'user_change_superuser']) assert.ok(kinds.includes(k), `${k} in ${kinds.join()}`);
      assert.ok(!JSON.stringify((await a.audit.query({ namespace: 'yan' })).entries).includes('new-yan-password'));
    });

    it('deletes users, but not oneself', async () => {
      await expectError(call('DELETE', '/superuser/users/admin', admin), 400);
      await expectError(call('DELETE', '/superuser/users/nosuch', admin), 404);
      assert.equal((await call('DELETE', '/superuser/users/zed', admin)).status, 204);
      await expectError(call('DELETE', '/superuser/users/zed', admin), 404);
      assert.equal((await a.audit.query({ namespace: 'zed', kinds: ['user_delete'] })).entries.length, 1);
    });
  });
}
