import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

for (const dialect of DIALECTS) {
  describe(`/api/v1 repositories (${dialect})`, () => {
    let w: ApiWorld;
    before(async () => {
      w = await buildApiWorld(dialect);
    });
    after(async () => w.t.close());

    const api = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, who: keyof ApiWorld['auth'], payload?: unknown) =>
      w.t.app.inject({ method, url: `/api/v1${url}`, headers: w.auth[who], ...(payload === undefined ? {} : { payload: payload as object }) });
    const lastAudit = async (kind: string) => (await w.t.accounts!.audit.query({ kinds: [kind], limit: 1 })).entries[0];

    it('creates a repository (201), audited, with the creator made admin and org defaults applied', async () => {
      await w.t.accounts!.grants.setDefaultPermission('orga', { kind: 'user', name: 'target' }, 'read');
      const res = await api('POST', '/repository', 'orgadmin', { namespace: 'orga', repository: 'team/app', visibility: 'private', description: 'the app' });
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(res.json(), { namespace: 'orga', name: 'team/app', kind: 'image' });
      const entry = await lastAudit('create_repo');
      assert.equal(entry?.namespace, 'orga');
      assert.equal(entry?.repository, 'team/app');
      assert.equal(entry?.actor.name, 'oadmin');
      const perms = await api('GET', '/repository/orga/team%2Fapp/permissions/user/', 'orgadmin');
      assert.equal(perms.statusCode, 200, perms.body);
      assert.deepEqual(perms.json().permissions.target, { role: 'read', name: 'target', is_robot: false });
      assert.equal((await api('POST', '/repository', 'orgadmin', { namespace: 'orga', repository: 'team/app', visibility: 'private' })).statusCode, 409);
    });

    it('refuses bad input (400), anonymous (401), no right to create (403), unknown namespace for a superuser (404)', async () => {
      for (const body of [{}, { namespace: 'orga', repository: 'Bad', visibility: 'private' }, { namespace: 'orga', repository: 'x', visibility: 'secret' }, { namespace: 'orga', repository: 'x', visibility: 'public', repo_kind: 'application' }]) {
        const res = await api('POST', '/repository', 'orgadmin', body);
        assert.equal(res.statusCode, 400, JSON.stringify(body));
        assert.equal(res.json().error_type, 'invalid_request');
      }
      assert.equal((await api('POST', '/repository', 'anonymous', { namespace: 'orga', repository: 'x', visibility: 'public' })).statusCode, 401);
      assert.equal((await api('POST', '/repository', 'member', { namespace: 'orga', repository: 'x', visibility: 'public' })).statusCode, 403);
      assert.equal((await api('POST', '/repository', 'robot', { namespace: 'orga', repository: 'x', visibility: 'public' })).statusCode, 403);
      assert.equal((await api('POST', '/repository', 'superuser', { namespace: 'nowhere', repository: 'x', visibility: 'public' })).statusCode, 404);
      assert.equal((await api('POST', '/repository', 'user', { namespace: 'uma', repository: 'mine', visibility: 'private' })).statusCode, 201);
    });

    it('gets a repository, multi-component names included, with the caller\'s rights and tag count', async () => {
      let res = await api('GET', '/repository/orga/priv', 'member');
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { namespace: 'orga', name: 'priv', kind: 'image', description: null, is_public: false, is_organization: true, state: 'NORMAL', can_write: true, can_admin: false, is_starred: false, tag_count: 1, quota_report: { quota_bytes: 0, configured_quota: null } });
      res = await api('GET', '/repository/orga/team/app', 'orgadmin');
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().name, 'team/app');
      assert.equal(res.json().description, 'the app');
      assert.equal((await api('GET', '/repository/orga/team%2Fapp', 'orgadmin')).json().name, 'team/app');
      assert.equal((await api('GET', '/repository/orga/Bad', 'orgadmin')).statusCode, 400);
      assert.equal((await api('GET', '/repository/orga/priv', 'anonymous')).statusCode, 401);
      assert.equal((await api('GET', '/repository/orga/priv', 'user')).statusCode, 404);
      assert.equal((await api('GET', '/repository/orga/nothing', 'user')).statusCode, 404);
    });

    it('lists what the caller can read, paged by an opaque cursor', async () => {
      const names = async (who: keyof ApiWorld['auth'], query: string) => {
        const res = await api('GET', `/repository?${query}`, who);
        assert.equal(res.statusCode, 200, res.body);
        return (res.json().repositories as Array<{ namespace: string; name: string }>).map((r) => `${r.namespace}/${r.name}`);
      };
      assert.deepEqual(await names('member', ''), ['orga/priv', 'orga/pub']);
      assert.deepEqual(await names('member', 'public=true'), ['orga/priv', 'orga/pub', 'orgb/pub']);
      assert.deepEqual(await names('member', 'namespace=orgb'), ['orgb/pub']);
      assert.deepEqual(await names('anonymous', ''), ['orga/pub', 'orgb/pub']);
      assert.deepEqual(await names('robot', 'namespace=orga'), ['orga/priv', 'orga/pub']);
      const all = await names('superuser', '');
      assert.ok(all.includes('orgb/priv') && all.includes('orga/team/app'), all.join());
      // Paging: one at a time through everything the superuser sees.
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const res = await api('GET', `/repository?limit=1${cursor ? `&next_page=${encodeURIComponent(cursor)}` : ''}`, 'superuser');
        const body = res.json() as { repositories: Array<{ namespace: string; name: string; is_public: boolean; state: string; kind: string }>; next_page?: string };
        assert.ok(body.repositories.length <= 1);
        seen.push(...body.repositories.map((r) => `${r.namespace}/${r.name}`));
        cursor = body.next_page;
      } while (cursor);
      assert.deepEqual(seen, all);
      const withTimes = await api('GET', '/repository?namespace=orga&last_modified=true', 'orgadmin');
      assert.equal(typeof withTimes.json().repositories.find((r: { name: string }) => r.name === 'pub').last_modified, 'number');
      for (const q of ['limit=0', 'limit=101', 'public=maybe', 'next_page=garbage']) assert.equal((await api('GET', `/repository?${q}`, 'member')).statusCode, 400, q);
    });

    it('changes visibility (admin), audited', async () => {
      assert.equal((await api('POST', '/repository/orga/priv/changevisibility', 'orgadmin', { visibility: 'nope' })).statusCode, 400);
      assert.equal((await api('POST', '/repository/orga/priv/changevisibility', 'anonymous', { visibility: 'public' })).statusCode, 401);
      assert.equal((await api('POST', '/repository/orga/priv/changevisibility', 'member', { visibility: 'public' })).statusCode, 403);
      assert.equal((await api('POST', '/repository/orgb/priv/changevisibility', 'orgadmin', { visibility: 'public' })).statusCode, 404);
      const res = await api('POST', '/repository/orga/priv/changevisibility', 'orgadmin', { visibility: 'public' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((await api('GET', '/repository/orga/priv', 'anonymous')).json().is_public, true);
      assert.deepEqual((await lastAudit('change_repo_visibility'))?.metadata, { visibility: 'public', previous_visibility: 'private' });
      await api('POST', '/repository/orga/priv/changevisibility', 'orgadmin', { visibility: 'private' });
    });

    it('changes state (admin); READ_ONLY blocks writes; MIRROR accepts only its mirror robot\'s writes (nobody\'s without one)', async () => {
      const url = '/repository/orga/pub/changestate';
      assert.equal((await api('PUT', url, 'orgadmin', { state: 'FROZEN' })).statusCode, 400);
      // As in Quay, MIRROR needs no robot in this call (Quay takes it from the mirror configuration): until
      // one is set, nobody may push, not even the robot that may write otherwise.
      const priv = '/repository/orga/priv';
      assert.equal((await api('PUT', `${priv}/changestate`, 'orgadmin', { state: 'MIRROR' })).statusCode, 200);
      assert.equal((await api('GET', priv, 'member')).json().state, 'MIRROR');
      assert.equal((await api('PUT', `${priv}/tag/m`, 'member', { manifest_digest: w.digests['orga/priv'].v2 })).statusCode, 403);
      assert.equal((await api('PUT', `${priv}/tag/m`, 'robot', { manifest_digest: w.digests['orga/priv'].v2 })).statusCode, 403);
      assert.equal((await api('PUT', `${priv}/changestate`, 'orgadmin', { state: 'NORMAL' })).statusCode, 200);
      assert.equal((await api('PUT', url, 'orgadmin', { state: 'NORMAL', robot: 'orga+ci' })).statusCode, 400);
      assert.equal((await api('PUT', url, 'orgadmin', { state: 'MIRROR', robot: 'orgb+nope' })).statusCode, 400);
      assert.equal((await api('PUT', url, 'anonymous', { state: 'READ_ONLY' })).statusCode, 401);
      assert.equal((await api('PUT', url, 'member', { state: 'READ_ONLY' })).statusCode, 403);
      assert.equal((await api('PUT', '/repository/orgb/priv/changestate', 'orgadmin', { state: 'READ_ONLY' })).statusCode, 404);

      assert.equal((await api('PUT', url, 'orgadmin', { state: 'READ_ONLY' })).statusCode, 200);
      assert.deepEqual((await lastAudit('change_repo_state'))?.metadata, { state: 'READ_ONLY', previous_state: 'NORMAL' });
      assert.equal((await api('GET', '/repository/orga/pub', 'member')).json().state, 'READ_ONLY');
      assert.equal((await api('PUT', '/repository/orga/pub/tag/ro', 'member', { manifest_digest: w.digests['orga/pub'].v2 })).statusCode, 403);

      assert.equal((await api('PUT', url, 'superuser', { state: 'MIRROR', robot: 'orga+ci' })).statusCode, 200);
      assert.equal((await lastAudit('change_repo_state'))?.metadata?.robot, 'orga+ci');
      assert.equal((await api('PUT', '/repository/orga/pub/tag/m', 'member', { manifest_digest: w.digests['orga/pub'].v2 })).statusCode, 403);
      assert.equal((await api('PUT', '/repository/orga/pub/tag/m', 'robot', { manifest_digest: w.digests['orga/pub'].v2 })).statusCode, 201);
      assert.equal((await api('PUT', url, 'orgadmin', { state: 'MIRROR' })).statusCode, 200, 'the mirror robot stays set');
      assert.equal((await api('PUT', url, 'orgadmin', { state: 'NORMAL' })).statusCode, 200);
    });

    it('deletes a repository (admin) with its tags, audited; then it is gone', async () => {
      await api('POST', '/repository', 'orgadmin', { namespace: 'orga', repository: 'doomed', visibility: 'private' });
      await w.push('orga/doomed', 'd1', 'latest');
      assert.equal((await api('DELETE', '/repository/orga/doomed', 'anonymous')).statusCode, 401);
      assert.equal((await api('DELETE', '/repository/orga/doomed', 'member')).statusCode, 404, 'member has no access to it');
      assert.equal((await api('DELETE', '/repository/orga/priv', 'member')).statusCode, 403);
      assert.equal((await api('DELETE', '/repository/orga/Bad', 'orgadmin')).statusCode, 400);
      // Read-only protects the repository from deletion too, until its state is changed back.
      assert.equal((await api('PUT', '/repository/orga/doomed/changestate', 'orgadmin', { state: 'READ_ONLY' })).statusCode, 200);
      assert.equal((await api('DELETE', '/repository/orga/doomed', 'orgadmin')).statusCode, 409);
      assert.equal((await api('PUT', '/repository/orga/doomed/changestate', 'orgadmin', { state: 'NORMAL' })).statusCode, 200);
      const res = await api('DELETE', '/repository/orga/doomed', 'orgadmin');
      assert.equal(res.statusCode, 204, res.body);
      assert.equal((await lastAudit('delete_repo'))?.repository, 'doomed');
      assert.equal((await api('GET', '/repository/orga/doomed', 'orgadmin')).statusCode, 404);
      assert.equal((await api('DELETE', '/repository/orga/doomed', 'orgadmin')).statusCode, 404);
      // The name can be used again, empty.
      assert.equal((await api('POST', '/repository', 'orgadmin', { namespace: 'orga', repository: 'doomed', visibility: 'private' })).statusCode, 201);
      assert.equal((await api('GET', '/repository/orga/doomed', 'orgadmin')).json().tag_count, 0);
    });

    it('documents every route in the OpenAPI document', async () => {
      const doc = (await w.t.app.inject({ url: '/api/v1/discovery' })).json() as { paths: Record<string, Record<string, unknown>> };
      assert.ok(doc.paths['/api/v1/repository']?.post && doc.paths['/api/v1/repository']?.get);
      assert.ok(doc.paths['/api/v1/repository/{repository}/tag/{tag}/restore']?.post);
      assert.ok(doc.paths['/api/v1/repository/{repository}']?.delete);
    });
  });
}
