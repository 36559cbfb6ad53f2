/**
 * The collection's `quay_default_perm` module, replayed call by call (quay-module.ts): the
 * organization from GET organization/{org}, the existing default from GET organization/{org}/prototypes
 * (matched on delegate name and kind, and on `activating_user` — none when no creator is given), the
 * delegate and creator looked up (users through GET entities/{name}, robots through their endpoint,
 * teams in the organization's `teams`), creation with POST …/prototypes (with `activating_user`), a role
 * change with PUT …/prototypes/{id}, removal with DELETE …/prototypes/{id}.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RepositoryName } from '../../src/oci/reference.js';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, buildQuayWorld, ModuleFailure, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';

interface DefaultPermParams {
  organization: string;
  name: string;
  type?: 'user' | 'team';
  role?: 'read' | 'write' | 'admin';
  creator?: string;
  state?: 'present' | 'absent';
}

async function quayDefaultPerm(m: QuayModule, p: DefaultPermParams): Promise<{ changed: boolean }> {
  const kind = p.type ?? 'user';
  if (!(await m.getOrganization(p.organization))) {
    if (p.state === 'absent') return { changed: false };
    throw new ModuleFailure(`The ${p.organization} organization does not exist.`);
  }
  const all = await m.get(`organization/${p.organization}/prototypes`);
  let proto: Record<string, any> | null = null;
  for (const candidate of all?.prototypes ?? []) {
    if (!candidate.delegate || candidate.delegate.name !== p.name || candidate.delegate.kind !== kind) continue;
    if (p.creator && candidate.activating_user?.name !== p.creator) continue;
    if (!p.creator && candidate.activating_user?.name) continue;
    proto = candidate;
    break;
  }
  const byId = `organization/${p.organization}/prototypes/${proto?.id ?? ''}`;
  if (p.state === 'absent') return { changed: await m.delete(proto, byId) };
  if (kind === 'user') {
    if (!(await m.getAccount(p.name))) throw new ModuleFailure(`The ${p.name} user or robot account does not exist.`);
  } else if (!(await m.getTeam(p.organization, p.name))) {
    throw new ModuleFailure(`The ${p.name} team does not exist in the ${p.organization} organization.`);
  }
  if (p.creator) {
    const creator = await m.getAccount(p.creator);
    if (!creator) throw new ModuleFailure(`The ${p.creator} user account does not exist.`);
    if (creator.is_robot) throw new ModuleFailure(`Robot accounts cannot be used for \`creator': ${p.creator} must be a user account.`);
  }
  if (!proto) {
    const fields: Record<string, unknown> = { delegate: { name: p.name, kind }, role: p.role ?? 'read' };
    if (p.creator) fields.activating_user = { name: p.creator };
    await m.create(`organization/${p.organization}/prototypes`, fields);
    return { changed: true };
  }
  if (!p.role) return { changed: false };
  return { changed: await m.update(proto, byId, { role: p.role }) };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_default_perm against Wharf (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode);
      for (const name of ['owner', 'dev', 'lead']) await w.a.accounts.createUser({ name, password: `${name}-password-1` });
      await w.a.accounts.createOrganization({ name: 'prod', creator: 'owner' });
      await w.a.teams.createTeam('prod', 'ops', { role: 'member' });
      await w.a.teams.createTeam('prod', 'builders', { role: 'creator' });
      await w.a.teams.addMember('prod', 'builders', 'lead');
      await w.a.robots.create('prod', 'ci');
    });
    after(() => w?.close());

    const cases: Array<[string, DefaultPermParams]> = [
      ['a user', { organization: 'prod', name: 'dev', role: 'read' }],
      ['a team', { organization: 'prod', name: 'ops', type: 'team', role: 'write' }],
      ['a robot', { organization: 'prod', name: 'prod+ci', role: 'write' }],
      ['a user, for one creator', { organization: 'prod', name: 'dev', role: 'admin', creator: 'lead' }],
    ];
    for (const [label, params] of cases) {
      it(`creates a default permission for ${label}; a second run changes nothing`, async () => {
        const m = await w.module('owner');
        assert.deepEqual(await quayDefaultPerm(m, params), { changed: true });
        const again = await w.module('owner');
        assert.deepEqual(await quayDefaultPerm(again, params), { changed: false });
        assert.deepEqual(again.calls.filter((c) => c.method !== 'GET'), []);
      });
    }

    it('lists prototypes with Quay’s fields; the per-creator one names its activating user', async () => {
      const m = await w.module('owner');
      const { prototypes } = (await m.get('organization/prod/prototypes'))!;
      const perCreator = prototypes.find((p: any) => p.activating_user !== null);
      assert.deepEqual(perCreator, { id: 'user:dev@lead', role: 'admin', activating_user: { name: 'lead', kind: 'user', is_robot: false }, delegate: { kind: 'user', name: 'dev', is_robot: false } });
      assert.equal(prototypes.filter((p: any) => p.activating_user === null).length, 3);
    });

    it('changes a role with PUT …/prototypes/{id}, then reports no change', async () => {
      const params: DefaultPermParams = { organization: 'prod', name: 'ops', type: 'team', role: 'admin' };
      const m = await w.module('owner');
      assert.deepEqual(await quayDefaultPerm(m, params), { changed: true });
      assert.ok(m.calls.some((c) => c.method === 'PUT' && c.path === '/api/v1/organization/prod/prototypes/team:ops' && c.status === 200), JSON.stringify(m.calls));
      assert.deepEqual(await quayDefaultPerm(await w.module('owner'), params), { changed: false });
      assert.deepEqual(await quayDefaultPerm(await w.module('owner'), { ...params, role: undefined }), { changed: false });
    });

    it('applies the defaults to new repositories: the general ones to all, the per-creator one only to its creator’s', async () => {
      const byLead = await w.module('lead');
      await byLead.create('repository', { namespace: 'prod', repository: 'team/app', visibility: 'private', description: '', repo_kind: 'image' });
      const byOwner = await w.module('owner');
      await byOwner.create('repository', { namespace: 'prod', repository: 'other', visibility: 'private', description: '', repo_kind: 'image' });
      const perms = async (repo: string) => Object.fromEntries((await w.a.grants.listRepositoryPermissions((await w.t.registry.repositories.details(repo as RepositoryName))!)).map((p) => [p.name, p.role]));
      assert.deepEqual(await perms('prod/team/app'), { dev: 'admin', lead: 'admin', ops: 'admin', 'prod+ci': 'write' });
      assert.deepEqual(await perms('prod/other'), { dev: 'read', owner: 'admin', ops: 'admin', 'prod+ci': 'write' });
    });

    it('fails cleanly for an unknown delegate, team or creator, and for a robot creator', async () => {
      await assert.rejects(quayDefaultPerm(await w.module('owner'), { organization: 'prod', name: 'nobody', role: 'read' }), /nobody user or robot account does not exist/);
      await assert.rejects(quayDefaultPerm(await w.module('owner'), { organization: 'prod', name: 'ghosts', type: 'team' }), /ghosts team does not exist/);
      await assert.rejects(quayDefaultPerm(await w.module('owner'), { organization: 'prod', name: 'dev', creator: 'nobody' }), /nobody user account does not exist/);
      await assert.rejects(quayDefaultPerm(await w.module('owner'), { organization: 'prod', name: 'dev', creator: 'prod+ci' }), /must be a user account/);
    });

    it('answers bad prototype input with 400 or 404, never a 5xx', async () => {
      const m = await w.module('owner');
      const base = 'organization/prod/prototypes';
      for (const [method, path, body] of [
        ['PUT', `${base}/team:ops`, { role: 'boss' }],
        ['PUT', `${base}/team:ops`, {}],
        ['PUT', `${base}/bogus`, { role: 'read' }],
        ['PUT', `${base}/user:dev@`, { role: 'read' }],
        ['PUT', `${base}/org:prod`, { role: 'read' }],
        ['POST', base, { role: 'read', delegate: { kind: 'user', name: 'dev' }, activating_user: { name: 'prod+ci' } }],
        ['POST', base, { role: 'read', delegate: { kind: 'user', name: 'dev' }, activating_user: 'lead' }],
        ['DELETE', `${base}/bogus`, undefined],
      ] as const) {
        const res = await m.request(method, path, { body, okErrorCodes: [400] });
        assert.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.json)}`);
      }
      for (const [method, path, body] of [
        ['PUT', `${base}/team:ghosts`, { role: 'read' }],
        ['PUT', `${base}/user:dev@owner`, { role: 'read' }],
        ['POST', base, { role: 'read', delegate: { kind: 'user', name: 'dev' }, activating_user: { name: 'nobody' } }],
        ['DELETE', `${base}/user:dev@nobody`, undefined],
        ['PUT', 'organization/nosuchorg/prototypes/team:ops', { role: 'read' }],
      ] as const) {
        const res = await m.request(method, path, { body });
        assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.json)}`);
      }
    });

    it('removes defaults (the per-creator one by its own id); a second absent run changes nothing', async () => {
      for (const params of cases.map(([, p]) => p)) {
        assert.deepEqual(await quayDefaultPerm(await w.module('owner'), { ...params, state: 'absent' }), { changed: true }, JSON.stringify(params));
        assert.deepEqual(await quayDefaultPerm(await w.module('owner'), { ...params, state: 'absent' }), { changed: false });
      }
      assert.deepEqual((await (await w.module('owner')).get('organization/prod/prototypes'))?.prototypes, []);
      assert.deepEqual(await quayDefaultPerm(await w.module('owner'), { organization: 'nosuchorg', name: 'dev', state: 'absent' }), { changed: false });
    });
  });
}
