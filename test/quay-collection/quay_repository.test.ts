/**
 * The collection's `quay_repository` module, replayed call by call (quay-module.ts), with nested
 * names (`prod/team/app`: namespace `prod`, repository `team/app`): GET repository/{full} (404 = absent),
 * POST repository, PUT repository/{full} {description}, POST …/changevisibility, PUT …/changestate
 * {state} (no robot), POST user/starred / DELETE user/starred/{full} against `is_starred`, and the team and
 * user permissions (GET …/permissions/team/ and …/user/, PUT and DELETE …/{name}, members found through
 * GET entities/{name} and the organization's teams). Absent: DELETE repository/{full}.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RepositoryName } from '../../src/oci/reference.js';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, buildQuayWorld, ModuleFailure, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';

interface Perm {
  type?: 'user' | 'team';
  name: string;
  role?: 'read' | 'write' | 'admin';
}

interface RepositoryParams {
  name: string;
  visibility?: 'public' | 'private';
  description?: string;
  perms?: Perm[];
  append?: boolean;
  star?: boolean;
  repo_state?: 'NORMAL' | 'READ_ONLY' | 'MIRROR';
  state?: 'present' | 'absent';
}

async function quayRepository(m: QuayModule, p: RepositoryParams): Promise<{ changed: boolean }> {
  const split = await m.splitName(p.name.replace(/^\/+|\/+$/g, ''), p.state ?? 'present');
  if (split === 'absent') return { changed: false };
  const full = `${split.namespace}/${split.short}`;
  const details = await m.get(`repository/${full}`);
  if (p.state === 'absent') return { changed: await m.delete(details, `repository/${full}`) };
  let changed = false;
  if (!details) {
    await m.create('repository', { namespace: split.namespace, repository: split.short, repo_kind: 'image', description: p.description ?? '', visibility: p.visibility ?? 'private' });
    changed = true;
  } else {
    if (p.description !== undefined && (await m.update(details, `repository/${full}`, { description: p.description }))) changed = true;
    if (p.visibility && 'is_public' in details && details.is_public !== (p.visibility === 'public')) {
      await m.create(`repository/${full}/changevisibility`, { visibility: p.visibility });
      changed = true;
    }
  }
  if (p.repo_state !== undefined && ((!details && p.repo_state !== 'NORMAL') || (details && details.state !== p.repo_state))) {
    await m.put(`repository/${full}/changestate`, { state: p.repo_state });
    changed = true;
  }
  if (p.star !== undefined) {
    if (p.star && (!details || !details.is_starred)) {
      await m.create('user/starred', { namespace: split.namespace, repository: split.short });
      changed = true;
    }
    if (!p.star && details?.is_starred) {
      await m.delete(details, `user/starred/${full}`);
      changed = true;
    }
  }
  if (p.perms === undefined) return { changed };
  const perms = p.perms.map((x) => ({ type: x.type ?? 'user', name: x.name, role: x.role ?? 'read' }));
  for (const kind of ['team', 'user'] as const) {
    const listed = await m.get(`repository/${full}/permissions/${kind}/`);
    const key = (name: string, role: string) => JSON.stringify([name, role]);
    const current = new Map(Object.values((listed?.permissions ?? {}) as Record<string, { name: string; role: string }>).map((x) => [key(x.name, x.role), x]));
    const wanted = new Map(perms.filter((x) => x.type === kind).map((x) => [key(x.name, x.role), x]));
    const toAdd = [...wanted.entries()].filter(([k]) => !current.has(k)).map(([, x]) => x);
    const toDelete = p.append === false ? [...current.entries()].filter(([k]) => !wanted.has(k)).map(([, x]) => x) : [];
    const missing: string[] = [];
    for (const x of toAdd) if ((kind === 'team' ? await m.getTeam(split.namespace, x.name) : await m.getAccount(x.name)) === null) missing.push(x.name);
    if (missing.length) throw new ModuleFailure(`At least one ${kind} does not exist: ${missing.join(', ')}.`);
    for (const x of toDelete) {
      await m.delete(true, `repository/${full}/permissions/${kind}/${x.name}`);
      changed = true;
    }
    for (const x of toAdd) {
      await m.put(`repository/${full}/permissions/${kind}/${x.name}`, { role: x.role });
      changed = true;
    }
  }
  return { changed };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_repository against Wharf, nested names (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode);
      for (const name of ['owner', 'dev', 'reader']) await w.a.accounts.createUser({ name, password: `${name}-password-1` });
      await w.a.accounts.createOrganization({ name: 'prod', creator: 'owner' });
      await w.a.teams.createTeam('prod', 'ops', { role: 'member' });
      await w.a.robots.create('prod', 'ci');
    });
    after(() => w?.close());

    const full: RepositoryParams = {
      name: 'prod/team/app',
      visibility: 'public',
      description: 'The app',
      star: true,
      perms: [
        { type: 'team', name: 'ops', role: 'write' },
        { name: 'dev', role: 'admin' },
        { name: 'prod+ci', role: 'write' },
      ],
    };

    it('creates a nested repository with description, visibility, star and permissions; a second run changes nothing', async () => {
      const m = await w.module('owner');
      assert.deepEqual(await quayRepository(m, full), { changed: true });
      // Only the lookups of what does not exist yet answer 404: the repository, and `dev` as a robot of the caller.
      assert.deepEqual(m.failures().map((c) => `${c.method} ${c.path} ${c.status}`), ['GET /api/v1/repository/prod/team/app 404', 'GET /api/v1/user/robots/dev 404']);
      assert.ok(m.calls.some((c) => c.method === 'PUT' && c.path === '/api/v1/repository/prod/team/app/permissions/user/prod+ci' && c.status === 200));
      assert.ok(m.calls.some((c) => c.method === 'POST' && c.path === '/api/v1/user/starred' && c.status === 201));
      const again = await w.module('owner');
      assert.deepEqual(await quayRepository(again, full), { changed: false });
      assert.deepEqual(again.calls.filter((c) => c.method !== 'GET'), [], 'a second present run only reads');

      const shown = (await (await w.module('owner')).get('repository/prod/team/app'))!;
      assert.equal(shown.description, 'The app');
      assert.equal(shown.is_public, true);
      assert.equal(shown.is_starred, true);
      assert.equal(shown.isstarred, true);
      const asDev = (await (await w.module('dev')).get('repository/prod/team/app'))!;
      assert.equal(asDev.is_starred, false, 'stars are per user');
      const encoded = await w.t.app.inject({ url: '/api/v1/repository/prod%2Fteam%2Fapp' });
      assert.equal(encoded.json().is_starred, false, 'anonymous callers see a public repository, never starred');
    });

    it('changes the description (also of a MIRROR repository), the visibility and the state without a robot, once each', async () => {
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', description: 'New text', visibility: 'private', repo_state: 'MIRROR' }), { changed: true });
      const details = (await w.t.registry.repositories.details('prod/team/app' as RepositoryName))!;
      assert.equal(details.description, 'New text');
      assert.equal(details.visibility, 'private');
      assert.equal(details.state, 'MIRROR');
      assert.equal(details.mirrorRobotId, null, 'no robot given: Quay takes it from the mirror configuration');
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', description: 'New text', visibility: 'private', repo_state: 'MIRROR' }), { changed: false });
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', description: 'Mirror of upstream' }), { changed: true });
      assert.equal((await w.t.registry.repositories.details('prod/team/app' as RepositoryName))!.description, 'Mirror of upstream');
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', description: '' }), { changed: true });
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', description: '' }), { changed: false }, 'an empty description reads back as sent');
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', repo_state: 'NORMAL' }), { changed: true });
    });

    it('a MIRROR repository without a mirror robot takes pushes from nobody, not even its admins', async () => {
      await quayRepository(await w.module('owner'), { name: 'prod/team/app', repo_state: 'MIRROR' });
      const owner = { kind: 'user' as const, id: (await w.a.accounts.getUser('owner'))!.id, name: 'owner', superuser: false };
      await assert.rejects(w.a.access.authorize(owner, 'prod/team/app' as RepositoryName, ['push']), /mirror/);
      await quayRepository(await w.module('owner'), { name: 'prod/team/app', repo_state: 'NORMAL' });
    });

    it('unstars, and replaces permissions with append=false', async () => {
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', star: false }), { changed: true });
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', star: false }), { changed: false });
      const params: RepositoryParams = { name: 'prod/team/app', perms: [{ name: 'reader', role: 'read' }], append: false };
      assert.deepEqual(await quayRepository(await w.module('owner'), params), { changed: true });
      const perms = await w.a.grants.listRepositoryPermissions((await w.t.registry.repositories.details('prod/team/app' as RepositoryName))!);
      assert.deepEqual(perms.map((x) => [x.name, x.role]), [['reader', 'read']]);
      assert.deepEqual(await quayRepository(await w.module('owner'), params), { changed: false });
    });

    it('fails cleanly for an unknown team or user in perms', async () => {
      await assert.rejects(quayRepository(await w.module('owner'), { name: 'prod/team/app', perms: [{ type: 'team', name: 'ghosts' }] }), /team does not exist: ghosts/);
      await assert.rejects(quayRepository(await w.module('owner'), { name: 'prod/team/app', perms: [{ name: 'nobody' }] }), /user does not exist: nobody/);
    });

    it('repositories in the caller’s own namespace, nested and by a bare name', async () => {
      const nested: RepositoryParams = { name: 'dev/tools/cli', star: true, description: 'mine' };
      assert.deepEqual(await quayRepository(await w.module('dev'), nested), { changed: true });
      assert.equal((await w.t.registry.repositories.details('dev/tools/cli' as RepositoryName))!.description, 'mine');
      assert.deepEqual(await quayRepository(await w.module('dev'), nested), { changed: false });
      assert.deepEqual(await quayRepository(await w.module('dev'), { name: 'cli', visibility: 'public' }), { changed: true });
      assert.equal((await w.t.registry.repositories.details('dev/cli' as RepositoryName))!.visibility, 'public');
      assert.deepEqual(await quayRepository(await w.module('dev'), { name: 'cli', visibility: 'public' }), { changed: false });
      for (const name of ['dev/tools/cli', 'cli']) {
        assert.deepEqual(await quayRepository(await w.module('dev'), { name, state: 'absent' }), { changed: true });
        assert.deepEqual(await quayRepository(await w.module('dev'), { name, state: 'absent' }), { changed: false });
      }
      await assert.rejects(quayRepository(await w.module('dev'), { name: 'owner/theirs' }), /not the owner of owner's namespace/);
    });

    it('deletes the repository; a second absent run changes nothing', async () => {
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', state: 'absent' }), { changed: true });
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'prod/team/app', state: 'absent' }), { changed: false });
      assert.deepEqual(await quayRepository(await w.module('owner'), { name: 'ghostorg/app', state: 'absent' }), { changed: false });
    });

    it('answers bad input on the new repository routes with 4xx in Quay’s error shape, never a 5xx', async () => {
      await w.t.registry.repositories.create('prod/team/lib' as RepositoryName, { visibility: 'private' });
      const m = await w.module('owner');
      const reader = await w.module('reader');
      for (const [method, path, body, status] of [
        ['PUT', 'repository/prod/team/lib', {}, 400],
        ['PUT', 'repository/prod/team/lib', { description: 7 }, 400],
        ['PUT', 'repository/prod/team/lib', { description: 'x'.repeat(100_001) }, 400],
        ['PUT', 'repository/prod/nosuch', { description: 'x' }, 404],
        ['PUT', 'repository/prod%2Fteam%2Flib', { description: 'encoded' }, 200],
        ['POST', 'user/starred', {}, 400],
        ['POST', 'user/starred', { namespace: 'prod', repository: 'nosuch' }, 404],
        ['POST', 'user/starred', { namespace: 'prod/x', repository: 'lib' }, 400],
        ['POST', 'user/starred', { namespace: 'prod', repository: 'team/lib' }, 201],
        ['POST', 'user/starred', { namespace: 'prod', repository: 'team/lib' }, 201],
        ['DELETE', 'user/starred/prod%2Fteam%2Flib', undefined, 204],
        ['DELETE', 'user/starred/prod/team/lib', undefined, 404],
        ['DELETE', 'user/starred/prod', undefined, 400],
        ['DELETE', 'user/starred/prod/nosuch/', undefined, 404],
        ['DELETE', 'user/starred/UPPER/Case', undefined, 400],
        ['PUT', 'repository/prod/team/lib/changestate', { state: 'MIRROR', robot: 'prod+nosuch' }, 400],
        ['PUT', 'repository/prod/team/lib/changestate', { state: 'ORG_MIRROR' }, 400],
      ] as const) {
        const res = await m.request(method, path, { body, okErrorCodes: [400, 404] });
        assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 80)}: ${JSON.stringify(res.json).slice(0, 200)}`);
        if (status >= 400) assert.equal(res.json.status, status);
      }
      assert.equal((await w.t.registry.repositories.details('prod/team/lib' as RepositoryName))!.description, 'encoded');
      // Without write permission: the repository is not even visible to `reader` (private): 404, as for any repository route.
      assert.equal((await reader.request('PUT', 'repository/prod/team/lib', { body: { description: 'x' } })).status, 404);
      await w.a.grants.setRepositoryPermission((await w.t.registry.repositories.details('prod/team/lib' as RepositoryName))!, { kind: 'user', name: 'reader' }, 'read');
      await assert.rejects(reader.put('repository/prod/team/lib', { description: 'x' }), /HTTP 403/);
      assert.equal((await reader.request('POST', 'user/starred', { body: { namespace: 'prod', repository: 'team/lib' } })).status, 201, 'read access is enough to star');
      const starred = await reader.get('user/starred');
      assert.deepEqual(starred?.repositories, [{ namespace: 'prod', name: 'team/lib' }]);
      const anonymous = await w.t.app.inject({ method: 'POST', url: '/api/v1/user/starred', payload: { namespace: 'prod', repository: 'team/lib' } });
      assert.equal(anonymous.statusCode, 401);
    });
  });
}
