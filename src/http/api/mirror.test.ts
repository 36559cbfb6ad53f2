/**
 * /api/v1/repository/{repo}/mirror (+ sync-now, sync-cancel) and /repository/mirror/health on both
 * dialects, on a nested repository name: Quay's statuses, messages and matrix (test_mirror.py), what
 * each write does to the row the workers read, who may do what, SSRF refusals before anything is
 * stored, and no 5xx for any input.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { apiClient, type ApiResult } from '../../../test/helpers/api-client.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import type { RepositoryName } from '../../oci/reference.js';
import { API_SCOPES } from '../../registry/accounts/api-scopes.js';
import type { RepositoryDetails } from '../../registry/repositories.js';
import { API_ROUTES } from './routes.js';

const REPO = 'orga/team/app';
const SOURCE = '203.0.113.10:5000/upstream/app';
const BODY = {
  external_reference: SOURCE,
  sync_interval: 5000,
  sync_start_date: '2020-01-02T06:30:00Z',
  skopeo_timeout_interval: 300,
  root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['latest', '3.3*', 'foo'] },
  robot_username: 'orga+mirrorbot',
  external_registry_username: 'fakeUsername',
  external_registry_password: 'fakePassword',
  external_registry_config: {
    verify_tls: true,
    unsigned_images: false,
    proxy: { http_proxy: 'http://insecure.proxy.corp', https_proxy: 'https://secure.proxy.corp', no_proxy: 'mylocalhost' },
  },
};

for (const dialect of DIALECTS) {
  describe(`/api/v1 repository mirror (${dialect})`, () => {
    let t: TestApp;
    const auth: Record<string, string> = {};
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'proxy_cache.allow_private_upstreams': ['10.0.0.0/8'], 'proxy_cache.secret_key': randomBytes(32).toString('base64') } });
      const a = t.accounts!;
      for (const name of ['root', 'oadmin', 'member', 'uma']) await a.accounts.createUser({ name, password: `${name}-password-1`, superuser: name === 'root' });
      await a.accounts.createOrganization({ name: 'orga', creator: 'oadmin' });
      await a.accounts.createOrganization({ name: 'orgb', creator: 'oadmin' });
      await a.teams.createTeam('orga', 'devs', { role: 'member' });
      await a.teams.addMember('orga', 'devs', 'member');
      await a.robots.create('orga', 'mirrorbot');
      await a.robots.create('orga', 'other');
      await a.robots.create('orgb', 'foreign');
      for (const name of ['root', 'oadmin', 'member', 'uma']) auth[name] = `Bearer ${(await a.apiTokens.create(name, { name: 'test', scopes: [...API_SCOPES] })).secret}`;
    });
    after(async () => t?.close());

    const { call, expectError } = apiClient(() => t.app);
    const mirror = (repo = REPO, rest = '') => `/repository/${repo}/mirror${rest}`;
    const details = async (repo = REPO): Promise<RepositoryDetails> => (await t.registry.repositories.details(repo as RepositoryName))!;
    const row = async (repo = REPO) => t.db.db.selectFrom('repository_mirrors').selectAll().where('repository_id', '=', (await details(repo)).id).executeTakeFirst();
    const setRow = async (values: Record<string, unknown>, repo = REPO) =>
      t.db.db
        .updateTable('repository_mirrors')
        .set(values as never)
        .where('repository_id', '=', (await details(repo)).id)
        .execute();
    const robotRole = async (robot: string, repo = REPO) => t.accounts!.grants.getRepositoryPermission(await details(repo), { kind: 'robot', name: robot });
    const detail = async (p: Promise<ApiResult>, status: number, re: RegExp | string) => {
      const res = await p;
      await expectError(Promise.resolve(res), status);
      if (typeof re === 'string') assert.equal(res.body!.detail, re);
      else assert.match(res.body!.detail, re);
      return res;
    };
    /** A fresh repository (and, with `body`, its mirror made through the API). */
    const fresh = async (repo = REPO, body: object | null = BODY) => {
      const existing = await t.registry.repositories.details(repo as RepositoryName);
      if (existing) await t.registry.repositories.delete(existing);
      await t.registry.repositories.create(repo as RepositoryName, { visibility: 'private' });
      if (body) {
        const res = await call('POST', mirror(repo), auth.oadmin, body);
        assert.equal(res.status, 201, res.raw);
      }
    };

    describe('create', () => {
      it('makes the repository a MIRROR with its robot, answers 201 "" and records the source', async () => {
        await fresh(REPO, null);
        const res = await call('POST', mirror(), auth.oadmin, BODY);
        assert.equal(res.status, 201, res.raw);
        assert.equal(res.raw, '""');
        const repo = await details();
        assert.equal(repo.state, 'MIRROR');
        const r = await row();
        assert.ok(r);
        assert.equal(r.sync_status, 'NEVER_RUN');
        assert.equal(r.sync_retries_remaining, 3);
        assert.equal(Number(r.sync_start_at), Date.UTC(2020, 0, 2, 6, 30, 0));
        assert.match(String(r.username_enc), /^v1:/, 'the user name is sealed');
        assert.match(String(r.password_enc), /^v1:/, 'the password is sealed');
        assert.ok(!JSON.stringify(r).includes('fakePassword'));
        const robot = await t.accounts!.robots.get('orga+mirrorbot');
        assert.equal(repo.mirrorRobotId, robot!.id);
        await t.registry.audit!.flush();
        const log = await t.accounts!.audit.query({ namespace: 'orga', repository: 'team/app', kinds: ['repo_mirror_config_changed'] });
        assert.deepEqual(log.entries.map((e) => e.metadata), [{ changed: 'external_reference', to: SOURCE }]);
      });

      it('GET shows Quay\'s fields and Wharf\'s, never the password', async () => {
        const res = await call('GET', mirror(), auth.oadmin);
        assert.equal(res.status, 200, res.raw);
        const route = API_ROUTES.find((r) => r.method === 'GET' && r.path.endsWith('/mirror'))!;
        route.response!.parse(res.body);
        assert.deepEqual(res.body, {
          is_enabled: true,
          mirror_type: 'PULL',
          external_reference: SOURCE,
          external_registry_username: 'fakeUsername',
          external_registry_config: BODY.external_registry_config,
          sync_interval: 5000,
          sync_start_date: '2020-01-02T06:30:00Z',
          sync_expiration_date: null,
          sync_retries_remaining: 3,
          sync_status: 'NEVER_RUN',
          root_rule: BODY.root_rule,
          robot_username: 'orga+mirrorbot',
          skopeo_timeout_interval: 300,
          architecture_filter: [],
          rollback_on_failure: false,
          progress: null,
          last_run: null,
        });
        assert.ok(!res.raw.includes('fakePassword'));
      });

      for (const [held, expected] of [[undefined, 'write'], ['read', 'write'], ['write', 'write'], ['admin', 'admin']] as const) {
        it(`gives the robot write when it holds ${held ?? 'nothing'} (then ${expected})`, async () => {
          await fresh(REPO, null);
          if (held) await t.accounts!.grants.setRepositoryPermission(await details(), { kind: 'robot', name: 'orga+other' }, held);
          const res = await call('POST', mirror(), auth.oadmin, { ...BODY, robot_username: 'orga+other' });
          assert.equal(res.status, 201, res.raw);
          assert.equal(await robotRole('orga+other'), expected);
        });
      }

      it('refuses a second configuration with 409 and Quay\'s text', async () => {
        await fresh();
        await detail(call('POST', mirror(), auth.oadmin, BODY), 409, 'Mirror configuration already exits for repository orga/team/app');
      });

      it('skopeo_timeout_interval is optional (300), and at least 300', async () => {
        await fresh(REPO, null);
        const { skopeo_timeout_interval: _t, ...rest } = BODY;
        await detail(call('POST', mirror(), auth.oadmin, { ...rest, skopeo_timeout_interval: 299 }), 400, 'Skopeo timeout interval cannot be less than 300 seconds');
        assert.equal(await row(), undefined);
        assert.equal((await call('POST', mirror(), auth.oadmin, rest)).status, 201);
        assert.equal((await call('GET', mirror(), auth.oadmin)).body!.skopeo_timeout_interval, 300);
      });

      it('refuses bad input with the reason, before storing or granting anything', async () => {
        await fresh(REPO, null);
        const cases: Array<[object, RegExp | string]> = [
          [{ ...BODY, sync_start_date: 'not-a-date' }, 'Incorrect DateTime format for sync_start_date.'],
          [{ ...BODY, sync_start_date: '2020-02-30T00:00:00Z' }, 'Incorrect DateTime format for sync_start_date.'],
          [{ ...BODY, sync_interval: 0 }, /sync_interval must be a whole number of seconds above 0/],
          [{ ...BODY, sync_interval: 1.5 }, /sync_interval/],
          [{ ...BODY, root_rule: { rule_kind: 'tag_glob_csv', rule_value: [] } }, 'validation failed: rule_value for TAG_GLOB_CSV must be a list with at least one rule'],
          [{ ...BODY, root_rule: { rule_kind: 'regex', rule_value: ['x'] } }, /rule_kind must be tag_glob_csv/],
          [{ ...BODY, root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['v1,v2'] } }, /its own item/],
          [{ ...BODY, root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['[abc'] } }, /never closed/],
          [{ ...BODY, root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['a b'] } }, /never appears in a tag/],
          [{ ...BODY, robot_username: 'orga+nobody' }, 'Could not find robot with specified username'],
          [{ ...BODY, robot_username: 'orgb+foreign' }, 'Invalid robot'],
          [{ ...BODY, robot_username: 'mirrorbot' }, 'Invalid robot'],
          [{ ...BODY, architecture_filter: ['amd64', 'sparc'] }, /^Invalid architectures: sparc/],
          [{ ...BODY, architecture_filter: 'amd64' }, 'architecture_filter must be an array'],
          [{ ...BODY, external_reference: 'example.com' }, 'External registry reference must include a repository path'],
          [{ ...BODY, external_reference: 'https://203.0.113.10/a/b' }, 'External registry reference must not include a URL scheme'],
          [{ ...BODY, external_reference: '203.0.113.10/a b' }, 'External registry reference must not include whitespace'],
          [{ ...BODY, external_reference: '203.0.113.10/a?b' }, 'External registry reference contains an invalid character'],
          [{ ...BODY, external_reference: 'user@203.0.113.10/a/b' }, 'External registry reference must include a valid registry hostname'],
          [{ ...BODY, external_reference: '203.0.113.10:99999/a' }, 'External registry reference contains an invalid registry port'],
          [{ ...BODY, external_reference: '203.0.113.10/UPPER/Case' }, /invalid repository path/],
          [{ ...BODY, is_enabled: 'yes' }, 'is_enabled must be true or false'],
          [{ ...BODY, external_registry_config: { verify_tls: null } }, 'external_registry_config.verify_tls must be true or false'],
          [{ ...BODY, external_reference: undefined }, 'external_reference is required'],
          [{ ...BODY, robot_username: undefined }, 'robot_username is required'],
        ];
        for (const [body, re] of cases) await detail(call('POST', mirror(), auth.oadmin, body), 400, re);
        for (const payload of ['[]', '"text"', '7', 'null', '{"external_reference":', '']) {
          const res = await t.app.inject({ method: 'POST', url: `/api/v1${mirror()}`, headers: { authorization: auth.oadmin, 'content-type': 'application/json' }, payload });
          assert.equal(res.statusCode, 400, `${payload}: ${res.body}`);
        }
        assert.equal(await row(), undefined, 'nothing stored');
        assert.equal(await robotRole('orga+mirrorbot'), undefined, 'nothing granted');
        assert.equal((await details()).state, 'NORMAL');
      });

      it('refuses sources the SSRF guard refuses (with the reason), allows allowlisted private ones', async () => {
        await fresh(REPO, null);
        for (const source of ['169.254.169.254/latest/meta-data', '127.0.0.1:5000/a/b', 'localhost:5000/a/b', '[::1]:5000/a/b', 'metadata.google.internal/a/b']) {
          const res = await detail(call('POST', mirror(), auth.oadmin, { ...BODY, external_reference: source }), 400, /^The provided registry location is not allowed: /);
          assert.ok(res.body!.detail.length > 'The provided registry location is not allowed: '.length);
        }
        await detail(call('POST', mirror(), auth.oadmin, { ...BODY, external_reference: 'no-such-host.invalid/a/b' }), 400, "Cannot resolve hostname 'no-such-host.invalid'");
        assert.equal(await row(), undefined);
        assert.equal(await robotRole('orga+mirrorbot'), undefined);
        assert.equal((await call('POST', mirror(), auth.oadmin, { ...BODY, external_reference: '10.0.0.1/team/repo' })).status, 201);
        assert.equal((await call('GET', mirror(), auth.oadmin)).body!.external_reference, '10.0.0.1/team/repo');
      });

      it('refuses a mirror in a proxy-cache organization', async () => {
        const ns = await t.db.db.selectFrom('namespaces').select('id').where('name', '=', 'orgb').executeTakeFirstOrThrow();
        await t.db.db.insertInto('proxy_cache_configs').values({ namespace_id: ns.id, upstream_registry: 'docker.io', created_at: 0, updated_at: 0 } as never).execute();
        await t.registry.repositories.create('orgb/cached' as RepositoryName, { visibility: 'private' });
        await detail(call('POST', mirror('orgb/cached'), auth.oadmin, { ...BODY, robot_username: 'orgb+foreign' }), 400, /proxy-cache organization/);
        await t.db.db.deleteFrom('proxy_cache_configs').where('namespace_id', '=', ns.id).execute();
      });

      it('refuses to make an organization with mirrored repositories a proxy cache (the cache would shadow them)', async () => {
        await fresh();
        await detail(call('POST', '/organization/orga/proxycache', auth.oadmin, { upstream_registry: '10.0.0.1' }), 400, /^orga has mirrored repositories: /);
        const ns = await t.db.db.selectFrom('namespaces').select('id').where('name', '=', 'orga').executeTakeFirstOrThrow();
        assert.equal(await t.db.db.selectFrom('proxy_cache_configs').select('namespace_id').where('namespace_id', '=', ns.id).executeTakeFirst(), undefined);
        assert.ok(await row(), 'the mirror stays');
      });
    });

    describe('who may', () => {
      before(async () => fresh());
      it('admins and superusers; writers 403; strangers as if it did not exist; anonymous 401', async () => {
        assert.equal((await call('GET', mirror(), auth.root)).status, 200);
        assert.equal((await call('GET', mirror(), auth.oadmin)).status, 200);
        await t.accounts!.grants.setRepositoryPermission(await details(), { kind: 'team', name: 'devs' }, 'write');
        for (const [method, rest] of [['GET', ''], ['PUT', ''], ['DELETE', ''], ['POST', '/sync-now'], ['POST', '/sync-cancel']] as const) {
          await expectError(call(method, mirror(REPO, rest), auth.member, method === 'PUT' ? { sync_interval: 7 } : undefined), 403);
          await expectError(call(method, mirror(REPO, rest), auth.uma, method === 'PUT' ? { sync_interval: 7 } : undefined), 404);
          await expectError(call(method, mirror(REPO, rest), undefined, method === 'PUT' ? { sync_interval: 7 } : undefined), 401);
        }
        assert.equal((await call('GET', mirror(), auth.oadmin)).body!.sync_interval, 5000);
        await expectError(call('GET', mirror('orga/none'), auth.oadmin), 404);
        await fresh(REPO, null);
        await expectError(call('GET', mirror(), auth.oadmin), 404);
        await expectError(call('PUT', mirror(), auth.oadmin, { sync_interval: 7 }), 404);
      });
    });

    describe('change (Quay\'s test_change_config matrix)', () => {
      const matrix: Array<[string, unknown, number]> = [
        ['is_enabled', true, 201],
        ['is_enabled', false, 201],
        ['is_enabled', null, 400],
        ['is_enabled', 'foo', 400],
        ['external_reference', '203.0.113.10:5000/foo/bar', 201],
        ['external_reference', '203.0.113.10:5000/foo', 201],
        ['external_reference', '203.0.113.10', 400],
        ['external_registry_username', 'newTestUsername', 201],
        ['external_registry_username', null, 201],
        ['external_registry_username', 123, 400],
        ['external_registry_password', 'newTestPassword', 400],
        ['external_registry_password', null, 400],
        ['external_registry_password', 41, 400],
        ['robot_username', 'orga+mirrorbot', 201],
        ['robot_username', 'orga+doesntExist', 400],
        ['sync_start_date', '2020-01-01T00:00:00Z', 201],
        ['sync_start_date', 'January 1 2020', 400],
        ['sync_start_date', '2020-01-01T00:00:00.00Z', 400],
        ['sync_start_date', 'Wed, 01 Jan 2020 00:00:00 -0000', 400],
        ['sync_start_date', 'Wed, 02 Oct 2002 08:00:00 EST', 400],
        ['sync_interval', 2000, 201],
        ['sync_interval', -5, 400],
        ['sync_interval', 0, 400],
        ['skopeo_timeout_interval', 3000, 201],
        ['skopeo_timeout_interval', 60, 400],
        ['https_proxy', 'https://proxy.corp.example.com', 201],
        ['https_proxy', null, 201],
        ['https_proxy', 'proxy.example.com; rm -rf /', 201],
        ['http_proxy', 'http://proxy.corp.example.com', 201],
        ['http_proxy', null, 201],
        ['no_proxy', 'quay.io', 201],
        ['no_proxy', null, 201],
        ['verify_tls', true, 201],
        ['verify_tls', false, 201],
        ['verify_tls', null, 400],
        ['verify_tls', 'abc', 400],
        ['unsigned_images', true, 201],
        ['unsigned_images', false, 201],
        ['unsigned_images', null, 400],
        ['unsigned_images', 'abc', 400],
        ['root_rule', { rule_kind: 'tag_glob_csv', rule_value: ['3.1', '3.1*'] }, 201],
        ['root_rule', { rule_kind: 'tag_glob_csv' }, 400],
        ['root_rule', { rule_kind: 'tag_glob_csv', rule_value: [] }, 400],
        ['root_rule', { rule_kind: 'incorrect', rule_value: ['3.1', '3.1*'] }, 400],
        ['architecture_filter', ['amd64'], 201],
        ['architecture_filter', ['amd64', 'arm64', 'ppc64le', 's390x', 'arm', '386', 'riscv64'], 201],
        ['architecture_filter', [], 201],
        ['architecture_filter', null, 201],
        ['architecture_filter', ['invalid_arch'], 400],
        ['architecture_filter', 'amd64', 400],
        ['rollback_on_failure', true, 201],
        ['rollback_on_failure', 'yes', 400],
      ];
      beforeEach(async () => fresh());
      for (const [key, value, status] of matrix) {
        it(`${key} = ${JSON.stringify(value)} → ${status}`, async () => {
          const body = ['http_proxy', 'https_proxy', 'no_proxy'].includes(key)
            ? { external_registry_config: { proxy: { [key]: value } } }
            : ['verify_tls', 'unsigned_images'].includes(key)
              ? { external_registry_config: { [key]: value } }
              : key === 'external_reference'
                ? { [key]: value, external_registry_username: 'u', external_registry_password: 'p' }
                : { [key]: value };
          const before = (await call('GET', mirror(), auth.oadmin)).body!;
          const res = await call('PUT', mirror(), auth.oadmin, body);
          assert.equal(res.status, status, res.raw);
          const after = (await call('GET', mirror(), auth.oadmin)).body!;
          const read = (v: Record<string, any>) =>
            ['http_proxy', 'https_proxy', 'no_proxy'].includes(key)
              ? v.external_registry_config.proxy[key]
              : ['verify_tls', 'unsigned_images'].includes(key)
                ? v.external_registry_config[key]
                : key === 'external_registry_password'
                  ? v[key]
                  : v[key];
          if (status === 201) {
            assert.equal(res.raw, '""');
            const expected = key === 'architecture_filter' && value === null ? [] : key === 'external_registry_password' ? undefined : value;
            assert.deepEqual(read(after), expected);
          } else {
            assert.deepEqual(after, before, 'a refused change changes nothing');
          }
          assert.equal(after.external_registry_password, undefined);
        });
      }

      it('validates every field before changing any', async () => {
        const before = await row();
        await detail(call('PUT', mirror(), auth.oadmin, { external_reference: '127.0.0.1/team/repo', sync_interval: 9999, external_registry_username: 'u', external_registry_password: 'p' }), 400, /^The provided registry location is not allowed/);
        await detail(call('PUT', mirror(), auth.oadmin, { external_reference: '203.0.113.11/x/y', sync_start_date: 'not-a-date' }), 400, 'Incorrect DateTime format for sync_start_date.');
        await detail(call('PUT', mirror(), auth.oadmin, { sync_interval: 7, skopeo_timeout_interval: 10 }), 400, 'Skopeo timeout interval cannot be less than 300 seconds.');
        await detail(call('PUT', mirror(), auth.oadmin, { sync_interval: 7, robot_username: 'orgb+foreign' }), 400, 'Invalid robot');
        assert.deepEqual(await row(), before);
      });

      it('moving stored credentials to another registry host needs them again', async () => {
        await detail(call('PUT', mirror(), auth.oadmin, { external_reference: '203.0.113.99/upstream/app' }), 400, /needs them given again/);
        assert.equal((await call('PUT', mirror(), auth.oadmin, { external_reference: '203.0.113.10:5000/other/app' })).status, 201, 'same host: the credentials stay');
        assert.equal((await call('PUT', mirror(), auth.oadmin, { external_reference: '203.0.113.99/upstream/app', external_registry_username: null, external_registry_password: null })).status, 201);
        const r = await row();
        assert.deepEqual([r!.username_enc, r!.password_enc], [null, null]);
      });

      it('changes the robot (granting it write) and records each changed field', async () => {
        const res = await call('PUT', mirror(), auth.oadmin, { robot_username: 'orga+other', sync_interval: 60, external_registry_username: 'n', external_registry_password: 's3cret', external_registry_config: { proxy: { no_proxy: 'x' } } });
        assert.equal(res.status, 201, res.raw);
        assert.equal(await robotRole('orga+other'), 'write');
        assert.equal((await details()).mirrorRobotId, (await t.accounts!.robots.get('orga+other'))!.id);
        await t.registry.audit!.flush();
        const log = await t.accounts!.audit.query({ namespace: 'orga', repository: 'team/app', kinds: ['repo_mirror_config_changed'] });
        const latest = log.entries.slice(0, 5).map((e) => e.metadata).reverse();
        assert.deepEqual(latest, [
          { changed: 'robot_username', to: 'orga+other' },
          { changed: 'sync_interval', to: 60 },
          { changed: 'external_registry_username', to: 'n' },
          { changed: 'external_registry_password', to: '********' },
          { changed: 'no_proxy', to: 'x' },
        ]);
        assert.ok(!JSON.stringify(log).includes('s3cret'));
      });
    });

    describe('credentials as a pair (Quay\'s test_change_credentials)', () => {
      const cases: Array<[object, number, [boolean, boolean] | undefined]> = [
        [{ external_registry_username: 'newUsername', external_registry_password: 'newPassword' }, 201, [true, true]],
        [{ external_registry_username: null, external_registry_password: null }, 201, [false, false]],
        [{ external_registry_username: 'myUsername', external_registry_password: null }, 201, [true, false]],
        [{ external_registry_username: 'myNewUsername' }, 201, [true, true]],
        [{ external_registry_username: null }, 201, [false, false]],
        [{ external_registry_password: 'myNewPassword' }, 400, undefined],
        [{ external_registry_password: null }, 400, undefined],
        [{ external_registry_username: null, external_registry_password: 'x' }, 400, undefined],
        [{ external_registry_username: '', external_registry_password: '' }, 201, [false, false]],
      ];
      for (const [body, status, stored] of cases) {
        it(`${JSON.stringify(body)} → ${status}`, async () => {
          await fresh();
          assert.equal((await call('PUT', mirror(), auth.oadmin, body)).status, status);
          const r = (await row())!;
          if (stored) assert.deepEqual([r.username_enc !== null, r.password_enc !== null], stored);
        });
      }
      it('Quay\'s messages', async () => {
        await fresh();
        await detail(call('PUT', mirror(), auth.oadmin, { external_registry_password: 'x' }), 400, 'Unable to set a new password without also specifying a username.');
        await detail(call('PUT', mirror(), auth.oadmin, { external_registry_username: null, external_registry_password: 'x' }), 400, 'Unable to delete username while setting a password.');
      });
      it('a user name sealed with another key reads as Quay\'s marker', async () => {
        await fresh();
        await setRow({ username_enc: 'v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==:AAAA' });
        assert.equal((await call('GET', mirror(), auth.oadmin)).body!.external_registry_username, '(invalid. please re-enter)');
      });
    });

    describe('sync-now, sync-cancel and the run the worker reports', () => {
      beforeEach(async () => fresh());
      it('sync-now: SYNC_NOW, no lease, at least one retry, a new txn; 404 while SYNCING', async () => {
        await setRow({ sync_status: 'CANCEL', sync_retries_remaining: 0, sync_expires_at: 123 });
        const txn = (await row())!.sync_txn;
        const res = await call('POST', mirror(REPO, '/sync-now'), auth.oadmin);
        assert.equal(res.status, 204, res.raw);
        const r = (await row())!;
        assert.deepEqual([r.sync_status, r.sync_retries_remaining, r.sync_expires_at], ['SYNC_NOW', 1, null]);
        assert.notEqual(r.sync_txn, txn);
        await setRow({ sync_status: 'FAIL', sync_retries_remaining: 2 });
        assert.equal((await call('POST', mirror(REPO, '/sync-now/'), auth.oadmin)).status, 204);
        assert.equal((await row())!.sync_retries_remaining, 2);
        await setRow({ sync_status: 'SYNCING', sync_expires_at: Date.now() + 60_000 });
        await expectError(call('POST', mirror(REPO, '/sync-now'), auth.oadmin), 404);
        assert.equal((await row())!.sync_status, 'SYNCING');
      });

      it('sync-cancel: from SYNCING keeps the worker\'s txn and lease; from SYNC_NOW rotates the txn; else 404', async () => {
        await expectError(call('POST', mirror(REPO, '/sync-cancel'), auth.oadmin), 404);
        const lease = Date.now() + 60_000;
        await setRow({ sync_status: 'SYNCING', sync_expires_at: lease, sync_holder: 'worker-1' });
        const txn = (await row())!.sync_txn;
        assert.equal((await call('POST', mirror(REPO, '/sync-cancel'), auth.oadmin)).status, 204);
        let r = (await row())!;
        assert.deepEqual([r.sync_status, r.sync_retries_remaining, r.sync_txn, Number(r.sync_expires_at), r.sync_holder], ['CANCEL', 0, txn, lease, 'worker-1']);
        await expectError(call('POST', mirror(REPO, '/sync-cancel'), auth.oadmin), 404);
        assert.equal((await call('POST', mirror(REPO, '/sync-now'), auth.oadmin)).status, 204);
        const queued = (await row())!.sync_txn;
        assert.equal((await call('POST', mirror(REPO, '/sync-cancel/'), auth.oadmin)).status, 204);
        r = (await row())!;
        assert.equal(r.sync_status, 'CANCEL');
        assert.notEqual(r.sync_txn, queued);
        await t.registry.audit!.flush();
        const log = await t.accounts!.audit.query({ namespace: 'orga', repository: 'team/app', kinds: ['repo_mirror_config_changed'] });
        assert.deepEqual(log.entries.slice(0, 3).map((e) => e.metadata), [
          { changed: 'sync_status', to: 'SYNC_CANCEL' },
          { changed: 'sync_status', to: 'SYNC_NOW' },
          { changed: 'sync_status', to: 'SYNC_CANCEL' },
        ]);
      });

      it('GET shows the run in flight while SYNCING and the last finished run', async () => {
        const started = Date.UTC(2026, 11, 7, 10, 0, 0);
        await setRow({
          sync_status: 'SYNCING',
          sync_expires_at: started + 3_600_000,
          run_started_at: started,
          run_tags_total: 10,
          run_tags_done: 4,
          run_bytes: 12345,
          run_current_tag: 'v5',
          last_started_at: started - 86_400_000,
          last_finished_at: started - 86_000_000,
          last_outcome: 'PARTIAL',
          last_message: '2 tags failed',
          last_bytes: 99,
        });
        const body = (await call('GET', mirror(), auth.oadmin)).body!;
        assert.deepEqual(body.progress, { tags_total: 10, tags_done: 4, bytes: 12345, current_tag: 'v5', started: '2026-12-07T10:00:00Z' });
        assert.deepEqual(body.last_run, { started: '2026-12-06T10:00:00Z', finished: '2026-12-06T10:06:40Z', outcome: 'PARTIAL', message: '2 tags failed', bytes: 99 });
        assert.equal(body.sync_expiration_date, '2026-12-07T11:00:00Z');
        await setRow({ sync_status: 'SUCCESS' });
        assert.equal((await call('GET', mirror(), auth.oadmin)).body!.progress, null);
      });
    });

    describe('delete (Wharf\'s addition)', () => {
      beforeEach(async () => fresh());
      it('makes the repository NORMAL without a mirror robot; its tags stay; the robot keeps its grant', async () => {
        const digest = await t.registry.manifests.put(await t.registry.repositories.get(REPO as RepositoryName), { kind: 'tag', tag: 'v1' as never }, Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'), 'application/vnd.oci.image.index.v1+json');
        assert.equal((await call('DELETE', mirror(REPO, '/'), auth.oadmin)).status, 204);
        const repo = await details();
        assert.deepEqual([repo.state, repo.mirrorRobotId], ['NORMAL', null]);
        assert.equal(await row(), undefined);
        assert.equal((await t.registry.tags.list(repo, { onlyActive: true, page: 1, limit: 10 })).tags[0]!.digest, digest.digest);
        assert.equal(await robotRole('orga+mirrorbot'), 'write');
        await expectError(call('DELETE', mirror(), auth.oadmin), 404);
        assert.equal((await call('POST', mirror(), auth.oadmin, BODY)).status, 201, 'and it can be made a mirror again');
      });
      it('409 while a run holds a live lease; allowed once the lease expired', async () => {
        await setRow({ sync_status: 'SYNCING', sync_expires_at: Date.now() + 60_000 });
        await detail(call('DELETE', mirror(), auth.oadmin), 409, /cancel it/);
        assert.ok(await row());
        await setRow({ sync_expires_at: Date.now() - 1 });
        assert.equal((await call('DELETE', mirror(), auth.oadmin)).status, 204);
      });
    });

    describe('health', () => {
      const health = (query = '', who: string | null | undefined = auth.root) => call('GET', `/repository/mirror/health${query}`, who ?? undefined);
      before(async () => {
        for (const r of await t.db.db.selectFrom('repository_mirrors').select('repository_id').execute()) {
          await t.db.db.deleteFrom('repository_mirrors').where('repository_id', '=', r.repository_id).execute();
        }
        for (const [name, status] of [['orga/h0', 'SUCCESS'], ['orga/h1', 'SUCCESS'], ['orga/h2', 'SUCCESS'], ['orga/h3', 'SYNCING'], ['orga/h4', 'NEVER_RUN'], ['orga/h5', 'FAIL']] as const) {
          await fresh(name);
          await setRow({ sync_status: status }, name);
        }
        await setRow({ sync_expires_at: Date.now() + 60_000, run_tags_total: 10, run_tags_done: 3, last_finished_at: Date.now() - 2 * 86_400_000, last_outcome: 'SUCCESS', last_started_at: 0 }, 'orga/h3');
        await setRow({ sync_retries_remaining: 0 }, 'orga/h5');
      });

      it("Quay's shape, counts from the rows, 200 while at most 20% of the mirrors that ran fail", async () => {
        const res = await health();
        assert.equal(res.status, 200, res.raw);
        API_ROUTES.find((r) => r.path === '/repository/mirror/health')!.response!.parse(res.body);
        const b = res.body!;
        assert.deepEqual(b.repositories, { total: 6, syncing: 1, completed: 3, failed: 1, never_run: 1 });
        assert.deepEqual([b.healthy, b.tags_pending, b.workers], [true, 7, { active: 1, configured: 1, status: 'healthy' }]);
        assert.deepEqual(b.issues.map((i: { severity: string; message: string }) => `${i.severity}: ${i.message}`), [
          "warning: Repository orga/h3 hasn't synced in over 24 hours",
          'warning: Repository orga/h4 has never been synced',
          'error: Repository orga/h5 has exhausted all retry attempts',
        ]);
      });

      it('503 with a critical issue when too many fail; disabled mirrors are not counted', async () => {
        await setRow({ sync_status: 'FAIL' }, 'orga/h2');
        const res = await health('?namespace=orga');
        assert.equal(res.status, 503);
        assert.equal(res.body!.healthy, false);
        assert.match(res.body!.issues[0].message, /^40\.0% of repositories are failing \(threshold: 20\.0%\)$/);
        assert.equal(res.body!.issues[0].severity, 'critical');
        await setRow({ is_enabled: 0 }, 'orga/h2');
        assert.equal((await health()).body!.repositories.total, 5);
        assert.match((await health()).body!.issues[0].message, /^25\.0% of repositories are failing/);
        await setRow({ is_enabled: 1, sync_status: 'SUCCESS' }, 'orga/h2');
        assert.equal((await health()).status, 200);
      });

      it('detailed pages in name order', async () => {
        const b = (await health('?detailed=true&limit=2&offset=1')).body!;
        assert.deepEqual(b.repositories.details.map((d: { repository: string }) => d.repository), ['h1', 'h2']);
        assert.deepEqual(b.repositories.pagination, { limit: 2, offset: 1, has_more: true });
        assert.equal((await health('?detailed=true&limit=5000')).body!.repositories.pagination.limit, 1000);
        await expectError(health('?limit=lots'), 400);
      });

      it('superusers see everything; members their organization; others nothing', async () => {
        await expectError(health('', null), 401);
        await expectError(health('', auth.oadmin), 403);
        assert.equal((await health('?namespace=orga', auth.member)).status, 200);
        assert.equal((await health('?namespace=orga', auth.member)).body!.repositories.total, 6);
        await expectError(health('?namespace=orga', auth.uma), 404);
        await expectError(health('?namespace=nobody', auth.uma), 404);
        assert.equal((await health('?namespace=uma', auth.uma)).body!.repositories.total, 0);
        assert.equal((await health('?namespace=orgb')).body!.repositories.total, 0);
        const slash = await call('GET', '/repository/mirror/health/?namespace=orga', auth.member);
        assert.equal(slash.status, 200);
      });

      it('a repository named mirror/health stays reachable with its name encoded', async () => {
        await t.accounts!.accounts.createOrganization({ name: 'mirror', creator: 'oadmin' });
        await t.registry.repositories.create('mirror/health' as RepositoryName, { visibility: 'private' });
        const res = await call('GET', '/repository/mirror%2Fhealth', auth.oadmin);
        assert.equal(res.status, 200, res.raw);
        assert.equal(res.body!.name, 'health');
      });
    });
  });
}
