/**
 * `quay_organization_prune` replayed: `organization/{org}/autoprunepolicy/` list, create and delete as
 * the module decides them (matching on method, value, tagPattern and tagPatternMatches), with
 * `append` true and false; and the policy pruning the organization's nested repository `qc/team/app`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';
import { pruneModule, type PruneParams } from '../helpers/prune-module.js';

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_organization_prune replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    const run = async (p: PruneParams, org = 'qc') => {
      if (!(await w.getObject(`organization/${org}`))) return p.state === 'absent' ? { changed: false } : { failed: 'no namespace' };
      return pruneModule(w, `organization/${org}`, p);
    };
    const policies = async () => (await w.getObject('organization/qc/autoprunepolicy/')).policies as any[];

    it('creates a number-of-tags policy once, and a creation-date policy with a pattern once', async () => {
      const first = await run({ method: 'tags', value: '5' });
      assert.equal((first as { changed: boolean }).changed, true);
      assert.deepEqual(await run({ method: 'tags', value: '5' }), { changed: false, id: (first as { id: string }).id });
      assert.equal((await run({ method: 'date', value: '7d', tag_pattern: '^dev-', tag_pattern_matches: false }) as { changed: boolean }).changed, true);
      assert.equal((await run({ method: 'date', value: '7 d', tag_pattern: '^dev-', tag_pattern_matches: false }) as { changed: boolean }).changed, false);
      assert.deepEqual((await policies()).map((p) => [p.method, p.value, p.tagPattern, p.tagPatternMatches]), [
        ['number_of_tags', 5, null, true],
        ['creation_date', '7d', '^dev-', false],
      ]);
    });

    it('with append false, keeps only the given policy (once)', async () => {
      assert.equal((await run({ method: 'tags', value: '2', append: false }) as { changed: boolean }).changed, true);
      assert.deepEqual((await policies()).map((p) => p.value), [2]);
      assert.equal((await run({ method: 'tags', value: '2', append: false }) as { changed: boolean }).changed, false);
    });

    it('prunes the nested repository with it: the newest tags stay, the others go to history', async () => {
      const ns = (await w.t.registry.repositories.details(REPO as never))!;
      const run1 = await w.t.registry.autoprune.pruner.prune({ namespaceId: ns.namespaceId, namespace: 'qc' }, { nowMs: Date.now() });
      assert.deepEqual(run1.errors, []);
      assert.equal(run1.pruned.length, 1);
      assert.equal((await w.getTags('qc', 'team/app')).length, 2);
    });

    it('deletes the policy once', async () => {
      assert.deepEqual(await run({ method: 'tags', value: '2', state: 'absent' }), { changed: true });
      assert.deepEqual(await run({ method: 'tags', value: '2', state: 'absent' }), { changed: false });
      assert.deepEqual(await run({ method: 'tags', value: '2', state: 'absent' }, 'nosuchorg'), { changed: false });
      assert.deepEqual(await policies(), []);
    });

    it('refuses bad input with Quay\'s error shape and no 5xx', async () => {
      const base = 'organization/qc/autoprunepolicy/';
      for (const body of [{ method: 'number_of_tags', value: 0 }, { method: 'bogus', value: 1 }, { method: 'creation_date', value: '7x' }, { method: 'creation_date', value: '7d', tagPattern: '(' }]) {
        assert.equal((await w.raw('POST', base, body)).status, 400, JSON.stringify(body));
      }
      assert.equal((await w.raw('DELETE', `${base}no-such-uuid`)).status, 404);
      assert.equal((await w.raw('GET', base, undefined, await w.outsider())).status, 404);
    });
  });
}
