/**
 * Organization mirrors end to end against a real second Wharf as the `quay` source (its /api/v1 is
 * Quay's, its /v2 a registry with token auth), on SQLite and PostgreSQL: the configuration made through
 * the API, the discovery run through the org-mirror worker (the source's repository list, paged; the
 * filters; nested names; visibility; the robot), the repositories then synced by the repository-mirror
 * worker, a repository gone from the source (kept, no longer synced, SKIP), wrong credentials (FAIL with
 * the reason, retries counted down), and cancel.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { OrgMirrorScheduleStore } from '../../src/db/org-mirror-schedule-store.js';
import { createMirrorWorker } from '../../src/main/compose-mirror.js';
import { createOrgMirrorWorker } from '../../src/main/compose-org-mirror.js';
import type { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, type RepositoryName } from '../../src/oci/reference.js';
import { API_SCOPES } from '../../src/registry/accounts/api-scopes.js';
import { apiClient, basicOf } from '../helpers/api-client.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { DIALECTS } from '../helpers/databases.js';
import { testSecretBox } from '../helpers/mirror-rows.js';
import { pushRandomImage } from '../helpers/registry-push.js';

const SRC_ADMIN = { username: 'srcadmin', password: 'source-admin-password-1' };
const basic = `${SRC_ADMIN.username}:${SRC_ADMIN.password}`;

for (const dialect of DIALECTS) {
  describe(`organization mirrors: discovery from a second Wharf, sync by the mirror worker (${dialect})`, () => {
    let src: TestApp;
    let srcUrl: string;
    let t: TestApp;
    let admin: string;
    const { key } = testSecretBox();
    const { call } = apiClient(() => t.app);
    const srcApi = apiClient(() => src.app);
    const name = (s: string): RepositoryName => {
      const p = parseRepositoryName(s);
      assert.ok(p.ok, s);
      return p.name;
    };
    const liveTags = async (local: string): Promise<Record<string, Digest>> => Object.fromEntries(await t.registry.tags.liveTargets((await t.registry.repositories.get(name(local)))!));
    const discover = () => createOrgMirrorWorker(t.db, t.config, t.accounts!, { holder: 'org-w' }).runOnce();
    const syncRepos = () => createMirrorWorker(t.db, t.registry, t.config, { holder: 'repo-w' }).runOnce();
    const body = (extra: Record<string, unknown> = {}) => ({
      external_registry_type: 'quay',
      external_registry_url: srcUrl,
      external_namespace: 'upstream',
      robot_username: 'mirror-org+syncbot',
      visibility: 'public',
      sync_interval: 3600,
      sync_start_date: `${new Date(Date.now() - 60_000).toISOString().slice(0, 19)}Z`,
      external_registry_username: SRC_ADMIN.username,
      external_registry_password: SRC_ADMIN.password,
      external_registry_config: { verify_tls: true, proxy: { http_proxy: null, https_proxy: null, no_proxy: null } },
      repository_filters: ['app', 'team/*'],
      ...extra,
    });
    const imgs: Record<string, string> = {};

    before(async () => {
      src = await buildTestApp(dialect);
      await src.accounts!.accounts.createUser({ name: SRC_ADMIN.username, password: SRC_ADMIN.password, superuser: true });
      await src.accounts!.accounts.createOrganization({ name: 'upstream', creator: SRC_ADMIN.username });
      await src.app.listen({ port: 0, host: '127.0.0.1' });
      srcUrl = `http://127.0.0.1:${(src.app.server.address() as AddressInfo).port}`;
      imgs['app:v1'] = (await pushRandomImage(srcUrl, 'upstream/app', 'v1', { basic })).digest;
      imgs['app:v2'] = (await pushRandomImage(srcUrl, 'upstream/app', 'v2', { basic })).digest;
      imgs['team/tool:latest'] = (await pushRandomImage(srcUrl, 'upstream/team/tool', 'latest', { basic })).digest;
      imgs['skipme:x'] = (await pushRandomImage(srcUrl, 'upstream/skipme', 'x', { basic })).digest;

      t = await buildTestApp(dialect, {
        config: { proxy_cache: { allow_private_upstreams: ['127.0.0.1'], secret_key: key }, mirror: { enabled: false, concurrent_runs: 8, lease: '10s' } },
      });
      const a = t.accounts!;
      await a.accounts.createUser({ name: 'oadmin', password: 'oadmin-password-1' });
      await a.accounts.createOrganization({ name: 'mirror-org', creator: 'oadmin' });
      await a.robots.create('mirror-org', 'syncbot');
      admin = `Bearer ${(await a.apiTokens.create('oadmin', { name: 'test', scopes: [...API_SCOPES] })).secret}`;
    });
    after(async () => {
      await t?.close();
      await src?.close();
    });

    it('discovers the selected repositories (nested names), makes them public repository mirrors, and the mirror worker syncs their tags', async () => {
      const created = await call('POST', '/organization/mirror-org/mirror', admin, body());
      assert.equal(created.status, 201, created.raw);
      const verify = await call('POST', '/organization/mirror-org/mirror/verify', admin);
      assert.deepEqual(verify.body, { success: true, message: 'Connection successful: 3 repositories in upstream' });

      const [report] = await discover();
      assert.equal(report?.outcome, 'SUCCESS', report?.message);
      assert.deepEqual(report?.created, ['app', 'team/tool']);
      for (const local of ['mirror-org/app', 'mirror-org/team/tool']) {
        const d = (await t.registry.repositories.details(name(local)))!;
        assert.equal(d.state, 'MIRROR');
        assert.equal(d.visibility, 'public');
        const robot = (await t.accounts!.robots.get('mirror-org+syncbot'))!;
        assert.equal(d.mirrorRobotId, robot.id);
        assert.equal(await t.accounts!.grants.getRepositoryPermission(d, { kind: 'robot', name: 'mirror-org+syncbot' }), 'write');
      }
      assert.equal(await t.registry.repositories.details(name('mirror-org/skipme')), undefined, 'the filters leave skipme out');
      const m = await t.db.db.selectFrom('repository_mirrors').selectAll().execute();
      assert.deepEqual(m.map((r) => r.external_reference).sort(), [`${srcUrl.slice(7)}/upstream/app`, `${srcUrl.slice(7)}/upstream/team/tool`]);
      assert.ok(m.every((r) => r.root_rule === '["*"]' && r.sync_interval_s == 3600 && /^v1:/.test(String(r.username_enc))));

      const runs = await syncRepos();
      assert.equal(runs.length, 2);
      assert.ok(runs.every((r) => r.outcome === 'SUCCESS'), JSON.stringify(runs.map((r) => r.message)));
      assert.deepEqual(await liveTags('mirror-org/app'), { v1: imgs['app:v1'], v2: imgs['app:v2'] });
      assert.deepEqual(await liveTags('mirror-org/team/tool'), { latest: imgs['team/tool:latest'] });

      const got = (await call('GET', '/organization/mirror-org/mirror', admin)).body!;
      assert.equal(got.sync_status, 'SUCCESS');
      assert.equal(got.sync_retries_remaining, 3);
      assert.ok(Date.parse(got.sync_start_date) > Date.now(), 'the next discovery is on the grid, in the future');
      assert.deepEqual(got.repo_sync_status_counts, { CANCEL: 0, FAIL: 0, NEVER_RUN: 0, SUCCESS: 2, SYNCING: 0, SYNC_NOW: 0, SKIP: 0 });
      const list = (await call('GET', '/organization/mirror-org/mirror/repositories', admin)).body!;
      assert.equal(list.total, 2);
      assert.deepEqual(
        list.repositories.map((r: any) => [r.name, r.sync_status, r.quay_repository]),
        [
          ['app', 'SUCCESS', 'mirror-org/app'],
          ['team/tool', 'SUCCESS', 'mirror-org/team/tool'],
        ],
      );
    });

    it('sync-now: a repository gone from the source keeps its tags but is no longer synced (SKIP); a new one is created; the others sync again', async () => {
      const del = await srcApi.call('DELETE', '/repository/upstream/team/tool', basicOf(SRC_ADMIN.username, SRC_ADMIN.password));
      assert.equal(del.status, 204, del.raw);
      imgs['team/new:v9'] = (await pushRandomImage(srcUrl, 'upstream/team/new', 'v9', { basic })).digest;
      assert.equal((await call('POST', '/organization/mirror-org/mirror/sync-now', admin)).status, 204);
      const [report] = await discover();
      assert.equal(report?.outcome, 'SUCCESS', report?.message);
      assert.deepEqual(report?.created, ['team/new']);
      assert.deepEqual(report?.vanished, ['team/tool']);
      const rows = await t.db.db.selectFrom('repository_mirrors as m').innerJoin('repositories as r', 'r.id', 'm.repository_id').select(['r.name', 'm.sync_status', 'm.is_enabled']).orderBy('r.name').execute();
      assert.deepEqual(
        rows.map((r) => [r.name, r.sync_status, r.is_enabled]),
        [
          ['app', 'SYNC_NOW', 1],
          ['team/new', 'NEVER_RUN', 1],
          ['team/tool', 'SUCCESS', 0],
        ],
      );
      const runs = await syncRepos();
      assert.deepEqual(runs.map((r) => r.outcome).sort(), ['SUCCESS', 'SUCCESS']);
      assert.deepEqual(await liveTags('mirror-org/team/new'), { v9: imgs['team/new:v9'] });
      assert.deepEqual(await liveTags('mirror-org/team/tool'), { latest: imgs['team/tool:latest'] }, 'the vanished repository keeps its tags');
      const got = (await call('GET', '/organization/mirror-org/mirror', admin)).body!;
      assert.deepEqual(got.repo_sync_status_counts, { CANCEL: 0, FAIL: 0, NEVER_RUN: 0, SUCCESS: 2, SYNCING: 0, SYNC_NOW: 0, SKIP: 1 });
      const tool = (await call('GET', '/organization/mirror-org/mirror/repositories', admin)).body!.repositories.find((r: any) => r.name === 'team/tool');
      assert.equal(tool.sync_status, 'SKIP');
      assert.match(tool.status_message, /no longer at the source/);

      // Disabling the organization mirror disables its repositories' syncs; enabling it enables those still at the source.
      const enabled = async () => Object.fromEntries((await t.db.db.selectFrom('repository_mirrors as m').innerJoin('repositories as r', 'r.id', 'm.repository_id').select(['r.name', 'm.is_enabled']).execute()).map((r) => [r.name, r.is_enabled]));
      assert.equal((await call('PUT', '/organization/mirror-org/mirror', admin, { is_enabled: false })).status, 200);
      assert.deepEqual(await enabled(), { app: 0, 'team/new': 0, 'team/tool': 0 });
      assert.equal((await call('PUT', '/organization/mirror-org/mirror', admin, { is_enabled: true })).status, 200);
      assert.deepEqual(await enabled(), { app: 1, 'team/new': 1, 'team/tool': 0 });

      // Back at the source: synced again.
      imgs['team/tool:again'] = (await pushRandomImage(srcUrl, 'upstream/team/tool', 'again', { basic })).digest;
      assert.equal((await call('POST', '/organization/mirror-org/mirror/sync-now', admin)).status, 204);
      const [back] = await discover();
      assert.equal(back?.outcome, 'SUCCESS', back?.message);
      assert.deepEqual(back?.created, []);
      assert.deepEqual(await enabled(), { app: 1, 'team/new': 1, 'team/tool': 1 });
      assert.deepEqual((await syncRepos()).map((r) => r.outcome), ['SUCCESS', 'SUCCESS', 'SUCCESS']);
      assert.deepEqual(await liveTags('mirror-org/team/tool'), { again: imgs['team/tool:again'] }, 'a tag gone from the source goes into the time machine, as for any mirror');
      assert.equal((await call('GET', '/organization/mirror-org/mirror', admin)).body!.repo_sync_status_counts.SKIP, 0);
    });

    it('wrong credentials: the discovery FAILs with the reason and counts a retry down; verify says so too', async () => {
      assert.equal((await call('PUT', '/organization/mirror-org/mirror', admin, { external_registry_password: 'wrong-password' })).status, 200);
      assert.equal((await call('POST', '/organization/mirror-org/mirror/sync-now', admin)).status, 204);
      const [report] = await discover();
      assert.equal(report?.outcome, 'FAIL');
      assert.match(report!.message, /^Authentication failed/);
      const got = (await call('GET', '/organization/mirror-org/mirror', admin)).body!;
      assert.equal(got.sync_status, 'FAIL');
      assert.equal(got.sync_retries_remaining, 2);
      assert.match(got.last_sync.message, /^Authentication failed/);
      const v = (await call('POST', '/organization/mirror-org/mirror/verify', admin)).body!;
      assert.equal(v.success, false);
      assert.equal((await call('PUT', '/organization/mirror-org/mirror', admin, { external_registry_password: SRC_ADMIN.password })).status, 200);
    });

    it('sync-cancel stops a discovery in flight (its claim is lost) and cancels the repositories asked to sync', async () => {
      assert.equal((await call('POST', '/organization/mirror-org/mirror/sync-now', admin)).status, 204);
      // A worker claims the discovery; the cancel takes the claim away from it.
      const schedule = new OrgMirrorScheduleStore(t.db.db, t.db.dialect);
      const [claim] = await schedule.claimDue('stalled-worker', Date.now(), 60_000, 10);
      assert.equal(claim?.record.organization, 'mirror-org');
      assert.equal(await schedule.holds(claim!.record.namespaceId, claim!.txn), true);
      await t.db.db.updateTable('repository_mirrors').set({ sync_status: 'SYNC_NOW' }).where('is_enabled', '=', 1).execute();
      assert.equal((await call('POST', '/organization/mirror-org/mirror/sync-cancel', admin)).status, 204);
      assert.equal(await schedule.holds(claim!.record.namespaceId, claim!.txn), false, 'the run checks this between repositories and stops');
      assert.equal(await schedule.release(claim!.record.namespaceId, claim!.txn, 'SUCCESS', 'late', Date.now()), false, 'its outcome is not recorded');
      assert.equal((await call('GET', '/organization/mirror-org/mirror', admin)).body!.sync_status, 'CANCEL');
      const statuses = await t.db.db.selectFrom('repository_mirrors').select(['sync_status']).where('is_enabled', '=', 1).execute();
      assert.ok(statuses.every((s) => s.sync_status === 'CANCEL'), JSON.stringify(statuses));
      assert.deepEqual(await discover(), [], 'a cancelled mirror is not due');
      assert.deepEqual(await syncRepos(), [], 'nor are its cancelled repositories');
    });

    it('pages through a source namespace of more than one page (Quay\'s next_page)', async () => {
      await src.accounts!.accounts.createOrganization({ name: 'bulk', creator: SRC_ADMIN.username });
      for (let i = 0; i < 105; i++) await src.registry.repositories.create(name(`bulk/many/r${String(i).padStart(3, '0')}`), { visibility: 'private' });
      await t.accounts!.accounts.createOrganization({ name: 'bulk-copy', creator: 'oadmin' });
      await t.accounts!.robots.create('bulk-copy', 'syncbot');
      const res = await call('POST', '/organization/bulk-copy/mirror', admin, body({ external_namespace: 'bulk', robot_username: 'bulk-copy+syncbot', repository_filters: ['many/r10?'] }));
      assert.equal(res.status, 201, res.raw);
      const [report] = await discover();
      assert.equal(report?.outcome, 'SUCCESS', report?.message);
      assert.match(report!.message, /^105 repositories at the source, 5 selected/);
      assert.deepEqual(report?.created, ['many/r100', 'many/r101', 'many/r102', 'many/r103', 'many/r104']);
    });
  });
}
