/**
 * The collection's `quay_docker_token` module, replayed call by call (plugins/modules/quay_docker_token.py):
 * GET user/apptoken, then POST user/apptoken {title} (present, absent token), GET user/apptoken/{uuid}
 * (present, existing token), DELETE user/apptoken/{uuid} (absent). With user/password sign-in and with a
 * token, on both dialects; the token it returns logs a registry client in as `$app`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, injectTransport, moduleRun, type AuthMode, type QuayClient } from '../helpers/quay-session.js';

/** The module's main(): returns what it exits with. */
async function dockerToken(q: QuayClient, name: string, state: 'present' | 'absent'): Promise<{ changed: boolean; token?: Record<string, any> }> {
  const list = await q.api('GET', 'user/apptoken');
  assert.equal(list.status, 200, list.raw);
  const tokens = (list.json.tokens as Array<Record<string, any>>).filter((t) => t.title === name);
  if (state === 'absent') {
    for (const token of tokens) {
      const res = await q.api('DELETE', `user/apptoken/${token.uuid}`);
      assert.ok([200, 201, 202, 204].includes(res.status), res.raw);
    }
    return { changed: tokens.length > 0 };
  }
  if (tokens.length) {
    const one = await q.api('GET', `user/apptoken/${tokens[0]!.uuid}`);
    assert.equal(one.status, 200, one.raw);
    return { changed: false, token: one.json.token };
  }
  const created = await q.api('POST', 'user/apptoken', { title: name });
  assert.ok([200, 201, 204].includes(created.status), created.raw);
  return { changed: true, token: created.json.token };
}

for (const dialect of DIALECTS) {
  describe(`quay_docker_token (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect);
      await t.accounts!.accounts.createUser({ name: 'dev', password: 'dev-password' });
      await t.accounts!.accounts.createOrganization({ name: 'org', creator: 'dev' });
    });
    after(() => t?.close());
    const transport = injectTransport(() => t.app);
    const run = <T>(mode: AuthMode, fn: (q: QuayClient) => Promise<T>) => moduleRun(mode, transport, 'dev', 'dev-password', fn);

    for (const mode of AUTH_MODES) {
      it(`creates a token once, then reports no change, then revokes it (${mode})`, async () => {
        const name = `push-${mode}`;
        const first = await run(mode, (q) => dockerToken(q, name, 'present'));
        assert.equal(first.changed, true);
        assert.equal(first.token!.title, name);
        assert.equal(typeof first.token!.uuid, 'string');
        assert.equal(typeof first.token!.token_code, 'string');
        assert.equal(first.token!.expiration, null);
        assert.equal(first.token!.last_accessed, null);

        // What the module builds from it (auth_b64) logs a registry client in, for a nested repository.
        const auth = `Basic ${Buffer.from(`$app:${first.token!.token_code}`).toString('base64')}`;
        const token = await t.app.inject({ url: '/v2/auth?service=localhost:80&scope=repository:org/team/app:push,pull', headers: { authorization: auth } });
        assert.equal(token.statusCode, 200, token.body);
        const claims = JSON.parse(Buffer.from(token.json().token.split('.')[1], 'base64url').toString());
        assert.equal(claims.access[0].name, 'org/team/app');
        assert.deepEqual([...claims.access[0].actions].sort(), ['pull', 'push']);

        const second = await run(mode, (q) => dockerToken(q, name, 'present'));
        assert.equal(second.changed, false);
        assert.equal(second.token!.uuid, first.token!.uuid);
        assert.equal(second.token!.token_code, undefined, 'the code is shown once');
        assert.match(second.token!.last_accessed, /GMT$/);

        assert.equal((await run(mode, (q) => dockerToken(q, name, 'absent'))).changed, true);
        assert.equal((await run(mode, (q) => dockerToken(q, name, 'absent'))).changed, false);
        assert.equal((await t.app.inject({ url: '/v2/', headers: { authorization: auth } })).statusCode, 401, 'revoked');
      });
    }

    it('answers a GET or DELETE of an absent token 404 and bad input 400, in Quay\'s error shape', async () => {
      await run('session', async (q) => {
        for (const [method, endpoint, body] of [
          ['GET', 'user/apptoken/00000000-0000-0000-0000-000000000000'],
          ['DELETE', 'user/apptoken/00000000-0000-0000-0000-000000000000'],
          ['POST', 'user/apptoken', {}],
          ['POST', 'user/apptoken', { title: ['x'] }],
        ] as Array<[string, string, unknown?]>) {
          const res = await q.api(method, endpoint, body);
          assert.equal(res.status, body === undefined ? 404 : 400, `${method} ${endpoint}: ${res.raw}`);
          for (const field of ['status', 'error_type', 'detail', 'title', 'error_message', 'type']) assert.ok(field in res.json, field);
        }
      });
    });
  });
}
