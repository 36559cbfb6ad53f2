/** /api/v1/user/apitokens, on both dialects: one-time secrets, scopes, expiry and revocation. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import type { Accounts } from '../../registry/accounts/accounts.js';
import { expiryOf } from './api-tokens.js';
import { apiClient, basicOf } from '../../../test/helpers/api-client.js';

const basic = (user: string) => basicOf(user, `${user}-password`);

describe('expiryOf', () => {
  const now = Date.UTC(2030, 0, 1);
  it('reads durations, seconds and ISO dates', () => {
    assert.equal(expiryOf(undefined, now), null);
    assert.equal(expiryOf('1h30m', now), now + 90 * 60_000);
    assert.equal(expiryOf('30d', now), now + 30 * 86_400_000);
    assert.equal(expiryOf(60, now), now + 60_000);
    assert.equal(expiryOf('2030-02-01T00:00:00Z', now), Date.UTC(2030, 1, 1));
  });
  it('refuses nonsense and the past', () => {
    for (const bad of ['0s', 'soon', '2029-12-31', '12 parsecs', '2030-13-45']) assert.throws(() => expiryOf(bad, now), /expiration/, bad);
  });
});

for (const dialect of DIALECTS) {
  describe(`/api/v1 API tokens (${dialect})`, () => {
    let t: TestApp;
    let a: Accounts;
    before(async () => {
      t = await buildTestApp(dialect);
      a = t.accounts!;
      for (const name of ['alice', 'bob']) await a.accounts.createUser({ name, password: `${name}-password` });
    });
    after(() => t?.close());

    const { call, expectError } = apiClient(() => t.app);

    it('refuses anonymous callers and bad input', async () => {
      await expectError(call('GET', '/user/apitokens'), 401);
      await expectError(call('POST', '/user/apitokens', undefined, { name: 'ci', scopes: ['repo:read'] }), 401);
      await expectError(call('DELETE', '/user/apitokens/1'), 401);
      const alice = basic('alice');
      await expectError(call('POST', '/user/apitokens', alice, { scopes: ['repo:read'] }), 400);
      await expectError(call('POST', '/user/apitokens', alice, { name: 'ci', scopes: [] }), 400);
      await expectError(call('POST', '/user/apitokens', alice, { name: 'ci', scopes: ['repo:everything'] }), 400);
      await expectError(call('POST', '/user/apitokens', alice, { name: 'ci', scopes: ['repo:read'], expiration: 'whenever' }), 400);
      await expectError(call('POST', '/user/apitokens', alice, { name: 'ci', scopes: ['repo:read'], expiration: '2001-01-01' }), 400);
      // Absurd lifetimes are refused before anything is stored, and the list stays readable.
      await expectError(call('POST', '/user/apitokens', alice, { name: 'ci', scopes: ['repo:read'], expiration: '99999999d' }), 400);
      await expectError(call('POST', '/user/apitokens', alice, { name: 'ci', scopes: ['repo:read'], expiration: '9999-01-01T00:00:00Z' }), 400);
      assert.equal((await call('GET', '/user/apitokens', alice)).status, 200);
      await expectError(call('DELETE', '/user/apitokens/abc', alice), 400);
      await expectError(call('DELETE', '/user/apitokens/999999', alice), 404);
    });

    it('shows the secret once, lists tokens without it, and revokes at once', async () => {
      const created = await call('POST', '/user/apitokens', basic('alice'), { name: 'cli', scopes: ['user:read', 'repo:read'], expiration: '30d' });
      assert.equal(created.status, 201, created.raw);
      const { id, token } = created.body as { id: number; token: string };
      assert.deepEqual(created.body!.scopes, ['repo:read', 'user:read']);
      assert.ok(Date.parse(created.body!.expires) > Date.now() + 29 * 86_400_000);
      assert.equal((await call('GET', '/user/', `Bearer ${token}`)).body!.username, 'alice');

      const list = await call('GET', '/user/apitokens', `Bearer ${token}`);
      assert.equal(list.status, 200);
      assert.equal(list.body!.tokens.length, 1);
      assert.deepEqual(Object.keys(list.body!.tokens[0]).sort(), ['created', 'expires', 'id', 'last_used', 'name', 'revoked', 'scopes']);
      assert.ok(!list.raw.includes(token));
      assert.equal((await call('GET', '/user/apitokens', basic('bob'))).body!.tokens.length, 0, 'only the caller\'s tokens');

      // A token without user:admin cannot manage tokens, and nobody revokes another user's token.
      await expectError(call('POST', '/user/apitokens', `Bearer ${token}`, { name: 'x', scopes: ['repo:read'] }), 403);
      await expectError(call('DELETE', `/user/apitokens/${id}`, `Bearer ${token}`), 403);
      await expectError(call('DELETE', `/user/apitokens/${id}`, basic('bob')), 404);

      assert.equal((await call('DELETE', `/user/apitokens/${id}`, basic('alice'))).status, 204);
      await expectError(call('GET', '/user/', `Bearer ${token}`), 401);
      assert.equal((await t.app.inject({ url: '/v2/', headers: { authorization: `Basic ${Buffer.from(`$token:${token}`).toString('base64')}` } })).statusCode, 401);
      await expectError(call('DELETE', `/user/apitokens/${id}`, basic('alice')), 404);
      const after = await call('GET', '/user/apitokens', basic('alice'));
      assert.equal(typeof after.body!.tokens[0].revoked, 'string');

      const entries = (await a.audit.query({ namespace: 'alice' })).entries;
      assert.deepEqual(entries.map((e) => e.kind).filter((k) => k.endsWith('api_token')).sort(), ['create_api_token', 'revoke_api_token']);
      assert.ok(!JSON.stringify(entries).includes(token), 'no secret in the audit log');
    });

    it('never lets a token create a token with scopes it lacks', async () => {
      const narrow = (await a.apiTokens.create('bob', { name: 'admin-only', scopes: ['user:admin'] })).secret;
      await expectError(call('POST', '/user/apitokens', `Bearer ${narrow}`, { name: 'wide', scopes: ['repo:admin'] }), 403);
      const ok = await call('POST', '/user/apitokens', `Bearer ${narrow}`, { name: 'same', scopes: ['user:read'], expiration: '2031-01-01T00:00:00Z' });
      assert.equal(ok.status, 201, ok.raw);
      assert.equal(ok.body!.expires, '2031-01-01T00:00:00.000Z');
    });
  });
}
