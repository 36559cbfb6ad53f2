import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BlobStore } from '../../db/blob-store.js';
import { UploadStore } from '../../db/upload-store.js';
import { UploadService } from '../../registry/uploads.js';
import { blobKey } from '../../storage/keys.js';
import type { Digest } from '../../oci/digest.js';
import { parseRepositoryName, type RepositoryName } from '../../oci/reference.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { assertError, pushBlob, sha256, sha512 } from '../../../test/helpers/inject-client.js';

for (const dialect of DIALECTS) {
  describe(`blob uploads (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.enabled': false } });
    });
    after(async () => t.close());

    const start = async (name = 'up/repo') => {
      const res = await t.app.inject({ method: 'POST', url: `/v2/${name}/blobs/uploads/` });
      assert.equal(res.statusCode, 202, res.body);
      assert.equal(res.headers.range, '0-0');
      return String(res.headers.location);
    };
    const patch = (location: string, data: Buffer | string, range?: string) =>
      t.app.inject({
        method: 'PATCH',
        url: location,
        payload: data,
        headers: { 'content-type': 'application/octet-stream', ...(range ? { 'content-range': range } : {}) },
      });

    it('stores a monolithic upload and serves it', async () => {
      const digest = await pushBlob(t.app, 'up/repo', 'hello blob');
      const head = await t.app.inject({ method: 'HEAD', url: `/v2/up/repo/blobs/${digest}` });
      assert.equal(head.statusCode, 200);
      assert.equal(head.headers['content-length'], '10');
      assert.equal(head.headers['docker-content-digest'], digest);
      assert.equal(head.body, '');
      const get = await t.app.inject({ method: 'GET', url: `/v2/up/repo/blobs/${digest}` });
      assert.equal(get.body, 'hello blob');
    });

    it('accepts chunks in order, refuses out-of-order and overlapping chunks with 416, and completes', async () => {
      const loc = await start();
      let res = await patch(loc, 'abcde', '0-4');
      assert.equal(res.statusCode, 202, res.body);
      assert.equal(res.headers.range, '0-4');
      res = await patch(loc, 'zzzzz', '10-14');
      assertError(res, 416, 'BLOB_UPLOAD_INVALID');
      assert.equal(res.headers.range, '0-4');
      res = await patch(loc, 'cdefg', '2-6');
      assertError(res, 416, 'BLOB_UPLOAD_INVALID');
      res = await t.app.inject({ method: 'GET', url: loc });
      assert.equal(res.statusCode, 204);
      assert.equal(res.headers.range, '0-4');
      res = await patch(loc, 'fgh', '5-7');
      assert.equal(res.statusCode, 202);
      const digest = sha256('abcdefgh');
      res = await t.app.inject({ method: 'PUT', url: `${loc}?digest=${digest}` });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.headers['docker-content-digest'], digest);
      assert.equal(res.headers.location, `/v2/up/repo/blobs/${digest}`);
      assert.equal((await t.app.inject({ url: `/v2/up/repo/blobs/${digest}` })).body, 'abcdefgh');
      assertError(await t.app.inject({ method: 'GET', url: loc }), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('rolls back a chunk whose size does not match its Content-Range', async () => {
      const loc = await start();
      assert.equal((await patch(loc, 'abc', '0-2')).statusCode, 202);
      const res = await patch(loc, 'de', '3-9');
      assertError(res, 416, 'BLOB_UPLOAD_INVALID');
      const status = await t.app.inject({ method: 'GET', url: loc });
      assert.equal(status.headers.range, '0-2');
    });

    it('streams chunks without Content-Range and finishes with a final body', async () => {
      const loc = await start();
      assert.equal((await patch(loc, 'stream-')).statusCode, 202);
      const digest = sha256('stream-end');
      const res = await t.app.inject({ method: 'PUT', url: `${loc}?digest=${digest}`, payload: 'end', headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal((await t.app.inject({ url: `/v2/up/repo/blobs/${digest}` })).body, 'stream-end');
    });

    it('refuses a wrong digest and leaves nothing visible', async () => {
      const wrong = sha256('something else');
      let res = await t.app.inject({ method: 'POST', url: `/v2/up/repo/blobs/uploads/?digest=${wrong}`, payload: 'actual bytes', headers: { 'content-type': 'application/octet-stream' } });
      assertError(res, 400, 'DIGEST_INVALID');
      assert.equal(await t.storage.stat(blobKey(wrong as Digest)), undefined);
      assert.equal((await t.app.inject({ method: 'HEAD', url: `/v2/up/repo/blobs/${wrong}` })).statusCode, 404);
      assertError(await t.app.inject({ method: 'GET', url: `/v2/up/repo/blobs/${wrong}` }), 404, 'BLOB_UNKNOWN');

      const loc = await start();
      await patch(loc, 'chunked bytes', '0-12');
      res = await t.app.inject({ method: 'PUT', url: `${loc}?digest=${wrong}` });
      assertError(res, 400, 'DIGEST_INVALID');
      assert.equal(await t.storage.stat(blobKey(wrong as Digest)), undefined);
      // The upload is kept: nothing the client sent is lost, and the right digest completes it.
      res = await t.app.inject({ method: 'PUT', url: `${loc}?digest=${sha256('chunked bytes')}` });
      assert.equal(res.statusCode, 201);
    });

    it('verifies sha512 digests, monolithic and chunked', async () => {
      const data = 'sha512 content';
      let res = await t.app.inject({ method: 'POST', url: `/v2/up/repo/blobs/uploads/?digest=${sha512(data)}`, payload: data, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal((await t.app.inject({ url: `/v2/up/repo/blobs/${sha512(data)}` })).body, data);
      const loc = await start();
      await patch(loc, 'chunked 512', '0-10');
      res = await t.app.inject({ method: 'PUT', url: `${loc}?digest=${sha512('chunked 512')}` });
      assert.equal(res.statusCode, 201, res.body);
      res = await t.app.inject({ method: 'POST', url: `/v2/up/repo/blobs/uploads/?digest=${sha512('x')}`, payload: 'y', headers: { 'content-type': 'application/octet-stream' } });
      assertError(res, 400, 'DIGEST_INVALID');
    });

    it('stores the empty blob', async () => {
      const loc = await start();
      const res = await t.app.inject({ method: 'PUT', url: `${loc}?digest=${sha256('')}` });
      assert.equal(res.statusCode, 201, res.body);
      const get = await t.app.inject({ url: `/v2/up/repo/blobs/${sha256('')}` });
      assert.equal(get.statusCode, 200);
      assert.equal(get.headers['content-length'], '0');
    });

    it('refuses malformed digests, unknown algorithms and missing digests', async () => {
      assertError(await t.app.inject({ url: '/v2/up/repo/blobs/sha256:xyz' }), 400, 'DIGEST_INVALID');
      assertError(await t.app.inject({ url: `/v2/up/repo/blobs/md5:${'a'.repeat(32)}` }), 400, 'DIGEST_INVALID');
      assertError(await t.app.inject({ url: `/v2/up/repo/blobs/sha256:${'A'.repeat(64)}` }), 400, 'DIGEST_INVALID');
      const loc = await start();
      assertError(await t.app.inject({ method: 'PUT', url: loc }), 400, 'DIGEST_INVALID');
      assertError(await t.app.inject({ method: 'PUT', url: `${loc}?digest=nope` }), 400, 'DIGEST_INVALID');
    });

    it('reports unknown and cancelled uploads', async () => {
      assertError(await t.app.inject({ method: 'GET', url: '/v2/up/repo/blobs/uploads/00000000-0000-0000-0000-000000000000' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      assertError(await t.app.inject({ method: 'PATCH', url: '/v2/up/repo/blobs/uploads/not-a-uuid', payload: 'x', headers: { 'content-type': 'application/octet-stream' } }), 404, 'BLOB_UPLOAD_UNKNOWN');
      const loc = await start();
      await patch(loc, 'abc', '0-2');
      assert.equal((await t.app.inject({ method: 'DELETE', url: loc })).statusCode, 204);
      assertError(await t.app.inject({ method: 'GET', url: loc }), 404, 'BLOB_UPLOAD_UNKNOWN');
      assertError(await patch(loc, 'def', '3-5'), 404, 'BLOB_UPLOAD_UNKNOWN');
      // An upload belongs to its repository.
      const other = await start('up/other');
      const id = other.split('/').pop();
      assertError(await t.app.inject({ method: 'GET', url: `/v2/up/repo/blobs/uploads/${id}` }), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('refuses a malformed Content-Range', async () => {
      const loc = await start();
      assertError(await patch(loc, 'abc', 'bytes=abc'), 416, 'BLOB_UPLOAD_INVALID');
      assertError(await patch(loc, 'abc', '5-2'), 416, 'BLOB_UPLOAD_INVALID');
    });

    it('mounts from another repository, with and without from', async () => {
      const digest = await pushBlob(t.app, 'mount/src', 'mountable');
      let res = await t.app.inject({ method: 'POST', url: `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src` });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.headers.location, `/v2/mount/dst/blobs/${digest}`);
      res = await t.app.inject({ method: 'POST', url: `/v2/mount/auto/blobs/uploads/?mount=${digest}` });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal((await t.app.inject({ url: `/v2/mount/auto/blobs/${digest}` })).body, 'mountable');
      // Unknown blob: falls back to a new upload session.
      res = await t.app.inject({ method: 'POST', url: `/v2/mount/dst/blobs/uploads/?mount=${sha256('absent')}&from=mount/src` });
      assert.equal(res.statusCode, 202);
      assertError(await t.app.inject({ method: 'POST', url: `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=BAD` }), 400, 'NAME_INVALID');
    });

    it('serves byte ranges and refuses unsatisfiable ones', async () => {
      const digest = await pushBlob(t.app, 'up/range', '0123456789');
      let res = await t.app.inject({ url: `/v2/up/range/blobs/${digest}`, headers: { range: 'bytes=2-5' } });
      assert.equal(res.statusCode, 206);
      assert.equal(res.body, '2345');
      assert.equal(res.headers['content-range'], 'bytes 2-5/10');
      res = await t.app.inject({ url: `/v2/up/range/blobs/${digest}`, headers: { range: 'bytes=7-' } });
      assert.equal(res.body, '789');
      res = await t.app.inject({ url: `/v2/up/range/blobs/${digest}`, headers: { range: 'bytes=-3' } });
      assert.equal(res.body, '789');
      res = await t.app.inject({ url: `/v2/up/range/blobs/${digest}`, headers: { range: 'bytes=20-' } });
      assertError(res, 416, 'RANGE_INVALID');
      assert.equal(res.headers['content-range'], 'bytes */10');
    });

    it('expires stale uploads and removes their bytes', async () => {
      const loc = await start('up/stale');
      await patch(loc, 'stale bytes', '0-10');
      const id = loc.split('/').pop()!;
      assert.equal((await t.storage.stat(`uploads/${id}`))?.size, 11);
      assert.ok((await t.registry.uploads.expire(Date.now() + 1000)) >= 1);
      assert.equal(await t.storage.stat(`uploads/${id}`), undefined);
      assertError(await t.app.inject({ method: 'GET', url: loc }), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('a sweep (of another process) that listed an upload as stale leaves it alone once a chunk arrived', async () => {
      const loc = await start('up/revived');
      const id = loc.split('/').pop()!;
      const before = Date.now() + 50;
      const store = new UploadStore(t.db.db);
      const listed = await store.stale(before);
      assert.ok(listed.some((u) => u.id === id));
      // The other process's sweep works from that listing; meanwhile the client sends a chunk here.
      const other = new UploadService(Object.assign(Object.create(store) as UploadStore, { stale: async () => listed.splice(0) }), new BlobStore(t.db.db), t.storage);
      await new Promise((r) => setTimeout(r, 100));
      const res = await patch(loc, 'fresh bytes', '0-10');
      assert.equal(res.statusCode, 202, res.body);
      assert.equal(await other.expire(before), 0);
      assert.equal((await t.storage.stat(`uploads/${id}`))?.size, 11);
      const done = await t.app.inject({ method: 'PUT', url: `${loc}?digest=${sha256('fresh bytes')}` });
      assert.equal(done.statusCode, 201, done.body);
    });

    it('a chunk of an upload that expired meanwhile fails with BLOB_UPLOAD_UNKNOWN', async () => {
      const loc = await start('up/expired-under');
      const id = loc.split('/').pop()!;
      const store = new UploadStore(t.db.db);
      assert.equal(await store.claimStale(id, Date.now() + 1000), true);
      assertError(await patch(loc, 'late', '0-3'), 404, 'BLOB_UPLOAD_UNKNOWN');
      assert.equal(await t.storage.stat(`uploads/${id}`), undefined);
    });

    it('two chunks of one upload at two processes at once: one is written, the other refused with 416 and the stored range', async () => {
      const loc = await start('up/racing');
      const id = loc.split('/').pop()!;
      const repo = await t.registry.repositories.get((parseRepositoryName('up/racing') as { ok: true; name: RepositoryName }).name);
      // Another process: its own service (own mutex, own hash cache) on the same database and storage.
      const other = new UploadService(new UploadStore(t.db.db), new BlobStore(t.db.db), t.storage);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let firstArrived!: () => void;
      const arrived = new Promise<void>((r) => (firstArrived = r));
      const slow = (async function* () {
        yield Buffer.from('first');
        firstArrived();
        await held;
        yield Buffer.from('-chunk');
      })();
      const writing = other.append(repo, id, slow, { start: 0, end: 10 });
      await arrived;
      const res = await patch(loc, 'SECOND-CHNK', '0-10');
      assertError(res, 416, 'BLOB_UPLOAD_INVALID');
      assert.equal(res.headers.range, '0-0', 'nothing stored yet');
      assert.match(res.body, /another chunk of this upload is being written/);
      release();
      assert.deepEqual(await writing, { id, size: 11 });
      // The bytes of the chunk that was written, and only those, make the blob.
      assertError(await t.app.inject({ method: 'PUT', url: `${loc}?digest=${sha256('SECOND-CHNK')}` }), 400, 'DIGEST_INVALID');
      const done = await t.app.inject({ method: 'PUT', url: `${loc}?digest=${sha256('first-chunk')}` });
      assert.equal(done.statusCode, 201, done.body);
      assert.equal((await t.app.inject({ url: `/v2/up/racing/blobs/${sha256('first-chunk')}` })).body, 'first-chunk');
    });

    it('a chunk claim whose writer died expires; only its writer renews or releases it', async () => {
      const loc = await start('up/claims');
      const id = loc.split('/').pop()!;
      const store = new UploadStore(t.db.db);
      const now = Date.now();
      assert.equal(await store.claimChunk(id, 'w1', now, 1000), 'claimed');
      assert.equal(await store.claimChunk(id, 'w2', now + 500, 1000), 'busy');
      assert.equal(await store.renewChunk(id, 'w2', now + 500, 1000), false);
      assert.equal(await store.claimChunk(id, 'w2', now + 1000, 1000), 'claimed', 'w1 died: its claim lapsed');
      assert.equal(await store.renewChunk(id, 'w1', now + 1100, 1000), false, 'w1 no longer holds it');
      await store.releaseChunk(id, 'w1');
      assert.equal(await store.claimChunk(id, 'w3', now + 1200, 1000), 'busy', "w1's release did not end w2's claim");
      await store.releaseChunk(id, 'w2');
      assert.equal(await store.claimChunk(id, 'w3', now + 1200, 1000), 'claimed');
      await store.releaseChunk(id, 'w3');
      assert.equal(await store.claimChunk(`${id.slice(0, -1)}0`, 'w4', now, 1000), 'gone');
    });

    it('unlinks a blob on DELETE', async () => {
      const digest = await pushBlob(t.app, 'up/del', 'to delete');
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/v2/up/del/blobs/${digest}` })).statusCode, 202);
      assertError(await t.app.inject({ url: `/v2/up/del/blobs/${digest}` }), 404, 'BLOB_UNKNOWN');
      assertError(await t.app.inject({ method: 'DELETE', url: `/v2/up/del/blobs/${digest}` }), 404, 'BLOB_UNKNOWN');
    });
  });
}
