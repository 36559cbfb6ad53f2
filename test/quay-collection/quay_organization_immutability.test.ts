/**
 * `quay_organization_immutability` replayed: `organization/{org}/immutabilitypolicy/` list, create,
 * update and delete as the module decides them, and what a policy does to the organization's tags
 * (nested repository `qc/team/app`): matching tags become immutable when the policy is saved and when
 * they are pushed later, a push over them is refused on `/v2`, and deleting the policy leaves them so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, AUTH_MODES, buildQuayWorld, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';
import { immutabilityModule, type ImmutabilityParams } from '../helpers/immutability-module.js';

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_organization_immutability replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    const run = async (p: ImmutabilityParams) => {
      if (!(await w.getObject('organization/qc'))) return p.state === 'absent' ? { changed: false } : { failed: 'no namespace' };
      return immutabilityModule(w, 'organization/qc', p);
    };
    const immutable = async () => Object.fromEntries((await w.getTags('qc', 'team/app')).map((t) => [t.name, t.immutable]));

    it('creates a policy once; the live tags it selects (at the start of the name) become immutable at once', async () => {
      assert.deepEqual(await run({ tag_pattern: 'v[0-9]' }), { changed: true });
      assert.deepEqual(await run({ tag_pattern: 'v[0-9]' }), { changed: false });
      assert.deepEqual(await immutable(), { latest: false, v1: true, v2: true });
      const list = await w.getObject('organization/qc/immutabilitypolicy/');
      assert.equal(list.policies.length, 1);
      assert.deepEqual(Object.keys(list.policies[0]).sort(), ['tagPattern', 'tagPatternMatches', 'uuid']);
      assert.deepEqual(await w.getObject(`organization/qc/immutabilitypolicy/${list.policies[0].uuid}`), list.policies[0]);
      const log = (await w.t.accounts!.audit.query({ kinds: ['tags_made_immutable_by_policy'], limit: 1 })).entries[0];
      assert.equal(log?.metadata?.count, 2);
    });

    it('marks matching tags pushed later, and refuses a /v2 push over them with DENIED', async () => {
      await w.pushImage(REPO, 'v3', 'three');
      await w.pushImage(REPO, 'dev-v3', 'three');
      assert.deepEqual(await immutable(), { latest: false, v1: true, v2: true, v3: true, 'dev-v3': false });
      const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
      const res = await w.t.app.inject({
        method: 'PUT',
        url: `/v2/${REPO}/manifests/v1`,
        headers: { authorization: basic, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        payload: (await w.t.registry.manifests.get(REPO as never, { kind: 'digest', digest: w.two.digest as never })).content,
      });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().errors[0].code, 'DENIED');
      assert.match(res.json().errors[0].message, /tag v1 of qc\/team\/app is immutable/);
      assert.equal((await w.getTags('qc', 'team/app', { tag: 'v1' }))[0].manifest_digest, w.one.digest);
    });

    it('changes the behaviour once, renames the pattern once', async () => {
      assert.deepEqual(await run({ tag_pattern: 'v[0-9]', behavior: 'not_matching_immutable' }), { changed: true });
      assert.deepEqual(await run({ tag_pattern: 'v[0-9]', behavior: 'not_matching_immutable' }), { changed: false });
      // Not matching `v[0-9]`: latest and dev-v3 become immutable too; nothing becomes mutable.
      assert.deepEqual(await immutable(), { latest: true, v1: true, v2: true, v3: true, 'dev-v3': true });
      assert.deepEqual(await run({ tag_pattern: 'v[0-9]', new_tag_pattern: 'release-' }), { changed: true });
      assert.deepEqual(await run({ tag_pattern: 'v[0-9]', new_tag_pattern: 'release-' }), { changed: false });
      const [p] = (await w.getObject('organization/qc/immutabilitypolicy/')).policies;
      assert.deepEqual({ tagPattern: p.tagPattern, tagPatternMatches: p.tagPatternMatches }, { tagPattern: 'release-', tagPatternMatches: false });
    });

    it('deletes the policy once (by either pattern); its tags stay immutable', async () => {
      assert.deepEqual(await run({ tag_pattern: 'v[0-9]', new_tag_pattern: 'release-', state: 'absent' }), { changed: true });
      assert.deepEqual(await run({ tag_pattern: 'release-', state: 'absent' }), { changed: false });
      assert.deepEqual((await w.getObject('organization/qc/immutabilitypolicy/')).policies, []);
      assert.equal((await immutable()).v1, true);
      assert.deepEqual(await run({ tag_pattern: 'x', state: 'absent' }), { changed: false });
    });

    it('works on the caller\'s own namespace too', async () => {
      assert.equal((await w.raw('POST', 'organization/admin/immutabilitypolicy/', { tagPattern: 'stable' })).status, 201);
      assert.equal((await w.getObject('organization/admin/immutabilitypolicy/')).policies.length, 1);
    });

    it('refuses bad input with Quay\'s error shape, and strangers, with no 5xx', async () => {
      const base = 'organization/qc/immutabilitypolicy/';
      for (const body of [{}, { tagPattern: '' }, { tagPattern: '   ' }, { tagPattern: '(' }, { tagPattern: 'x'.repeat(257) }, { tagPattern: 5 }, { tagPattern: 'a', tagPatternMatches: 'yes' }]) {
        assert.equal((await w.raw('POST', base, body)).status, 400, JSON.stringify(body));
      }
      assert.equal((await w.raw('POST', base, { tagPattern: 'dup' })).status, 201);
      assert.equal((await w.raw('POST', base, { tagPattern: ' dup ' })).status, 400, 'the same pattern, trimmed');
      for (const m of ['GET', 'PUT', 'DELETE']) {
        assert.equal((await w.raw(m, `${base}no-such-uuid`, m === 'PUT' ? { tagPattern: 'x' } : undefined)).status, 404, m);
      }
      assert.equal((await w.raw('GET', 'organization/nosuchorg/immutabilitypolicy/')).status, 404);
      assert.equal((await w.raw('GET', base, undefined, await w.outsider())).status, 404);
      assert.equal((await w.raw('GET', base, undefined, null)).status, 401);
      assert.equal((await w.raw('POST', base, { tagPattern: 'x' }, await w.writer())).status, 403);
    });
  });
}
