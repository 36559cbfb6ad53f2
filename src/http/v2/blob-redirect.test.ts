/**
 * Blob pulls on S3 storage with redirects on: a `307` to a presigned GET of the object, after the
 * same access checks as a streamed pull; HEAD, ranges, unknown blobs and the streamed mode as before.
 * On the test run's RADOS Gateway, over both database dialects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { assertError, pushBlob, sha256 } from '../../../test/helpers/inject-client.js';
import { openTestS3Driver } from '../../../test/helpers/s3.js';
import type { RepositoryName } from '../../oci/reference.js';

const blob = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251));

for (const dialect of DIALECTS) {
  describe(`blob GET redirected to S3 (${dialect})`, () => {
    let t: TestApp;
    let bucket: Awaited<ReturnType<typeof openTestS3Driver>>;
    let digest: string;

    before(async () => {
      bucket = await openTestS3Driver({ redirectExpirySeconds: 300 });
      t = await buildTestApp(dialect, { storage: bucket.driver, config: { 'auth.enabled': false } });
      digest = await pushBlob(t.app, 'redir/repo', blob);
    });
    after(async () => {
      await t?.close();
      await bucket?.cleanup();
    });

    it('answers 307 with a presigned URL of the object, which serves its bytes', async () => {
      const res = await t.app.inject({ method: 'GET', url: `/v2/redir/repo/blobs/${digest}` });
      assert.equal(res.statusCode, 307, res.body);
      assert.equal(res.body, '');
      assert.equal(res.headers['docker-content-digest'], digest);
      assert.equal(res.headers['cache-control'], 'no-store');
      const location = String(res.headers.location);
      assert.match(location, /X-Amz-Signature=/);
      assert.match(location, /X-Amz-Expires=300\b/);
      assert.ok(location.includes(`${bucket.prefix}/blobs/`), location);
      const fetched = await fetch(location);
      assert.equal(fetched.status, 200);
      assert.equal(sha256(Buffer.from(await fetched.arrayBuffer())), digest);
    });

    it('redirects a range request too; the store serves the range', async () => {
      const res = await t.app.inject({ method: 'GET', url: `/v2/redir/repo/blobs/${digest}`, headers: { range: 'bytes=1000-1999' } });
      assert.equal(res.statusCode, 307, res.body);
      const fetched = await fetch(String(res.headers.location), { headers: { range: 'bytes=1000-1999' } });
      assert.equal(fetched.status, 206);
      assert.deepEqual(Buffer.from(await fetched.arrayBuffer()), blob.subarray(1000, 2000));
    });

    it('still refuses an unsatisfiable range itself (416), without a redirect', async () => {
      const res = await t.app.inject({ method: 'GET', url: `/v2/redir/repo/blobs/${digest}`, headers: { range: `bytes=${blob.length}-` } });
      assertError(res, 416, 'RANGE_INVALID');
    });

    it('answers HEAD itself: size and digest, no redirect', async () => {
      const res = await t.app.inject({ method: 'HEAD', url: `/v2/redir/repo/blobs/${digest}` });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], String(blob.length));
      assert.equal(res.headers['docker-content-digest'], digest);
      assert.equal(res.headers.location, undefined);
    });

    it('answers an unknown blob, or a blob of another repository, 404 rather than a redirect', async () => {
      assertError(await t.app.inject({ method: 'GET', url: `/v2/redir/repo/blobs/${sha256('absent')}` }), 404, 'BLOB_UNKNOWN');
      assertError(await t.app.inject({ method: 'GET', url: `/v2/redir/other/blobs/${digest}` }), 404, 'BLOB_UNKNOWN');
    });

    it('counts the redirected pull in the request metrics, without bytes served', async () => {
      const before = await t.app.inject({ method: 'GET', url: '/metrics' });
      const count = (text: string) => Number(/wharf_http_requests_total\{method="GET",route="blob_get",status="307"\} (\d+)/.exec(text)?.[1] ?? 0);
      const served = (text: string) => Number(/wharf_http_response_bytes_total\{route="blob"\} (\d+)/.exec(text)?.[1] ?? 0);
      await t.app.inject({ method: 'GET', url: `/v2/redir/repo/blobs/${digest}` });
      const afterRes = await t.app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(count(afterRes.body), count(before.body) + 1);
      assert.equal(served(afterRes.body), served(before.body), 'the bytes did not pass through Wharf');
    });
  });
}

describe('blob GET on S3 with redirects off', () => {
  let t: TestApp;
  let bucket: Awaited<ReturnType<typeof openTestS3Driver>>;

  before(async () => {
    bucket = await openTestS3Driver();
    t = await buildTestApp('sqlite', { storage: bucket.driver, config: { 'auth.enabled': false } });
  });
  after(async () => {
    await t?.close();
    await bucket?.cleanup();
  });

  it('streams the bytes through Wharf (200, then 206 for a range)', async () => {
    const digest = await pushBlob(t.app, 'stream/repo', blob);
    const res = await t.app.inject({ method: 'GET', url: `/v2/stream/repo/blobs/${digest}` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers.location, undefined);
    assert.equal(sha256(res.rawPayload), digest);
    const ranged = await t.app.inject({ method: 'GET', url: `/v2/stream/repo/blobs/${digest}`, headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.statusCode, 206);
    assert.deepEqual(ranged.rawPayload, blob.subarray(10, 20));
  });
});

describe('blob GET redirected, with auth', () => {
  let t: TestApp;
  let bucket: Awaited<ReturnType<typeof openTestS3Driver>>;
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  before(async () => {
    bucket = await openTestS3Driver({ redirectExpirySeconds: 60 });
    t = await buildTestApp('sqlite', { storage: bucket.driver });
    const a = t.accounts!;
    await a.accounts.createUser({ name: 'admin', password: 'admin-password', superuser: true });
    await a.accounts.createUser({ name: 'eve', password: 'eve-password' });
    await a.accounts.createOrganization({ name: 'acme', creator: 'admin' });
    await t.registry.repositories.create('acme/app' as RepositoryName, { visibility: 'private' });
  });
  after(async () => {
    await t?.close();
    await bucket?.cleanup();
  });

  it('checks credentials and access first (401, 403/404 for others), then redirects the allowed caller', async () => {
    const admin = { authorization: basic('admin', 'admin-password') };
    const post = await t.app.inject({ method: 'POST', url: `/v2/acme/app/blobs/uploads/?digest=${sha256(blob)}`, payload: blob, headers: { ...admin, 'content-type': 'application/octet-stream' } });
    assert.equal(post.statusCode, 201, post.body);
    const url = `/v2/acme/app/blobs/${sha256(blob)}`;
    const anonymous = await t.app.inject({ method: 'GET', url });
    assertError(anonymous, 401, 'UNAUTHORIZED');
    assert.equal(anonymous.headers.location, undefined);
    const other = await t.app.inject({ method: 'GET', url, headers: { authorization: basic('eve', 'eve-password') } });
    assert.ok(other.statusCode === 403 || other.statusCode === 404 || other.statusCode === 401, `${other.statusCode} ${other.body}`);
    assert.equal(other.headers.location, undefined);
    const allowed = await t.app.inject({ method: 'GET', url, headers: admin });
    assert.equal(allowed.statusCode, 307, allowed.body);
    const fetched = await fetch(String(allowed.headers.location));
    assert.equal(sha256(Buffer.from(await fetched.arrayBuffer())), sha256(blob));
  });
});
