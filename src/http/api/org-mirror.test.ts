/**
 * /api/v1/organization/{org}/mirror (+ sync-now, sync-cancel, verify, repositories) on both dialects:
 * Quay's schema, messages and statuses, what each write does to the row the worker reads, who may do
 * what, the refusals that keep organization mirrors, repository mirrors and proxy caches apart, SSRF
 * refusals before anything is stored, and no 5xx for any input.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { apiClient, type ApiResult } from '../../../test/helpers/api-client.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { insertMirror } from '../../../test/helpers/mirror-rows.js';
import type { RepositoryName } from '../../oci/reference.js';
import { API_SCOPES } from '../../registry/accounts/api-scopes.js';
import { ALREADY_EXISTS, BAD_DATE, CANCELLED_ALREADY, HAS_PROXY_CACHE, NOT_EMPTY, ROBOT_ELSEWHERE, SSRF_GENERIC_ERROR, SYNCING_NOW } from '../../registry/mirror/org-mirror-config-service.js';

const BODY = {
  external_registry_type: 'quay',
  external_registry_url: 'https://10.20.30.40:8443',
  external_namespace: 'projectquay',
  robot_username: 'orga+syncbot',
  visibility: 'private',
  sync_interval: 3600,
  sync_start_date: '2026-04-25T21:06:00Z',
  external_registry_username: 'reader',
  external_registry_password: 'reader-secret',
  external_registry_config: { verify_tls: false, proxy: { http_proxy: null, https_proxy: 'http://10.9.9.9:3128', no_proxy: null } },
  repository_filters: ['hello*', 'team/*'],
  skopeo_timeout: 451,
};

for (const dialect of DIALECTS) {
  describe(`/api/v1 organization mirror (${dialect})`, () => {
    let t: TestApp;
    const auth: Record<string, string> = {};
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'proxy_cache.allow_private_upstreams': ['10.0.0.0/8'], 'proxy_cache.secret_key': randomBytes(32).toString('base64') } });
      const a = t.accounts!;
      for (const name of ['root', 'oadmin', 'member', 'outsider']) await a.accounts.createUser({ name, password: `${name}-password-1`, superuser: name === 'root' });
      for (const org of ['orga', 'orgb', 'full', 'proxied', 'other']) await a.accounts.createOrganization({ name: org, creator: 'oadmin' });
      await a.teams.createTeam('orga', 'devs', { role: 'member' });
      await a.teams.addMember('orga', 'devs', 'member');
      await a.robots.create('orga', 'syncbot');
      await a.robots.create('orga', 'second');
      await a.robots.create('orgb', 'foreign');
      for (const org of ['full', 'proxied', 'other']) await a.robots.create(org, 'syncbot');
      for (const name of ['root', 'oadmin', 'member', 'outsider']) auth[name] = `Bearer ${(await a.apiTokens.create(name, { name: 'test', scopes: [...API_SCOPES] })).secret}`;
    });
    after(async () => t?.close());

    const { call, expectError } = apiClient(() => t.app);
    const path = (org = 'orga', rest = '') => `/organization/${org}/mirror${rest}`;
    const nsId = async (org: string) => (await t.db.db.selectFrom('namespaces').select('id').where('name', '=', org).executeTakeFirstOrThrow()).id;
    const row = async (org = 'orga') => t.db.db.selectFrom('organization_mirrors').selectAll().where('namespace_id', '=', await nsId(org)).executeTakeFirst();
    const refused = async (p: Promise<ApiResult>, status: number, detail: string | RegExp) => {
      const res = await p;
      await expectError(Promise.resolve(res), status);
      if (typeof detail === 'string') assert.equal(res.body!.detail, detail);
      else assert.match(res.body!.detail, detail);
    };
    const without = (k: string) => Object.fromEntries(Object.entries(BODY).filter(([key]) => key !== k));

    it('refuses each missing required field and each bad value with Quay\'s message, storing nothing', async () => {
      for (const k of ['external_registry_type', 'external_registry_url', 'external_namespace', 'robot_username', 'visibility', 'sync_interval', 'sync_start_date']) {
        await refused(call('POST', path(), auth.oadmin, without(k)), 400, `'${k}' is a required property`);
      }
      const cases: Array<[Record<string, unknown>, string | RegExp]> = [
        [{ external_registry_type: 'gitlab' }, "'gitlab' is not one of ['harbor', 'quay']"],
        [{ visibility: 'internal' }, "'internal' is not one of ['public', 'private']"],
        [{ sync_interval: 59 }, '59 is less than the minimum of 60'],
        [{ sync_interval: '3600' }, "'3600' is not of type 'integer'"],
        [{ skopeo_timeout: 29 }, '29 is less than the minimum of 30'],
        [{ skopeo_timeout: 3601 }, '3601 is greater than the maximum of 3600'],
        [{ external_namespace: 'x'.repeat(256) }, /is too long$/],
        [{ is_enabled: 'yes' }, "'yes' is not of type 'boolean'"],
        [{ repository_filters: 'hello*' }, "'hello*' is not of type 'array'"],
        [{ external_registry_config: { verify_tls: 'no' } }, "'no' is not of type 'boolean'"],
        [{ sync_start_date: '2026-04-25 21:06:00' }, BAD_DATE],
        [{ sync_start_date: '2026-02-30T00:00:00Z' }, BAD_DATE],
        [{ robot_username: 'orga+nobody' }, 'Invalid robot account: orga+nobody'],
        [{ robot_username: 'notarobot' }, 'Invalid robot account: notarobot'],
        [{ robot_username: 'orgb+foreign' }, ROBOT_ELSEWHERE],
        [{ external_registry_url: 'ftp://10.20.30.40' }, 'URL scheme must be http or https'],
        [{ external_registry_url: 'quay.io' }, /^Invalid URL/],
        [{ external_registry_url: 'http://127.0.0.1:8080' }, SSRF_GENERIC_ERROR],
        [{ external_registry_url: 'http://169.254.169.254' }, SSRF_GENERIC_ERROR],
      ];
      for (const [change, message] of cases) await refused(call('POST', path(), auth.oadmin, { ...BODY, ...change }), 400, message);
      for (const body of [[], 'x', null, 42]) {
        const res = await call('POST', path(), auth.oadmin, body);
        assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(body)}: ${res.status} ${res.raw}`);
      }
      assert.equal(await row(), undefined);
    });

    it('answers 401 anonymous, 404 to outsiders and for an unknown organization, 403 to members; admins and superusers pass', async () => {
      await expectError(call('GET', path()), 401);
      await expectError(call('POST', path(), undefined, BODY), 401);
      await expectError(call('GET', path(), auth.outsider), 404);
      await expectError(call('POST', path(), auth.outsider, BODY), 404);
      await expectError(call('GET', path(), auth.member), 403);
      await expectError(call('POST', path(), auth.member, BODY), 403);
      await expectError(call('POST', path('orga', '/sync-now'), auth.member), 403);
      await expectError(call('GET', path('nosuchorg'), auth.root), 404);
      await expectError(call('GET', path(), auth.oadmin), 404);
      await expectError(call('GET', path(), auth.root), 404);
      assert.equal(await row(), undefined);
    });

    it('creates (201 ""), shows Quay\'s fields without the password, refuses a second one', async () => {
      const res = await call('POST', path(), auth.oadmin, BODY);
      assert.equal(res.status, 201, res.raw);
      assert.equal(res.raw, '""');
      const r = (await row())!;
      assert.match(String(r.username_enc), /^v1:/);
      assert.match(String(r.password_enc), /^v1:/);
      assert.ok(!JSON.stringify(r).includes('reader-secret'));
      assert.equal(r.sync_status, 'NEVER_RUN');
      assert.equal(Number(r.sync_start_at), Date.UTC(2026, 3, 25, 21, 6, 0));
      const got = await call('GET', path(), auth.oadmin);
      assert.equal(got.status, 200, got.raw);
      const { creation_date, ...rest } = got.body!;
      assert.match(creation_date, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      assert.deepEqual(rest, {
        is_enabled: true,
        external_registry_type: 'quay',
        external_registry_url: 'https://10.20.30.40:8443',
        external_namespace: 'projectquay',
        external_registry_username: 'reader',
        has_external_registry_password: true,
        external_registry_config: { verify_tls: false, proxy: { http_proxy: null, https_proxy: 'http://10.9.9.9:3128', no_proxy: null } },
        repository_filters: ['hello*', 'team/*'],
        robot_username: 'orga+syncbot',
        visibility: 'private',
        sync_interval: 3600,
        sync_start_date: '2026-04-25T21:06:00Z',
        sync_expiration_date: null,
        sync_status: 'NEVER_RUN',
        sync_retries_remaining: 3,
        repo_sync_status_counts: { CANCEL: 0, FAIL: 0, NEVER_RUN: 0, SUCCESS: 0, SYNCING: 0, SYNC_NOW: 0, SKIP: 0 },
        skopeo_timeout: 451,
        last_sync: null,
      });
      assert.equal((await call('GET', path(), auth.root)).status, 200, 'superusers see it');
      await refused(call('POST', path(), auth.oadmin, BODY), 400, ALREADY_EXISTS);
      const log = await t.accounts!.audit.query({ namespace: 'orga', kinds: ['org_mirror_enabled'] });
      assert.equal(log.entries.length, 1);
      assert.equal(log.entries[0]!.metadata?.external_namespace, 'projectquay');
    });

    it('PUT changes the fields given (200 ""), clears credentials with null, checks like POST', async () => {
      const res = await call('PUT', path(), auth.oadmin, { is_enabled: false, visibility: 'public', sync_interval: 120, repository_filters: [], robot_username: 'orga+second', external_registry_password: null, skopeo_timeout: 30 });
      assert.equal(res.status, 200, res.raw);
      assert.equal(res.raw, '""');
      const got = (await call('GET', path(), auth.oadmin)).body!;
      assert.equal(got.is_enabled, false);
      assert.equal(got.visibility, 'public');
      assert.equal(got.sync_interval, 120);
      assert.deepEqual(got.repository_filters, []);
      assert.equal(got.robot_username, 'orga+second');
      assert.equal(got.has_external_registry_password, false);
      assert.equal(got.external_registry_username, 'reader');
      assert.equal(got.skopeo_timeout, 30);
      await refused(call('PUT', path(), auth.oadmin, { sync_interval: 30 }), 400, '30 is less than the minimum of 60');
      await refused(call('PUT', path(), auth.oadmin, { robot_username: 'orgb+foreign' }), 400, ROBOT_ELSEWHERE);
      await refused(call('PUT', path(), auth.oadmin, { external_registry_url: 'http://127.0.0.1' }), 400, SSRF_GENERIC_ERROR);
      await refused(call('PUT', path(), auth.oadmin, { sync_start_date: 'tomorrow' }), 400, BAD_DATE);
      assert.equal((await call('GET', path(), auth.oadmin)).body!.sync_interval, 120, 'a refused PUT changes nothing');
      await expectError(call('PUT', path('orgb'), auth.oadmin, { is_enabled: true }), 404);
      const log = await t.accounts!.audit.query({ namespace: 'orga', kinds: ['org_mirror_config_changed'] });
      assert.ok(log.entries.length >= 1);
    });

    it('sync-now: 204 and SYNC_NOW due now; 400 while SYNCING. sync-cancel: 204 and CANCEL; 400 when cancelled already', async () => {
      const before = Date.now();
      const res = await call('POST', path('orga', '/sync-now'), auth.oadmin);
      assert.equal(res.status, 204, res.raw);
      let r = (await row())!;
      assert.equal(r.sync_status, 'SYNC_NOW');
      assert.ok(Number(r.sync_start_at) >= before);
      await t.db.db.updateTable('organization_mirrors').set({ sync_status: 'SYNCING', sync_expires_at: Date.now() + 60_000 }).where('namespace_id', '=', await nsId('orga')).execute();
      await refused(call('POST', path('orga', '/sync-now'), auth.oadmin), 400, SYNCING_NOW);
      assert.equal((await call('POST', path('orga', '/sync-cancel'), auth.oadmin)).status, 204);
      r = (await row())!;
      assert.equal(r.sync_status, 'CANCEL');
      assert.equal(r.sync_retries_remaining, 0);
      assert.equal(r.sync_expires_at, null);
      await refused(call('POST', path('orga', '/sync-cancel'), auth.oadmin), 400, CANCELLED_ALREADY);
      assert.equal((await call('POST', path('orga', '/sync-now'), auth.oadmin)).status, 204, 'sync-now starts a cancelled mirror again');
      assert.equal((await row())!.sync_retries_remaining, 1);
      await expectError(call('POST', path('orgb', '/sync-now'), auth.oadmin), 404);
      await expectError(call('POST', path('orgb', '/sync-cancel'), auth.oadmin), 404);
    });

    it('repositories: an empty page with Quay\'s paging fields; limit capped at 500; verify answers success false for an unreachable source', async () => {
      const res = await call('GET', path('orga', '/repositories?page=abc&limit=9999'), auth.oadmin);
      assert.equal(res.status, 200, res.raw);
      assert.deepEqual(res.body, { repositories: [], page: 1, limit: 500, total: 0, has_next: false });
      await expectError(call('GET', path('orgb', '/repositories'), auth.oadmin), 404);
      await expectError(call('GET', path('orga', '/repositories'), auth.member), 403);
      // 10.20.30.40 answers nothing: verify says so in its body, not with a 5xx.
      await t.db.db.updateTable('organization_mirrors').set({ registry_url: 'http://127.0.0.1:9', verify_tls: 0 }).where('namespace_id', '=', await nsId('orga')).execute();
      const v = await call('POST', path('orga', '/verify'), auth.oadmin);
      assert.equal(v.status, 200, v.raw);
      assert.equal(v.body!.success, false);
      assert.equal(v.body!.message, 'The provided URL is not allowed', 'the guard is checked again at run time');
    });

    it('keeps organization mirrors, repository mirrors and proxy caches apart', async () => {
      await t.registry.repositories.create('full/app' as RepositoryName, { visibility: 'private' });
      await refused(call('POST', path('full'), auth.oadmin, { ...BODY, robot_username: 'full+syncbot' }), 400, NOT_EMPTY);
      const pc = await call('POST', '/organization/proxied/proxycache', auth.oadmin, { upstream_registry: '10.1.2.3:5000' });
      assert.equal(pc.status, 201, pc.raw);
      await refused(call('POST', path('proxied'), auth.oadmin, { ...BODY, robot_username: 'proxied+syncbot' }), 400, HAS_PROXY_CACHE);
      assert.equal((await call('POST', path('other'), auth.oadmin, { ...BODY, robot_username: 'other+syncbot' })).status, 201);
      await refused(call('POST', '/organization/other/proxycache', auth.oadmin, { upstream_registry: '10.1.2.3:5000' }), 400, /organization mirror/);
      await t.registry.repositories.create('other/manual' as RepositoryName, { visibility: 'private' });
      const rm = await call('POST', '/repository/other/manual/mirror', auth.oadmin, {
        external_reference: '10.1.2.3:5000/x/y',
        sync_interval: 3600,
        sync_start_date: '2026-04-25T21:06:00Z',
        root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['*'] },
        robot_username: 'other+syncbot',
      });
      await refused(Promise.resolve(rm), 400, /organization mirror/);
    });

    it('DELETE: 204, then 404; the repositories it made stay, as ordinary repositories', async () => {
      const ns = await nsId('orga');
      const repoId = await insertMirror(t.db, 'orga/team/kept');
      await t.db.db.insertInto('organization_mirror_repositories').values({ namespace_id: ns, name: 'team/kept', repository_id: repoId, discovered_at: 1, vanished_at: null, message: null }).execute();
      assert.equal((await call('DELETE', path(), auth.oadmin)).status, 204);
      await expectError(call('GET', path(), auth.oadmin), 404);
      await expectError(call('DELETE', path(), auth.oadmin), 404);
      const details = (await t.registry.repositories.details('orga/team/kept' as RepositoryName))!;
      assert.equal(details.state, 'NORMAL');
      assert.equal(await t.db.db.selectFrom('repository_mirrors').select('repository_id').where('repository_id', '=', repoId).executeTakeFirst(), undefined);
      assert.equal((await t.db.db.selectFrom('organization_mirror_repositories').selectAll().where('namespace_id', '=', ns).execute()).length, 0);
    });
  });
}
