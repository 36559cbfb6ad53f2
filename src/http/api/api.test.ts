import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

for (const dialect of DIALECTS) {
  describe(`/api/v1 basics (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect);
      await t.accounts!.accounts.createUser({ name: 'alice', password: 'alice-password', email: 'alice@example.com' });
    });
    after(async () => t.close());

    const assertApiError = (res: { statusCode: number; json(): unknown }, status: number, type: string) => {
      assert.equal(res.statusCode, status);
      const body = res.json() as { status: number; error_type: string; detail: string };
      assert.equal(body.status, status);
      assert.equal(body.error_type, type);
      assert.equal(typeof body.detail, 'string');
    };

    it('answers anonymous callers of /user/ with 401 invalid_token', async () => {
      assertApiError(await t.app.inject({ url: '/api/v1/user/' }), 401, 'invalid_token');
    });

    it('accepts Basic credentials and API tokens', async () => {
      let res = await t.app.inject({ url: '/api/v1/user/', headers: { authorization: basic('alice', 'alice-password') } });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().username, 'alice');
      assert.equal(res.json().email, 'alice@example.com');
      const { secret } = await t.accounts!.apiTokens.create('alice', { name: 'cli', scopes: ['user:read'] });
      res = await t.app.inject({ url: '/api/v1/user/', headers: { authorization: `Bearer ${secret}` } });
      assert.equal(res.statusCode, 200, res.body);
      const noScope = await t.accounts!.apiTokens.create('alice', { name: 'narrow', scopes: ['repo:read'] });
      assertApiError(await t.app.inject({ url: '/api/v1/user/', headers: { authorization: `Bearer ${noScope.secret}` } }), 403, 'insufficient_scope');
    });

    it('refuses bad credentials with the stable error shape', async () => {
      assertApiError(await t.app.inject({ url: '/api/v1/user/', headers: { authorization: basic('alice', 'wrong') } }), 401, 'invalid_token');
      assertApiError(await t.app.inject({ url: '/api/v1/user/', headers: { authorization: 'Bearer nope' } }), 401, 'invalid_token');
      assertApiError(await t.app.inject({ url: '/api/v1/user/', headers: { authorization: 'Digest x' } }), 401, 'invalid_token');
      assertApiError(await t.app.inject({ url: '/api/v1/nothing-here' }), 404, 'not_found');
      const badJson = await t.app.inject({ method: 'POST', url: '/api/v1/nothing-here', payload: '{', headers: { 'content-type': 'application/json' } });
      assert.ok(badJson.statusCode === 400 || badJson.statusCode === 404, String(badJson.statusCode));
    });

    it("changes the caller's own password only with the current one, and the email", async () => {
      const auth = { authorization: basic('alice', 'alice-password') };
      const put = (payload: object, headers: Record<string, string> = auth) => t.app.inject({ method: 'PUT', url: '/api/v1/user/', headers, payload });
      assertApiError(await put({ password: 'new-password-1' }), 403, 'insufficient_scope');
      assertApiError(await put({ password: 'new-password-1', old_password: 'wrong' }), 403, 'insufficient_scope');
      const { secret } = await t.accounts!.apiTokens.create('alice', { name: 'takeover', scopes: ['user:admin', 'user:read'] });
      assertApiError(await put({ password: 'new-password-1', old_password: secret }, { authorization: `Bearer ${secret}` }), 403, 'insufficient_scope');
      assertApiError(await put({}), 400, 'invalid_request');
      assertApiError(await put({ password: 'x', old_password: 'alice-password', extra: 1 }), 400, 'invalid_request');
      assertApiError(await put({ email: 'a@b.c' }, {}), 401, 'invalid_token');
      let res = await put({ email: 'new@example.com' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().email, 'new@example.com');
      res = await put({ password: 'new-password-1', old_password: 'alice-password' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((await t.app.inject({ url: '/api/v1/user/', headers: { authorization: basic('alice', 'new-password-1') } })).statusCode, 200);
      const kinds = (await t.accounts!.audit.query({ namespace: 'alice' })).entries.map((e) => e.kind);
      assert.ok(kinds.includes('user_change_password') && kinds.includes('user_change_email'), kinds.join());
      // Put things back for the other tests.
      await t.accounts!.accounts.setPassword('alice', 'alice-password');
    });

    it('refuses a body with a NUL character in any string (400, naming the field) and stores nothing', async () => {
      const auth = { authorization: basic('alice', 'alice-password'), 'content-type': 'application/json' };
      const put = (payload: string) => t.app.inject({ method: 'PUT', url: '/api/v1/user/', headers: auth, payload });
      let res = await put(JSON.stringify({ email: 'nul\u0000@example.com' }));
      assertApiError(res, 400, 'invalid_request');
      assert.match(res.json().detail, /^email: text must not contain NUL characters/);
      res = await t.app.inject({ method: 'POST', url: '/api/v1/user/apitokens', headers: auth, payload: JSON.stringify({ name: 'n', scopes: ['repo:read', 'x\u0000'] }) });
      assertApiError(res, 400, 'invalid_request');
      assert.match(res.json().detail, /^scopes\.1: /);
      res = await put('{"email":"a@b.c","\\u0000":1}');
      assertApiError(res, 400, 'invalid_request');
      assert.equal((await t.accounts!.accounts.getUser('alice'))?.email, 'new@example.com', 'unchanged');
    });

    it('serves an OpenAPI document listing every route', async () => {
      const res = await t.app.inject({ url: '/api/v1/discovery' });
      assert.equal(res.statusCode, 200);
      const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
      assert.equal(doc.openapi, '3.1.0');
      assert.ok(doc.paths['/api/v1/user/']?.get);
      assert.deepEqual((await t.app.inject({ url: '/api/v1/openapi.json' })).json(), doc);
    });
  });
}
