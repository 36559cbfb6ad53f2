/**
 * The collection's `quay_api_token` module, replayed (plugins/modules/quay_api_token.py): it always
 * signs in with user/password (GET /csrf_token, POST /api/v1/signin), then POSTs the form
 * `response_type=token&client_id&redirect_uri=<host>/oauth/localapp&scope&_csrf_token` to
 * /oauth/authorizeapp without following the redirect, and cuts the token out of `Location` with
 * `access_token=(.*?)&`. With `for_user` it POSTs /oauth/authorize/assignuser?… instead, which Wharf
 * does not offer (404, Quay's answer when FEATURE_ASSIGN_OAUTH_TOKEN is off). Both dialects;
 * with sign-in only, as the module supports no token (the grant is a web form sent with the session).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { DIALECTS } from '../helpers/databases.js';
import { injectTransport, moduleRun, QuayClient } from '../helpers/quay-session.js';

const ALL = ['org:admin', 'repo:admin', 'repo:create', 'repo:read', 'repo:write', 'super:user', 'user:admin', 'user:read'];

/** The module's main() after sign-in: the access token, or why it failed. */
async function apiToken(q: QuayClient, p: { client_id: string; rights?: string[]; for_user?: string }): Promise<{ access_token?: string; failed?: string; status?: number }> {
  const rights = p.rights ?? ['repo:read'];
  const scope = [...new Set(rights.includes('all') ? ALL : rights)].join(' ');
  const data: Record<string, string> = { response_type: 'token', client_id: p.client_id, redirect_uri: 'http://localhost:80/oauth/localapp', scope };
  if (p.for_user !== undefined) {
    data.username = p.for_user;
    const res = await q.raw('POST', `/oauth/authorize/assignuser?${new URLSearchParams(data)}`);
    return res.status === 200 ? {} : { failed: `Cannot create the OAuth access token for ${p.for_user}: Maybe the user does not exist.`, status: res.status };
  }
  data._csrf_token = q.headers['x-csrf-token']!;
  const res = await q.raw('POST', '/oauth/authorizeapp', new URLSearchParams(data).toString(), { accept: '*/*', 'content-type': 'application/x-www-form-urlencoded' });
  const location = res.headers.location;
  if (typeof location !== 'string') return { failed: `Cannot retrieve the OAuth access token from the returned data (${res.status} ${res.raw.slice(0, 200)})`, status: res.status };
  const token = /access_token=(.*?)&/.exec(location)?.[1];
  return token === undefined ? { failed: 'Cannot retrieve the CSRF token from the returned data' } : { access_token: token, status: res.status };
}

for (const dialect of DIALECTS) {
  describe(`quay_api_token (${dialect})`, () => {
    let t: TestApp;
    let clientId: string;
    before(async () => {
      t = await buildTestApp(dialect);
      const a = t.accounts!;
      await a.accounts.createUser({ name: 'lvasquez', password: 'vs9mrD55NP', superuser: true });
      await a.accounts.createUser({ name: 'jziglar', password: 'i45fR38GhY' });
      await a.accounts.createUser({ name: 'dwilde', password: 'dwilde-password' });
      await a.accounts.createOrganization({ name: 'production', creator: 'lvasquez' });
      await a.teams.createTeam('production', 'operators', { role: 'admin' });
      await a.teams.addMember('production', 'operators', 'jziglar');
      clientId = (await a.oauthApplications.create('production', { name: 'extapp', description: '', application_uri: '', redirect_uri: '', avatar_email: null })).application.client_id;
    });
    after(() => t?.close());
    const transport = injectTransport(() => t.app);

    it('grants a token with the requested rights to a signed-in administrator of the application\'s organization', async () => {
      const result = await moduleRun('session', transport, 'jziglar', 'i45fR38GhY', (q) => apiToken(q, { client_id: clientId, rights: ['org:admin', 'user:admin'] }));
      assert.equal(result.status, 302);
      assert.match(result.access_token!, /^[A-Za-z0-9_-]{43}$/);
      // The token is the other modules' quay_token, capped by its rights.
      const q = QuayClient.withToken(transport, result.access_token!);
      assert.equal((await q.api('GET', 'user/')).json.username, 'jziglar');
      const robot = await q.api('PUT', 'organization/production/robots/ci', {});
      assert.ok(robot.status >= 200 && robot.status < 300, `org:admin allows robots: ${robot.raw}`);
      const repo = await q.api('POST', 'repository', { namespace: 'production', repository: 'team/app', visibility: 'private' });
      assert.equal(repo.status, 403, `no repo:create: ${repo.raw}`);
      const [token] = (await t.accounts!.apiTokens.list('jziglar')).filter((x) => x.name === 'OAuth: extapp');
      assert.deepEqual(token!.scopes, ['user:admin', 'org:admin']);

      const all = await moduleRun('session', transport, 'lvasquez', 'vs9mrD55NP', (q) => apiToken(q, { client_id: clientId, rights: ['all'] }));
      const admin = QuayClient.withToken(transport, all.access_token!);
      assert.equal((await admin.api('GET', 'superuser/users/')).status, 200);
      assert.notEqual(all.access_token, result.access_token, 'not idempotent: every run makes a token, as the module documents');
    });

    it('ends the tokens of an application when it is deleted', async () => {
      const a = t.accounts!;
      const temp = (await a.oauthApplications.create('production', { name: 'temp', description: '', application_uri: '', redirect_uri: '', avatar_email: null })).application;
      const { access_token } = await moduleRun('session', transport, 'jziglar', 'i45fR38GhY', (q) => apiToken(q, { client_id: temp.client_id }));
      const q = QuayClient.withToken(transport, access_token!);
      assert.equal((await q.api('GET', 'repository', undefined, {}, { namespace: 'production' })).status, 200);
      await a.oauthApplications.delete('production', temp.client_id);
      assert.equal((await q.api('GET', 'repository', undefined, {}, { namespace: 'production' })).status, 401);
    });

    it('refuses users who do not administer the organization, unknown clients, bad rights and missing CSRF tokens', async () => {
      const denied = await moduleRun('session', transport, 'dwilde', 'dwilde-password', (q) => apiToken(q, { client_id: clientId }));
      assert.equal(denied.status, 403);
      assert.equal((await moduleRun('session', transport, 'jziglar', 'i45fR38GhY', (q) => apiToken(q, { client_id: 'NOSUCHCLIENT' }))).status, 404);
      assert.equal((await moduleRun('session', transport, 'jziglar', 'i45fR38GhY', (q) => apiToken(q, { client_id: clientId, rights: ['repo:everything'] }))).status, 400);
      await moduleRun('session', transport, 'jziglar', 'i45fR38GhY', async (q) => {
        const form = new URLSearchParams({ response_type: 'token', client_id: clientId, redirect_uri: 'http://localhost:80/oauth/localapp', scope: 'repo:read' }).toString();
        const headers = { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': '' };
        assert.equal((await q.raw('POST', '/oauth/authorizeapp', form, headers)).status, 403, 'no CSRF token');
        const elsewhere = form.replace(encodeURIComponent('http://localhost:80'), encodeURIComponent('https://evil.example'));
        assert.equal((await q.raw('POST', '/oauth/authorizeapp', `${elsewhere}&_csrf_token=${q.headers['x-csrf-token']}`, { 'content-type': 'application/x-www-form-urlencoded' })).status, 400, 'a foreign redirect');
        const code = form.replace('response_type=token', 'response_type=code');
        assert.equal((await q.raw('POST', '/oauth/authorizeapp', `${code}&_csrf_token=${q.headers['x-csrf-token']}`, { 'content-type': 'application/x-www-form-urlencoded' })).status, 400, 'no code grant');
      });
      // Without a session (a token is not enough: the grant is the signed-in user's).
      const token = (await t.accounts!.apiTokens.create('jziglar', { name: 'x', scopes: ALL })).secret;
      const anonymous = await t.app.inject({ method: 'POST', url: '/oauth/authorizeapp', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${token}` }, payload: `response_type=token&client_id=${clientId}&scope=repo:read` });
      assert.equal(anonymous.statusCode, 401, anonymous.body);
      for (const field of ['status', 'error_type', 'detail']) assert.ok(field in anonymous.json(), field);
    });

    it('answers for_user with 404 (token assignment is not offered)', async () => {
      const res = await moduleRun('session', transport, 'lvasquez', 'vs9mrD55NP', (q) => apiToken(q, { client_id: clientId, for_user: 'dwilde' }));
      assert.equal(res.status, 404);
      assert.match(res.failed!, /Cannot create the OAuth access token for dwilde/);
    });
  });
}
