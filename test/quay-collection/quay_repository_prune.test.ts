/**
 * `quay_repository_prune` replayed on the nested repository `qc/team/app`: `split_name` (GET user/,
 * GET organization/{ns}), then `repository/{namespace}/{repository}/autoprunepolicy/` list, create and
 * delete as the module decides them; and pruning with it, which never touches an immutable tag.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';
import { pruneModule, type PruneParams } from '../helpers/prune-module.js';

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_repository_prune replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    const run = async (repository: string, p: PruneParams) => {
      assert.equal((await w.getObject('user/')).username, 'admin');
      const namespace = repository.slice(0, repository.indexOf('/'));
      if (!(await w.getObject(`organization/${namespace}`))) return p.state === 'absent' ? { changed: false } : { failed: 'no namespace' };
      return pruneModule(w, `repository/${repository}`, p, { repository: true });
    };

    it('creates a policy once and deletes it once', async () => {
      assert.equal((await run(REPO, { method: 'tags', value: '1' }) as { changed: boolean }).changed, true);
      assert.equal((await run(REPO, { method: 'tags', value: '1' }) as { changed: boolean }).changed, false);
      assert.equal((await run(REPO, { method: 'tags', value: '1', state: 'absent' }) as { changed: boolean }).changed, true);
      assert.deepEqual(await run(REPO, { method: 'tags', value: '1', state: 'absent' }), { changed: false });
    });

    it('fails for a repository that does not exist (GET 404)', async () => {
      assert.equal((await w.raw('GET', 'repository/qc/team/none/autoprunepolicy/')).status, 404);
      assert.deepEqual(await run('qc/team/none', { method: 'tags', value: '1' }), { failed: 'repository does not exist' });
      assert.deepEqual(await run('qc/team/none', { method: 'tags', value: '1', state: 'absent' }), { changed: false });
    });

    it('prunes with it, leaving immutable tags alone and not counting them', async () => {
      // v2, the newest tag, is made immutable: keeping 1 keeps the newest of the others (latest) and
      // prunes v1; were v2 counted, latest would go too.
      await w.update(`repository/${REPO}/tag/v2`, { immutable: true });
      assert.equal((await run(REPO, { method: 'tags', value: '1' }) as { changed: boolean }).changed, true);
      const ns = (await w.t.registry.repositories.details(REPO as never))!;
      const res = await w.t.registry.autoprune.pruner.prune({ namespaceId: ns.namespaceId, namespace: 'qc' }, { nowMs: Date.now() });
      assert.deepEqual(res.errors, []);
      assert.deepEqual(res.pruned.map((p) => p.tag), ['v1']);
      assert.deepEqual((await w.getTags('qc', 'team/app')).map((t) => t.name).sort(), ['latest', 'v2']);
    });

    it('refuses bad input, writers and strangers with Quay\'s error shape and no 5xx', async () => {
      const base = `repository/${REPO}/autoprunepolicy/`;
      assert.equal((await w.raw('POST', base, { method: 'number_of_tags', value: -1 })).status, 400);
      assert.equal((await w.raw('POST', base, { method: 'number_of_tags', value: 1 }, await w.writer())).status, 403);
      assert.equal((await w.raw('GET', base, undefined, await w.outsider())).status, 404);
    });
  });
}
