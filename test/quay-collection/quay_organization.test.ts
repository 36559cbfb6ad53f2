/**
 * The collection's `quay_organization` module, replayed call by call (quay-module.ts): the
 * organization (and the `new_name` one) from GET organization/{org}, creation with POST organization/,
 * a rename with PUT superuser/organizations/{org} {name}, email and time machine with PUT
 * organization/{org} (compared against `email` and `tag_expiration_s` read back), removal with DELETE.
 * (Its deprecated auto-prune options go to the auto-prune endpoints, replayed with quay_organization_prune.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RepositoryName } from '../../src/oci/reference.js';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, buildQuayWorld, ModuleFailure, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';

interface OrganizationParams {
  name: string;
  new_name?: string;
  email?: string;
  /** Seconds (the module converts "7d" and the like before sending). */
  time_machine_expiration?: number;
  state?: 'present' | 'absent';
}

async function quayOrganization(m: QuayModule, p: OrganizationParams): Promise<{ changed: boolean }> {
  let name = p.name;
  let org = await m.getOrganization(p.name);
  const renamed = p.new_name ? await m.getOrganization(p.new_name) : null;
  if (org && renamed) throw new ModuleFailure(`The ${p.new_name} organization (\`new_name') already exists.`);
  if (p.state === 'absent') {
    return renamed ? { changed: await m.delete(renamed, `organization/${p.new_name}`) } : { changed: await m.delete(org, `organization/${p.name}`) };
  }
  let created = false;
  if (p.new_name) {
    if (!org) {
      if (!renamed) {
        await m.create('organization/', { name: p.new_name, ...(p.email ? { email: p.email } : {}) });
        created = true;
      } else org = renamed;
    } else {
      await m.update(org, `superuser/organizations/${p.name}`, { name: p.new_name });
      created = true;
    }
    name = p.new_name;
  } else if (!org) {
    await m.create('organization/', { name: p.name, ...(p.email ? { email: p.email } : {}) });
    created = true;
  }
  const fields: Record<string, unknown> = {};
  if (p.time_machine_expiration !== undefined) fields.tag_expiration_s = p.time_machine_expiration;
  if (p.email) fields.email = p.email;
  const updated = await m.update(org, `organization/${name}`, fields);
  return { changed: created || updated };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_organization against Wharf (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode);
      await w.a.accounts.createUser({ name: 'taken', password: 'taken-password-1' });
    });
    after(() => w?.close());

    it('creates an organization; a second run changes nothing; email and time machine change once', async () => {
      const params: OrganizationParams = { name: 'prod', email: 'prod@example.com' };
      assert.deepEqual(await quayOrganization(await w.module(), params), { changed: true });
      const again = await w.module();
      assert.deepEqual(await quayOrganization(again, params), { changed: false });
      assert.deepEqual(again.calls.filter((c) => c.method !== 'GET'), []);
      const week = 7 * 24 * 3600;
      assert.deepEqual(await quayOrganization(await w.module(), { ...params, time_machine_expiration: week }), { changed: true });
      assert.deepEqual(await quayOrganization(await w.module(), { ...params, time_machine_expiration: week }), { changed: false });
      assert.deepEqual(await quayOrganization(await w.module(), { name: 'prod', email: 'ops@example.com' }), { changed: true });
      assert.equal((await w.a.accounts.getOrganization('prod'))?.email, 'ops@example.com');
    });

    it('renames with PUT superuser/organizations/{org}: repositories, robots and teams follow; a second run changes nothing', async () => {
      await w.a.robots.create('prod', 'ci');
      await w.a.teams.createTeam('prod', 'devs', { role: 'member' });
      const { repository } = await w.t.registry.repositories.create('prod/team/app' as RepositoryName, { visibility: 'private' });
      await w.a.grants.setRepositoryPermission(repository, { kind: 'robot', name: 'prod+ci' }, 'write');

      const m = await w.module();
      assert.deepEqual(await quayOrganization(m, { name: 'prod', new_name: 'production' }), { changed: true });
      assert.ok(m.calls.some((c) => c.method === 'PUT' && c.path === '/api/v1/superuser/organizations/prod' && c.status === 200), JSON.stringify(m.calls));
      assert.equal(await w.a.accounts.getOrganization('prod'), undefined);
      assert.equal((await w.a.accounts.getOrganization('production'))?.email, 'ops@example.com');
      assert.ok(await w.t.registry.repositories.details('production/team/app' as RepositoryName));
      assert.deepEqual((await w.a.robots.list('production')).map((r) => r.name), ['production+ci']);
      assert.deepEqual(
        (await w.a.grants.listRepositoryPermissions((await w.t.registry.repositories.details('production/team/app' as RepositoryName))!)).map((p) => [p.name, p.role]),
        [['production+ci', 'write']],
      );
      assert.ok(await w.a.teams.getTeam('production', 'devs'));
      const again = await w.module();
      assert.deepEqual(await quayOrganization(again, { name: 'prod', new_name: 'production' }), { changed: false });
      assert.deepEqual(again.calls.filter((c) => c.method !== 'GET'), []);
    });

    it('refuses a rename onto a taken name (409), by a non-superuser (403), and bad names (400), never a 5xx', async () => {
      const m = await w.module();
      await w.a.accounts.createOrganization({ name: 'spare', creator: 'admin' });
      for (const [body, status] of [
        [{ name: 'taken' }, 409],
        [{ name: 'production' }, 409],
        [{ name: 'Bad Name' }, 400],
        [{ name: '' }, 400],
        [{ name: 7 }, 400],
        [{ name: 'x'.repeat(300) }, 400],
      ] as const) {
        const res = await m.request('PUT', 'superuser/organizations/spare', { body, okErrorCodes: [400, 409] });
        assert.equal(res.status, status, JSON.stringify(body));
        assert.equal(res.json.status, status);
      }
      const missing = await m.request('PUT', 'superuser/organizations/nosuchorg', { body: { name: 'whatever' } });
      assert.equal(missing.status, 404);
      const user = await m.request('PUT', 'superuser/organizations/taken', { body: { name: 'whatever' } });
      assert.equal(user.status, 404, 'a user namespace is no organization');
      const unchanged = await m.request('PUT', 'superuser/organizations/spare', { body: {} });
      assert.deepEqual(unchanged.json, { name: 'spare', email: null });
      const asOwner = await w.module('taken');
      await assert.rejects(asOwner.put('superuser/organizations/spare', { name: 'mine' }), /HTTP 403/);
    });

    it('deletes the organization (by its new name when given); a second absent run changes nothing', async () => {
      assert.deepEqual(await quayOrganization(await w.module(), { name: 'prod', new_name: 'production', state: 'absent' }), { changed: true });
      assert.equal(await w.a.accounts.getOrganization('production'), undefined);
      assert.deepEqual(await quayOrganization(await w.module(), { name: 'prod', new_name: 'production', state: 'absent' }), { changed: false });
      assert.deepEqual(await quayOrganization(await w.module(), { name: 'spare', state: 'absent' }), { changed: true });
      assert.deepEqual(await quayOrganization(await w.module(), { name: 'spare', state: 'absent' }), { changed: false });
    });
  });
}
