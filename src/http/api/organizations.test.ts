/** /api/v1 organizations, teams and membership, on both dialects. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import type { RepositoryName } from '../../oci/reference.js';
import type { Accounts } from '../../registry/accounts/accounts.js';

const basic = (user: string) => `Basic ${Buffer.from(`${user}:${user}-password`).toString('base64')}`;

for (const dialect of DIALECTS) {
  describe(`/api/v1 organizations and teams (${dialect})`, () => {
    let t: TestApp;
    let a: Accounts;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.login_failures_per_minute': 1000 } });
      a = t.accounts!;
      await a.accounts.createUser({ name: 'admin', password: 'admin-password', superuser: true });
      for (const name of ['alice', 'bob', 'carol', 'dan']) await a.accounts.createUser({ name, password: `${name}-password` });
    });
    after(() => t?.close());

    const call = async (method: string, url: string, user?: string, payload?: unknown) => {
      const headers: Record<string, string> = {};
      if (user) headers.authorization = user.startsWith('Bearer ') ? user : basic(user);
      const res = await t.app.inject({ method: method as 'GET', url: `/api/v1${url}`, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
      return { status: res.statusCode, body: res.body ? (res.json() as Record<string, any>) : undefined };
    };
    const expectError = async (p: ReturnType<typeof call>, status: number) => {
      const res = await p;
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body!.status, status);
      assert.equal(typeof res.body!.detail, 'string');
    };
    const kinds = async (namespace: string) => (await a.audit.query({ namespace })).entries.map((e) => e.kind);

    it('creates an organization with the caller as administrator', async () => {
      await expectError(call('POST', '/organization/', undefined, { name: 'acme' }), 401);
      await expectError(call('POST', '/organization/', 'alice', { name: 'Not Valid!' }), 400);
      await expectError(call('POST', '/organization/', 'alice', { name: 42 }), 400);
      await expectError(call('POST', '/organization/', 'alice', { name: 'acme', email: 'nope' }), 400);
      const narrow = (await a.apiTokens.create('alice', { name: 'ro', scopes: ['repo:read'] })).secret;
      await expectError(call('POST', '/organization/', `Bearer ${narrow}`, { name: 'acme' }), 403);
      const res = await call('POST', '/organization/', 'alice', { name: 'acme', email: 'ops@acme.test' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body!.name, 'acme');
      assert.equal(res.body!.is_admin, true);
      assert.equal(res.body!.teams.owners.role, 'admin');
      await expectError(call('POST', '/organization/', 'bob', { name: 'acme' }), 409);
      await expectError(call('POST', '/organization/', 'bob', { name: 'alice' }), 409);
      assert.ok((await kinds('acme')).includes('org_create'));
    });

    it('shows an organization to members and superusers only; 404 to everyone else', async () => {
      const own = await call('GET', '/organization/acme', 'alice');
      assert.equal(own.status, 200);
      assert.deepEqual(own.body, {
        name: 'acme',
        email: 'ops@acme.test',
        tag_expiration_s: 1_209_600,
        is_admin: true,
        is_member: true,
        teams: { owners: { name: 'owners', description: 'Administrators of the organization', role: 'admin', member_count: 1 } },
        ordered_teams: ['owners'],
        quotas: [],
        quota_report: { quota_bytes: 0, configured_quota: null, running_backfill: 'complete', backfill_status: 'complete' },
      });
      await expectError(call('GET', '/organization/acme'), 401);
      await expectError(call('GET', '/organization/acme', 'carol'), 404);
      await expectError(call('GET', '/organization/nosuch', 'carol'), 404);
      const sup = await call('GET', '/organization/acme', 'admin');
      assert.equal(sup.status, 200);
      assert.equal(sup.body!.is_member, false);
      assert.equal(sup.body!.is_admin, true);
    });

    it('creates and updates teams (org admins only)', async () => {
      await expectError(call('PUT', '/organization/acme/team/devs', undefined, { role: 'member' }), 401);
      await expectError(call('PUT', '/organization/acme/team/devs', 'alice', { role: 'owner' }), 400);
      await expectError(call('PUT', '/organization/acme/team/devs', 'alice', {}), 400);
      await expectError(call('PUT', '/organization/acme/team/Dev_s', 'alice', { role: 'member' }), 400);
      await expectError(call('PUT', '/organization/acme/team/devs', 'carol', { role: 'member' }), 404);
      await expectError(call('PUT', '/organization/nosuch/team/devs', 'alice', { role: 'member' }), 404);
      const created = await call('PUT', '/organization/acme/team/devs', 'alice', { role: 'member', description: 'Developers' });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      assert.deepEqual(created.body, { name: 'devs', description: 'Developers', role: 'member', member_count: 0 });
      const updated = await call('PUT', '/organization/acme/team/devs', 'alice', { role: 'creator' });
      assert.equal(updated.body!.role, 'creator');
      assert.equal(updated.body!.description, 'Developers');
      assert.equal((await call('PUT', '/organization/acme/team/ops', 'alice', { role: 'member' })).status, 200);
      const k = await kinds('acme');
      assert.ok(k.includes('org_create_team') && k.includes('org_set_team_role'), k.join());
    });

    it('adds and lists team members; members see the organization but may not administer it', async () => {
      await expectError(call('PUT', '/organization/acme/team/devs/members/bob', undefined), 401);
      await expectError(call('PUT', '/organization/acme/team/devs/members/nosuch', 'alice'), 404);
      await expectError(call('PUT', '/organization/acme/team/devs/members/acme+bot', 'alice'), 404);
      await expectError(call('PUT', '/organization/acme/team/nosuch/members/bob', 'alice'), 404);
      const added = await call('PUT', '/organization/acme/team/devs/members/bob', 'alice');
      assert.equal(added.status, 200);
      assert.deepEqual(added.body, { name: 'bob', kind: 'user', is_robot: false });
      assert.equal((await call('PUT', '/organization/acme/team/ops/members/dan', 'alice')).status, 200);
      assert.ok((await kinds('acme')).includes('org_add_team_member'));

      const seen = await call('GET', '/organization/acme', 'bob');
      assert.equal(seen.status, 200);
      assert.equal(seen.body!.is_admin, false);
      assert.equal(seen.body!.is_member, true);
      assert.equal(seen.body!.email, undefined, 'the email is for admins');
      assert.equal(seen.body!.teams.devs.member_count, 1);
      await expectError(call('PUT', '/organization/acme/team/devs/members/carol', 'bob'), 403);
      await expectError(call('PUT', '/organization/acme/team/devs', 'bob', { role: 'admin' }), 403);
      await expectError(call('PUT', '/organization/acme', 'bob', { email: 'x@y.z' }), 403);
      await expectError(call('DELETE', '/organization/acme', 'bob'), 403);

      const members = await call('GET', '/organization/acme/team/devs/members', 'bob');
      assert.deepEqual(members.body, { name: 'devs', members: [{ name: 'bob', kind: 'user', is_robot: false }], can_edit: false });
      assert.equal((await call('GET', '/organization/acme/team/devs/members', 'alice')).body!.can_edit, true);
      await expectError(call('GET', '/organization/acme/team/devs/members', 'dan'), 403);
      await expectError(call('GET', '/organization/acme/team/devs/members', 'carol'), 404);
      await expectError(call('GET', '/organization/acme/team/devs/members'), 401);
      await expectError(call('GET', '/organization/acme/team/nosuch/members', 'alice'), 404);
    });

    it('lists organization members with their teams (admins only)', async () => {
      const res = await call('GET', '/organization/acme/members', 'alice');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body!.members, [
        { name: 'alice', kind: 'user', is_robot: false, teams: [{ name: 'owners' }] },
        { name: 'bob', kind: 'user', is_robot: false, teams: [{ name: 'devs' }] },
        { name: 'dan', kind: 'user', is_robot: false, teams: [{ name: 'ops' }] },
      ]);
      await expectError(call('GET', '/organization/acme/members', 'bob'), 403);
      await expectError(call('GET', '/organization/acme/members', 'carol'), 404);
      await expectError(call('GET', '/organization/acme/members'), 401);
    });

    it('changes the email (admins only)', async () => {
      await expectError(call('PUT', '/organization/acme', 'alice', { email: 'not an email' }), 400);
      await expectError(call('PUT', '/organization/acme', 'carol', { email: 'x@y.z' }), 404);
      await expectError(call('PUT', '/organization/acme', undefined, { email: 'x@y.z' }), 401);
      const res = await call('PUT', '/organization/acme', 'alice', { email: 'team@acme.test' });
      assert.equal(res.status, 200);
      assert.equal(res.body!.email, 'team@acme.test');
      assert.ok((await kinds('acme')).includes('org_change_email'));
    });

    it('removing a team member ends their access at once', async () => {
      const repo = (await t.registry.repositories.create('acme/app' as RepositoryName, { visibility: 'private' })).repository;
      await a.grants.setRepositoryPermission(repo, { kind: 'team', name: 'devs' }, 'read');
      const catalog = async () => (await t.app.inject({ url: '/v2/_catalog', headers: { authorization: basic('bob') } })).json().repositories as string[];
      assert.deepEqual(await catalog(), ['acme/app']);
      await expectError(call('DELETE', '/organization/acme/team/devs/members/bob', 'carol'), 404);
      await expectError(call('DELETE', '/organization/acme/team/devs/members/bob', 'dan'), 403);
      await expectError(call('DELETE', '/organization/acme/team/devs/members/bob'), 401);
      assert.equal((await call('DELETE', '/organization/acme/team/devs/members/bob', 'alice')).status, 204);
      assert.deepEqual(await catalog(), []);
      await expectError(call('GET', '/organization/acme', 'bob'), 404);
      await expectError(call('DELETE', '/organization/acme/team/devs/members/bob', 'alice'), 404);
      await expectError(call('DELETE', '/organization/acme/team/owners/members/alice', 'alice'), 409);
      assert.ok((await kinds('acme')).includes('org_remove_team_member'));
    });

    it('deletes teams, but never the last admin team', async () => {
      await expectError(call('DELETE', '/organization/acme/team/ops', 'dan'), 403);
      await expectError(call('DELETE', '/organization/acme/team/ops', 'carol'), 404);
      await expectError(call('DELETE', '/organization/acme/team/ops'), 401);
      assert.equal((await call('DELETE', '/organization/acme/team/ops', 'alice')).status, 204);
      await expectError(call('DELETE', '/organization/acme/team/ops', 'alice'), 404);
      await expectError(call('GET', '/organization/acme', 'dan'), 404);
      await expectError(call('DELETE', '/organization/acme/team/owners', 'alice'), 409);
      await expectError(call('PUT', '/organization/acme/team/owners', 'alice', { role: 'member' }), 409);
      assert.ok((await kinds('acme')).includes('org_delete_team'));
    });

    it('lists these endpoints in the OpenAPI document', async () => {
      const doc = (await t.app.inject({ url: '/api/v1/discovery' })).json() as { paths: Record<string, Record<string, unknown>> };
      for (const [path, method] of [
        ['/api/v1/organization/', 'post'],
        ['/api/v1/organization/{orgname}', 'delete'],
        ['/api/v1/organization/{orgname}/team/{teamname}/members/{membername}', 'put'],
        ['/api/v1/organization/{orgname}/robots/{robot_shortname}/regenerate', 'post'],
        ['/api/v1/user/robots/{robot_shortname}', 'put'],
        ['/api/v1/user/apitokens/{id}', 'delete'],
        ['/api/v1/superuser/users/{username}', 'put'],
      ]) {
        assert.ok(doc.paths[path!]?.[method!], `${method} ${path}`);
      }
    });

    it('deletes an organization (admins only)', async () => {
      await expectError(call('DELETE', '/organization/acme', 'carol'), 404);
      await expectError(call('DELETE', '/organization/acme'), 401);
      assert.equal((await call('DELETE', '/organization/acme', 'alice')).status, 204);
      await expectError(call('GET', '/organization/acme', 'alice'), 404);
      await expectError(call('DELETE', '/organization/acme', 'alice'), 404);
      assert.ok((await kinds('acme')).includes('org_delete'));
    });
  });
}
