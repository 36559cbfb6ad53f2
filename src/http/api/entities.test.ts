/** GET /api/v1/entities/{prefix} (Quay's entity lookup) on both dialects: who sees which users, robots, teams and organizations. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

for (const dialect of DIALECTS) {
  describe(`/api/v1/entities (${dialect})`, () => {
    let w: ApiWorld;
    before(async () => {
      w = await buildApiWorld(dialect);
      const a = w.t.accounts!;
      for (const name of ['tar', 'tara', 'target2', 'ta_x']) await a.accounts.createUser({ name, password: `${name}-password-1` }).catch(() => undefined);
      for (let i = 0; i < 12; i++) await a.accounts.createUser({ name: `many${String(i).padStart(2, '0')}`, password: 'many-password-1' });
      await a.teams.createTeam('orga', 'targets', { role: 'member' });
      await a.teams.addMember('orga', 'targets', 'target');
      await a.robots.create('orga', 'tagger');
      await a.robots.create('uma', 'tbot');
    });
    after(() => w?.t.close());

    const get = async (who: keyof ApiWorld['auth'], url: string) => {
      const res = await w.t.app.inject({ url: `/api/v1/entities/${url}`, headers: w.auth[who] });
      return { status: res.statusCode, body: res.json() as { results: Array<Record<string, unknown>> } & Record<string, unknown> };
    };
    const names = (body: { results: Array<Record<string, unknown>> }) => body.results.map((r) => `${r.kind}:${r.name}`);

    it('finds users by prefix, the exact match first, in Quay’s fields', async () => {
      const res = await get('user', 'target?includeOrgs=False&includeTeams=False');
      assert.equal(res.status, 200);
      assert.deepEqual(names(res.body), ['user:target', 'user:target2']);
      assert.deepEqual(res.body.results[0], { name: 'target', kind: 'user', is_robot: false });
      assert.deepEqual(names((await get('user', 'TAR')).body), ['user:tar', 'user:tara', 'user:target', 'user:target2'], 'lower-cased, as in Quay');
      assert.deepEqual(names((await get('user', 'ta%20r')).body), ['user:tar', 'user:tara', 'user:target', 'user:target2'], 'spaces removed, as in Quay');
    });

    it('answers an unknown prefix, or one no name can start with, with an empty list', async () => {
      for (const prefix of ['nosuchprefix', '%25', 'ta%25', 'ta%2B', '%C3%A9t%C3%A9', 'x'.repeat(255), '-a', '.x', 'a%2Fb']) {
        const res = await get('user', prefix);
        assert.equal(res.status, 200, prefix);
        assert.deepEqual(res.body, { results: [] }, prefix);
      }
      assert.deepEqual(names((await get('user', 'ta_')).body), ['user:ta_x'], '"_" is a character, not a wildcard');
    });

    it('caps each kind at 10', async () => {
      const res = await get('superuser', 'many');
      assert.equal(res.body.results.length, 10);
      assert.deepEqual(names(res.body).slice(0, 2), ['user:many00', 'user:many01']);
    });

    it('with namespace: the organization’s robots and membership for its members, teams and the org on request', async () => {
      const asMember = await get('member', 'ta?namespace=orga&includeTeams=true&includeOrgs=true');
      // Byte order: "_" sorts before letters.
      assert.deepEqual(names(asMember.body), ['team:targets', 'user:orga+tagger', 'user:ta_x', 'user:tar', 'user:tara', 'user:target', 'user:target2']);
      const byName = Object.fromEntries(asMember.body.results.map((r) => [r.name, r]));
      assert.deepEqual(byName['orga+tagger'], { name: 'orga+tagger', kind: 'user', is_robot: true, is_org_member: true });
      assert.equal(byName.target!.is_org_member, true);
      assert.equal(byName.tara!.is_org_member, false);
      assert.deepEqual(byName.targets, { name: 'targets', kind: 'team', is_org_member: true });

      const asAdmin = await get('orgadmin', 'or?namespace=orga&includeOrgs=true');
      assert.ok(names(asAdmin.body).includes('org:orga'), 'admins get the organization itself');
      assert.ok(!names((await get('member', 'or?namespace=orga&includeOrgs=true')).body).includes('org:orga'), 'members do not');
      assert.ok(!names((await get('orgadmin', 'or?namespace=orga')).body).includes('org:orga'), 'only with includeOrgs');

      // Outsiders see users only, with membership (as Quay answers), but no robots or teams.
      const outsider = await get('user', 'ta?namespace=orga&includeTeams=true');
      assert.deepEqual(names(outsider.body), ['user:ta_x', 'user:tar', 'user:tara', 'user:target', 'user:target2']);
      assert.deepEqual(names((await get('superuser', 'tag?namespace=orga&includeTeams=1')).body), ['user:orga+tagger']);
    });

    it('with the caller’s own namespace: their robots; unknown namespaces change nothing', async () => {
      assert.deepEqual(names((await get('user', 'tb?namespace=uma')).body), ['user:uma+tbot']);
      assert.deepEqual(names((await get('member', 'tb?namespace=uma')).body), [], 'not someone else’s robots');
      assert.deepEqual(names((await get('user', 'tar?namespace=nosuch')).body), ['user:tar', 'user:tara', 'user:target', 'user:target2']);
      assert.deepEqual(names((await get('user', 'tar?namespace=')).body), ['user:tar', 'user:tara', 'user:target', 'user:target2']);
    });

    it('needs a signed-in user; bad query values are a 400, never a 5xx', async () => {
      const anonymous = await get('anonymous', 'ta');
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error_type, 'invalid_token');
      assert.equal((await get('robot', 'ta')).status, 403);
      for (const query of ['includeTeams=maybe', 'includeOrgs=2', `namespace=${'x'.repeat(300)}`]) {
        const res = await get('user', `ta?${query}`);
        assert.equal(res.status, 400, query);
        assert.equal(res.body.status, 400);
      }
      assert.equal((await get('user', 'x'.repeat(256))).status, 400);
      const bare = await w.t.app.inject({ url: '/api/v1/entities/', headers: w.auth.user });
      assert.ok(bare.statusCode === 404 || bare.statusCode === 400, String(bare.statusCode));
    });
  });
}
