/**
 * `quay_manifest_label_info` replayed: the digest from `get_tags` (history included) or the image name,
 * then GET `…/manifest/{digest}/labels`, filtered by key as the module does (and with Quay's `filter`
 * prefix parameter); on the nested repository `qc/team/app`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

async function quayManifestLabelInfo(w: QuayWorld, p: { image: string; key?: string }): Promise<any[]> {
  const at = p.image.indexOf('@');
  const colon = p.image.lastIndexOf(':');
  const repo = at >= 0 ? p.image.slice(0, at) : colon > 0 ? p.image.slice(0, colon) : p.image;
  const [namespace, repository] = [repo.slice(0, repo.indexOf('/')), repo.slice(repo.indexOf('/') + 1)];
  if (!(await w.getObject(`organization/${namespace}`))) return [];
  let digest = at >= 0 ? p.image.slice(at + 1) : undefined;
  if (!digest) {
    const tags = await w.getTags(namespace, repository, { tag: colon > 0 ? p.image.slice(colon + 1) : 'latest', onlyActive: false });
    if (!tags.length) return [];
    digest = tags[0].manifest_digest as string;
  }
  const res = await w.getObject(`repository/${namespace}/${repository}/manifest/${digest}/labels`);
  const labels: any[] = res.labels;
  return p.key ? labels.filter((l) => l.key === p.key) : labels;
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_manifest_label_info replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
      await w.create(`repository/${REPO}/manifest/${w.one.digest}/labels`, { key: 'env', value: 'prod', media_type: 'text/plain' });
    });
    after(async () => w.close());

    it('returns the image configuration\'s labels and the added ones, by tag or digest, all or one key', async () => {
      const all = await quayManifestLabelInfo(w, { image: `${REPO}:v1` });
      assert.deepEqual(all.map((l) => [l.key, l.source_type]), [['maintainer', 'manifest'], ['org.example.seed', 'manifest'], ['env', 'api']]);
      assert.deepEqual(await quayManifestLabelInfo(w, { image: `${REPO}@${w.one.digest}` }), all);
      assert.deepEqual((await quayManifestLabelInfo(w, { image: `${REPO}:v1`, key: 'env' })).map((l) => l.value), ['prod']);
      assert.deepEqual((await quayManifestLabelInfo(w, { image: `${REPO}:v2` })).map((l) => l.key), ['maintainer', 'org.example.seed']);
    });

    it('filters by key prefix (Quay\'s filter parameter)', async () => {
      const res = await w.getObject(`repository/${REPO}/manifest/${w.one.digest}/labels`, { filter: 'org.' });
      assert.deepEqual(res.labels.map((l: any) => l.key), ['org.example.seed']);
      assert.deepEqual((await w.getObject(`repository/${REPO}/manifest/${w.one.digest}/labels`, { filter: 'zzz' })).labels, []);
    });

    it('reports nothing for an absent namespace or tag; 404 for an unknown digest or repository', async () => {
      assert.deepEqual(await quayManifestLabelInfo(w, { image: 'nosuchorg/team/app:v1' }), []);
      assert.deepEqual(await quayManifestLabelInfo(w, { image: `${REPO}:nope` }), []);
      assert.equal((await w.raw('GET', `repository/${REPO}/manifest/sha256:${'1'.repeat(64)}/labels`)).status, 404);
      assert.equal((await w.raw('GET', `repository/qc/team/none/manifest/${w.one.digest}/labels`)).status, 404);
    });
  });
}
