/**
 * POST /api/v1/user/initialize on both dialects, and how it sits with the first start's own superuser:
 * off by default (the first start creates the admin), on with `auth.user_initialize` (the first start
 * creates nobody, and the endpoint creates exactly one first superuser).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { loadConfig } from '../../config/load.js';
import { bootstrapAdmin } from '../../main/bootstrap.js';

const init = (t: TestApp, payload: unknown) => t.app.inject({ method: 'POST', url: '/api/v1/user/initialize', payload: payload as object });

describe('auth.user_initialize in the configuration', () => {
  it('is off by default and cannot go with an admin password', () => {
    assert.equal(loadConfig({ env: {}, overrides: {} }).auth.user_initialize, false);
    assert.equal(loadConfig({ env: { WHARF_AUTH_USER_INITIALIZE: 'true' }, overrides: {} }).auth.user_initialize, true);
    assert.throws(() => loadConfig({ env: { WHARF_AUTH_USER_INITIALIZE: 'true', WHARF_ADMIN_PASSWORD: 'something-long' }, overrides: {} }), /user_initialize/);
  });
});

for (const dialect of DIALECTS) {
  describe(`first user by the first start (the default) (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect);
    });
    after(() => t?.close());

    it('creates the admin on the first start, and user/initialize answers 404 even with no user', async () => {
      const refused = await init(t, { username: 'first', password: 'first-password' });
      assert.equal(refused.statusCode, 404, refused.body);
      assert.match(refused.json().detail, /auth\.user_initialize/);
      assert.equal(await t.accounts!.accounts.countUsers(), 0);
      const admin = await bootstrapAdmin(t.accounts!, { ...t.config, auth: { ...t.config.auth, admin_password: 'admin-password' } });
      assert.equal(admin?.username, 'admin');
      assert.equal((await init(t, { username: 'first', password: 'first-password' })).statusCode, 404);
    });
  });

  describe(`first user through user/initialize (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.user_initialize': true } });
    });
    after(() => t?.close());

    it('lets the first start create nobody', async () => {
      assert.equal(await bootstrapAdmin(t.accounts!, t.config), undefined);
      assert.equal(await t.accounts!.accounts.countUsers(), 0);
    });

    it('refuses bad input before anything exists (400, no user created)', async () => {
      for (const payload of [{}, { username: 'x' }, { username: 'Bad Name', password: 'long-enough' }, { username: 'ok', password: 'short' }, { username: 'ok', password: 'long-enough', email: 'nope' }, { username: 'ok', password: 'long-enough', access_token: 'yes' }]) {
        const res = await init(t, payload);
        assert.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`);
        assert.equal(res.json().error_type, 'invalid_request');
      }
      assert.equal(await t.accounts!.accounts.countUsers(), 0);
    });

    it('creates exactly one first superuser of concurrent calls, with a working token, and refuses afterwards', async () => {
      const names = ['first', 'second', 'third', 'fourth'];
      const results = await Promise.all(names.map((n) => init(t, { username: n, password: `${n}-password`, email: `${n}@example.com`, access_token: true })));
      const ok = results.filter((r) => r.statusCode === 200);
      assert.equal(ok.length, 1, results.map((r) => `${r.statusCode} ${r.body}`).join('\n'));
      for (const r of results.filter((x) => x.statusCode !== 200)) assert.equal(r.statusCode, 409, r.body);
      const body = ok[0]!.json();
      assert.deepEqual(Object.keys(body).sort(), ['access_token', 'email', 'username']);
      assert.equal(body.email, `${body.username}@example.com`);
      assert.equal(await t.accounts!.accounts.countUsers(), 1);

      const me = await t.app.inject({ url: '/api/v1/user/', headers: { authorization: `Bearer ${body.access_token}` } });
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json().username, body.username);
      assert.equal(me.json().super_user, true);
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/superuser/users/', headers: { authorization: `Bearer ${body.access_token}` }, payload: { username: 'next', password: 'next-password' } });
      assert.equal(created.statusCode, 201, created.body);
      const [token] = await t.accounts!.apiTokens.list(body.username);
      const hours = (token!.expiresAt! - Date.now()) / 3_600_000;
      assert.ok(hours > 2.4 && hours <= 2.5, `the token lasts 2.5 h (${hours})`);

      const again = await init(t, { username: 'late', password: 'late-password' });
      assert.equal(again.statusCode, 409, again.body);
      assert.equal(again.json().error_type, 'conflict');
      // The password works for sign-in and /v2 as any other.
      const v2 = await t.app.inject({ url: '/v2/', headers: { authorization: `Basic ${Buffer.from(`${body.username}:${body.username}-password`).toString('base64')}` } });
      assert.equal(v2.statusCode, 200);
    });
  });
}
