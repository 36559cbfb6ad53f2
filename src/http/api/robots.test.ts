/** /api/v1 robot accounts of organizations and users, on both dialects: one-time tokens and revocation. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import type { Accounts } from '../../registry/accounts/accounts.js';
import { apiClient, basicOf } from '../../../test/helpers/api-client.js';

const basic = (user: string) => basicOf(user, `${user}-password`);

for (const dialect of DIALECTS) {
  describe(`/api/v1 robots (${dialect})`, () => {
    let t: TestApp;
    let a: Accounts;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.login_failures_per_minute': 1000 } });
      a = t.accounts!;
      for (const name of ['alice', 'bob', 'carol']) await a.accounts.createUser({ name, password: `${name}-password` });
      await a.accounts.createOrganization({ name: 'acme', creator: 'alice' });
      await a.teams.createTeam('acme', 'devs', { role: 'member' });
      await a.teams.addMember('acme', 'devs', 'bob');
    });
    after(() => t?.close());

    const { call, expectError } = apiClient(() => t.app);
    const v2 = async (authorization: string) => (await t.app.inject({ url: '/v2/', headers: { authorization } })).statusCode;
    const kinds = async (namespace: string) => (await a.audit.query({ namespace })).entries.map((e) => e.kind);

    for (const scope of [
      { label: 'organization', base: '/organization/acme', owner: 'alice', ns: 'acme' },
      { label: 'user', base: '/user', owner: 'carol', ns: 'carol' },
    ]) {
      it(`creates, shows, regenerates and deletes ${scope.label} robots`, async () => {
        const owner = basic(scope.owner);
        await expectError(call('PUT', `${scope.base}/robots/builder`, undefined, {}), 401);
        await expectError(call('GET', `${scope.base}/robots`), 401);
        await expectError(call('PUT', `${scope.base}/robots/Bad-Name`, owner, {}), 400);
        await expectError(call('PUT', `${scope.base}/robots/builder`, owner, { description: 7 }), 400);

        const created = await call('PUT', `${scope.base}/robots/builder`, owner, { description: 'CI' });
        assert.equal(created.status, 201, created.raw);
        assert.equal(created.body!.name, `${scope.ns}+builder`);
        assert.equal(created.body!.description, 'CI');
        assert.equal(typeof created.body!.token, 'string');
        const token1 = created.body!.token as string;
        await expectError(call('PUT', `${scope.base}/robots/builder`, owner, {}), 409);

        // Its administrators read the token again (as in Quay); the list never carries it.
        const shown = await call('GET', `${scope.base}/robots/builder`, owner);
        assert.equal(shown.status, 200);
        assert.deepEqual(Object.keys(shown.body!).sort(), ['created', 'description', 'name', 'token']);
        assert.equal(shown.body!.token, token1);
        const list = await call('GET', `${scope.base}/robots`, owner);
        assert.deepEqual(list.body!.robots.map((r: { name: string }) => r.name), [`${scope.ns}+builder`]);
        assert.ok(!list.raw.includes(token1));
        await expectError(call('GET', `${scope.base}/robots/nosuch`, owner), 404);

        // A robot authenticates, but has no account API of its own.
        const robotAuth = basicOf(`${scope.ns}+builder`, token1);
        assert.equal(await v2(robotAuth), 200);
        await expectError(call('GET', '/user/', robotAuth), 403);
        await expectError(call('GET', `${scope.base}/robots`, robotAuth), 403);

        const regenerated = await call('POST', `${scope.base}/robots/builder/regenerate`, owner);
        assert.equal(regenerated.status, 200, regenerated.raw);
        const token2 = regenerated.body!.token as string;
        assert.notEqual(token2, token1);
        assert.equal(await v2(robotAuth), 401, 'the old token stops working at once');
        assert.equal(await v2(basicOf(`${scope.ns}+builder`, token2)), 200);
        assert.equal((await call('GET', `${scope.base}/robots/builder`, owner)).body!.token, token2, 'GET shows the current token');
        await expectError(call('POST', `${scope.base}/robots/nosuch/regenerate`, owner), 404);

        await expectError(call('DELETE', `${scope.base}/robots/nosuch`, owner), 404);
        assert.equal((await call('DELETE', `${scope.base}/robots/builder`, owner)).status, 204);
        const gone = basicOf(`${scope.ns}+builder`, token2);
        assert.equal(await v2(gone), 401, 'a deleted robot cannot log in to /v2');
        await expectError(call('GET', '/user/', gone), 401);
        await expectError(call('GET', `${scope.base}/robots/builder`, owner), 404);

        const k = await kinds(scope.ns);
        for (const kind of ['create_robot', 'regenerate_robot_token', 'delete_robot']) assert.ok(k.includes(kind), `${kind} in ${k.join()}`);
        const entries = (await a.audit.query({ namespace: scope.ns })).entries;
        assert.ok(!JSON.stringify(entries).includes(token1) && !JSON.stringify(entries).includes(token2), 'no token in the audit log');
      });
    }

    it('lets organization members list robots, and only admins change them; 404 to outsiders', async () => {
      await a.robots.create('acme', 'deployer');
      const list = await call('GET', '/organization/acme/robots', basic('bob'));
      assert.equal(list.status, 200);
      assert.deepEqual(list.body!.robots.map((r: { name: string }) => r.name), ['acme+deployer']);
      await expectError(call('GET', '/organization/acme/robots/deployer', basic('bob')), 403);
      await expectError(call('PUT', '/organization/acme/robots/other', basic('bob'), {}), 403);
      await expectError(call('POST', '/organization/acme/robots/deployer/regenerate', basic('bob')), 403);
      await expectError(call('DELETE', '/organization/acme/robots/deployer', basic('bob')), 403);
      for (const [method, path] of [
        ['GET', '/organization/acme/robots'],
        ['GET', '/organization/acme/robots/deployer'],
        ['PUT', '/organization/acme/robots/other'],
        ['POST', '/organization/acme/robots/deployer/regenerate'],
        ['DELETE', '/organization/acme/robots/deployer'],
        ['GET', '/organization/nosuch/robots'],
      ] as const) {
        await expectError(call(method, path, basic('carol'), method === 'PUT' ? {} : undefined), 404);
      }
    });

    it('needs user:admin for changes to the caller\'s own robots', async () => {
      const readOnly = (await a.apiTokens.create('carol', { name: 'ro', scopes: ['user:read'] })).secret;
      assert.equal((await call('GET', '/user/robots', `Bearer ${readOnly}`)).status, 200);
      await expectError(call('PUT', '/user/robots/x1', `Bearer ${readOnly}`, {}), 403);
      const admin = (await a.apiTokens.create('carol', { name: 'rw', scopes: ['user:admin'] })).secret;
      assert.equal((await call('PUT', '/user/robots/x1', `Bearer ${admin}`, {})).status, 201);
    });
  });
}
