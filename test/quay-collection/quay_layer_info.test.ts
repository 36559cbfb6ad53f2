/**
 * `quay_layer_info` replayed: the digest from `get_tags` (history included) or the image name, then
 * GET `repository/{namespace}/{repository}/manifest/{digest}` and its `layers`, sorted top layer first
 * as the module returns them; on the nested repository `qc/team/app`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

async function quayLayerInfo(w: QuayWorld, image: string): Promise<any[]> {
  const at = image.indexOf('@');
  const colon = image.lastIndexOf(':');
  const repo = at >= 0 ? image.slice(0, at) : colon > 0 ? image.slice(0, colon) : image;
  const [namespace, repository] = [repo.slice(0, repo.indexOf('/')), repo.slice(repo.indexOf('/') + 1)];
  if (!(await w.getObject(`organization/${namespace}`))) return [];
  let digest = at >= 0 ? image.slice(at + 1) : undefined;
  if (!digest) {
    const tags = await w.getTags(namespace, repository, { tag: colon > 0 ? image.slice(colon + 1) : 'latest', onlyActive: false });
    if (!tags.length) return [];
    digest = tags[0].manifest_digest as string;
  }
  const m = await w.getObject(`repository/${namespace}/${repository}/manifest/${digest}`);
  return m?.layers ? [...m.layers].sort((a, b) => b.index - a.index) : [];
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_layer_info replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    it('lists the layers with their build history, top layer first', async () => {
      const layers = await quayLayerInfo(w, `${REPO}:v1`);
      assert.deepEqual(layers.map((l) => [l.index, l.blob_digest, l.command, l.author, l.comment, l.created_datetime]), [
        [2, w.one.layerDigests[1], ['/bin/sh -c make install'], 'Wharf Tests', 'build step', 'Fri, 02 Jan 2026 03:04:07 GMT'],
        [1, 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4', ['/bin/sh -c #(nop)  LABEL maintainer=Wharf'], null, null, 'Fri, 02 Jan 2026 03:04:06 GMT'],
        [0, w.one.layerDigests[0], ['/bin/sh -c #(nop) ADD file:one in / '], null, null, 'Fri, 02 Jan 2026 03:04:05 GMT'],
      ]);
      assert.equal(layers[0].compressed_size, 'layer two of one'.length);
      assert.equal(layers[1].compressed_size, null);
      assert.deepEqual([layers[0].is_remote, layers[0].urls], [false, null]);
      assert.deepEqual(await quayLayerInfo(w, `${REPO}@${w.one.digest}`), layers);
    });

    it('returns the manifest itself as Quay does', async () => {
      const m = await w.getObject(`repository/${REPO}/manifest/${w.two.digest}`);
      assert.equal(m.digest, w.two.digest);
      assert.equal(m.is_manifest_list, false);
      assert.equal(m.config_media_type, 'application/vnd.oci.image.config.v1+json');
      assert.equal(JSON.parse(m.manifest_data).layers.length, 2);
    });

    it('answers a list with no layers, and absent things with nothing or 404, never 5xx', async () => {
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
      const put = await w.t.registry.manifests.put(await w.t.registry.repositories.get(REPO as never), { kind: 'tag', tag: 'list' as never }, index, 'application/vnd.oci.image.index.v1+json');
      const m = await w.getObject(`repository/${REPO}/manifest/${put.digest}`);
      assert.deepEqual([m.is_manifest_list, m.layers, m.config_media_type], [true, null, null]);
      assert.deepEqual(await quayLayerInfo(w, `${REPO}:list`), []);
      assert.deepEqual(await quayLayerInfo(w, `${REPO}:nope`), []);
      assert.deepEqual(await quayLayerInfo(w, 'nosuchorg/team/app:v1'), []);
      assert.equal((await w.raw('GET', `repository/${REPO}/manifest/sha256:${'3'.repeat(64)}`)).status, 404);
      assert.equal((await w.raw('GET', `repository/${REPO}/manifest/latest`)).status, 400);
    });
  });
}
