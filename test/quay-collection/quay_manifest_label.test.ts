/**
 * `quay_manifest_label` replayed: the digest from `get_tags` (history included) or the image name, GET
 * `…/manifest/{digest}/labels`, POST of `{key, value, media_type}`, DELETE `…/labels/{id}` of the
 * labels added through the API (never those of the image configuration), deciding "changed" as the
 * module does; on the nested repository `qc/team/app`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, REPO, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

interface LabelParams {
  image: string;
  key: string;
  value?: string;
  replace?: boolean;
  state?: 'present' | 'absent';
}

async function quayManifestLabel(w: QuayWorld, p: LabelParams): Promise<{ changed: boolean; label?: any }> {
  const at = p.image.indexOf('@');
  const colon = p.image.lastIndexOf(':');
  const repo = at >= 0 ? p.image.slice(0, at) : colon > p.image.lastIndexOf('/') ? p.image.slice(0, colon) : p.image;
  const [namespace, repository] = [repo.slice(0, repo.indexOf('/')), repo.slice(repo.indexOf('/') + 1)];
  assert.ok(await w.getObject(`organization/${namespace}`));
  let digest = at >= 0 ? p.image.slice(at + 1) : undefined;
  if (!digest) {
    const tags = await w.getTags(namespace, repository, { tag: colon > p.image.lastIndexOf('/') ? p.image.slice(colon + 1) : 'latest', onlyActive: false });
    assert.ok(tags.length, 'the image exists');
    digest = tags[0].manifest_digest as string;
  }
  const base = `repository/${namespace}/${repository}/manifest/${digest}/labels`;
  const labels: any[] = (await w.getObject(base)).labels;
  if ((p.state ?? 'present') === 'absent') {
    let changed = false;
    for (const l of labels) {
      if (l.source_type !== 'manifest' && l.id && l.key === p.key && (p.value === undefined || l.value === p.value)) {
        await w.remove(`${base}/${l.id}`);
        changed = true;
      }
    }
    return { changed };
  }
  let matching: any;
  let changed = false;
  for (const l of labels) {
    if (l.key !== p.key) continue;
    if (l.value === p.value) matching = l;
    else if ((p.replace ?? true) && l.source_type !== 'manifest' && l.id) {
      await w.remove(`${base}/${l.id}`);
      changed = true;
    }
  }
  if (matching) return { changed, label: matching };
  const data = await w.create(base, { key: p.key, value: p.value, media_type: 'text/plain' });
  return { changed: true, label: data.label };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_manifest_label replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    const labels = async (digest: string) => (await w.getObject(`repository/${REPO}/manifest/${digest}/labels`)).labels as any[];

    it('shows the image configuration\'s labels as source_type manifest, with stable ids', async () => {
      const first = await labels(w.one.digest);
      assert.deepEqual(
        first.map((l) => [l.key, l.value, l.source_type, l.media_type]),
        [
          ['maintainer', 'Wharf Tests <qa@example.test>', 'manifest', 'text/plain'],
          ['org.example.seed', 'one', 'manifest', 'text/plain'],
        ],
      );
      assert.deepEqual((await labels(w.one.digest)).map((l) => l.id), first.map((l) => l.id));
      assert.notDeepEqual((await labels(w.two.digest)).map((l) => l.id), first.map((l) => l.id));
    });

    it('adds a label once; a second run changes nothing', async () => {
      const added = await quayManifestLabel(w, { image: `${REPO}:v1`, key: 'mytest', value: 'myvalue' });
      assert.equal(added.changed, true);
      assert.deepEqual(Object.keys(added.label).sort(), ['id', 'key', 'media_type', 'source_type', 'value']);
      assert.equal(added.label.source_type, 'api');
      const again = await quayManifestLabel(w, { image: `${REPO}:v1`, key: 'mytest', value: 'myvalue' });
      assert.deepEqual(again, { changed: false, label: added.label });
      assert.deepEqual(await w.getObject(`repository/${REPO}/manifest/${w.one.digest}/labels/${added.label.id}`), added.label);
    });

    it('replaces a value (or adds another with replace: false), by tag or by digest', async () => {
      assert.equal((await quayManifestLabel(w, { image: `${REPO}@${w.one.digest}`, key: 'mytest', value: 'other' })).changed, true);
      assert.deepEqual((await labels(w.one.digest)).filter((l) => l.key === 'mytest').map((l) => l.value), ['other']);
      assert.equal((await quayManifestLabel(w, { image: `${REPO}:latest`, key: 'mytest', value: 'third', replace: false })).changed, true);
      assert.deepEqual((await labels(w.one.digest)).filter((l) => l.key === 'mytest').map((l) => l.value), ['other', 'third']);
    });

    it('removes labels by key (and value) once; configuration labels are left alone', async () => {
      assert.equal((await quayManifestLabel(w, { image: `${REPO}:v1`, key: 'mytest', value: 'third', state: 'absent' })).changed, true);
      assert.equal((await quayManifestLabel(w, { image: `${REPO}:v1`, key: 'mytest', state: 'absent' })).changed, true);
      assert.equal((await quayManifestLabel(w, { image: `${REPO}:v1`, key: 'mytest', state: 'absent' })).changed, false);
      assert.equal((await quayManifestLabel(w, { image: `${REPO}:v1`, key: 'maintainer', state: 'absent' })).changed, false);
      assert.equal((await quayManifestLabel(w, { image: `${REPO}:v1`, key: 'maintainer', value: 'Wharf Tests <qa@example.test>' })).changed, false);
      assert.deepEqual((await labels(w.one.digest)).map((l) => l.key), ['maintainer', 'org.example.seed']);
      const own = (await labels(w.one.digest))[0];
      const del = await w.raw('DELETE', `repository/${REPO}/manifest/${w.one.digest}/labels/${own.id}`);
      assert.equal(del.status, 400);
      assert.match(del.json.detail, /image configuration/);
    });

    it('answers POST with 201, the label and a Location; infers the media type of a JSON value', async () => {
      const res = await w.raw('POST', `repository/${REPO}/manifest/${w.two.digest}/labels`, { key: 'config', value: '{"a": 1}', media_type: null });
      assert.equal(res.status, 201);
      assert.equal(res.json.label.media_type, 'application/json');
      assert.equal(res.headers.location, `/api/v1/repository/${REPO}/manifest/${w.two.digest}/labels/${res.json.label.id}`);
      assert.equal((await w.remove(`repository/${REPO}/manifest/${w.two.digest}/labels/${res.json.label.id}`)), 'changed');
      assert.equal((await w.remove(`repository/${REPO}/manifest/${w.two.digest}/labels/${res.json.label.id}`)), 'unchanged');
    });

    it('refuses bad input with Quay\'s error shape and no 5xx', async () => {
      const base = `repository/${REPO}/manifest/${w.one.digest}/labels`;
      for (const body of [{ key: 'Bad Key', value: 'x', media_type: 'text/plain' }, { key: '-x', value: 'x' }, { key: 'a..b', value: 'x' }, { key: 'ok', value: 'x', media_type: 'text/html' }, { key: 'ok' }, { value: 'x' }, { key: 'ok', value: 5 }]) {
        assert.equal((await w.raw('POST', base, body)).status, 400, JSON.stringify(body));
      }
      const missing = `sha256:${'0'.repeat(64)}`;
      assert.equal((await w.raw('GET', `repository/${REPO}/manifest/${missing}/labels`)).status, 404);
      assert.equal((await w.raw('POST', `repository/${REPO}/manifest/${missing}/labels`, { key: 'a', value: 'b' })).status, 404);
      assert.equal((await w.raw('GET', `${base}/no-such-label`)).status, 404);
      assert.equal((await w.raw('DELETE', `${base}/no-such-label`)).status, 404);
      assert.equal((await w.raw('GET', `repository/${REPO}/manifest/sha256:short/labels`)).status, 400);
      assert.equal((await w.raw('POST', base, { key: 'a', value: 'b' }, await w.outsider())).status, 404);
      assert.equal((await w.raw('GET', base, undefined, null)).status, 401);
    });
  });
}
