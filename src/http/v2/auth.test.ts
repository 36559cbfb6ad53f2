/** Token auth and HTTP Basic on `/v2`, on both dialects: the token endpoint, challenges, revocation, the catalog. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import type { RepositoryName } from '../../oci/reference.js';
import type { Accounts } from '../../registry/accounts/accounts.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const SERVICE = 'localhost:80';

for (const dialect of DIALECTS) {
  describe(`/v2 authentication (${dialect})`, () => {
    let t: TestApp;
    let a: Accounts;
    let robotToken: string;
    let apiToken: string;

    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.login_failures_per_minute': 3 } });
      a = t.accounts!;
      await a.accounts.createUser({ name: 'admin', password: 'admin-password', superuser: true });
      await a.accounts.createUser({ name: 'alice', password: 'alice-password' });
      await a.accounts.createUser({ name: 'bob', password: 'bob-password' });
      await a.accounts.createUser({ name: 'carol', password: 'carol-password' });
      await a.accounts.createOrganization({ name: 'acme', creator: 'admin' });
      await a.teams.createTeam('acme', 'devs', { role: 'member' });
      await a.teams.addMember('acme', 'devs', 'bob');
      const app = (await t.registry.repositories.create('acme/app' as RepositoryName, { visibility: 'private' })).repository;
      await t.registry.repositories.create('acme/public' as RepositoryName, { visibility: 'public' });
      await t.registry.repositories.create('acme/hidden' as RepositoryName, { visibility: 'private' });
      await a.grants.setRepositoryPermission(app, { kind: 'team', name: 'devs' }, 'write');
      await a.grants.setRepositoryPermission(app, { kind: 'user', name: 'carol' }, 'read');
      robotToken = (await a.robots.create('acme', 'ci')).token;
      await a.grants.setRepositoryPermission(app, { kind: 'robot', name: 'acme+ci' }, 'read');
      apiToken = (await a.apiTokens.create('bob', { name: 'ci', scopes: ['repo:read'] })).secret;
    });
    after(() => t?.close());

    async function token(scopes: string[], authorization?: string): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
      const qs = ['service=' + encodeURIComponent(SERVICE), ...scopes.map((s) => 'scope=' + encodeURIComponent(s))].join('&');
      const res = await t.app.inject({ method: 'GET', url: `/v2/auth?${qs}`, headers: authorization ? { authorization } : {} });
      return { status: res.statusCode, body: res.json(), headers: res.headers };
    }
    const access = (jwt: unknown) => (decodeJwt(jwt as string) as { access: Array<{ type: string; name: string; actions: string[] }> }).access;

    it('issues an ES256 token with the Docker claims and response fields', async () => {
      const res = await token(['repository:acme/app:pull'], basic('carol', 'carol-password'));
      assert.equal(res.status, 200);
      assert.equal(res.body.token, res.body.access_token);
      assert.equal(res.body.expires_in, 300);
      assert.match(String(res.body.issued_at), /^\d{4}-\d\d-\d\dT/);
      const header = decodeProtectedHeader(res.body.token as string);
      assert.equal(header.alg, 'ES256');
      assert.equal(typeof header.kid, 'string');
      const claims = decodeJwt(res.body.token as string);
      assert.equal(claims.iss, SERVICE);
      assert.equal(claims.aud, SERVICE);
      assert.equal(claims.sub, 'carol');
      assert.equal(typeof claims.jti, 'string');
      assert.equal(claims.exp! - claims.iat!, 300);
      assert.equal(claims.nbf, claims.iat);
      assert.deepEqual(claims.access, [{ type: 'repository', name: 'acme/app', actions: ['pull'] }]);
    });

    it('grants the intersection of requested and permitted actions, per scope', async () => {
      const res = await token(['repository:acme/app:pull,push', 'repository:acme/public:pull,push', 'repository:acme/hidden:pull', 'registry:catalog:*'], basic('carol', 'carol-password'));
      assert.equal(res.status, 200);
      assert.deepEqual(access(res.body.token), [
        { type: 'repository', name: 'acme/app', actions: ['pull'] },
        { type: 'repository', name: 'acme/public', actions: ['pull'] },
        { type: 'repository', name: 'acme/hidden', actions: [] },
        { type: 'registry', name: 'catalog', actions: ['*'] },
      ]);
      const team = await token(['repository:acme/app:*'], basic('bob', 'bob-password'));
      assert.deepEqual(access(team.body.token), [{ type: 'repository', name: 'acme/app', actions: ['pull', 'push', 'delete'] }], '* means pull,push,delete');
      const spaced = await token(['repository:acme/app:pull repository:acme/public:pull'], basic('bob', 'bob-password'));
      assert.equal(access(spaced.body.token).length, 2, 'space-separated scopes in one parameter');
    });

    it('anonymous: public pull only, no subject', async () => {
      const res = await token(['repository:acme/public:pull,push', 'repository:acme/app:pull']);
      assert.equal(res.status, 200);
      assert.equal(decodeJwt(res.body.token as string).sub, undefined);
      assert.deepEqual(access(res.body.token), [
        { type: 'repository', name: 'acme/public', actions: ['pull'] },
        { type: 'repository', name: 'acme/app', actions: [] },
      ]);
    });

    it('accepts a robot token and an API token ($token and the user name)', async () => {
      const robot = await token(['repository:acme/app:pull,push'], basic('acme+ci', robotToken));
      assert.equal(robot.status, 200);
      assert.equal(decodeJwt(robot.body.token as string).sub, 'acme+ci');
      assert.deepEqual(access(robot.body.token), [{ type: 'repository', name: 'acme/app', actions: ['pull'] }]);
      for (const user of ['$token', 'bob']) {
        const api = await token(['repository:acme/app:pull,push'], basic(user, apiToken));
        assert.equal(api.status, 200, user);
        assert.equal(decodeJwt(api.body.token as string).sub, 'bob');
        assert.deepEqual(access(api.body.token), [{ type: 'repository', name: 'acme/app', actions: ['pull'] }], 'capped by the repo:read scope');
      }
    });

    it('a superuser may create a repository by asking for push', async () => {
      const res = await token(['repository:acme/new-by-token:pull,push'], basic('admin', 'admin-password'));
      assert.deepEqual(access(res.body.token), [{ type: 'repository', name: 'acme/new-by-token', actions: ['pull', 'push'] }]);
      assert.ok(await t.registry.repositories.details('acme/new-by-token' as RepositoryName));
    });

    it('a wrong password is 401 UNAUTHORIZED and recorded as login_failure', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/v2/auth?scope=repository:acme/app:pull', remoteAddress: '10.2.0.1', headers: { authorization: basic('alice', 'wrong-password'), 'user-agent': 'test-agent/1' } });
      assert.equal(res.statusCode, 401);
      assert.equal(res.json().errors[0].code, 'UNAUTHORIZED');
      assert.doesNotMatch(res.body, /wrong-password/);
      const { entries } = await a.audit.query({ kinds: ['login_failure'] });
      const entry = entries.find((e) => e.metadata?.username === 'alice');
      assert.ok(entry, 'login_failure entry');
      assert.equal(entry.userAgent, 'test-agent/1');
      assert.ok(entry.ip);
      assert.doesNotMatch(JSON.stringify(entries), /wrong-password/);
    });

    it('throttles failed logins per user and per address with 429 TOOMANYREQUESTS and Retry-After', async () => {
      const attempt = (user: string, password: string, remoteAddress: string, url = '/v2/auth') =>
        t.app.inject({ method: 'GET', url, remoteAddress, headers: { authorization: basic(user, password) } });
      // Per user: three failures from three addresses, then even a fourth address is refused.
      for (let i = 0; i < 3; i++) assert.equal((await attempt('victim', `guess-${i}`, `10.0.0.${i + 1}`)).statusCode, 401);
      const res = await attempt('victim', 'guess-4', '10.0.0.9');
      assert.equal(res.statusCode, 429);
      assert.equal(res.json().errors[0].code, 'TOOMANYREQUESTS');
      assert.ok(Number(res.headers['retry-after']) >= 1);
      assert.equal((await attempt('victim', 'x', '10.0.0.10', '/v2/')).statusCode, 429, 'Basic on /v2 is throttled too');
      // Per address: three failures for three users, then the address is refused even for a good password.
      for (const user of ['u1', 'u2', 'u3']) assert.equal((await attempt(user, 'wrong-password', '10.0.1.1')).statusCode, 401);
      assert.equal((await attempt('alice', 'alice-password', '10.0.1.1')).statusCode, 429);
      assert.equal((await attempt('alice', 'alice-password', '10.0.1.2')).statusCode, 200, 'other addresses are not affected');
    });

    it('GET /v2/ challenges anonymous callers and accepts Basic and Bearer', async () => {
      const anon = await t.app.inject({ method: 'GET', url: '/v2/' });
      assert.equal(anon.statusCode, 401);
      assert.equal(anon.headers['www-authenticate'], `Bearer realm="http://${SERVICE}/v2/auth",service="${SERVICE}"`);
      assert.equal(anon.json().errors[0].code, 'UNAUTHORIZED');
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/', headers: { authorization: basic('alice', 'alice-password') } })).statusCode, 200);
      const tok = await token([], basic('alice', 'alice-password'));
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/', headers: { authorization: `Bearer ${tok.body.token}` } })).statusCode, 200);
      const bad = await t.app.inject({ method: 'GET', url: '/v2/', remoteAddress: '10.2.0.2', headers: { authorization: basic('alice', 'nope-nope') } });
      assert.equal(bad.statusCode, 401);
      assert.match(String(bad.headers['www-authenticate']), /^Bearer realm=/);
      const forged = await t.app.inject({ method: 'GET', url: '/v2/', headers: { authorization: `Bearer ${String(tok.body.token).slice(0, -4)}AAAA` } });
      assert.equal(forged.statusCode, 401);
    });

    it('a refused request is 401 with a challenge naming the scope', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list' });
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['www-authenticate'], `Bearer realm="http://${SERVICE}/v2/auth",service="${SERVICE}",scope="repository:acme/app:pull"`);
      const push = await t.app.inject({ method: 'POST', url: '/v2/acme/app/blobs/uploads/', headers: { authorization: basic('carol', 'carol-password') } });
      assert.equal(push.statusCode, 401, 'an authenticated caller without write is refused with 401 too');
      assert.equal(push.json().errors[0].code, 'DENIED');
      assert.match(String(push.headers['www-authenticate']), /scope="repository:acme\/app:(pull,)?push"/);
      const tok = await token(['repository:acme/app:pull'], basic('bob', 'bob-password'));
      const capped = await t.app.inject({ method: 'POST', url: '/v2/acme/app/blobs/uploads/', headers: { authorization: `Bearer ${tok.body.token}` } });
      assert.equal(capped.statusCode, 401, 'the token did not grant push although bob may push');
      assert.match(String(capped.headers['www-authenticate']), /error="insufficient_scope"/);
    });

    it('Basic works directly on /v2, and anonymous pull of a public repository works', async () => {
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list', headers: { authorization: basic('carol', 'carol-password') } })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list', headers: { authorization: basic('acme+ci', robotToken) } })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list', headers: { authorization: basic('$token', apiToken) } })).statusCode, 200);
      // A second Basic request with the same password is served from the verification cache.
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list', headers: { authorization: basic('carol', 'carol-password') } })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/acme/public/tags/list' })).statusCode, 200);
    });

    it('a password change invalidates cached Basic logins at once', async () => {
      await a.accounts.createUser({ name: 'dave', password: 'dave-password' });
      const get = () => t.app.inject({ method: 'GET', url: '/v2/', remoteAddress: '10.2.0.3', headers: { authorization: basic('dave', 'dave-password') } });
      assert.equal((await get()).statusCode, 200);
      await a.accounts.setPassword('dave', 'dave-new-password');
      assert.equal((await get()).statusCode, 401);
    });

    it('revocation takes effect at once: robot deleted, team deleted, user disabled', async () => {
      const { token: secret } = await a.robots.create('acme', 'temp');
      const app = (await t.registry.repositories.details('acme/app' as RepositoryName))!;
      await a.grants.setRepositoryPermission(app, { kind: 'robot', name: 'acme+temp' }, 'read');
      await a.accounts.createUser({ name: 'erin', password: 'erin-password' });
      await a.teams.createTeam('acme', 'temps', { role: 'member' });
      await a.teams.addMember('acme', 'temps', 'erin');
      await a.grants.setRepositoryPermission(app, { kind: 'team', name: 'temps' }, 'read');
      await a.accounts.createUser({ name: 'frank', password: 'frank-password' });
      await a.grants.setRepositoryPermission(app, { kind: 'user', name: 'frank' }, 'read');

      const bearer = async (authorization: string) => `Bearer ${(await token(['repository:acme/app:pull'], authorization)).body.token}`;
      const tags = (authorization: string) => t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list', headers: { authorization } }).then((r) => r.statusCode);
      const robot = await bearer(basic('acme+temp', secret));
      const member = await bearer(basic('erin', 'erin-password'));
      const user = await bearer(basic('frank', 'frank-password'));
      for (const b of [robot, member, user]) assert.equal(await tags(b), 200);

      await a.robots.delete('acme+temp');
      assert.equal(await tags(robot), 401);
      await a.teams.deleteTeam('acme', 'temps');
      assert.equal(await tags(member), 401);
      await a.accounts.setEnabled('frank', false);
      assert.equal(await tags(user), 401);
      // Failed logins above were counted against other addresses: this one was never throttled.
      const direct = await t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list', remoteAddress: '10.2.0.4', headers: { authorization: basic('frank', 'frank-password') } });
      assert.equal(direct.statusCode, 401);
    });

    it('a token of a deleted account does not work for a new account of the same name', async () => {
      const app = (await t.registry.repositories.details('acme/app' as RepositoryName))!;
      const { token: first } = await a.robots.create('acme', 'again');
      await a.grants.setRepositoryPermission(app, { kind: 'robot', name: 'acme+again' }, 'read');
      const old = `Bearer ${(await token(['repository:acme/app:pull'], basic('acme+again', first))).body.token}`;
      await a.robots.delete('acme+again');
      await a.robots.create('acme', 'again');
      await a.grants.setRepositoryPermission(app, { kind: 'robot', name: 'acme+again' }, 'read');
      const res = await t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list', headers: { authorization: old } });
      assert.equal(res.statusCode, 401);
    });

    it('revoking an API token ends the bearer tokens issued to it at once', async () => {
      const { token: info, secret } = await a.apiTokens.create('carol', { name: 'short-lived', scopes: ['repo:read'] });
      const tok = await token(['repository:acme/app:pull'], basic('$token', secret));
      assert.equal(decodeJwt(tok.body.token as string).tid, info.id);
      const tags = () => t.app.inject({ method: 'GET', url: '/v2/acme/app/tags/list', headers: { authorization: `Bearer ${tok.body.token}` } }).then((r) => r.statusCode);
      assert.equal(await tags(), 200);
      await a.apiTokens.revoke('carol', info.id);
      assert.equal(await tags(), 401);
    });

    it('records pushes, pulls and deletes with actor, address and user agent', async () => {
      const headers = { authorization: basic('bob', 'bob-password'), 'user-agent': 'audit-test/1.0' };
      const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
      const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
      const blob = await t.app.inject({ method: 'POST', url: `/v2/acme/app/blobs/uploads/?digest=${digest}`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: config });
      assert.equal(blob.statusCode, 201, blob.body);
      const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: config.length }, layers: [] });
      const put = await t.app.inject({ method: 'PUT', url: '/v2/acme/app/manifests/audited', headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, payload: manifest });
      assert.equal(put.statusCode, 201, put.body);
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/acme/app/manifests/audited', headers: { ...headers, accept: 'application/vnd.oci.image.manifest.v1+json' } })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'HEAD', url: '/v2/acme/app/manifests/audited', headers })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'DELETE', url: '/v2/acme/app/manifests/audited', headers })).statusCode, 202);
      const { entries } = await a.audit.query({ namespace: 'acme', repository: 'app', kinds: ['push_repo', 'pull_repo', 'delete_tag'] });
      assert.deepEqual(entries.map((e) => e.kind).reverse(), ['push_repo', 'pull_repo', 'delete_tag'], 'a HEAD is not a pull');
      for (const e of entries) {
        assert.deepEqual(e.actor, { kind: 'user', name: 'bob' });
        assert.equal(e.userAgent, 'audit-test/1.0');
        assert.ok(e.ip);
        assert.equal(e.metadata?.tag, 'audited');
      }
    });

    it('the catalog lists only what the caller can see; a token needs registry:catalog:*', async () => {
      const list = async (authorization?: string) => {
        const res = await t.app.inject({ method: 'GET', url: '/v2/_catalog', headers: authorization ? { authorization } : {} });
        return { status: res.statusCode, repositories: res.statusCode === 200 ? (res.json().repositories as string[]) : undefined, res };
      };
      assert.deepEqual((await list()).repositories, ['acme/public']);
      assert.deepEqual((await list(basic('carol', 'carol-password'))).repositories, ['acme/app', 'acme/public']);
      const all = (await list(basic('admin', 'admin-password'))).repositories!;
      assert.ok(all.includes('acme/hidden') && all.includes('acme/app'));
      const withScope = await token(['registry:catalog:*'], basic('carol', 'carol-password'));
      assert.deepEqual((await list(`Bearer ${withScope.body.token}`)).repositories, ['acme/app', 'acme/public']);
      const without = await token(['repository:acme/app:pull'], basic('carol', 'carol-password'));
      const refused = await list(`Bearer ${without.body.token}`);
      assert.equal(refused.status, 401);
      assert.match(String(refused.res.headers['www-authenticate']), /scope="registry:catalog:\*"/);
    });
  });
}

describe('/v2 with auth.enabled: false', () => {
  it('runs open: no challenge, no token endpoint', async () => {
    const t = await buildTestApp('sqlite', { config: { 'auth.enabled': false } });
    try {
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/' })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/_catalog' })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'GET', url: '/v2/auth' })).statusCode, 404);
      assert.equal(t.accounts, undefined);
    } finally {
      await t.close();
    }
  });
});

describe('/v2 authentication behind a trusted reverse proxy', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp('sqlite', { config: { 'auth.login_failures_per_minute': 3, trust_proxy: '127.0.0.1' } });
    await t.accounts!.accounts.createUser({ name: 'alice', password: 'alice-password' });
  });
  after(async () => t.close());

  it("throttles by the client's forwarded address, not the proxy's", async () => {
    const attempt = (user: string, password: string, client: string) =>
      t.app.inject({ method: 'GET', url: '/v2/auth', remoteAddress: '127.0.0.1', headers: { authorization: basic(user, password), 'x-forwarded-for': client } });
    for (const user of ['u1', 'u2', 'u3']) assert.equal((await attempt(user, 'wrong-password', '198.51.100.1')).statusCode, 401);
    assert.equal((await attempt('alice', 'alice-password', '198.51.100.1')).statusCode, 429);
    assert.equal((await attempt('alice', 'alice-password', '198.51.100.2')).statusCode, 200, 'another client behind the same proxy is not affected');
    const failures = (await t.accounts!.audit.query({ namespace: 'u1' })).entries;
    assert.equal(failures[0]?.kind, 'login_failure');
    assert.equal(failures[0]?.ip, '198.51.100.1');
  });
});
