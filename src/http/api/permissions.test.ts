import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

for (const dialect of DIALECTS) {
  describe(`/api/v1 repository permissions and prototypes (${dialect})`, () => {
    let w: ApiWorld;
    before(async () => {
      w = await buildApiWorld(dialect);
      await w.t.accounts!.robots.create('orgb', 'other');
    });
    after(async () => w.t.close());

    const api = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, who: keyof ApiWorld['auth'], payload?: unknown) =>
      w.t.app.inject({ method, url: `/api/v1${url}`, headers: w.auth[who], ...(payload === undefined ? {} : { payload: payload as object }) });
    const lastAudit = async (kind: string) => (await w.t.accounts!.audit.query({ kinds: [kind], limit: 1 })).entries[0];
    const base = '/repository/orga/priv/permissions';

    it('lists user and robot permissions, and team permissions, separately', async () => {
      const users = await api('GET', `${base}/user/`, 'orgadmin');
      assert.equal(users.statusCode, 200, users.body);
      assert.deepEqual(users.json(), { permissions: { 'orga+ci': { role: 'write', name: 'orga+ci', is_robot: true } } });
      const teams = await api('GET', `${base}/team/`, 'orgadmin');
      assert.deepEqual(teams.json(), { permissions: { devs: { role: 'write', name: 'devs' } } });
    });

    it('grants, reads, changes and removes a user permission, audited; the grant takes effect at once', async () => {
      assert.equal((await api('GET', '/repository/orga/priv', 'user')).statusCode, 404);
      let res = await api('PUT', `${base}/user/uma`, 'orgadmin', { role: 'read' });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { role: 'read', name: 'uma', is_robot: false });
      assert.deepEqual((await lastAudit('change_repo_permission'))?.metadata, { username: 'uma', role: 'read' });
      assert.equal((await api('GET', '/repository/orga/priv', 'user')).statusCode, 200);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/x', 'user', { manifest_digest: w.digests['orga/priv'].v1 })).statusCode, 403);
      assert.deepEqual((await api('GET', `${base}/user/uma`, 'orgadmin')).json(), { role: 'read', name: 'uma', is_robot: false });
      await api('PUT', `${base}/user/uma`, 'orgadmin', { role: 'write' });
      assert.equal((await api('PUT', '/repository/orga/priv/tag/x', 'user', { manifest_digest: w.digests['orga/priv'].v1 })).statusCode, 201);
      res = await api('DELETE', `${base}/user/uma`, 'orgadmin');
      assert.equal(res.statusCode, 204, res.body);
      assert.deepEqual((await lastAudit('delete_repo_permission'))?.metadata, { username: 'uma' });
      assert.equal((await api('GET', '/repository/orga/priv', 'user')).statusCode, 404);
      assert.equal((await api('GET', `${base}/user/uma`, 'orgadmin')).statusCode, 404);
      assert.equal((await api('DELETE', `${base}/user/uma`, 'orgadmin')).statusCode, 404);
    });

    it('grants robots through the user endpoint, only robots of the repository\'s namespace', async () => {
      const res = await api('PUT', `${base}/user/orga+ci`, 'orgadmin', { role: 'admin' });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { role: 'admin', name: 'orga+ci', is_robot: true });
      assert.equal((await api('PUT', `${base}/user/target`, 'robot', { role: 'read' })).statusCode, 200, 'the robot is admin now');
      await api('PUT', `${base}/user/orga+ci`, 'orgadmin', { role: 'write' });
      assert.equal((await api('PUT', `${base}/user/orgb+other`, 'orgadmin', { role: 'read' })).statusCode, 400);
      assert.equal((await api('PUT', `${base}/user/orga+ghost`, 'orgadmin', { role: 'read' })).statusCode, 404);
    });

    it('grants and removes team permissions, audited; unknown teams are 404', async () => {
      await w.t.accounts!.teams.createTeam('orga', 'readers', { role: 'member' });
      await w.t.accounts!.teams.addMember('orga', 'readers', 'uma');
      const res = await api('PUT', `${base}/team/readers`, 'orgadmin', { role: 'read' });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { role: 'read', name: 'readers' });
      assert.deepEqual((await lastAudit('change_repo_permission'))?.metadata, { team: 'readers', role: 'read' });
      assert.equal((await api('GET', '/repository/orga/priv', 'user')).statusCode, 200);
      assert.deepEqual((await api('GET', `${base}/team/readers`, 'orgadmin')).json(), { role: 'read', name: 'readers' });
      assert.equal((await api('DELETE', `${base}/team/readers`, 'orgadmin')).statusCode, 204);
      assert.deepEqual((await lastAudit('delete_repo_permission'))?.metadata, { team: 'readers' });
      assert.equal((await api('GET', '/repository/orga/priv', 'user')).statusCode, 404);
      assert.equal((await api('PUT', `${base}/team/nope`, 'orgadmin', { role: 'read' })).statusCode, 404);
      assert.equal((await api('GET', `${base}/team/readers`, 'orgadmin')).statusCode, 404);
    });

    it('refuses bad input, anonymous, non-admins and unreadable repositories', async () => {
      for (const body of [{}, { role: 'owner' }, { role: 'READ' }]) assert.equal((await api('PUT', `${base}/user/target`, 'orgadmin', body)).statusCode, 400, JSON.stringify(body));
      assert.equal((await api('PUT', `${base}/user/nobody-here`, 'orgadmin', { role: 'read' })).statusCode, 404);
      for (const [method, url] of [['GET', `${base}/user/`], ['GET', `${base}/team/`], ['PUT', `${base}/user/target`], ['DELETE', `${base}/team/devs`]] as const) {
        assert.equal((await api(method, url, 'anonymous', method === 'PUT' ? { role: 'read' } : undefined)).statusCode, 401, url);
        assert.equal((await api(method, url, 'member', method === 'PUT' ? { role: 'read' } : undefined)).statusCode, 403, url);
        assert.equal((await api(method, url.replace('orga/priv', 'orgb/priv'), 'member', method === 'PUT' ? { role: 'read' } : undefined)).statusCode, 404, url);
      }
    });

    it('manages organization prototypes (default permissions), audited, applied to new repositories', async () => {
      const url = '/organization/orga/prototypes';
      assert.deepEqual((await api('GET', url, 'orgadmin')).json(), { prototypes: [] });
      let res = await api('POST', url, 'orgadmin', { role: 'write', delegate: { kind: 'user', name: 'orga+ci' } });
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(res.json(), { id: 'user:orga+ci', role: 'write', activating_user: null, delegate: { kind: 'user', name: 'orga+ci', is_robot: true } });
      assert.equal((await lastAudit('create_prototype_permission'))?.metadata?.prototype_id, 'user:orga+ci');
      res = await api('POST', url, 'superuser', { role: 'read', delegate: { kind: 'team', name: 'devs' } });
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(
        (await api('GET', url, 'orgadmin')).json().prototypes.map((p: { id: string; role: string }) => [p.id, p.role]),
        [['team:devs', 'read'], ['user:orga+ci', 'write']], // users, teams, then robots
      );
      await api('POST', '/repository', 'orgadmin', { namespace: 'orga', repository: 'fresh', visibility: 'private' });
      assert.equal((await api('GET', '/repository/orga/fresh/permissions/user/orga+ci', 'orgadmin')).json().role, 'write');
      assert.equal((await api('GET', '/repository/orga/fresh/permissions/team/devs', 'orgadmin')).json().role, 'read');

      assert.equal((await api('DELETE', `${url}/team:devs`, 'orgadmin')).statusCode, 204);
      assert.equal((await lastAudit('delete_prototype_permission'))?.metadata?.prototype_id, 'team:devs');
      assert.equal((await api('DELETE', `${url}/team:devs`, 'orgadmin')).statusCode, 404);
      assert.equal((await api('DELETE', `${url}/bogus`, 'orgadmin')).statusCode, 400);
      assert.equal((await api('DELETE', `${url}/user:orga%2Bci`, 'orgadmin')).statusCode, 204);
      assert.deepEqual((await api('GET', url, 'orgadmin')).json(), { prototypes: [] });

      for (const body of [{}, { role: 'read' }, { role: 'boss', delegate: { kind: 'user', name: 'uma' } }, { role: 'read', delegate: { kind: 'org', name: 'x' } }, { role: 'read', delegate: { kind: 'user', name: 'uma' }, activating_user: 'uma' }]) {
        assert.equal((await api('POST', url, 'orgadmin', body)).statusCode, 400, JSON.stringify(body));
      }
      assert.equal((await api('POST', url, 'orgadmin', { role: 'read', delegate: { kind: 'team', name: 'ghosts' } })).statusCode, 404);
      assert.equal((await api('GET', url, 'anonymous')).statusCode, 401);
      assert.equal((await api('GET', url, 'member')).statusCode, 403);
      assert.equal((await api('POST', url, 'robot', { role: 'read', delegate: { kind: 'user', name: 'uma' } })).statusCode, 403);
      assert.equal((await api('GET', '/organization/orgb/prototypes', 'orgadmin')).statusCode, 404, 'not a member of orgb: it is not found, as an unknown organization is');
      assert.equal((await api('GET', '/organization/nope/prototypes', 'orgadmin')).statusCode, 404);
      assert.equal((await api('GET', '/organization/uma/prototypes', 'user')).statusCode, 404, 'a user namespace is not an organization');
    });
  });
}
