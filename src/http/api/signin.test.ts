/**
 * Sign-in, sessions and CSRF on both dialects: Quay's flow (GET /csrf_token, POST /signin, the session
 * cookie and X-CSRF-Token, POST /signout), the cookie's attributes, throttling shared with /v2, what ends
 * a session, and that a session reaches exactly what the user's API token reaches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { injectTransport, QuayClient } from '../../../test/helpers/quay-session.js';

const cookieLine = (res: { headers: Record<string, unknown> }, name: string): string | undefined => {
  const raw = res.headers['set-cookie'];
  return ([] as string[]).concat((raw as string | string[] | undefined) ?? []).find((c) => c.startsWith(`${name}=`));
};

for (const dialect of DIALECTS) {
  describe(`/api/v1 sign-in and sessions (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.login_failures_per_minute': 3, trust_proxy: '127.0.0.1' } });
      const a = t.accounts!;
      await a.accounts.createUser({ name: 'alice', password: 'alice-password', superuser: true });
      for (const name of ['bob', 'carol', 'dave', 'erin']) await a.accounts.createUser({ name, password: `${name}-password` });
    });
    after(() => t?.close());
    const transport = injectTransport(() => t.app);

    it('signs in as the collection does, with HttpOnly SameSite cookies and the CSRF token in X-Next-CSRF-Token', async () => {
      const csrf = await t.app.inject({ url: '/csrf_token' });
      assert.equal(csrf.statusCode, 200);
      const token = csrf.json().csrf_token as string;
      assert.match(token, /^[A-Za-z0-9_-]{40,}$/);
      const pre = cookieLine(csrf, 'wharf_csrf')!;
      assert.match(pre, /HttpOnly/);
      assert.match(pre, /SameSite=Lax/);
      assert.match(pre, /Path=\//);
      assert.doesNotMatch(pre, /Secure/, 'no Secure over plain HTTP');

      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/signin',
        headers: { cookie: pre.split(';')[0]!, 'x-csrf-token': token, 'content-type': 'application/json' },
        payload: { username: 'alice', password: 'alice-password' },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { success: true });
      const session = cookieLine(res, 'wharf_session')!;
      assert.match(session, /HttpOnly/);
      assert.match(session, /SameSite=Lax/);
      assert.match(session, /Max-Age=\d+/);
      const next = res.headers['x-next-csrf-token'] as string;
      assert.match(next, /^[A-Za-z0-9_-]{40,}$/);
      assert.notEqual(next, token);

      const cookie = session.split(';')[0]!;
      const me = await t.app.inject({ url: '/api/v1/user/', headers: { cookie } });
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json().username, 'alice');
      // The session's own token is what /csrf_token gives while it lasts (the web UI's way to find it).
      assert.equal((await t.app.inject({ url: '/csrf_token', headers: { cookie } })).json().csrf_token, next);
    });

    it('requires the CSRF token on state-changing calls with a session (403, nothing changes), not on reads', async () => {
      const q = await QuayClient.signIn(transport, 'bob', 'bob-password');
      const csrf = q.headers['x-csrf-token']!;
      delete q.headers['x-csrf-token'];
      assert.equal((await q.api('GET', 'user/')).status, 200);
      for (const given of [undefined, 'wrong', `${csrf}x`]) {
        const res = await q.api('POST', 'user/apitokens', { name: 'x', scopes: ['repo:read'] }, given === undefined ? {} : { 'x-csrf-token': given });
        assert.equal(res.status, 403, res.raw);
        assert.equal(res.json.error_type, 'insufficient_scope');
        assert.match(res.json.detail, /CSRF/);
      }
      q.headers['x-csrf-token'] = csrf;
      assert.equal((await q.api('GET', 'user/apitokens')).json.tokens.length, 0, 'the refused calls created nothing');
      const ok = await q.api('POST', 'user/apitokens', { name: 'x', scopes: ['repo:read'] });
      assert.equal(ok.status, 201, ok.raw);
      await q.signOut();
    });

    it('refuses a sign-in without the CSRF cookie and header, or with a token of another client (403)', async () => {
      const body = { username: 'alice', password: 'alice-password' };
      const none = await t.app.inject({ method: 'POST', url: '/api/v1/signin', payload: body });
      assert.equal(none.statusCode, 403, none.body);
      assert.equal(cookieLine(none, 'wharf_session'), undefined);
      const mine = await t.app.inject({ url: '/csrf_token' });
      const theirs = (await t.app.inject({ url: '/csrf_token' })).json().csrf_token as string;
      const crossed = await t.app.inject({ method: 'POST', url: '/api/v1/signin', headers: { cookie: cookieLine(mine, 'wharf_csrf')!.split(';')[0]!, 'x-csrf-token': theirs }, payload: body });
      assert.equal(crossed.statusCode, 403, crossed.body);
      const headerOnly = await t.app.inject({ method: 'POST', url: '/api/v1/signin', headers: { 'x-csrf-token': theirs }, payload: body });
      assert.equal(headerOnly.statusCode, 403, headerOnly.body);
    });

    it('finds the token in the root page too (the fallback of older Quay versions)', async () => {
      const page = await t.app.inject({ url: '/' });
      assert.equal(page.statusCode, 200);
      const token = /window.__token\s*=\s*'(.*?)';/.exec(page.body)![1]!;
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/signin',
        headers: { cookie: cookieLine(page, 'wharf_csrf')!.split(';')[0]!, 'x-csrf-token': token },
        payload: { username: 'carol', password: 'carol-password' },
      });
      assert.equal(res.statusCode, 200, res.body);
    });

    it('answers a wrong password 401 and throttles failures (429 with Retry-After), counting /v2 logins too', async () => {
      const attempt = async (password: string) => {
        const csrf = await t.app.inject({ url: '/csrf_token' });
        return t.app.inject({
          method: 'POST',
          url: '/api/v1/signin',
          headers: { cookie: cookieLine(csrf, 'wharf_csrf')!.split(';')[0]!, 'x-csrf-token': csrf.json().csrf_token, 'x-forwarded-for': '203.0.113.9' },
          payload: { username: 'dave', password },
        });
      };
      const wrong = await attempt('not-it');
      assert.equal(wrong.statusCode, 401, wrong.body);
      assert.equal(wrong.json().error_type, 'invalid_token');
      assert.equal(cookieLine(wrong, 'wharf_session'), undefined);
      // A failed /v2 login of the same user counts against the same limit.
      const v2 = await t.app.inject({ url: '/v2/auth?service=x', headers: { authorization: `Basic ${Buffer.from('dave:nope').toString('base64')}`, 'x-forwarded-for': '203.0.113.9' } });
      assert.equal(v2.statusCode, 401);
      assert.equal((await attempt('still-not')).statusCode, 401);
      const throttled = await attempt('dave-password');
      assert.equal(throttled.statusCode, 429, throttled.body);
      assert.match(String(throttled.headers['retry-after']), /^\d+$/);
      assert.equal(throttled.json().error_type, 'too_many_requests');
      const failures = (await t.accounts!.audit.query({ namespace: 'dave' })).entries.filter((e) => e.kind === 'login_failure');
      assert.equal(failures.length, 3);
    });

    it('opens no session with an API, app or robot token as the password (401)', async () => {
      const a = t.accounts!;
      const api = (await a.apiTokens.create('erin', { name: 'ci', scopes: ['repo:read'] })).secret;
      const app = (await a.appTokens.create('erin', 'laptop')).secret;
      for (const [username, password] of [
        ['erin', api],
        ['erin', app],
        ['$token', api],
        ['$app', app],
      ] as const) {
        const csrf = await t.app.inject({ url: '/csrf_token' });
        const res = await t.app.inject({
          method: 'POST',
          url: '/api/v1/signin',
          headers: { cookie: cookieLine(csrf, 'wharf_csrf')!.split(';')[0]!, 'x-csrf-token': csrf.json().csrf_token },
          payload: { username, password },
        });
        assert.equal(res.statusCode, 401, `${username}: ${res.body}`);
        assert.equal(cookieLine(res, 'wharf_session'), undefined);
      }
    });

    it('ends only this session on sign-out; the ended cookie then answers 401 and is cleared', async () => {
      const one = await QuayClient.signIn(transport, 'carol', 'carol-password');
      const two = await QuayClient.signIn(transport, 'carol', 'carol-password');
      const cookie = `wharf_session=${one.cookies.get('wharf_session')}`;
      // Sign-out is state-changing: without the CSRF token the session goes on.
      const refused = await t.app.inject({ method: 'POST', url: '/api/v1/signout', headers: { cookie } });
      assert.equal(refused.statusCode, 403, refused.body);
      assert.equal((await one.api('GET', 'user/')).status, 200);
      const out = await one.signOut();
      assert.equal(out!.status, 200, out!.raw);
      assert.deepEqual(out!.json, { success: true });
      const after = await t.app.inject({ url: '/api/v1/user/', headers: { cookie } });
      assert.equal(after.statusCode, 401, after.body);
      assert.match(cookieLine(after, 'wharf_session')!, /Max-Age=0/);
      assert.equal((await two.api('GET', 'user/')).status, 200, 'the other session goes on');
      // Signing out again, or with nothing, succeeds.
      assert.equal((await t.app.inject({ method: 'POST', url: '/api/v1/signout', headers: { cookie } })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'POST', url: '/api/v1/signout' })).statusCode, 200);
      await two.signOut();
    });

    it('ends every session of a user whose password is set or who is disabled; re-enabling brings none back', async () => {
      const admin = await QuayClient.signIn(transport, 'alice', 'alice-password');
      const bob1 = await QuayClient.signIn(transport, 'bob', 'bob-password');
      const bob2 = await QuayClient.signIn(transport, 'bob', 'bob-password');
      // The user's own password change (with the old password) ends the session it was made in too.
      const changed = await bob1.api('PUT', 'user/', { password: 'bob-password-2', old_password: 'bob-password' });
      assert.equal(changed.status, 200, changed.raw);
      assert.equal((await bob1.api('GET', 'user/')).status, 401);
      assert.equal((await bob2.api('GET', 'user/')).status, 401);

      const bob3 = await QuayClient.signIn(transport, 'bob', 'bob-password-2');
      assert.equal((await admin.api('PUT', 'superuser/users/bob', { password: 'bob-password-3' })).status, 200);
      assert.equal((await bob3.api('GET', 'user/')).status, 401, 'a password set by a superuser');

      const bob4 = await QuayClient.signIn(transport, 'bob', 'bob-password-3');
      assert.equal((await admin.api('PUT', 'superuser/users/bob', { enabled: false })).status, 200);
      assert.equal((await bob4.api('GET', 'user/')).status, 401, 'a disabled user');
      assert.equal((await admin.api('PUT', 'superuser/users/bob', { enabled: true })).status, 200);
      assert.equal((await bob4.api('GET', 'user/')).status, 401, 'enabling the user again does not revive the session');
      assert.equal((await admin.api('GET', 'user/')).status, 200, "the superuser's own session goes on");
    });

    it('sets Secure on the cookies when the request came over TLS (X-Forwarded-Proto from a trusted proxy)', async () => {
      const csrf = await t.app.inject({ url: '/csrf_token', headers: { 'x-forwarded-proto': 'https' } });
      assert.match(cookieLine(csrf, 'wharf_csrf')!, /; Secure/);
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/signin',
        headers: { cookie: cookieLine(csrf, 'wharf_csrf')!.split(';')[0]!, 'x-csrf-token': csrf.json().csrf_token, 'x-forwarded-proto': 'https' },
        payload: { username: 'carol', password: 'carol-password' },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(cookieLine(res, 'wharf_session')!, /; Secure/);
    });

    it('lets an Authorization header win over the cookie, without CSRF', async () => {
      const q = await QuayClient.signIn(transport, 'carol', 'carol-password');
      const token = (await t.accounts!.apiTokens.create('erin', { name: 'x', scopes: ['user:read', 'user:admin', 'repo:read'] })).secret;
      const cookie = `wharf_session=${q.cookies.get('wharf_session')}`;
      const me = await t.app.inject({ url: '/api/v1/user/', headers: { cookie, authorization: `Bearer ${token}` } });
      assert.equal(me.json().username, 'erin');
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/user/apitokens', headers: { cookie, authorization: `Bearer ${token}` }, payload: { name: 'y', scopes: ['repo:read'] } });
      assert.equal(created.statusCode, 201, created.body);
    });

    it('takes the empty JSON bodies the collection sends on DELETE and body-less POST (Content-Type: application/json, no body)', async () => {
      const token = await t.accounts!.apiTokens.create('erin', { name: 'to-revoke', scopes: ['repo:read'] });
      const headers = { authorization: 'Basic ' + Buffer.from('erin:erin-password').toString('base64'), 'content-type': 'application/json' };
      const del = await t.app.inject({ method: 'DELETE', url: `/api/v1/user/apitokens/${token.token.id}`, headers });
      assert.equal(del.statusCode, 204, del.body);
      const out = await t.app.inject({ method: 'POST', url: '/api/v1/signout', headers: { ...headers, 'content-length': '0' } });
      assert.equal(out.statusCode, 200, out.body);
      // Malformed JSON is still refused.
      const bad = await t.app.inject({ method: 'POST', url: '/api/v1/user/apitokens', headers, payload: '{"name":' });
      assert.equal(bad.statusCode, 400, bad.body);
      assert.equal(bad.json().error_type, 'invalid_request');
    });

    it('answers a cookie that was never a session 401 and clears it; bad sign-in bodies 400; never a 5xx', async () => {
      for (const value of ['garbage', 'x'.repeat(300), '']) {
        const res = await t.app.inject({ url: '/api/v1/user/', headers: { cookie: `wharf_session=${value}` } });
        if (value === 'garbage') {
          assert.equal(res.statusCode, 401, res.body);
          assert.match(cookieLine(res, 'wharf_session')!, /Max-Age=0/);
        } else assert.equal(res.statusCode, 401, 'an unreadable cookie is no session: anonymous');
      }
      const csrf = await t.app.inject({ url: '/csrf_token' });
      const headers = { cookie: cookieLine(csrf, 'wharf_csrf')!.split(';')[0]!, 'x-csrf-token': csrf.json().csrf_token as string };
      for (const payload of [{}, { username: 'alice' }, { username: 3, password: 'x' }, { username: '', password: '' }, { username: 'a'.repeat(300), password: 'x' }]) {
        const res = await t.app.inject({ method: 'POST', url: '/api/v1/signin', headers, payload });
        assert.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`);
        assert.equal(res.json().error_type, 'invalid_request');
      }
      const text = await t.app.inject({ method: 'POST', url: '/api/v1/signin', headers: { ...headers, 'content-type': 'text/plain' }, payload: 'username=alice' });
      assert.ok(text.statusCode >= 400 && text.statusCode < 500, text.body);
    });
  });

  describe(`/api/v1 sessions reach what API tokens reach (${dialect})`, () => {
    let w: ApiWorld;
    before(async () => {
      w = await buildApiWorld(dialect);
    });
    after(() => w?.t.close());

    it('answers every request of a signed-in user exactly as the same request with their API token', async () => {
      const transport = injectTransport(() => w.t.app);
      const users = { user: 'uma', member: 'member', orgadmin: 'oadmin', superuser: 'root' } as const;
      const wrong: string[] = [];
      for (const [who, name] of Object.entries(users)) {
        const session = await QuayClient.signIn(transport, name, `${name}-password-1`);
        const token = QuayClient.withToken(transport, w.auth[who as keyof typeof users].authorization!.slice('Bearer '.length));
        const calls: Array<[string, string, unknown?]> = [
          ['GET', 'user/'],
          ['GET', 'organization/orga'],
          ['GET', 'organization/orgb'],
          ['GET', 'superuser/users/'],
          ['GET', 'repository?namespace=orga'],
        ];
        for (const repo of ['orga/pub', 'orga/priv', 'orgb/pub', 'orgb/priv'] as const) {
          calls.push(['GET', `repository/${repo}`], ['PUT', `repository/${repo}/tag/same-${who}`, { manifest_digest: w.digests[repo].v2 }], ['PUT', `repository/${repo}/permissions/user/target`, { role: 'read' }]);
        }
        for (const [method, endpoint, body] of calls) {
          const [a, b] = [await session.api(method, endpoint, body), await token.api(method, endpoint, body)];
          if (a.status !== b.status) wrong.push(`${who} ${method} ${endpoint}: session ${a.status}, token ${b.status}`);
        }
        await session.signOut();
      }
      assert.deepEqual(wrong, []);
    });
  });
}
