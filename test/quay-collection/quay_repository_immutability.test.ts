/**
 * `quay_repository_immutability` replayed: `split_name` (GET user/, GET organization/{ns}), then
 * `repository/{namespace}/{repository}/immutabilitypolicy/` list, create, update and delete as the
 * module decides them, on the nested repository `qc/team/app`; a repository policy applies to that
 * repository only, and immutable tags are not deleted by `/v2` either (by tag or by the digest they
 * point at).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';
import { immutabilityModule, type ImmutabilityParams } from '../helpers/immutability-module.js';

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_repository_immutability replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
      await w.t.registry.repositories.create('qc/other' as never, { visibility: 'private' });
      await w.pushImage('qc/other', 'release-1', 'other');
    });
    after(async () => w.close());

    const run = async (repository: string, p: ImmutabilityParams) => {
      assert.equal((await w.getObject('user/')).username, 'admin');
      const namespace = repository.slice(0, repository.indexOf('/'));
      if (!(await w.getObject(`organization/${namespace}`))) return p.state === 'absent' ? { changed: false } : { failed: 'no namespace' };
      return immutabilityModule(w, `repository/${repository}`, p);
    };
    const immutable = async (repo = 'team/app') => Object.fromEntries((await w.getTags('qc', repo)).map((t) => [t.name, t.immutable]));
    const basic = `Basic ${Buffer.from('admin:collection-admin-password-1').toString('base64')}`;

    it('creates a repository policy once; it marks that repository\'s tags only', async () => {
      await w.pushImage(REPO, 'release-1', 'r1');
      assert.deepEqual(await run(REPO, { tag_pattern: 'release-' }), { changed: true });
      assert.deepEqual(await run(REPO, { tag_pattern: 'release-' }), { changed: false });
      assert.deepEqual(await immutable(), { latest: false, v1: false, v2: false, 'release-1': true });
      assert.deepEqual(await immutable('other'), { 'release-1': false });
      assert.equal((await w.getObject('organization/qc/immutabilitypolicy/')).policies.length, 0);
    });

    it('keeps an immutable tag from /v2 deletes, by tag and by the digest it points at', async () => {
      const [tag] = await w.getTags('qc', 'team/app', { tag: 'release-1' });
      for (const ref of ['release-1', tag.manifest_digest]) {
        const res = await w.t.app.inject({ method: 'DELETE', url: `/v2/${REPO}/manifests/${ref}`, headers: { authorization: basic } });
        assert.equal(res.statusCode, 403, res.body);
        assert.equal(res.json().errors[0].code, 'DENIED');
      }
      const again = await w.pushImage(REPO, 'release-1', 'r1');
      assert.equal(again.digest, tag.manifest_digest, 're-pushing the same manifest is accepted and changes nothing');
      assert.equal((await w.getTags('qc', 'team/app', { tag: 'release-1', onlyActive: false })).length, 1);
    });

    it('changes and renames once, deletes once', async () => {
      assert.deepEqual(await run(REPO, { tag_pattern: 'release-', new_tag_pattern: 'v', behavior: 'matching_immutable' }), { changed: true });
      assert.deepEqual(await run(REPO, { tag_pattern: 'release-', new_tag_pattern: 'v', behavior: 'matching_immutable' }), { changed: false });
      assert.deepEqual(await immutable(), { latest: false, v1: true, v2: true, 'release-1': true });
      assert.deepEqual(await run(REPO, { tag_pattern: 'v', state: 'absent' }), { changed: true });
      assert.deepEqual(await run(REPO, { tag_pattern: 'v', state: 'absent' }), { changed: false });
    });

    it('fails for a repository that does not exist (GET 404), and an absent one is unchanged', async () => {
      assert.equal((await w.raw('GET', 'repository/qc/team/none/immutabilitypolicy/')).status, 404);
      assert.deepEqual(await run('qc/team/none', { tag_pattern: 'x' }), { failed: 'repository does not exist' });
      assert.deepEqual(await run('qc/team/none', { tag_pattern: 'x', state: 'absent' }), { changed: false });
      assert.deepEqual(await run('nosuchorg/app', { tag_pattern: 'x', state: 'absent' }), { changed: false });
    });

    it('refuses bad input, writers and strangers with Quay\'s error shape and no 5xx', async () => {
      const base = `repository/${REPO}/immutabilitypolicy/`;
      for (const body of [{}, { tagPattern: '' }, { tagPattern: '[' }, { tagPattern: 'ok', tagPatternMatches: 1 }]) {
        assert.equal((await w.raw('POST', base, body)).status, 400, JSON.stringify(body));
      }
      assert.equal((await w.raw('PUT', `${base}nope`, { tagPattern: 'x' })).status, 404);
      assert.equal((await w.raw('GET', base, undefined, await w.writer())).status, 403);
      assert.equal((await w.raw('GET', base, undefined, await w.outsider())).status, 404);
      assert.equal((await w.raw('GET', 'repository/qc%2Fteam%2Fapp/immutabilitypolicy/')).status, 200, 'the name with %2F');
    });
  });
}
