/**
 * `quay_tag_info` (plugins/modules/quay_tag_info.py) replayed: the namespace lookup, then `get_tags`
 * (`…/tag/?onlyActiveTags=False&limit=100&page=N`, with `specificTag` or filtered by digest), on a
 * nested repository name; the fields the module returns, history rows included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

async function quayTagInfo(w: QuayWorld, p: { repository: string; tag?: string; digest?: string; onlyActiveTags?: boolean }) {
  const [namespace, repository] = [p.repository.slice(0, p.repository.indexOf('/')), p.repository.slice(p.repository.indexOf('/') + 1)];
  if (!(await w.getObject(`organization/${namespace}`))) return [];
  return w.getTags(namespace, repository, { tag: p.tag, digest: p.digest, onlyActive: p.onlyActiveTags ?? false });
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_tag_info replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
      // History: latest moves to image two, so its earlier row ends.
      await w.update(`repository/${REPO}/tag/latest`, { manifest_digest: w.two.digest });
    });
    after(async () => w.close());

    it('lists every tag with history by default, with the fields the module documents', async () => {
      const tags = await quayTagInfo(w, { repository: REPO });
      assert.deepEqual(tags.map((t) => t.name).sort(), ['latest', 'latest', 'v1', 'v2']);
      for (const t of tags) {
        for (const field of ['name', 'reversion', 'start_ts', 'manifest_digest', 'is_manifest_list', 'size', 'last_modified', 'immutable']) assert.ok(field in t, `${field} in ${JSON.stringify(t)}`);
        assert.equal(t.is_manifest_list, false);
        assert.equal(typeof t.size, 'number');
      }
      const ended = tags.filter((t) => t.end_ts !== undefined);
      assert.equal(ended.length, 1);
      assert.equal(ended[0].manifest_digest, w.one.digest);
      assert.equal(typeof ended[0].expiration, 'string');
    });

    it('selects by tag, by digest, or live tags only', async () => {
      assert.deepEqual((await quayTagInfo(w, { repository: REPO, tag: 'v1' })).map((t) => t.manifest_digest), [w.one.digest]);
      assert.deepEqual((await quayTagInfo(w, { repository: REPO, digest: w.two.digest })).map((t) => t.name).sort(), ['latest', 'v2']);
      assert.deepEqual((await quayTagInfo(w, { repository: REPO, onlyActiveTags: true })).map((t) => t.name).sort(), ['latest', 'v1', 'v2']);
    });

    it('answers an absent namespace, repository or tag with nothing (404 read as absent), never 5xx', async () => {
      assert.deepEqual(await quayTagInfo(w, { repository: 'nosuchorg/team/app' }), []);
      assert.deepEqual(await quayTagInfo(w, { repository: 'qc/team/none' }), []);
      assert.deepEqual(await quayTagInfo(w, { repository: REPO, tag: 'nope' }), []);
      for (const q of ['limit=0', 'page=x', 'onlyActiveTags=maybe', 'specificTag=-x']) {
        assert.equal((await w.raw('GET', `repository/${REPO}/tag/?${q}`)).status, 400, q);
      }
    });
  });
}
