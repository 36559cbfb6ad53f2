import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const dialect of DIALECTS) {
  describe(`/api/v1 tags and tag history (${dialect})`, () => {
    let w: ApiWorld;
    let d1: string, d2: string, d3: string;
    before(async () => {
      w = await buildApiWorld(dialect);
      d1 = w.digests['orga/priv'].v1;
      d2 = w.digests['orga/priv'].v2;
      d3 = await w.push('orga/priv', 'third');
    });
    after(async () => w.t.close());

    const api = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, who: keyof ApiWorld['auth'], payload?: unknown) =>
      w.t.app.inject({ method, url: `/api/v1${url}`, headers: w.auth[who], ...(payload === undefined ? {} : { payload: payload as object }) });
    const lastAudit = async (kind: string) => (await w.t.accounts!.audit.query({ kinds: [kind], limit: 1 })).entries[0];
    type TagView = { name: string; manifest_digest: string; is_manifest_list: boolean; size: number | null; start_ts: number; end_ts?: number; last_modified: string; expiration?: string };
    const tags = async (query: string, who: keyof ApiWorld['auth'] = 'member') => {
      const res = await api('GET', `/repository/orga/priv/tag/?${query}`, who);
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { tags: TagView[]; page: number; has_additional: boolean };
    };

    it('lists live tags with Quay\'s fields', async () => {
      const body = await tags('');
      assert.equal(body.page, 1);
      assert.equal(body.has_additional, false);
      assert.equal(body.tags.length, 1);
      const t = body.tags[0]!;
      assert.equal(t.name, 'v1');
      assert.equal(t.manifest_digest, d1);
      assert.equal(t.is_manifest_list, true);
      assert.equal(t.size, null);
      assert.equal(typeof t.start_ts, 'number');
      assert.match(t.last_modified, /GMT$/);
      assert.equal(t.end_ts, undefined);
    });

    it('creates (201) and moves a tag, audited as create_tag and move_tag; the old target goes to history', async () => {
      let res = await api('PUT', '/repository/orga/priv/tag/latest', 'member', { manifest_digest: d1 });
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual((await lastAudit('create_tag'))?.metadata, { tag: 'latest', manifest_digest: d1 });
      await sleep(5);
      res = await api('PUT', '/repository/orga/priv/tag/latest', 'robot', { manifest_digest: d2 });
      assert.equal(res.statusCode, 201, res.body);
      const moved = await lastAudit('move_tag');
      assert.deepEqual(moved?.metadata, { tag: 'latest', manifest_digest: d2, original_manifest_digest: d1 });
      assert.equal(moved?.actor.name, 'orga+ci');
      const history = (await tags('specificTag=latest&onlyActiveTags=false')).tags;
      assert.deepEqual(history.map((t) => [t.manifest_digest, t.end_ts === undefined]), [[d2, true], [d1, false]]);
      assert.deepEqual((await tags('specificTag=latest')).tags.map((t) => t.manifest_digest), [d2]);
    });

    it('refuses bad tag input', async () => {
      assert.equal((await api('PUT', '/repository/orga/priv/tag/latest', 'member', { manifest_digest: 'sha256:nope' })).statusCode, 400);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/latest', 'member', {})).statusCode, 400);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/.bad', 'member', { manifest_digest: d1 })).statusCode, 400);
      const missing = `sha256:${'0'.repeat(64)}`;
      assert.equal((await api('PUT', '/repository/orga/priv/tag/latest', 'member', { manifest_digest: missing })).statusCode, 404);
      assert.equal((await api('PUT', '/repository/orga/priv/tag/latest', 'member', { manifest_digest: w.digests['orgb/priv'].v1 })).statusCode, 404, 'a manifest of another repository');
      for (const q of ['limit=0', 'limit=101', 'page=0', 'onlyActiveTags=perhaps', 'filter_tag_name=regex:x', 'specificTag=.x']) {
        assert.equal((await api('GET', `/repository/orga/priv/tag/?${q}`, 'member')).statusCode, 400, q);
      }
    });

    it('deletes a tag (204, audited): it leaves the live view and shows in history', async () => {
      await sleep(5);
      const res = await api('DELETE', '/repository/orga/priv/tag/latest', 'member');
      assert.equal(res.statusCode, 204, res.body);
      assert.deepEqual((await lastAudit('delete_tag'))?.metadata, { tag: 'latest', manifest_digest: d2 });
      assert.deepEqual((await tags('specificTag=latest')).tags, []);
      const history = (await tags('specificTag=latest&onlyActiveTags=false')).tags;
      assert.equal(history.length, 2);
      assert.ok(history.every((t) => typeof t.end_ts === 'number' && t.expiration));
      assert.equal((await api('DELETE', '/repository/orga/priv/tag/latest', 'member')).statusCode, 404);
      // The manifest is still there by digest.
      assert.equal((await w.t.app.inject({ url: `/v2/orga/priv/manifests/${d2}`, headers: w.auth.orgadmin })).statusCode !== 404, true);
    });

    it('restores a previous target (200, audited) only from the tag\'s own history', async () => {
      const url = '/repository/orga/priv/tag/latest/restore';
      assert.equal((await api('POST', url, 'member', {})).statusCode, 400);
      assert.equal((await api('POST', url, 'member', { manifest_digest: 'x' })).statusCode, 400);
      assert.equal((await api('POST', url, 'member', { manifest_digest: d3 })).statusCode, 404, 'latest never pointed at d3');
      assert.equal((await api('POST', '/repository/orga/priv/tag/never/restore', 'member', { manifest_digest: d1 })).statusCode, 404);
      assert.equal((await api('POST', url, 'anonymous', { manifest_digest: d1 })).statusCode, 401);
      assert.equal((await api('POST', url, 'user', { manifest_digest: d1 })).statusCode, 404);
      assert.equal((await api('POST', '/repository/orga/pub/tag/v1/restore', 'user', { manifest_digest: w.digests['orga/pub'].v1 })).statusCode, 403);
      const res = await api('POST', url, 'member', { manifest_digest: d1 });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), {});
      assert.deepEqual((await lastAudit('restore_tag'))?.metadata, { tag: 'latest', manifest_digest: d1 });
      assert.deepEqual((await tags('specificTag=latest')).tags.map((t) => t.manifest_digest), [d1]);
      assert.equal((await tags('specificTag=latest&onlyActiveTags=false')).tags.length, 3);
    });

    it('expires a tag for good (200, audited): no history, no restore', async () => {
      const url = '/repository/orga/priv/tag/latest/expire';
      assert.equal((await api('POST', url, 'member', { manifest_digest: 'bad' })).statusCode, 400);
      assert.equal((await api('POST', url, 'anonymous')).statusCode, 401);
      assert.equal((await api('POST', url, 'user')).statusCode, 404);
      assert.equal((await api('POST', '/repository/orga/pub/tag/v1/expire', 'user')).statusCode, 403);
      const res = await api('POST', url, 'member');
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { removed: 3 });
      assert.deepEqual((await lastAudit('expire_tag'))?.metadata, { tag: 'latest', removed_rows: 3 });
      assert.deepEqual((await tags('specificTag=latest&onlyActiveTags=false')).tags, []);
      assert.equal((await api('POST', '/repository/orga/priv/tag/latest/restore', 'member', { manifest_digest: d1 })).statusCode, 404);
      assert.equal((await api('POST', url, 'member')).statusCode, 404);
      // Only the rows of one digest.
      await api('PUT', '/repository/orga/priv/tag/two', 'member', { manifest_digest: d1 });
      await api('PUT', '/repository/orga/priv/tag/two', 'member', { manifest_digest: d2 });
      const one = await api('POST', '/repository/orga/priv/tag/two/expire', 'member', { manifest_digest: d1 });
      assert.deepEqual(one.json(), { removed: 1 });
      assert.deepEqual((await tags('specificTag=two&onlyActiveTags=false')).tags.map((t) => t.manifest_digest), [d2]);
    });

    it('pages newest first and filters by name', async () => {
      for (const n of ['f1', 'f2', 'f3', 'g1']) {
        await sleep(3);
        await w.push('orga/priv', 'third', n);
      }
      const p1 = await tags('limit=2&page=1');
      assert.deepEqual(p1.tags.map((t) => t.name), ['g1', 'f3']);
      assert.equal(p1.has_additional, true);
      const p2 = await tags('limit=2&page=2');
      assert.deepEqual(p2.tags.map((t) => t.name), ['f2', 'f1']);
      assert.equal(p2.page, 2);
      assert.deepEqual((await tags('filter_tag_name=like:F')).tags.map((t) => t.name), ['f3', 'f2', 'f1']);
      assert.deepEqual((await tags('filter_tag_name=eq:f2')).tags.map((t) => t.name), ['f2']);
      assert.deepEqual((await tags('filter_tag_name=like:_')).tags, [], 'like escapes wildcards');
      // Anonymous read of a public repository; 401/404 for a private one.
      assert.equal((await api('GET', '/repository/orga/pub/tag/', 'anonymous')).statusCode, 200);
      assert.equal((await api('GET', '/repository/orga/priv/tag/', 'anonymous')).statusCode, 401);
      assert.equal((await api('GET', '/repository/orga/priv/tag/', 'user')).statusCode, 404);
    });

    it('reports an image\'s size as the sum of its config and layers', async () => {
      const { registry } = w.t;
      const repo = await registry.repositories.get('orga/priv' as never);
      const layer = Buffer.from('layer bytes');
      const config = Buffer.from('{}');
      const { digestOf } = await import('../../oci/digest.js');
      for (const b of [layer, config]) await registry.uploads.monolithic(repo, digestOf(b), (async function* () { yield b; })(), b.length);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
        }),
      );
      await registry.manifests.put(repo, { kind: 'tag', tag: 'img' as never }, manifest, 'application/vnd.oci.image.manifest.v1+json');
      const t = (await tags('specificTag=img')).tags[0]!;
      assert.equal(t.is_manifest_list, false);
      assert.equal(t.size, layer.length + config.length);
    });
  });
}
