/**
 * The collection's `quay_team` module, replayed call by call (quay-module.ts): the team comes from
 * GET organization/{org} (`teams`), is created or changed with PUT …/team/{team}, its members are read
 * with GET …/members?includePending=True, each new member is found (users through GET entities/{name},
 * robots through GET organization/{org}/robots/{short}) and added with PUT …/members/{name}; with
 * append=false the others are removed with DELETE. Absent: demote to member, then DELETE the team.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, buildQuayWorld, ModuleFailure, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';

interface TeamParams {
  name: string;
  organization: string;
  role?: 'member' | 'creator' | 'admin';
  description?: string;
  members?: string[];
  append?: boolean;
  state?: 'present' | 'absent';
}

async function quayTeam(m: QuayModule, p: TeamParams): Promise<{ changed: boolean }> {
  const org = await m.getOrganization(p.organization);
  if (!org) {
    if (p.state === 'absent') return { changed: false };
    throw new ModuleFailure(`The ${p.organization} organization does not exist.`);
  }
  const path = `organization/${p.organization}/team/${p.name}`;
  const team = org.teams?.[p.name] ?? null;
  if (p.state === 'absent') {
    if (team) await m.update(team, path, { role: 'member' });
    return { changed: await m.delete(team, path) };
  }
  const fields: Record<string, unknown> = { name: p.name };
  if (p.description !== undefined) fields.description = p.description;
  fields.role = p.role ?? team?.role ?? 'member';
  const updated = await m.update(team, path, fields);
  const listed = await m.get(`${path}/members`, { query: { includePending: true } });
  const current = new Set<string>((listed?.members ?? []).map((u: { name: string }) => u.name));
  const wanted = new Set(p.members ?? []);
  const toAdd = [...wanted].filter((x) => !current.has(x));
  const toDelete = p.append === false ? [...current].filter((x) => !wanted.has(x)) : [];
  const missing: string[] = [];
  for (const member of toAdd) if ((await m.getAccount(member)) === null) missing.push(member);
  if (missing.length) throw new ModuleFailure(`At least one user to add as team member does not exist: ${missing.join(', ')}.`);
  for (const member of toAdd) await m.put(`${path}/members/${member}`, {});
  for (const member of toDelete) await m.delete(true, `${path}/members/${member}`);
  return { changed: updated || toAdd.length > 0 || toDelete.length > 0 };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_team against Wharf (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode);
      for (const name of ['owner', 'alice', 'bob', 'alicia']) await w.a.accounts.createUser({ name, password: `${name}-password-1` });
      await w.a.accounts.createOrganization({ name: 'prod', creator: 'owner' });
      await w.a.robots.create('prod', 'deployer');
      await w.a.accounts.createOrganization({ name: 'other', creator: 'owner' });
      await w.a.robots.create('other', 'stranger');
    });
    after(() => w?.close());

    it('creates a team with user and robot members; a second run changes nothing', async () => {
      const params: TeamParams = { name: 'devs', organization: 'prod', role: 'creator', description: 'Developers', members: ['alice', 'prod+deployer'] };
      const m = await w.module();
      assert.deepEqual(await quayTeam(m, params), { changed: true });
      assert.ok(m.calls.some((c) => c.method === 'GET' && c.path === '/api/v1/entities/alice?includeOrgs=False&includeTeams=False' && c.status === 200), JSON.stringify(m.calls));
      assert.ok(m.calls.some((c) => c.path === '/api/v1/organization/prod/robots/deployer' && c.status === 200));
      assert.deepEqual(await w.a.teams.listAllMembers('prod', 'devs'), [
        { name: 'alice', isRobot: false },
        { name: 'prod+deployer', isRobot: true },
      ]);
      const again = await w.module();
      assert.deepEqual(await quayTeam(again, params), { changed: false });
      assert.deepEqual(
        again.calls.filter((c) => c.method !== 'GET'),
        [],
        'a second present run only reads',
      );
    });

    it('lists robot members as Quay does (kind user, is_robot true)', async () => {
      const m = await w.module();
      const listed = await m.get('organization/prod/team/devs/members', { query: { includePending: true } });
      assert.deepEqual(listed?.members, [
        { name: 'alice', kind: 'user', is_robot: false },
        { name: 'prod+deployer', kind: 'user', is_robot: true },
      ]);
    });

    it('a robot member gets the team’s repository permissions, and loses them when removed', async () => {
      const { repository } = await w.t.registry.repositories.create('prod/app' as never, { visibility: 'private' });
      await w.a.grants.setRepositoryPermission(repository, { kind: 'team', name: 'devs' }, 'write');
      const principal = { kind: 'robot' as const, id: (await w.a.robots.get('prod+deployer'))!.id, name: 'prod+deployer', namespaceId: repository.namespaceId };
      assert.equal(await w.a.permissions.roleOn(principal, repository), 'write');
      assert.deepEqual(await w.a.permissions.listReadable(principal, { limit: 10 }), ['prod/app']);
      assert.deepEqual(await quayTeam(await w.module(), { name: 'devs', organization: 'prod', members: ['alice'], append: false }), { changed: true });
      assert.equal(await w.a.permissions.roleOn(principal, repository), undefined);
      assert.deepEqual(await w.a.permissions.listReadable(principal, { limit: 10 }), []);
    });

    it('fails cleanly for an unknown member; a prefix of a real name is not a match', async () => {
      await assert.rejects(quayTeam(await w.module(), { name: 'devs', organization: 'prod', members: ['ali'] }), /does not exist: ali\./);
      await assert.rejects(quayTeam(await w.module(), { name: 'devs', organization: 'prod', members: ['prod+nobody'] }), /does not exist: prod\+nobody/);
    });

    it('refuses a robot of another organization as a member (400, not a 5xx)', async () => {
      const m = await w.module();
      const res = await m.request('PUT', 'organization/prod/team/devs/members/other+stranger', { body: {}, okErrorCodes: [400] });
      assert.equal(res.status, 400);
      assert.equal(res.json.error_type, 'invalid_request');
      const missing = await m.request('DELETE', 'organization/prod/team/devs/members/prod+deployer', { okErrorCodes: [404] });
      assert.equal(missing.status, 404, 'not a member (any more)');
    });

    it('deletes the team (after demoting it); a second absent run changes nothing', async () => {
      assert.deepEqual(await quayTeam(await w.module(), { name: 'devs', organization: 'prod', state: 'absent' }), { changed: true });
      assert.equal(await w.a.teams.getTeam('prod', 'devs'), undefined);
      const again = await w.module();
      assert.deepEqual(await quayTeam(again, { name: 'devs', organization: 'prod', state: 'absent' }), { changed: false });
      assert.deepEqual(await quayTeam(await w.module(), { name: 'devs', organization: 'nosuchorg', state: 'absent' }), { changed: false });
    });
  });
}
