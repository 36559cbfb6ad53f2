/**
 * An upload in progress whose staged bytes are in a storage location that goes down, over two
 * filesystem locations behind fault doubles (both dialects): its next chunk, its status and its final
 * PUT answer 404 BLOB_UPLOAD_UNKNOWN (the upload cannot go on; clients start it again) rather than
 * going on from byte 0 in the other location, a new upload goes to the location that is up, an upload
 * with no bytes yet goes on there too, and once the location is back the old upload can be resumed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { FaultyDriver } from '../../../test/helpers/faulty-driver.js';
import { assertError, sha256 } from '../../../test/helpers/inject-client.js';
import type { Digest } from '../../oci/digest.js';
import { FsBlobDriver } from '../../storage/fs/fs-blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import { LocatedBlobDriver } from '../../storage/located-driver.js';

for (const dialect of DIALECTS) {
  describe(`an upload whose location goes down (${dialect})`, () => {
    let t: TestApp;
    let root: string;
    let eu: FaultyDriver;
    let us: FaultyDriver;
    before(async () => {
      root = await mkdtemp(join(tmpdir(), 'wharf-upload-outage-'));
      eu = new FaultyDriver(new FsBlobDriver(join(root, 'eu')), 'location eu');
      us = new FaultyDriver(new FsBlobDriver(join(root, 'us')), 'location us');
      const storage = new LocatedBlobDriver(
        [
          { name: 'eu', driver: eu },
          { name: 'us', driver: us },
        ],
        { cacheMs: 0 },
      );
      t = await buildTestApp(dialect, { storage, config: { 'auth.enabled': false } });
    });
    after(async () => {
      await t?.close();
      await rm(root, { recursive: true, force: true });
    });

    const start = async () => {
      const res = await t.app.inject({ method: 'POST', url: '/v2/geo/repo/blobs/uploads/' });
      assert.equal(res.statusCode, 202, res.body);
      return String(res.headers.location);
    };
    const patch = (location: string, data: string) => t.app.inject({ method: 'PATCH', url: location, payload: data, headers: { 'content-type': 'application/octet-stream' } });
    const put = (location: string, digest: string, data?: string) =>
      t.app.inject({ method: 'PUT', url: `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, ...(data === undefined ? {} : { payload: data, headers: { 'content-type': 'application/octet-stream' } }) });

    it('answers 404 BLOB_UPLOAD_UNKNOWN to its chunks, status and completion while its bytes are unreachable; a new upload goes to the other location', async () => {
      const [first, second] = ['first half of the layer, ', 'second half'];
      const digest = sha256(first + second);
      const old = await start();
      assert.equal((await patch(old, first)).statusCode, 202);
      eu.down = true;
      try {
        const chunk = await patch(old, second);
        assertError(chunk, 404, 'BLOB_UPLOAD_UNKNOWN');
        assert.match(chunk.json().errors[0].message, /cannot reach the 25 bytes it received .*start the upload again/);
        assertError(await t.app.inject({ method: 'GET', url: old }), 404, 'BLOB_UPLOAD_UNKNOWN');
        assertError(await put(old, digest), 404, 'BLOB_UPLOAD_UNKNOWN');
        assertError(await put(old, digest, second), 404, 'BLOB_UPLOAD_UNKNOWN');

        // The client starts again: the new upload is staged and committed in us.
        const again = await start();
        assert.equal((await patch(again, first)).statusCode, 202);
        assert.equal((await patch(again, second)).statusCode, 202);
        assert.equal((await put(again, digest)).statusCode, 201);
        assert.equal((await us.inner.stat(blobKey(digest as Digest)))?.size, first.length + second.length);
        const get = await t.app.inject({ method: 'GET', url: `/v2/geo/repo/blobs/${digest}` });
        assert.equal(get.statusCode, 200);
        assert.equal(get.body, first + second);
      } finally {
        eu.down = false;
      }
      // The location is back: the old upload's bytes are reachable again, and it can be resumed.
      const status = await t.app.inject({ method: 'GET', url: old });
      assert.equal(status.statusCode, 204, status.body);
      assert.equal(status.headers.range, `0-${first.length - 1}`);
      assert.equal((await patch(old, second)).statusCode, 202);
      assert.equal((await put(old, digest)).statusCode, 201);
    });

    it('goes on in the other location with an upload that has no bytes yet', async () => {
      const data = 'started before the outage, sent during it';
      const location = await start();
      eu.down = true;
      try {
        assert.equal((await patch(location, data)).statusCode, 202);
        const done = await put(location, sha256(data));
        assert.equal(done.statusCode, 201, done.body);
        assert.equal((await us.inner.stat(blobKey(sha256(data) as Digest)))?.size, data.length);
      } finally {
        eu.down = false;
      }
    });
  });
}
