/**
 * /api/v1/organization/{org}/proxycache and …/validateproxycache on both dialects: Quay's shapes and
 * statuses, who may do what, SSRF refusals, credentials never shown, validation against a real
 * Distribution registry, and the feature switch.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { apiClient, type ApiResult } from '../../../test/helpers/api-client.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { startDistribution, type DistributionProcess } from '../../../test/helpers/distribution-process.js';
import { freePort } from '../../../test/helpers/ports.js';
import { API_SCOPES } from '../../registry/accounts/api-scopes.js';
import type { ApiRoute } from './route.js';
import { API_ROUTES } from './routes.js';

const EMPTY = { upstream_registry: '', expiration_s: '', insecure: '', anonymous_pull: null, revalidate_interval_s: null, prefetch_layers: null, answers_for: null, has_credentials: null };

function route(method: ApiRoute['method'], path: string): ApiRoute {
  const r = API_ROUTES.find((x) => x.method === method && x.path === path);
  assert.ok(r?.response, `no route with a response schema: ${method} ${path}`);
  return r;
}

for (const dialect of DIALECTS) {
  describe(`/api/v1 proxy cache (${dialect})`, () => {
    let t: TestApp;
    let upstream: DistributionProcess;
    const auth: Record<string, string> = {};
    before(async () => {
      upstream = await startDistribution();
      t = await buildTestApp(dialect, {
        config: { 'proxy_cache.allow_private_upstreams': ['127.0.0.1'], 'proxy_cache.secret_key': randomBytes(32).toString('base64'), 'proxy_cache.connect_timeout': '2s' },
      });
      const a = t.accounts!;
      for (const name of ['root', 'oadmin', 'member', 'uma']) await a.accounts.createUser({ name, password: `${name}-password-1`, superuser: name === 'root' });
      await a.accounts.createOrganization({ name: 'orga', creator: 'oadmin' });
      await a.accounts.createOrganization({ name: 'orgb', creator: 'oadmin' });
      await a.accounts.createOrganization({ name: 'orgc', creator: 'oadmin' });
      await a.teams.createTeam('orga', 'devs', { role: 'member' });
      await a.teams.addMember('orga', 'devs', 'member');
      const { robot, token } = await a.robots.create('orga', 'ci');
      for (const name of ['root', 'oadmin', 'member', 'uma']) auth[name] = `Bearer ${(await a.apiTokens.create(name, { name: 'test', scopes: [...API_SCOPES] })).secret}`;
      auth.robot = `Basic ${Buffer.from(`${robot.name}:${token}`).toString('base64')}`;
      auth.readonly = `Bearer ${(await a.apiTokens.create('oadmin', { name: 'ro', scopes: ['user:read'] })).secret}`;
    });
    after(async () => {
      await t?.close();
      await upstream?.stop();
    });

    const { call, expectError } = apiClient(() => t.app);
    const proxycache = (org = 'orga') => `/organization/${org}/proxycache`;
    const validate = (org = 'orga') => `/organization/${org}/validateproxycache`;
    /** The reply parsed with the route's declared response schema. */
    const parsed = (method: ApiRoute['method'], path: string, res: ApiResult) => route(method, path).response!.parse(JSON.parse(res.raw));
    const detail = async (p: Promise<ApiResult>, status: number, re: RegExp) => {
      const res = await p;
      await expectError(Promise.resolve(res), status);
      assert.match(res.body!.detail, re);
      assert.equal(res.body!.error_message, res.body!.detail);
      return res;
    };

    it("GET answers Quay's empty values when nothing is configured, to members and superusers only", async () => {
      for (const who of ['member', 'oadmin', 'root']) {
        const res = await call('GET', proxycache(), auth[who]);
        assert.equal(res.status, 200, res.raw);
        assert.deepEqual(parsed('GET', '/organization/:orgname/proxycache', res), EMPTY);
      }
      await expectError(call('GET', proxycache()), 401);
      await expectError(call('GET', proxycache(), auth.uma), 404);
      await expectError(call('GET', proxycache(), auth.robot), 403);
      await expectError(call('GET', proxycache('nosuch'), auth.root), 404);
      await expectError(call('GET', proxycache('uma'), auth.uma), 404);
    });

    it('POST: admins and superusers create; members, outsiders, anonymous callers and user namespaces cannot', async () => {
      const body = { upstream_registry: upstream.host, insecure: true, upstream_registry_username: 'someone', upstream_registry_password: 'hunter2-secret', expiration_s: 3600, org_name: 'ignored' };
      await expectError(call('POST', proxycache(), undefined, body), 401);
      await expectError(call('POST', proxycache(), auth.member, body), 403);
      await expectError(call('POST', proxycache(), auth.readonly, body), 403);
      await expectError(call('POST', proxycache(), auth.uma, body), 404);
      await expectError(call('POST', proxycache('uma'), auth.uma, body), 404);
      await expectError(call('POST', proxycache('uma'), auth.root, body), 404);

      const created = await call('POST', proxycache(), auth.oadmin, body);
      assert.equal(created.status, 201, created.raw);
      assert.equal(created.raw, '"Created"');
      assert.match(String((await t.app.inject({ method: 'GET', url: `/api/v1${proxycache()}`, headers: { authorization: auth.member } })).headers['content-type']), /application\/json/);
      assert.equal(parsed('POST', '/organization/:orgname/proxycache', created), 'Created');
      await detail(call('POST', proxycache(), auth.oadmin, body), 400, /^Proxy Cache Configuration already exists$/);

      const shown = await call('GET', proxycache(), auth.member);
      assert.deepEqual(parsed('GET', '/organization/:orgname/proxycache', shown), {
        upstream_registry: upstream.host,
        expiration_s: 3600,
        insecure: true,
        anonymous_pull: false,
        revalidate_interval_s: 0,
        prefetch_layers: false,
        answers_for: [upstream.host],
        has_credentials: true,
      });
      assert.ok(!shown.raw.includes('hunter2') && !shown.raw.includes('someone'), 'credentials are never returned');

      const bySuperuser = await call('POST', proxycache('orgb'), auth.root, { upstream_registry: 'http://127.0.0.1:1', answers_for: [] });
      assert.equal(bySuperuser.status, 201, bySuperuser.raw);

      const logs = (await t.accounts!.audit.query({ namespace: 'orga', kinds: ['create_proxy_cache_config'] })).entries;
      assert.deepEqual(logs.map((e) => [e.actor.name, e.metadata]), [['oadmin', { upstream_registry: upstream.host }]]);
    });

    it('refuses bad input and SSRF targets with 400, never 500', async () => {
      const cases: Array<[object, RegExp]> = [
        [{}, /upstream_registry is required/],
        [{ upstream_registry: 7 }, /upstream_registry/],
        [{ upstream_registry: 'quay.io', expiration_s: 'soon' }, /expiration_s/],
        [{ upstream_registry: '10.0.0.1', expiration_s: -1 }, /expiration_s must be a whole number/],
        [{ upstream_registry: '10.0.0.1', revalidate_interval_s: 7200 }, /revalidate_interval_s/],
        [{ upstream_registry: '10.0.0.1', answers_for: ['a b'] }, /answers_for/],
        [{ upstream_registry: '10.0.0.1', upstream_registry_username: 'x' }, /together/],
        [{ upstream_registry: 'gopher://quay.io' }, /scheme "gopher" is not allowed/],
        [{ upstream_registry: 'https://u:p@quay.io' }, /credentials must not be embedded/],
        [{ upstream_registry: '10.0.0.1' }, /^The provided registry URL is not allowed: .*loopback or private/],
        [{ upstream_registry: '127.0.0.2:5000' }, /^The provided registry URL is not allowed/],
        [{ upstream_registry: '169.254.169.254' }, /^The provided registry URL is not allowed: .*link-local/],
        [{ upstream_registry: 'metadata.google.internal' }, /^The provided registry URL is not allowed: .*metadata/],
        [{ upstream_registry: 'kubernetes.default.svc' }, /^The provided registry URL is not allowed/],
        [{ upstream_registry: '[fd00:ec2::254]' }, /^The provided registry URL is not allowed/],
      ];
      for (const [body, re] of cases) {
        await detail(call('POST', proxycache('orgc'), auth.root, body), 400, re);
        await detail(call('POST', validate('orgc'), auth.root, body), 400, re);
      }
      const raw = await t.app.inject({ method: 'POST', url: `/api/v1${proxycache()}`, headers: { authorization: auth.oadmin, 'content-type': 'application/json' }, payload: '{not json' });
      assert.equal(raw.statusCode, 400, raw.body);
    });

    it('PUT changes the fields given and answers the result; admins only', async () => {
      await expectError(call('PUT', proxycache(), undefined, { expiration_s: 60 }), 401);
      await expectError(call('PUT', proxycache(), auth.member, { expiration_s: 60 }), 403);
      const res = await call('PUT', proxycache(), auth.oadmin, { expiration_s: 0, anonymous_pull: true, revalidate_interval_s: 15, prefetch_layers: true, insecure: null });
      assert.equal(res.status, 200, res.raw);
      assert.deepEqual(parsed('PUT', '/organization/:orgname/proxycache', res), {
        upstream_registry: upstream.host,
        expiration_s: 0,
        insecure: true,
        anonymous_pull: true,
        revalidate_interval_s: 15,
        prefetch_layers: true,
        answers_for: [upstream.host],
        has_credentials: true,
      });
      await detail(call('PUT', proxycache(), auth.oadmin, { upstream_registry: '127.0.0.1:9' }), 400, /given again/);
      await detail(call('PUT', proxycache(), auth.oadmin, { upstream_registry_password: 'only' }), 400, /together/);
      const dropped = await call('PUT', proxycache(), auth.oadmin, { upstream_registry_username: null, upstream_registry_password: null, answers_for: ['docker.io', 'Mirror.Example:5000'] });
      assert.equal(dropped.status, 200, dropped.raw);
      assert.equal(dropped.body!.has_credentials, false);
      assert.deepEqual(dropped.body!.answers_for, ['docker.io', 'mirror.example:5000']);
      await detail(call('PUT', proxycache('orgb'), auth.root, { answers_for: ['docker.io'] }), 400, /organization orga already answers for docker\.io/);
      await detail(call('PUT', proxycache('nosuch'), auth.root, { expiration_s: 1 }), 404, /organization nosuch not found/);
      const entry = (await t.accounts!.audit.query({ namespace: 'orga', kinds: ['update_proxy_cache_config'] })).entries[0]!;
      assert.deepEqual(entry.metadata, { upstream_registry: upstream.host, changed: ['answers_for', 'upstream_registry_username', 'upstream_registry_password'] });
      assert.ok(!JSON.stringify(entry).includes('hunter2'));
    });

    it('validateproxycache: 202 "Valid" for a live registry, 400 with the reason for a dead one; admins only', async () => {
      const live = { upstream_registry: upstream.host, insecure: true };
      await expectError(call('POST', validate(), undefined, live), 401);
      await expectError(call('POST', validate(), auth.member, live), 403);
      const ok = await call('POST', validate(), auth.oadmin, live);
      assert.equal(ok.status, 202, ok.raw);
      assert.equal(parsed('POST', '/organization/:orgname/validateproxycache', ok), 'Valid');
      const saved = await call('POST', validate(), auth.oadmin, {});
      assert.equal(saved.status, 202, saved.raw);
      assert.equal(saved.body as unknown, 'Valid');
      const port = await freePort();
      await detail(call('POST', validate(), auth.oadmin, { upstream_registry: `http://127.0.0.1:${port}` }), 400, /^Failed to validate Proxy cache configuration: the remote registry cannot be reached/);
      await detail(call('POST', validate('orgb'), auth.root, { upstream_registry: `127.0.0.1:${port}`, insecure: true, upstream_registry_username: 'u', upstream_registry_password: 'p' }), 400, /cannot be reached/);
    });

    it('DELETE answers 201 "Deleted", then 404; admins only; the organization and its repositories stay', async () => {
      await t.registry.repositories.create('orga/library/nginx' as never, { visibility: 'private' });
      await expectError(call('DELETE', proxycache()), 401);
      await expectError(call('DELETE', proxycache(), auth.member), 403);
      const res = await call('DELETE', proxycache(), auth.oadmin);
      assert.equal(res.status, 201, res.raw);
      assert.equal(parsed('DELETE', '/organization/:orgname/proxycache', res), 'Deleted');
      await expectError(call('DELETE', proxycache(), auth.oadmin), 404);
      await expectError(call('PUT', proxycache(), auth.oadmin, { expiration_s: 1 }), 404);
      assert.deepEqual((await call('GET', proxycache(), auth.member)).body, EMPTY);
      assert.ok(await t.registry.repositories.details('orga/library/nginx' as never));
      const kinds = (await t.accounts!.audit.query({ namespace: 'orga' })).entries.map((e) => e.kind);
      assert.ok(kinds.includes('delete_proxy_cache_config'), kinds.join());
    });
  });
}

describe('/api/v1 proxy cache with proxy_cache.enabled false', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp('sqlite', { config: { 'proxy_cache.enabled': false } });
    await t.accounts!.accounts.createUser({ name: 'root', password: 'root-password-1', superuser: true });
    await t.accounts!.accounts.createOrganization({ name: 'orga', creator: 'root' });
  });
  after(() => t?.close());

  it('answers 404 on every route', async () => {
    const { call, expectError } = apiClient(() => t.app);
    const root = `Basic ${Buffer.from('root:root-password-1').toString('base64')}`;
    for (const [method, path] of [['GET', 'proxycache'], ['POST', 'proxycache'], ['PUT', 'proxycache'], ['DELETE', 'proxycache'], ['POST', 'validateproxycache']] as const) {
      const res = await call(method, `/organization/orga/${path}`, root, method === 'GET' || method === 'DELETE' ? undefined : { upstream_registry: 'quay.io' });
      await expectError(Promise.resolve(res), 404);
      assert.match(res.body!.detail, /proxy_cache\.enabled is false/);
    }
  });
});
