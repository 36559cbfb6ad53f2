/**
 * `quay_pull_stat_info` replayed: GET `…/tag/{tag}/pull_statistics` (tag defaults to `latest`) or
 * `…/manifest/{digest}/pull_statistics`, with the fields the module renames and returns; counts come
 * from the `pull_repo` audit entries of real `/v2` pulls of the nested repository `qc/team/app`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, ADMIN_PASSWORD, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

async function quayPullStatInfo(w: QuayWorld, p: { repository: string; tag?: string; digest?: string }): Promise<Record<string, unknown>> {
  const [namespace, repository] = [p.repository.slice(0, p.repository.indexOf('/')), p.repository.slice(p.repository.indexOf('/') + 1)];
  if (!(await w.getObject(`organization/${namespace}`))) return { changed: false, stats: [] };
  const stats = p.digest
    ? await w.getObject(`repository/${namespace}/${repository}/manifest/${p.digest}/pull_statistics`)
    : await w.getObject(`repository/${namespace}/${repository}/tag/${p.tag ?? 'latest'}/pull_statistics`);
  const result: Record<string, unknown> = { changed: false, ...stats };
  if ('current_manifest_digest' in result) {
    result.manifest_digest = result.current_manifest_digest;
    delete result.current_manifest_digest;
  }
  return result;
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_pull_stat_info replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
    const pull = async (ref: string) => {
      const res = await w.t.app.inject({ method: 'GET', url: `/v2/${REPO}/manifests/${ref}`, headers: { authorization: basic, accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(res.statusCode, 200, res.body);
    };
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    it('reports zero pulls and null dates before any pull', async () => {
      assert.deepEqual(await quayPullStatInfo(w, { repository: REPO, tag: 'v2' }), {
        changed: false,
        tag_name: 'v2',
        tag_pull_count: 0,
        last_tag_pull_date: null,
        manifest_digest: w.two.digest,
        manifest_pull_count: 0,
        last_manifest_pull_date: null,
      });
    });

    it('counts pulls by tag for the tag, and every pull of the manifest for the manifest', async () => {
      await pull('v1');
      await pull('v1');
      await pull('latest');
      await pull(w.one.digest);
      const byTag = await quayPullStatInfo(w, { repository: REPO, tag: 'v1' });
      assert.equal(byTag.tag_pull_count, 2);
      assert.equal(byTag.manifest_pull_count, 4);
      assert.equal(byTag.manifest_digest, w.one.digest);
      assert.match(String(byTag.last_tag_pull_date), /GMT$/);
      assert.equal((await quayPullStatInfo(w, { repository: REPO })).tag_pull_count, 1, 'latest by default');
      assert.deepEqual(Object.keys(await quayPullStatInfo(w, { repository: REPO, digest: w.one.digest })).sort(), ['changed', 'last_manifest_pull_date', 'manifest_digest', 'manifest_pull_count']);
      assert.equal((await quayPullStatInfo(w, { repository: REPO, digest: w.one.digest })).manifest_pull_count, 4);
      assert.equal((await quayPullStatInfo(w, { repository: REPO, digest: w.two.digest })).manifest_pull_count, 0);
    });

    it('answers 404 for a tag or manifest that is not there (the module returns no statistics), 400 for bad input', async () => {
      assert.deepEqual(await quayPullStatInfo(w, { repository: REPO, tag: 'nope' }), { changed: false });
      assert.deepEqual(await quayPullStatInfo(w, { repository: REPO, digest: `sha256:${'2'.repeat(64)}` }), { changed: false });
      assert.deepEqual(await quayPullStatInfo(w, { repository: 'nosuchorg/app' }), { changed: false, stats: [] });
      assert.equal((await w.raw('GET', `repository/${REPO}/tag/.bad/pull_statistics`)).status, 400);
      assert.equal((await w.raw('GET', `repository/${REPO}/manifest/md5:x/pull_statistics`)).status, 400);
      assert.equal((await w.raw('GET', `repository/${REPO}/tag/v1/pull_statistics`, undefined, await w.outsider())).status, 404);
    });
  });
}
