/**
 * The collection's `quay_robot` module, replayed call by call (quay-module.ts): the namespace
 * comes from the name (`org+short`, or the caller's own for a bare name), the robot from GET
 * organization/{org}/robots/{short} or user/robots/{short} (400 or 404 = absent), creation is PUT with
 * the description, federations are read with GET …/federation and replaced with POST …/federation (a
 * JSON array). The module returns the robot's `name` and `token`, from the PUT or from the GET.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, buildQuayWorld, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';

interface RobotParams {
  name: string;
  description?: string;
  federations?: Array<{ issuer: string; subject: string }>;
  append?: boolean;
  state?: 'present' | 'absent';
}

async function quayRobot(m: QuayModule, p: RobotParams): Promise<{ changed: boolean; name?: string; token?: string }> {
  const split = await m.splitName(p.name, p.state ?? 'present', '+');
  if (split === 'absent') return { changed: false };
  const path = split.isOrg ? `organization/${split.namespace}/robots/${split.short}` : `user/robots/${split.short}`;
  const fedPath = `${path}/federation`;
  const exit = (changed: boolean, data: Record<string, any> | null) => ({ changed, ...(data?.name ? { name: data.name } : {}), ...(data?.token ? { token: data.token } : {}) });
  const key = (f: { issuer: string; subject: string }) => JSON.stringify([f.issuer, f.subject]);
  const wanted = new Map((p.federations ?? []).map((f) => [key(f), f]));
  const details = await m.get(path, { okErrorCodes: [400, 404] });
  if (p.state === 'absent') return { changed: await m.delete(details, path) };
  if (details) {
    if (p.federations === undefined) return exit(false, details);
    const listed = (await m.get(fedPath)) as unknown as Array<{ issuer: string; subject: string }> | null;
    const current = new Map((listed ?? []).map((f) => [key(f), f]));
    const toAdd = [...wanted.keys()].filter((k) => !current.has(k));
    const same = wanted.size === current.size && toAdd.length === 0;
    if (same || (p.append !== false && toAdd.length === 0)) return exit(false, details);
    const entries = p.append !== false ? new Map([...wanted, ...current]) : wanted;
    await m.create(fedPath, JSON.stringify([...entries.values()].map((f) => ({ issuer: f.issuer, subject: f.subject, isExpanded: false }))));
    return exit(true, details);
  }
  const created = await m.put(path, p.description ? { description: p.description } : {});
  if (p.federations?.length) await m.create(fedPath, JSON.stringify(p.federations.map((f) => ({ ...f, isExpanded: false }))));
  return exit(true, created);
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_robot against Wharf (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode);
      await w.a.accounts.createUser({ name: 'owner', password: 'owner-password-1' });
      await w.a.accounts.createUser({ name: 'member', password: 'member-password-1' });
      await w.a.accounts.createOrganization({ name: 'prod', creator: 'owner' });
      await w.a.teams.createTeam('prod', 'devs', { role: 'member' });
      await w.a.teams.addMember('prod', 'devs', 'member');
    });
    after(() => w?.close());

    const gha = { issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:acme/app:ref:refs/heads/main' };
    const gitlab = { issuer: 'https://gitlab.example.com', subject: 'project_path:acme/app:ref_type:branch:ref:main' };

    it('creates an organization robot with federations and returns its token; a second run returns the same token and changes nothing', async () => {
      const params: RobotParams = { name: 'prod+builder', description: 'CI builder', federations: [gha] };
      const first = await quayRobot(await w.module('owner'), params);
      assert.equal(first.changed, true);
      assert.equal(first.name, 'prod+builder');
      assert.equal(typeof first.token, 'string');
      const m = await w.module('owner');
      const second = await quayRobot(m, params);
      assert.deepEqual(second, { changed: false, name: 'prod+builder', token: first.token }, 'the GET shows the token to the organization admin, as in Quay');
      assert.deepEqual(m.calls.filter((c) => c.method !== 'GET'), []);
      const basic = `Basic ${Buffer.from(`prod+builder:${second.token}`).toString('base64')}`;
      assert.equal((await w.t.app.inject({ url: '/v2/', headers: { authorization: basic } })).statusCode, 200);
    });

    it('adds federations (append), replaces them (append=false), and stores exactly what Quay would', async () => {
      assert.equal((await quayRobot(await w.module('owner'), { name: 'prod+builder', federations: [gha] })).changed, false);
      assert.equal((await quayRobot(await w.module('owner'), { name: 'prod+builder', federations: [gitlab] })).changed, true);
      const m = await w.module('owner');
      const stored = (await m.get('organization/prod/robots/builder/federation')) as unknown as unknown[];
      assert.equal(stored.length, 2);
      assert.ok(stored.every((f) => Object.keys(f as object).sort().join() === 'issuer,subject'), JSON.stringify(stored));
      assert.equal((await quayRobot(await w.module('owner'), { name: 'prod+builder', federations: [gitlab], append: false })).changed, true);
      assert.deepEqual(await (await w.module('owner')).get('organization/prod/robots/builder/federation'), [gitlab]);
      assert.equal((await quayRobot(await w.module('owner'), { name: 'prod+builder', federations: [gitlab], append: false })).changed, false);
    });

    it('regenerating the token changes what GET shows; the list never carries tokens; members see no robot', async () => {
      const m = await w.module('owner');
      const regenerated = await m.create('organization/prod/robots/builder/regenerate', {});
      const shown = await m.get('organization/prod/robots/builder');
      assert.equal(shown?.token, regenerated.token);
      const list = await m.get('organization/prod/robots');
      assert.ok(!JSON.stringify(list).includes(regenerated.token));
      const asMember = await w.module('member');
      await assert.rejects(asMember.get('organization/prod/robots/builder', { okErrorCodes: [400, 404] }), /HTTP 403/);
    });

    it('a personal robot (bare name) of the caller; absent twice', async () => {
      const first = await quayRobot(await w.module('owner'), { name: 'mybot', description: 'mine' });
      assert.equal(first.name, 'owner+mybot');
      assert.equal((await quayRobot(await w.module('owner'), { name: 'owner+mybot' })).token, first.token);
      assert.deepEqual(await quayRobot(await w.module('owner'), { name: 'owner+mybot', state: 'absent' }), { changed: true });
      assert.deepEqual(await quayRobot(await w.module('owner'), { name: 'mybot', state: 'absent' }), { changed: false });
      assert.deepEqual(await quayRobot(await w.module('owner'), { name: 'ghostorg+bot', state: 'absent' }), { changed: false });
    });

    it('answers bad federation input with 400 (Quay’s messages), never a 5xx', async () => {
      const m = await w.module('owner');
      const url = 'organization/prod/robots/builder/federation';
      for (const body of [
        '{}',
        '[{"issuer": "https://x"}]',
        '[{"issuer": "ftp://x", "subject": "s"}]',
        JSON.stringify([gha, gha]),
        '[1]',
        '[null]',
        'not json',
        JSON.stringify([{ issuer: `https://${'x'.repeat(3000)}`, subject: 's' }]),
      ]) {
        const res = await m.request('POST', url, { body, okErrorCodes: [400] });
        assert.equal(res.status, 400, body);
        assert.equal(typeof res.json.detail, 'string');
      }
      for (const [method, path] of [
        ['GET', 'organization/prod/robots/nosuch/federation'],
        ['POST', 'organization/prod/robots/nosuch/federation'],
        ['GET', 'organization/nosuchorg/robots/builder/federation'],
        ['DELETE', 'organization/prod/robots/nosuch/federation'],
      ] as const) {
        const res = await m.request(method, path, { body: method === 'POST' ? '[]' : undefined });
        assert.equal(res.status, 404, `${method} ${path}`);
      }
      const longest = [{ issuer: `https://${'i'.repeat(2040)}`, subject: 's'.repeat(2048) }];
      assert.equal((await m.request('POST', url, { body: JSON.stringify(longest) })).status, 200, 'the longest entries are stored');
      assert.deepEqual(await m.get(url), longest);
      const cleared = await m.request('DELETE', url);
      assert.equal(cleared.status, 204);
      assert.deepEqual(await m.get(url), []);
    });
  });
}
