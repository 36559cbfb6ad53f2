import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { assertError, imageManifest, pushBlob, pushImage, sha256, sha512 } from '../../../test/helpers/inject-client.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

for (const dialect of DIALECTS) {
  describe(`manifests (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'registry.max_manifest_size': 64 * 1024, 'auth.enabled': false } });
    });
    after(async () => t.close());

    const put = (name: string, ref: string, body: Buffer | string, contentType = OCI_MANIFEST) =>
      t.app.inject({ method: 'PUT', url: `/v2/${name}/manifests/${ref}`, payload: body, headers: { 'content-type': contentType } });

    it('stores and serves manifests byte for byte, by tag and by digest', async () => {
      const config = await pushBlob(t.app, 'm/bytes', '{}');
      // Odd whitespace and key order must survive: the digest is of the pushed bytes.
      const body = Buffer.from(`{ "schemaVersion":2,\n  "mediaType": "${OCI_MANIFEST}",  "config": {"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${config}","size":2},"layers":[] }\n`);
      const res = await put('m/bytes', 'v1', body);
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.headers['docker-content-digest'], sha256(body));
      assert.equal(res.headers.location, `/v2/m/bytes/manifests/${sha256(body)}`);
      for (const ref of ['v1', sha256(body)]) {
        const get = await t.app.inject({ url: `/v2/m/bytes/manifests/${ref}`, headers: { accept: OCI_MANIFEST } });
        assert.equal(get.statusCode, 200);
        assert.deepEqual(get.rawPayload, body);
        assert.equal(get.headers['content-type'], OCI_MANIFEST);
        assert.equal(get.headers['docker-content-digest'], sha256(body));
        const head = await t.app.inject({ method: 'HEAD', url: `/v2/m/bytes/manifests/${ref}` });
        assert.equal(head.statusCode, 200);
        assert.equal(head.headers['content-length'], String(body.length));
        assert.equal(head.body, '');
      }
    });

    it('accepts a push by sha512 digest and refuses a digest that does not match the content', async () => {
      const { body } = await pushImage(t.app, 'm/digest', 'tmp', 'd1');
      let res = await put('m/digest', sha512(body), body);
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.headers['docker-content-digest'], sha512(body));
      res = await put('m/digest', sha256('other'), body);
      assertError(res, 400, 'DIGEST_INVALID');
    });

    it('refuses invalid JSON, schema 1, unknown and contradictory media types', async () => {
      assertError(await put('m/bad', 'x', '{not json'), 400, 'MANIFEST_INVALID');
      assertError(await put('m/bad', 'x', '[]'), 400, 'MANIFEST_INVALID');
      const schema1 = await put('m/bad', 'x', JSON.stringify({ schemaVersion: 1, name: 'm/bad', tag: 'x', fsLayers: [] }), 'application/vnd.docker.distribution.manifest.v1+prettyjws');
      assertError(schema1, 400, 'MANIFEST_INVALID');
      assert.match(schema1.body, /schema 1/);
      const unknown = await put('m/bad', 'x', JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-foo', config: {} }), 'application/x-foo');
      assertError(unknown, 400, 'MANIFEST_INVALID');
      assert.match(unknown.body, /application\/x-foo/);
      const config = await pushBlob(t.app, 'm/bad', 'cfg');
      const m = JSON.stringify(imageManifest({ digest: config, size: 3 }, []));
      assertError(await put('m/bad', 'x', m, DOCKER_MANIFEST), 400, 'MANIFEST_INVALID');
      const badDescriptor = JSON.stringify(imageManifest({ digest: 'sha256:nothex', size: 3 }, []));
      assertError(await put('m/bad', 'x', badDescriptor), 400, 'MANIFEST_INVALID');
      const negative = JSON.stringify(imageManifest({ digest: config, size: -1 }, []));
      assertError(await put('m/bad', 'x', negative), 400, 'MANIFEST_INVALID');
    });

    it('refuses a manifest whose blobs are not in the repository and names them', async () => {
      const config = await pushBlob(t.app, 'm/missing', 'cfg');
      const absent = sha256('never pushed');
      const res = await put('m/missing', 'x', JSON.stringify(imageManifest({ digest: config, size: 3 }, [{ digest: absent, size: 12 }])));
      assertError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
      assert.match(res.body, new RegExp(absent));
      // A blob in another repository does not count.
      const elsewhere = await pushBlob(t.app, 'm/other', 'layer elsewhere');
      assertError(await put('m/missing', 'x', JSON.stringify(imageManifest({ digest: config, size: 3 }, [{ digest: elsewhere, size: 15 }]))), 400, 'MANIFEST_BLOB_UNKNOWN');
      assertError(await t.app.inject({ url: '/v2/m/missing/manifests/x' }), 404, 'MANIFEST_UNKNOWN');
    });

    it('refuses an index whose children are missing, and accepts it once they are pushed', async () => {
      const a = await pushImage(t.app, 'm/index', 'a', 'a');
      const missing = sha256('no such manifest');
      const index = (digests: string[]) =>
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: digests.map((d) => ({ mediaType: OCI_MANIFEST, digest: d, size: 10, platform: { os: 'linux', architecture: 'amd64' } })) });
      const res = await put('m/index', 'multi', index([a.digest, missing]), OCI_INDEX);
      assertError(res, 400, 'MANIFEST_UNKNOWN');
      assert.match(res.body, new RegExp(missing));
      const ok = await put('m/index', 'multi', index([a.digest]), OCI_INDEX);
      assert.equal(ok.statusCode, 201, ok.body);
      // A child referenced by an index cannot be deleted before the index.
      assertError(await t.app.inject({ method: 'DELETE', url: `/v2/m/index/manifests/${a.digest}` }), 409, 'DENIED');
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/v2/m/index/manifests/${ok.headers['docker-content-digest']}` })).statusCode, 202);
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/v2/m/index/manifests/${a.digest}` })).statusCode, 202);
    });

    it('refuses a manifest over the size limit with 413', async () => {
      const big = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, annotations: { pad: 'x'.repeat(70 * 1024) } });
      const res = await put('m/big', 'x', big);
      assertError(res, 413, 'SIZE_INVALID');
      assert.match(res.body, /limit/);
    });

    it('negotiates by Accept', async () => {
      const { digest } = await pushImage(t.app, 'm/accept', 'v1', 'acc');
      const url = `/v2/m/accept/manifests/${digest}`;
      assert.equal((await t.app.inject({ url })).statusCode, 200);
      assert.equal((await t.app.inject({ url, headers: { accept: `${DOCKER_MANIFEST}, ${OCI_MANIFEST};q=0.9` } })).statusCode, 200);
      assert.equal((await t.app.inject({ url, headers: { accept: '*/*' } })).statusCode, 200);
      const refused = await t.app.inject({ url, headers: { accept: DOCKER_MANIFEST } });
      assertError(refused, 404, 'MANIFEST_UNKNOWN');
      assert.match(refused.body, /does not accept/);
    });

    it('moves tags, deletes tags without deleting the manifest, deletes manifests with their tags', async () => {
      const one = await pushImage(t.app, 'm/tags', 'latest', 'one');
      const two = await pushImage(t.app, 'm/tags', 'latest', 'two');
      let get = await t.app.inject({ url: '/v2/m/tags/manifests/latest' });
      assert.equal(get.headers['docker-content-digest'], two.digest);
      // The previous target is still there by digest.
      assert.equal((await t.app.inject({ url: `/v2/m/tags/manifests/${one.digest}` })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'DELETE', url: '/v2/m/tags/manifests/latest' })).statusCode, 202);
      assertError(await t.app.inject({ url: '/v2/m/tags/manifests/latest' }), 404, 'MANIFEST_UNKNOWN');
      assert.equal((await t.app.inject({ url: `/v2/m/tags/manifests/${two.digest}` })).statusCode, 200);
      await put('m/tags', 'again', two.body);
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/v2/m/tags/manifests/${two.digest}` })).statusCode, 202);
      assertError(await t.app.inject({ url: '/v2/m/tags/manifests/again' }), 404, 'MANIFEST_UNKNOWN');
      assertError(await t.app.inject({ method: 'DELETE', url: `/v2/m/tags/manifests/${two.digest}` }), 404, 'MANIFEST_UNKNOWN');
      get = await t.app.inject({ url: '/v2/m/tags/tags/list' });
      assert.deepEqual(get.json(), { name: 'm/tags', tags: [] });
    });

    it('lists tags in byte order with n/last pagination and a Link header', async () => {
      const base = await pushImage(t.app, 'm/page', 'b', 'page');
      for (const tag of ['a', 'C', 'c', 'B', '0']) assert.equal((await put('m/page', tag, base.body)).statusCode, 201);
      let res = await t.app.inject({ url: '/v2/m/page/tags/list' });
      assert.deepEqual(res.json().tags, ['0', 'B', 'C', 'a', 'b', 'c']);
      assert.equal(res.headers.link, undefined);
      res = await t.app.inject({ url: '/v2/m/page/tags/list?n=2' });
      assert.deepEqual(res.json().tags, ['0', 'B']);
      assert.equal(res.headers.link, '</v2/m/page/tags/list?n=2&last=B>; rel="next"');
      res = await t.app.inject({ url: '/v2/m/page/tags/list?n=2&last=B' });
      assert.deepEqual(res.json().tags, ['C', 'a']);
      res = await t.app.inject({ url: '/v2/m/page/tags/list?n=10&last=b' });
      assert.deepEqual(res.json().tags, ['c']);
      assert.equal(res.headers.link, undefined);
      res = await t.app.inject({ url: '/v2/m/page/tags/list?n=0' });
      assert.deepEqual(res.json().tags, []);
      assertError(await t.app.inject({ url: '/v2/m/page/tags/list?n=-1' }), 400, 'UNSUPPORTED');
      assertError(await t.app.inject({ url: '/v2/m/nothing/tags/list' }), 404, 'NAME_UNKNOWN');
    });

    it('lists the catalog with pagination and one-component names under library/', async () => {
      await pushImage(t.app, 'alpine', 'latest', 'lib');
      const viaLibrary = await t.app.inject({ url: '/v2/library/alpine/manifests/latest' });
      assert.equal(viaLibrary.statusCode, 200);
      let res = await t.app.inject({ url: '/v2/_catalog' });
      const all = res.json().repositories as string[];
      assert.ok(all.includes('library/alpine'));
      assert.deepEqual([...all].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)), all);
      res = await t.app.inject({ url: '/v2/_catalog?n=1' });
      assert.equal(res.json().repositories.length, 1);
      assert.match(String(res.headers.link), /rel="next"/);
      res = await t.app.inject({ url: `/v2/_catalog?n=1000&last=${encodeURIComponent(all[0]!)}` });
      assert.deepEqual(res.json().repositories, all.slice(1));
    });

    it('serves referrers with the artifactType filter and sets OCI-Subject', async () => {
      const subject = await pushImage(t.app, 'm/refs', 'subject', 'subj');
      const empty = await pushBlob(t.app, 'm/refs', '{}');
      const sig = { schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sig', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }, layers: [], subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.body.length }, annotations: { 'org.example': 'yes' } };
      const sigBody = JSON.stringify(sig);
      let res = await put('m/refs', sha256(sigBody), sigBody);
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.headers['oci-subject'], subject.digest);
      const sbom = { ...sig, artifactType: 'application/vnd.example.sbom' };
      await put('m/refs', sha256(JSON.stringify(sbom)), JSON.stringify(sbom));
      res = await t.app.inject({ url: `/v2/m/refs/referrers/${subject.digest}` });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], OCI_INDEX);
      const index = res.json() as { manifests: Array<{ artifactType: string; digest: string; annotations: Record<string, string> }> };
      assert.equal(index.manifests.length, 2);
      assert.deepEqual(index.manifests.find((m) => m.digest === sha256(sigBody))?.annotations, { 'org.example': 'yes' });
      res = await t.app.inject({ url: `/v2/m/refs/referrers/${subject.digest}?artifactType=application/vnd.example.sbom` });
      assert.equal(res.headers['oci-filters-applied'], 'artifactType');
      assert.deepEqual(res.json().manifests.map((m: { artifactType: string }) => m.artifactType), ['application/vnd.example.sbom']);
      res = await t.app.inject({ url: `/v2/m/none/referrers/${subject.digest}` });
      assert.deepEqual(res.json().manifests, []);
      assertError(await t.app.inject({ url: '/v2/m/refs/referrers/sha256:short' }), 400, 'DIGEST_INVALID');
    });

    it('refuses bad names and references with the right codes', async () => {
      assertError(await t.app.inject({ url: '/v2/Upper/case/manifests/latest' }), 400, 'NAME_INVALID');
      assertError(await t.app.inject({ url: `/v2/${'a'.repeat(256)}/manifests/latest` }), 400, 'NAME_INVALID');
      assertError(await t.app.inject({ url: '/v2/a/-b/manifests/latest' }), 400, 'NAME_INVALID');
      assertError(await t.app.inject({ url: '/v2/a/b/manifests/.bad' }), 404, 'MANIFEST_UNKNOWN');
      assertError(await put('a/b', '.bad', '{}'), 400, 'TAG_INVALID');
      assertError(await put('a/b', `${'t'.repeat(129)}`, '{}'), 400, 'TAG_INVALID');
      assertError(await t.app.inject({ url: '/v2/a/b/manifests/sha256:123' }), 400, 'DIGEST_INVALID');
      assertError(await t.app.inject({ url: '/v2/a/b/unknown/op' }), 404, 'UNSUPPORTED');
      assertError(await t.app.inject({ method: 'PATCH', url: '/v2/a/b/manifests/latest' }), 405, 'UNSUPPORTED');
    });
  });
}
