/** /api/v1/user/apptoken on both dialects: shown once, a password for /v2 (user `$app`), expiry, revocation, not an API credential. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiClient, basicOf } from '../../../test/helpers/api-client.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

const basic = (user: string) => basicOf(user, `${user}-password`);

for (const dialect of DIALECTS) {
  describe(`/api/v1 app-specific tokens (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.app_token_expiration': '30d' } });
      const a = t.accounts!;
      for (const name of ['alice', 'bob']) await a.accounts.createUser({ name, password: `${name}-password` });
      await a.accounts.createOrganization({ name: 'acme', creator: 'alice' });
    });
    after(() => t?.close());
    const { call, expectError } = apiClient(() => t.app);

    it('shows the token code once, lists and gets tokens without it, with Quay\'s fields and dates', async () => {
      const created = await call('POST', '/user/apptoken', basic('alice'), { title: 'laptop' });
      assert.equal(created.status, 200, created.raw);
      const token = created.body!.token;
      assert.deepEqual(Object.keys(token).sort(), ['created', 'expiration', 'last_accessed', 'title', 'token_code', 'uuid']);
      assert.equal(token.title, 'laptop');
      assert.match(token.uuid, /^[0-9a-f-]{36}$/);
      assert.equal(token.last_accessed, null);
      assert.match(token.created, /GMT$/);
      const days = (Date.parse(token.expiration) - Date.now()) / 86_400_000;
      assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);

      const list = await call('GET', '/user/apptoken', basic('alice'));
      assert.equal(list.status, 200);
      assert.equal(list.body!.only_expiring, null);
      assert.deepEqual(list.body!.tokens.map((x: { uuid: string }) => x.uuid), [token.uuid]);
      assert.ok(!list.raw.includes(token.token_code));
      const one = await call('GET', `/user/apptoken/${token.uuid}`, basic('alice'));
      assert.equal(one.status, 200);
      assert.deepEqual(Object.keys(one.body!.token).sort(), ['created', 'expiration', 'last_accessed', 'title', 'uuid']);
      // Not among the API tokens, and not another user's.
      assert.equal((await call('GET', '/user/apitokens', basic('alice'))).body!.tokens.length, 0);
      assert.equal((await call('GET', '/user/apptoken', basic('bob'))).body!.tokens.length, 0);
      await expectError(call('GET', `/user/apptoken/${token.uuid}`, basic('bob')), 404);
      await expectError(call('DELETE', `/user/apptoken/${token.uuid}`, basic('bob')), 404);
      // Expiring within a tenth of the lifetime (3 days): not this one.
      assert.equal((await call('GET', '/user/apptoken?expiring=true', basic('alice'))).body!.tokens.length, 0);
      assert.equal((await call('GET', '/user/apptoken?expiring=true', basic('alice'))).body!.only_expiring, true);
    });

    it('logs registry clients in as `$app` (and as the user), but is no credential for /api/v1 beyond repositories', async () => {
      const code = (await call('POST', '/user/apptoken', basic('alice'), { title: 'ci' })).body!.token.token_code as string;
      for (const user of ['$app', 'alice']) {
        const v2 = await t.app.inject({ url: '/v2/', headers: { authorization: basicOf(user, code) } });
        assert.equal(v2.statusCode, 200, `${user}: ${v2.body}`);
        const token = await t.app.inject({ url: '/v2/auth?service=localhost:80&scope=repository:acme/app:push,pull', headers: { authorization: basicOf(user, code) } });
        assert.equal(token.statusCode, 200, token.body);
        assert.deepEqual(JSON.parse(Buffer.from(token.json().token.split('.')[1], 'base64url').toString()).access[0].actions.sort(), ['pull', 'push']);
      }
      assert.equal((await t.app.inject({ url: '/v2/', headers: { authorization: basicOf('bob', code) } })).statusCode, 401, 'not as another user');
      assert.equal((await t.app.inject({ url: '/v2/', headers: { authorization: basicOf('$token', code) } })).statusCode, 401, '$token is for API tokens');
      await expectError(call('GET', '/user/', `Bearer ${code}`), 401);
      // Through Basic on /api/v1 it carries the repository scopes only.
      await expectError(call('GET', '/user/', basicOf('$app', code)), 403);
      await expectError(call('POST', '/user/apptoken', basicOf('$app', code), { title: 'more' }), 403);
      const listed = (await call('GET', '/user/apptoken', basic('alice'))).body!.tokens.find((x: { title: string }) => x.title === 'ci');
      assert.match(listed.last_accessed, /GMT$/, 'the use is recorded');
    });

    it('revokes at once: logins and /v2 bearer tokens issued to them stop working', async () => {
      const { uuid, token_code: code } = (await call('POST', '/user/apptoken', basic('alice'), { title: 'short' })).body!.token;
      const bearer = (await t.app.inject({ url: '/v2/auth?service=localhost:80&scope=repository:acme/app:pull', headers: { authorization: basicOf('$app', code) } })).json().token as string;
      assert.equal((await t.app.inject({ url: '/v2/', headers: { authorization: `Bearer ${bearer}` } })).statusCode, 200);
      assert.equal((await call('DELETE', `/user/apptoken/${uuid}`, basic('alice'))).status, 204);
      assert.equal((await t.app.inject({ url: '/v2/', headers: { authorization: basicOf('$app', code) } })).statusCode, 401);
      assert.equal((await t.app.inject({ url: '/v2/', headers: { authorization: `Bearer ${bearer}` } })).statusCode, 401);
      await expectError(call('GET', `/user/apptoken/${uuid}`, basic('alice')), 404);
      await expectError(call('DELETE', `/user/apptoken/${uuid}`, basic('alice')), 404);
      assert.ok(!(await call('GET', '/user/apptoken', basic('alice'))).body!.tokens.some((x: { uuid: string }) => x.uuid === uuid));
      const kinds = (await t.accounts!.audit.query({ namespace: 'alice' })).entries.map((e) => e.kind);
      assert.ok(kinds.includes('create_app_specific_token') && kinds.includes('revoke_app_specific_token'));
    });

    it('refuses bad input and anonymous callers with the API error shape', async () => {
      await expectError(call('GET', '/user/apptoken'), 401);
      await expectError(call('POST', '/user/apptoken', undefined, { title: 'x' }), 401);
      await expectError(call('POST', '/user/apptoken', basic('alice'), {}), 400);
      await expectError(call('POST', '/user/apptoken', basic('alice'), { title: '' }), 400);
      await expectError(call('POST', '/user/apptoken', basic('alice'), { title: 'x'.repeat(300) }), 400);
      await expectError(call('POST', '/user/apptoken', basic('alice'), { title: 7 }), 400);
      await expectError(call('GET', `/user/apptoken/${'a'.repeat(65)}`, basic('alice')), 400);
      await expectError(call('GET', '/user/apptoken/not-a-uuid', basic('alice')), 404);
      await expectError(call('GET', '/user/apptoken?expiring=sometimes', basic('alice')), 400);
    });
  });

  describe(`/api/v1 app-specific tokens without an expiry setting (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect);
      await t.accounts!.accounts.createUser({ name: 'alice', password: 'alice-password' });
    });
    after(() => t?.close());

    it('do not expire', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/user/apptoken', headers: { authorization: basic('alice') }, payload: { title: 'forever' } });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().token.expiration, null);
    });
  });
}
