/**
 * The collection's `quay_first_user` module, replayed (plugins/modules/quay_first_user.py): an
 * anonymous POST user/initialize {username, password, access_token, email?}, on a registry started with
 * `auth.user_initialize`, on both dialects. The module is documented to fail once users exist; the token
 * it returns then drives the other modules, and the password signs in as the collection does.
 * The module is the collection's one anonymous module (APIModuleNoAuth): it runs in no other auth mode.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { DIALECTS } from '../helpers/databases.js';
import { injectTransport, QuayClient } from '../helpers/quay-session.js';

/** The module's main(): module.create("user", …, "user/initialize", new_fields); any other status fails it. */
async function firstUser(q: QuayClient, p: { username: string; password: string; email?: string; create_token: boolean }) {
  const fields: Record<string, unknown> = { username: p.username, password: p.password, access_token: p.create_token };
  if (p.email) fields.email = p.email;
  const res = await q.api('POST', 'user/initialize', fields);
  if (![200, 201, 204].includes(res.status)) return { failed: true, status: res.status, json: res.json };
  return { failed: false, changed: true, ...res.json };
}

for (const dialect of DIALECTS) {
  describe(`quay_first_user (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.user_initialize': true } });
    });
    after(() => t?.close());
    const transport = injectTransport(() => t.app);

    it('creates the first superuser with a token, then fails as the module is documented to', async () => {
      const anonymous = QuayClient.anonymous(transport);
      const first = await firstUser(anonymous, { username: 'admin', password: 'S6tGwo13', email: 'admin@example.com', create_token: true });
      assert.equal(first.failed, false, JSON.stringify(first));
      assert.equal(first.username, 'admin');
      assert.equal(first.email, 'admin@example.com');
      assert.equal(typeof first.access_token, 'string');

      // The returned token is the other modules' quay_token; the password signs in as they do.
      const withToken = QuayClient.withToken(transport, first.access_token);
      assert.equal((await withToken.api('GET', 'user/')).json.super_user, true);
      const org = await withToken.api('POST', 'organization/', { name: 'production', email: 'prod@example.com' });
      assert.equal(org.status, 201, org.raw);
      const session = await QuayClient.signIn(transport, 'admin', 'S6tGwo13');
      assert.equal((await session.api('GET', 'organization/production')).status, 200);
      await session.signOut();

      const again = await firstUser(anonymous, { username: 'other', password: 'other-password', create_token: false });
      assert.equal(again.failed, true);
      assert.equal(again.status, 409);
      assert.equal(again.json.error_type, 'conflict');
      assert.match(again.json.detail, /has users already/);
    });
  });

  describe(`quay_first_user without a token (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.user_initialize': true } });
    });
    after(() => t?.close());

    it('returns no access_token when create_token is false, and bad input fails with 400', async () => {
      const anonymous = QuayClient.anonymous(injectTransport(() => t.app));
      const short = await firstUser(anonymous, { username: 'admin', password: 'short', create_token: false });
      assert.equal(short.status, 400);
      const res = await firstUser(anonymous, { username: 'admin', password: 'long-enough', create_token: false });
      assert.equal(res.failed, false, JSON.stringify(res));
      assert.equal('access_token' in res, false);
      assert.equal(res.email, null);
    });
  });
}
