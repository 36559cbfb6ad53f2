/**
 * /api/v1 storage quotas on both dialects: Quay's paths, statuses and views under /organization,
 * /user and /superuser, who may do what, the 400s of bad sizes and limits, the 404s of ids that name
 * nothing, the registry size, and the usage the organization, user and repository views carry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiClient, type ApiResult } from '../../../test/helpers/api-client.js';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { digestOf } from '../../oci/digest.js';
import type { RepositoryName, Tag } from '../../oci/reference.js';
import type { ApiRoute } from './route.js';
import { API_ROUTES } from './routes.js';

const GiB = 1024 ** 3;
const ORG = '/organization/orga/quota';

function route(method: ApiRoute['method'], path: string): ApiRoute {
  const r = API_ROUTES.find((x) => x.method === method && x.path === path);
  assert.ok(r, `no route ${method} ${path}`);
  return r;
}

for (const dialect of DIALECTS) {
  describe(`/api/v1 storage quotas (${dialect})`, () => {
    let w: ApiWorld;
    const auth: Record<string, string> = {};
    before(async () => {
      w = await buildApiWorld(dialect);
      for (const [who, h] of Object.entries(w.auth)) if (h.authorization) auth[who] = h.authorization;
      auth.readonly = `Bearer ${(await w.t.accounts!.apiTokens.create('uma', { name: 'ro', scopes: ['user:read'] })).secret}`;
      auth.rootNoSuper = `Bearer ${(await w.t.accounts!.apiTokens.create('root', { name: 'ro', scopes: ['user:read', 'org:admin'] })).secret}`;
    });
    after(async () => w?.t.close());

    const { call, expectError } = apiClient(() => w.t.app);
    /** The reply parsed with the route's declared response schema. */
    const parsed = (method: ApiRoute['method'], path: string, res: ApiResult, status = route(method, path).status ?? 200): any => {
      assert.equal(res.status, status, res.raw);
      return route(method, path).response!.parse(JSON.parse(res.raw));
    };
    const refused = async (p: Promise<ApiResult>, status: number, re?: RegExp | string) => {
      const res = await p;
      await expectError(Promise.resolve(res), status);
      if (typeof re === 'string') assert.equal(res.body!.detail, re);
      else if (re) assert.match(res.body!.detail, re);
    };
    const created = async (p: Promise<ApiResult>) => {
      const res = await p;
      assert.equal(res.status, 201, res.raw);
      assert.equal(res.raw, '"Created"');
    };
    const orgQuota = async (org = 'orga') => (await call('GET', `/organization/${org}/quota`, auth.superuser)).body as unknown as Array<{ id: number; limits: Array<{ id: number; type: string; limit_percent: number }> }>;

    it('organization: superusers create, change and delete; the views are Quay\'s', async () => {
      await created(call('POST', ORG, auth.superuser, { limit_bytes: 10 * GiB }));
      const list = parsed('GET', '/organization/:orgname/quota', await call('GET', ORG, auth.member));
      assert.equal(list.length, 1);
      const id = list[0].id as number;
      assert.deepEqual(list, [{ id, limit_bytes: 10 * GiB, limit: '10.0 GiB', default_config: false, limits: [], default_config_exists: false }]);
      assert.deepEqual(parsed('GET', '/organization/:orgname/quota/:quota_id', await call('GET', `${ORG}/${id}`, auth.member)), list[0]);

      await refused(call('POST', ORG, auth.superuser, { limit: '1 GiB' }), 400, "Organization quota for 'orga' already exists");
      const put = parsed('PUT', '/organization/:orgname/quota/:quota_id', await call('PUT', `${ORG}/${id}`, auth.superuser, { limit: '1.5 GiB' }));
      assert.deepEqual(put, { id, limit_bytes: 1.5 * GiB, limit: '1.5 GiB', default_config: false, limits: [], default_config_exists: false });
      assert.deepEqual(parsed('PUT', '/organization/:orgname/quota/:quota_id', await call('PUT', `${ORG}/${id}`, auth.superuser, {})), put);

      const del = await call('DELETE', `${ORG}/${id}`, auth.superuser);
      assert.equal(del.status, 204, del.raw);
      assert.equal(del.raw, '');
      assert.deepEqual(parsed('GET', '/organization/:orgname/quota', await call('GET', ORG, auth.member)), []);
      await refused(call('GET', `${ORG}/${id}`, auth.member), 404, /quota \d+ not found/);
      await refused(call('DELETE', `${ORG}/${id}`, auth.superuser), 404);
      await created(call('POST', ORG, auth.superuser, { limit: '10 GiB' }));
    });

    it('organization limits: add, list, show, change (answers with the quota) and delete', async () => {
      const [q] = await orgQuota();
      const base = `${ORG}/${q!.id}/limit`;
      await created(call('POST', base, auth.superuser, { type: 'warning', threshold_percent: 80 }));
      await created(call('POST', base, auth.superuser, { type: 'Reject', threshold_percent: 100 }));
      const limits = parsed('GET', '/organization/:orgname/quota/:quota_id/limit', await call('GET', base, auth.member));
      assert.deepEqual(
        limits.map((l: { type: string; limit_percent: number }) => [l.type, l.limit_percent]),
        [['Warning', 80], ['Reject', 100]],
      );
      const warn = limits[0];
      assert.deepEqual(parsed('GET', '/organization/:orgname/quota/:quota_id/limit/:limit_id', await call('GET', `${base}/${warn.id}`, auth.member)), warn);

      const put = parsed('PUT', '/organization/:orgname/quota/:quota_id/limit/:limit_id', await call('PUT', `${base}/${warn.id}`, auth.superuser, { threshold_percent: 90 }));
      assert.equal(put.id, q!.id);
      assert.equal(put.limit, '10.0 GiB');
      assert.deepEqual(put.limits, [{ id: warn.id, type: 'Warning', limit_percent: 90 }, limits[1]]);
      assert.deepEqual(parsed('GET', '/organization/:orgname/quota/:quota_id', await call('GET', `${ORG}/${q!.id}`, auth.member)).limits, put.limits);

      await refused(call('POST', base, auth.superuser, { type: 'WARNING', threshold_percent: 90 }), 400, 'Quota limit already exists');
      await refused(call('PUT', `${base}/${warn.id}`, auth.superuser, { type: 'Reject', threshold_percent: 100 }), 400, 'Quota limit already exists');

      const del = await call('DELETE', `${base}/${warn.id}`, auth.superuser);
      assert.equal(del.status, 204, del.raw);
      await refused(call('GET', `${base}/${warn.id}`, auth.member), 404, /quota limit \d+ not found/);
      await refused(call('PUT', `${base}/${warn.id}`, auth.superuser, { threshold_percent: 5 }), 404);
      await refused(call('DELETE', `${base}/${warn.id}`, auth.superuser), 404);
    });

    it('only superusers change quotas; members read; outsiders get 404, anonymous callers 401, robots 403', async () => {
      const [q] = await orgQuota();
      const one = `${ORG}/${q!.id}`;
      const lim = `${one}/limit/${q!.limits[0]!.id}`;
      const writes: Array<[string, string, object?]> = [
        ['POST', ORG, { limit_bytes: 5 }],
        ['PUT', one, { limit_bytes: 5 }],
        ['DELETE', one],
        ['POST', `${one}/limit`, { type: 'Warning', threshold_percent: 10 }],
        ['PUT', lim, { threshold_percent: 10 }],
        ['DELETE', lim],
      ];
      for (const [method, url, body] of writes) {
        await refused(call(method, url, auth.member, body), 403, /superuser/);
        await refused(call(method, url, auth.orgadmin, body), 403, /superuser/);
        // A superuser's token without super:user is an outsider's.
        await refused(call(method, url, auth.rootNoSuper, body), 404);
        await refused(call(method, url, auth.robot, body), 403);
        await refused(call(method, url, auth.user, body), 404, /organization orga not found/);
        await refused(call(method, url, undefined, body), 401);
      }
      for (const url of [ORG, one, `${one}/limit`, lim]) {
        assert.equal((await call('GET', url, auth.member)).status, 200);
        assert.equal((await call('GET', url, auth.orgadmin)).status, 200);
        await refused(call('GET', url, auth.user), 404);
        await refused(call('GET', url), 401);
        await refused(call('GET', url, auth.robot), 403);
      }
      await refused(call('GET', '/organization/nosuch/quota', auth.superuser), 404);
      // A user namespace is no organization; superusers see organizations they are not in.
      await refused(call('GET', '/organization/uma/quota', auth.superuser), 404);
      assert.deepEqual((await call('GET', '/organization/orgb/quota', auth.superuser)).body, []);
      assert.equal((await orgQuota())[0]!.id, q!.id, 'nothing changed');
    });

    it('bad sizes, types and thresholds get 400; ids that name nothing get 404', async () => {
      const [q] = await orgQuota();
      const sizes: Array<[object, RegExp | string]> = [
        [{ limit_bytes: 0 }, "Invalid quota size limit value: '0'"],
        [{ limit_bytes: -1 }, "Invalid quota size limit value: '-1'"],
        [{ limit_bytes: 2.5 }, "Invalid quota size limit value: '2.5'"],
        [{ limit_bytes: 2 ** 53 }, /^Unsupported quota size limit\./],
        [{ limit_bytes: 'abc' }, /limit_bytes/],
        [{ limit: '10 XB' }, /Invalid quota size limit value: '10 XB'/],
        [{ limit: 'lots' }, /Invalid quota size limit value: 'lots'/],
        [{ limit: '0 MiB' }, "Invalid quota size limit value: '0 MiB'"],
        [{ limit: '2 EiB' }, /^Unsupported quota size limit\./],
        [{ limit: 5 }, /limit/],
        [{}, /give limit_bytes/],
      ];
      for (const [body, re] of sizes) await refused(call('POST', '/organization/orgb/quota', auth.superuser, body), 400, re);
      for (const [body, re] of sizes.filter(([b]) => Object.keys(b).length)) await refused(call('PUT', `${ORG}/${q!.id}`, auth.superuser, body), 400, re);
      assert.deepEqual((await call('GET', '/organization/orgb/quota', auth.superuser)).body, []);

      const limits: Array<[object, RegExp | string]> = [
        [{ type: 'Warning', threshold_percent: 0 }, 'Quota limit threshold must be between 1 and 100'],
        [{ type: 'Warning', threshold_percent: 101 }, 'Quota limit threshold must be between 1 and 100'],
        [{ type: 'Warning', threshold_percent: 12.5 }, 'Quota limit threshold must be between 1 and 100'],
        [{ type: 'Warning' }, 'Quota limit threshold must be between 1 and 100'],
        [{ type: 'Warning', threshold_percent: 'x' }, /threshold_percent/],
        [{ type: 'Info', threshold_percent: 50 }, 'Quota type must be one of [Warning, Reject]'],
        [{ threshold_percent: 50 }, 'Quota type must be one of [Warning, Reject]'],
      ];
      for (const [body, re] of limits) await refused(call('POST', `${ORG}/${q!.id}/limit`, auth.superuser, body), 400, re);
      const lim = `${ORG}/${q!.id}/limit/${q!.limits[0]!.id}`;
      for (const [body, re] of limits.filter(([b]) => 'threshold_percent' in b && 'type' in b)) await refused(call('PUT', lim, auth.superuser, body), 400, re);

      for (const id of ['99999', 'abc', '-1', '1.5', '0']) {
        await refused(call('GET', `${ORG}/${id}`, auth.member), 404);
        await refused(call('PUT', `${ORG}/${id}`, auth.superuser, { limit_bytes: 5 }), 404);
        await refused(call('GET', `${ORG}/${q!.id}/limit/${id}`, auth.member), 404);
        await refused(call('DELETE', `${ORG}/${q!.id}/limit/${id}`, auth.superuser), 404);
      }
      // orga's quota and limits are not orgb's.
      await call('POST', '/organization/orgb/quota', auth.superuser, { limit_bytes: GiB });
      const [qb] = await orgQuota('orgb');
      await refused(call('GET', `/organization/orgb/quota/${q!.id}`, auth.superuser), 404);
      await refused(call('GET', `${ORG}/${qb!.id}`, auth.superuser), 404);
      await refused(call('GET', `/organization/orgb/quota/${qb!.id}/limit/${q!.limits[0]!.id}`, auth.superuser), 404);
      await refused(call('DELETE', `/organization/orgb/quota/${qb!.id}/limit/${q!.limits[0]!.id}`, auth.superuser), 404);
      assert.equal((await call('DELETE', `/organization/orgb/quota/${qb!.id}`, auth.superuser)).status, 204);
    });

    it("superuser routes: any namespace's quota by /superuser/organization or /superuser/users", async () => {
      await created(call('POST', '/superuser/users/uma/quota', auth.superuser, { limit: '2 GiB' }));
      const [q] = parsed('GET', '/superuser/users/:namespace/quota', await call('GET', '/superuser/users/uma/quota', auth.superuser));
      assert.deepEqual(q, { id: q.id, limit_bytes: 2 * GiB, limit: '2.0 GiB', default_config: false, limits: [], default_config_exists: false });
      const put = parsed('PUT', '/superuser/users/:namespace/quota/:quota_id', await call('PUT', `/superuser/users/uma/quota/${q.id}`, auth.superuser, { limit_bytes: 3 * GiB }));
      assert.equal(put.limit, '3.0 GiB');
      await refused(call('PUT', `/superuser/users/member/quota/${q.id}`, auth.superuser, { limit_bytes: 1 }), 404);

      await created(call('POST', '/superuser/organization/orgb/quota', auth.superuser, { limit_bytes: GiB }));
      const [qb] = parsed('GET', '/superuser/organization/:namespace/quota', await call('GET', '/superuser/organization/orgb/quota', auth.superuser));
      assert.equal(qb.limit_bytes, GiB);
      assert.deepEqual((await call('GET', '/organization/orgb/quota', auth.superuser)).body, [qb]);
      await refused(call('POST', '/superuser/organization/orgb/quota', auth.superuser, { limit_bytes: GiB }), 400, "Organization quota for 'orgb' already exists");
      assert.equal((await call('PUT', `/superuser/organization/orgb/quota/${qb.id}`, auth.superuser, { limit: '4G' })).body!.limit_bytes, 4 * GiB);
      assert.equal((await call('DELETE', `/superuser/organization/orgb/quota/${qb.id}`, auth.superuser)).status, 204);
      assert.deepEqual((await call('GET', '/superuser/organization/orgb/quota', auth.superuser)).body, []);

      for (const [method, url] of [
        ['GET', '/superuser/users/uma/quota'],
        ['POST', '/superuser/organization/orgb/quota'],
        ['PUT', `/superuser/users/uma/quota/${q.id}`],
        ['DELETE', `/superuser/users/uma/quota/${q.id}`],
      ] as const) {
        await refused(call(method, url, auth.orgadmin, { limit_bytes: 1 }), 403);
        await refused(call(method, url, auth.user, { limit_bytes: 1 }), 403);
        await refused(call(method, url, undefined, { limit_bytes: 1 }), 401);
      }
      await refused(call('GET', '/superuser/users/nosuch/quota', auth.superuser), 404, /namespace nosuch not found/);
      await refused(call('POST', '/superuser/organization/nosuch/quota', auth.superuser, { limit_bytes: 1 }), 404);
    });

    it("user: the caller's own quota, read only", async () => {
      const [q] = (await call('GET', '/superuser/users/uma/quota', auth.superuser)).body as unknown as Array<{ id: number }>;
      // Quay has no route for the limits of a user's quota: add one through the service.
      await w.t.registry.quota.addLimit('uma', q!.id, { type: 'Reject', thresholdPercent: 100 }, { actor: { kind: 'system' } });
      const list = parsed('GET', '/user/quota', await call('GET', '/user/quota', auth.readonly));
      assert.equal(list.length, 1);
      assert.equal(list[0].limit, '3.0 GiB');
      assert.deepEqual(parsed('GET', '/user/quota/:quota_id', await call('GET', `/user/quota/${q!.id}`, auth.user)), list[0]);
      const [limit] = parsed('GET', '/user/quota/:quota_id/limit', await call('GET', `/user/quota/${q!.id}/limit`, auth.user)) as Array<{ id: number }>;
      assert.deepEqual(limit, { id: limit!.id, type: 'Reject', limit_percent: 100 });
      assert.deepEqual(parsed('GET', '/user/quota/:quota_id/limit/:limit_id', await call('GET', `/user/quota/${q!.id}/limit/${limit!.id}`, auth.user)), limit);

      assert.deepEqual((await call('GET', '/user/quota', auth.member)).body, []);
      await refused(call('GET', `/user/quota/${q!.id}`, auth.member), 404);
      await refused(call('GET', `/user/quota/${q!.id}/limit/${limit!.id}`, auth.member), 404);
      await refused(call('GET', '/user/quota'), 401);
      await refused(call('GET', '/user/quota', auth.robot), 403);
      await refused(call('POST', '/user/quota', auth.user, { limit_bytes: 1 }), 404);
      await refused(call('PUT', `/user/quota/${q!.id}`, auth.user, { limit_bytes: 1 }), 404);
      await refused(call('DELETE', `/user/quota/${q!.id}`, auth.user), 404);
    });

    it('registry size: superusers; each blob once; POST computes it now (201)', async () => {
      const repo = await w.t.registry.repositories.get('orga/pub' as RepositoryName);
      const blobs = [Buffer.from('{"os":"linux"}'), Buffer.from('a layer of 31 bytes, give or ta'), Buffer.from('another layer')];
      for (const b of blobs) await w.t.registry.uploads.monolithic(repo, digestOf(b), (async function* () { yield b; })(), b.length);
      const [config, ...layers] = blobs.map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(b), size: b.length }));
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { ...config!, mediaType: 'application/vnd.oci.image.config.v1+json' }, layers }));
      await w.t.registry.manifests.put(repo, { kind: 'tag', tag: 'img' as Tag }, manifest, 'application/vnd.oci.image.manifest.v1+json');
      const total = blobs.reduce((n, b) => n + b.length, 0);

      const got = parsed('GET', '/superuser/registrysize/', await call('GET', '/superuser/registrysize/', auth.superuser));
      assert.equal(got.size_bytes, total);
      assert.equal(got.queued, false);
      assert.equal(got.running, false);
      assert.ok(Math.abs(got.last_ran - Date.now()) < 60_000);
      const posted = parsed('POST', '/superuser/registrysize/', await call('POST', '/superuser/registrysize/', auth.superuser));
      assert.equal(posted.size_bytes, total);
      await refused(call('GET', '/superuser/registrysize/', auth.orgadmin), 403);
      await refused(call('POST', '/superuser/registrysize/', auth.member), 403);
      await refused(call('GET', '/superuser/registrysize/'), 401);
    });

    it('organization, user and repository views carry the usage', async () => {
      const [q] = await orgQuota();
      const size = Number((await w.t.db.db.selectFrom('blobs').select((eb) => eb.fn.sum<number>('size').as('s')).executeTakeFirstOrThrow()).s);
      assert.ok(size > 0);

      for (const who of ['member', 'orgadmin', 'superuser'] as const) {
        const org = parsed('GET', '/organization/:orgname', await call('GET', '/organization/orga', auth[who]));
        assert.deepEqual(org.quotas, [{ id: q!.id, limit_bytes: 10 * GiB, limits: q!.limits }]);
        assert.deepEqual(org.quota_report, { quota_bytes: size, configured_quota: 10 * GiB, running_backfill: 'complete', backfill_status: 'complete' });
      }
      const orgb = parsed('GET', '/organization/:orgname', await call('GET', '/organization/orgb', auth.superuser));
      assert.deepEqual([orgb.quotas, orgb.quota_report], [[], { quota_bytes: 0, configured_quota: null, running_backfill: 'complete', backfill_status: 'complete' }]);

      const me = parsed('GET', '/user/', await call('GET', '/user/', auth.user));
      assert.equal(me.quotas.length, 1);
      assert.deepEqual(me.quota_report, { quota_bytes: 0, configured_quota: 3 * GiB, running_backfill: 'complete', backfill_status: 'complete' });
      assert.deepEqual(parsed('GET', '/user/', await call('GET', '/user/', auth.member)).quotas, []);

      const repo = parsed('GET', '/repository/:repository+', await call('GET', '/repository/orga/pub', auth.member));
      assert.deepEqual(repo.quota_report, { quota_bytes: size, configured_quota: 10 * GiB });
      const anon = parsed('GET', '/repository/:repository+', await call('GET', '/repository/orgb/pub'));
      assert.deepEqual(anon.quota_report, { quota_bytes: 0, configured_quota: null });

      const list = parsed('GET', '/repository', await call('GET', '/repository?namespace=orga', auth.member));
      assert.deepEqual(
        Object.fromEntries(list.repositories.map((r: { name: string; quota_report: unknown }) => [r.name, r.quota_report])),
        { priv: { quota_bytes: 0, configured_quota: 10 * GiB }, pub: { quota_bytes: size, configured_quota: 10 * GiB } },
      );
      const everything = parsed('GET', '/repository', await call('GET', '/repository?public=true&limit=3', auth.superuser));
      assert.equal(everything.repositories.length, 3);
      assert.ok(everything.repositories.every((r: { quota_report?: unknown }) => r.quota_report));
    });

    it("records Quay's audit kinds with the caller", async () => {
      const { entries } = await w.t.registry.audit!.query({ namespace: 'orga', kinds: ['org_create_quota', 'org_change_quota', 'org_delete_quota', 'org_create_quota_limit', 'org_change_quota_limit', 'org_delete_quota_limit'] });
      assert.deepEqual(new Set(entries.map((e) => e.kind)), new Set(['org_create_quota', 'org_change_quota', 'org_delete_quota', 'org_create_quota_limit', 'org_change_quota_limit', 'org_delete_quota_limit']));
      assert.ok(entries.every((e) => e.actor.name === 'root' && e.metadata?.namespace === 'orga'));
      const change = entries.find((e) => e.kind === 'org_change_quota')!;
      assert.deepEqual(change.metadata, { namespace: 'orga', quota_id: change.metadata!.quota_id, limit_bytes: 1.5 * GiB, limit: '1.5 GiB', previous_limit_bytes: 10 * GiB, previous_limit: '10.0 GiB' });
    });
  });
}
