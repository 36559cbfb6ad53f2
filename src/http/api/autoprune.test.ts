/**
 * /api/v1/{organization/{org},repository/{ns}/{repo},user}/autoprunepolicy/ on both dialects: Quay's
 * shapes and statuses, who may do what, the 400s of bad policies, and the audit entries of changes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiClient, type ApiResult } from '../../../test/helpers/api-client.js';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { AutopruneStore } from '../../db/autoprune-store.js';
import type { ApiRoute } from './route.js';
import { API_ROUTES } from './routes.js';

const ORG = '/organization/orga/autoprunepolicy/';
const REPO = '/repository/orga/priv/autoprunepolicy/';
const USER = '/user/autoprunepolicy/';

function route(method: ApiRoute['method'], path: string): ApiRoute {
  const r = API_ROUTES.find((x) => x.method === method && x.path === path);
  assert.ok(r, `no route ${method} ${path}`);
  return r;
}

for (const dialect of DIALECTS) {
  describe(`/api/v1 auto-prune policies (${dialect})`, () => {
    let w: ApiWorld;
    const auth: Record<string, string> = {};
    before(async () => {
      w = await buildApiWorld(dialect);
      for (const [who, h] of Object.entries(w.auth)) if (h.authorization) auth[who] = h.authorization;
      auth.readonly = `Bearer ${(await w.t.accounts!.apiTokens.create('uma', { name: 'ro', scopes: ['user:read'] })).secret}`;
    });
    after(async () => w?.t.close());

    const { call, expectError } = apiClient(() => w.t.app);
    const parsed = (method: ApiRoute['method'], path: string, res: ApiResult) => route(method, path).response!.parse(JSON.parse(res.raw)) as Record<string, any>;
    const refused = async (p: Promise<ApiResult>, status: number, re?: RegExp) => {
      const res = await p;
      await expectError(Promise.resolve(res), status);
      if (re) assert.match(res.body!.detail, re);
    };

    it('organization: create, list, show, replace and delete, with Quay statuses and views', async () => {
      const created = await call('POST', ORG, auth.orgadmin, { method: 'number_of_tags', value: 10 });
      assert.equal(created.status, 201, created.raw);
      const { uuid } = parsed('POST', '/organization/:orgname/autoprunepolicy/', created);
      assert.match(uuid, /^[0-9a-f-]{36}$/);

      const second = await call('POST', ORG, auth.orgadmin, { method: 'creation_date', value: '2w', tagPattern: ' ^dev- ', tagPatternMatches: false });
      assert.equal(second.status, 201, second.raw);

      const list = await call('GET', ORG, auth.orgadmin);
      assert.equal(list.status, 200, list.raw);
      assert.deepEqual(parsed('GET', '/organization/:orgname/autoprunepolicy/', list).policies, [
        { uuid, method: 'number_of_tags', value: 10, tagPattern: null, tagPatternMatches: true },
        { uuid: second.body!.uuid, method: 'creation_date', value: '2w', tagPattern: '^dev-', tagPatternMatches: false },
      ]);

      const one = await call('GET', `${ORG}${uuid}`, auth.orgadmin);
      assert.deepEqual(parsed('GET', '/organization/:orgname/autoprunepolicy/:policy_uuid', one), { uuid, method: 'number_of_tags', value: 10, tagPattern: null, tagPatternMatches: true });

      const put = await call('PUT', `${ORG}${uuid}`, auth.orgadmin, { method: 'creation_date', value: '30d', tag_pattern: 'nightly' });
      assert.equal(put.status, 204, put.raw);
      assert.equal(put.raw, '');
      const after = await call('GET', `${ORG}${uuid}`, auth.orgadmin);
      assert.deepEqual(after.body, { uuid, method: 'creation_date', value: '30d', tagPattern: 'nightly', tagPatternMatches: true });

      const del = await call('DELETE', `${ORG}${uuid}`, auth.orgadmin);
      assert.equal(del.status, 200, del.raw);
      assert.deepEqual(parsed('DELETE', '/organization/:orgname/autoprunepolicy/:policy_uuid', del), { uuid });
      await refused(call('GET', `${ORG}${uuid}`, auth.orgadmin), 404, /not found/);
      await refused(call('PUT', `${ORG}${uuid}`, auth.orgadmin, { method: 'number_of_tags', value: 1 }), 404);
      await refused(call('DELETE', `${ORG}${uuid}`, auth.orgadmin), 404);
      assert.equal((await call('GET', ORG, auth.orgadmin)).body!.policies.length, 1);
    });

    it('creating a policy queues the namespace for the worker', async () => {
      const store = new AutopruneStore(w.t.db.db, w.t.db.dialect);
      const orgb = (await w.t.accounts!.accounts.getOrganization('orgb'))!;
      assert.equal(await store.task(orgb.id), undefined);
      assert.equal((await call('POST', '/organization/orgb/autoprunepolicy/', auth.superuser, { method: 'number_of_tags', value: 3 })).status, 201);
      assert.deepEqual(await store.task(orgb.id), { lastRanMs: null, status: 'queued' });
    });

    it('organization: admins and superusers only', async () => {
      const body = { method: 'number_of_tags', value: 99 };
      await refused(call('GET', ORG), 401);
      await refused(call('POST', ORG, undefined, body), 401);
      await refused(call('GET', ORG, auth.member), 403);
      await refused(call('POST', ORG, auth.member, body), 403);
      await refused(call('POST', ORG, auth.robot, body), 403);
      await refused(call('GET', ORG, auth.user), 404);
      await refused(call('POST', ORG, auth.user, body), 404);
      await refused(call('GET', '/organization/orgb/autoprunepolicy/', auth.orgadmin), 404);
      await refused(call('GET', '/organization/nosuch/autoprunepolicy/', auth.superuser), 404);
      // A user namespace is no organization.
      await refused(call('GET', '/organization/uma/autoprunepolicy/', auth.superuser), 404);
      const asRoot = await call('POST', ORG, auth.superuser, body);
      assert.equal(asRoot.status, 201, asRoot.raw);
      assert.equal((await call('DELETE', `${ORG}${asRoot.body!.uuid}`, auth.superuser)).status, 200);
    });

    it('repository: repository admins (organization admins, superusers); writers and readers cannot', async () => {
      const body = { method: 'number_of_tags', value: 5, tagPattern: '^v' };
      const created = await call('POST', REPO, auth.orgadmin, body);
      assert.equal(created.status, 201, created.raw);
      const list = await call('GET', REPO, auth.orgadmin);
      assert.deepEqual(parsed('GET', '/repository/:repository+/autoprunepolicy/', list).policies, [
        { uuid: created.body!.uuid, method: 'number_of_tags', value: 5, tagPattern: '^v', tagPatternMatches: true },
      ]);
      // Repository policies are not the namespace's.
      assert.ok(!(await call('GET', ORG, auth.orgadmin)).body!.policies.some((p: { uuid: string }) => p.uuid === created.body!.uuid));
      await refused(call('GET', `${ORG}${created.body!.uuid}`, auth.orgadmin), 404);
      await refused(call('GET', `/repository/orga/pub/autoprunepolicy/${created.body!.uuid}`, auth.orgadmin), 404);

      await refused(call('GET', REPO, auth.member), 403);
      await refused(call('POST', REPO, auth.member, body), 403);
      await refused(call('POST', REPO, auth.robot, body), 403);
      await refused(call('GET', REPO, auth.user), 404);
      await refused(call('GET', REPO), 401);
      await refused(call('GET', '/repository/orga/nosuch/autoprunepolicy/', auth.orgadmin), 404);
      await refused(call('GET', '/repository/orgb/pub/autoprunepolicy/', auth.user), 403);

      const put = await call('PUT', `${REPO}${created.body!.uuid}`, auth.superuser, { method: 'number_of_tags', value: 6 });
      assert.equal(put.status, 204, put.raw);
      assert.equal((await call('GET', `${REPO}${created.body!.uuid}`, auth.orgadmin)).body!.value, 6);
      assert.equal((await call('DELETE', `${REPO}${created.body!.uuid}`, auth.orgadmin)).status, 200);
    });

    it("user: the caller's own namespace; writes need user:admin", async () => {
      const created = await call('POST', USER, auth.user, { method: 'creation_date', value: '7d' });
      assert.equal(created.status, 201, created.raw);
      const list = await call('GET', USER, auth.user);
      assert.deepEqual(parsed('GET', '/user/autoprunepolicy/', list).policies, [{ uuid: created.body!.uuid, method: 'creation_date', value: '7d', tagPattern: null, tagPatternMatches: true }]);
      assert.deepEqual((await call('GET', USER, auth.member)).body!.policies, []);
      await refused(call('GET', `${USER}${created.body!.uuid}`, auth.member), 404);
      assert.equal((await call('GET', USER, auth.readonly)).status, 200);
      await refused(call('POST', USER, auth.readonly, { method: 'number_of_tags', value: 1 }), 403);
      await refused(call('GET', USER), 401);
      await refused(call('GET', USER, auth.robot), 403);
      assert.equal((await call('PUT', `${USER}${created.body!.uuid}`, auth.user, { method: 'creation_date', value: '1y' })).status, 204);
      assert.equal((await call('GET', `${USER}${created.body!.uuid}`, auth.user)).body!.value, '1y');
      assert.equal((await call('DELETE', `${USER}${created.body!.uuid}`, auth.user)).status, 200);
    });

    it('bad policies get a clear 400', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [{ method: 'keep_some', value: 1 }, /Invalid method provided/],
        [{ value: 1 }, /method is required/],
        [{ method: 'number_of_tags', value: 0 }, /Invalid value given for method type number_of_tags/],
        [{ method: 'number_of_tags', value: -1 }, /Invalid value given for method type number_of_tags/],
        [{ method: 'number_of_tags', value: '10x' }, /got "10x"/],
        [{ method: 'number_of_tags' }, /Invalid value given/],
        [{ method: 'creation_date', value: '10x' }, /Invalid value given for method type creation_date/],
        [{ method: 'creation_date', value: 30 }, /with a unit/],
        [{ method: 'creation_date', value: '0d' }, /creation_date/],
        [{ method: 'number_of_tags', value: 2, tagPattern: '' }, /tag_pattern cannot be empty/],
        [{ method: 'number_of_tags', value: 2, tagPattern: '[a-' }, /tag_pattern is not a valid regular expression/],
        [{ method: 'number_of_tags', value: 2, tagPattern: 5 }, /tagPattern/],
        [{ method: 'number_of_tags', value: 2, tagPattern: 'a', tag_pattern: 'b' }, /give tag_pattern once/],
        [{ method: 'number_of_tags', value: 2, tagPatternMatches: 'no' }, /tagPatternMatches/],
      ];
      for (const [body, re] of cases) {
        await refused(call('POST', ORG, auth.orgadmin, body), 400, re);
        await refused(call('POST', REPO, auth.orgadmin, body), 400, re);
      }
      const ok = await call('POST', USER, auth.member, { method: 'number_of_tags', value: 4, tagPattern: 'x' });
      assert.equal(ok.status, 201);
      await refused(call('PUT', `${USER}${ok.body!.uuid}`, auth.member, { method: 'number_of_tags', value: '10x' }), 400, /got "10x"/);
      // An exact duplicate in the same scope (also via PUT); the same policy elsewhere is fine.
      await refused(call('POST', USER, auth.member, { method: 'number_of_tags', value: '4', tagPattern: ' x' }), 400, /duplicate policies are not permitted/);
      const other = await call('POST', USER, auth.member, { method: 'number_of_tags', value: 4, tagPattern: 'x', tagPatternMatches: false });
      assert.equal(other.status, 201);
      await refused(call('PUT', `${USER}${other.body!.uuid}`, auth.member, { method: 'number_of_tags', value: 4, tagPattern: 'x' }), 400, /duplicate/);
      assert.equal((await call('POST', REPO, auth.orgadmin, { method: 'number_of_tags', value: 4, tagPattern: 'x' })).status, 201);
    });

    it("records Quay's audit kinds for policy changes", async () => {
      const created = await call('POST', '/repository/orga/pub/autoprunepolicy/', auth.orgadmin, { method: 'creation_date', value: '3d', tagPattern: 'tmp' });
      const uuid = created.body!.uuid as string;
      await call('PUT', `/repository/orga/pub/autoprunepolicy/${uuid}`, auth.orgadmin, { method: 'creation_date', value: '4d' });
      await call('DELETE', `/repository/orga/pub/autoprunepolicy/${uuid}`, auth.orgadmin);
      const { entries } = await w.t.registry.audit!.query({ namespace: 'orga', repository: 'pub', kinds: ['create_repository_autoprune_policy', 'update_repository_autoprune_policy', 'delete_repository_autoprune_policy'] });
      const byKind = Object.fromEntries(entries.map((e) => [e.kind, e]));
      assert.deepEqual(byKind.create_repository_autoprune_policy!.metadata, { method: 'creation_date', value: '3d', tag_pattern: 'tmp', tag_pattern_matches: true, policy_uuid: uuid, namespace: 'orga', repo: 'pub' });
      assert.equal(byKind.create_repository_autoprune_policy!.actor.name, 'oadmin');
      assert.deepEqual(byKind.update_repository_autoprune_policy!.metadata, { method: 'creation_date', value: '4d', tag_pattern: null, tag_pattern_matches: true, policy_uuid: uuid, namespace: 'orga', repo: 'pub' });
      assert.deepEqual(byKind.delete_repository_autoprune_policy!.metadata, { policy_uuid: uuid, namespace: 'orga', repo: 'pub' });

      const ns = await w.t.registry.audit!.query({ namespace: 'orga', kinds: ['create_namespace_autoprune_policy', 'update_namespace_autoprune_policy', 'delete_namespace_autoprune_policy'] });
      assert.deepEqual(new Set(ns.entries.map((e) => e.kind)), new Set(['create_namespace_autoprune_policy', 'update_namespace_autoprune_policy', 'delete_namespace_autoprune_policy']));
      assert.ok(ns.entries.every((e) => e.repository === null && e.metadata?.namespace === 'orga'));
    });
  });
}
