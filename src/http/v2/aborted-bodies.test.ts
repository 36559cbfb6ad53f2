/**
 * Request bodies that end early on a real socket (the client hangs up, or sends chunked framing Node
 * refuses): a client's doing, so one info line without a stack trace, never an internal error, and
 * nothing stored — for a manifest PUT, a monolithic blob POST and the chunks of an upload.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { waitFor } from '../../../test/helpers/e2e-utils.js';
import { sha256 } from '../../../test/helpers/inject-client.js';
import { captureLog, type CapturedLog } from '../../../test/helpers/log-capture.js';
import { sendRaw, type RawRequest } from '../../../test/helpers/raw-http.js';
import type { Digest } from '../../oci/digest.js';
import { blobKey } from '../../storage/keys.js';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

for (const dialect of DIALECTS) {
  describe(`request bodies that end early (${dialect})`, () => {
    let t: TestApp;
    let log: CapturedLog;
    let port: number;
    before(async () => {
      log = captureLog('info');
      t = await buildTestApp(dialect, { config: { 'auth.enabled': false }, logger: log.logger });
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      port = (t.app.server.address() as { port: number }).port;
    });
    after(async () => t.close());

    const keys = async () => {
      const all: string[] = [];
      for await (const k of t.storage.list('')) all.push(k);
      return all.sort();
    };

    /** Sends `head` + `body` for request `id`, then waits for the registry to log how the body ended. */
    async function send(id: string, head: string, body: string, then: RawRequest['then']) {
      const bytes = `${head.replace('\r\n', `\r\nHost: test\r\nX-Request-Id: ${id}\r\n`)}\r\n\r\n${body}`;
      await sendRaw(port, { bytes, then, method: head.split(' ')[0]!, path: head.split(' ')[1]! });
      await waitFor(`a log line of ${id}`, () => log.lines.some((l) => l.reqId === id && l.level >= 30 && l.msg !== 'request'));
      const lines = log.lines.filter((l) => l.reqId === id);
      assert.deepEqual(log.alarming(), [], 'no error-level line, no stack trace');
      const ended = lines.find((l) => l.msg === 'request body ended early');
      assert.ok(ended, `an info line says the body ended early: ${JSON.stringify(lines)}`);
      assert.equal(ended.level, 30);
    }

    it('manifest PUT: the client hangs up mid-body, or sends a bad chunk size; no manifest, no tag', async () => {
      const before = await keys();
      const put = (tag: string) => `PUT /v2/cut/repo/manifests/${tag} HTTP/1.1\r\nContent-Type: ${MANIFEST_TYPE}`;
      await send('m-hangup', `${put('hangup')}\r\nContent-Length: 200`, '{"schemaVersion":2,', 'destroy');
      await send('m-short', `${put('short')}\r\nContent-Length: 200`, '{"schemaVersion":2,', 'end');
      await send('m-chunk', `${put('chunk')}\r\nTransfer-Encoding: chunked`, '5\r\n{"sch\r\nzz\r\n', 'end');
      for (const tag of ['hangup', 'short', 'chunk']) {
        assert.equal((await t.app.inject({ url: `/v2/cut/repo/manifests/${tag}` })).statusCode, 404, tag);
      }
      assert.deepEqual(await keys(), before, 'nothing written to storage');
    });

    it('monolithic blob POST: the client hangs up mid-body, or the chunked body breaks off; no blob', async () => {
      const before = await keys();
      const digest = sha256('the whole blob that never arrives') as Digest;
      const post = `POST /v2/cut/repo/blobs/uploads/?digest=${digest} HTTP/1.1\r\nContent-Type: application/octet-stream`;
      await send('b-hangup', `${post}\r\nContent-Length: 33`, 'the whole', 'destroy');
      await send('b-chunk', `${post}\r\nTransfer-Encoding: chunked`, '9\r\nthe whole\r\nzz\r\n', 'end');
      await send('b-cut', `${post}\r\nTransfer-Encoding: chunked`, '20\r\nthe who', 'end');
      assert.equal(await t.storage.stat(blobKey(digest)), undefined);
      assert.equal((await t.app.inject({ method: 'HEAD', url: `/v2/cut/repo/blobs/${digest}` })).statusCode, 404);
      assert.deepEqual(await keys(), before, 'no temporary bytes left behind');
    });

    it('chunked upload: a PATCH or the final PUT that breaks off leaves the upload where it was', async () => {
      const started = await t.app.inject({ method: 'POST', url: '/v2/cut/repo/blobs/uploads/' });
      const location = String(started.headers.location);
      const first = await t.app.inject({ method: 'PATCH', url: location, payload: 'abc', headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(first.statusCode, 202, first.body);
      const digest = sha256('abcdef');
      await send('u-patch', `PATCH ${location} HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 10`, 'de', 'destroy');
      await send('u-put', `PUT ${location}?digest=${digest} HTTP/1.1\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked`, '2\r\nde\r\nzz\r\n', 'end');
      const status = await t.app.inject({ url: location });
      assert.equal(status.statusCode, 204);
      assert.equal(status.headers.range, '0-2', 'only the bytes of the completed chunk');
      assert.equal(await t.storage.stat(blobKey(digest as Digest)), undefined);
      const done = await t.app.inject({ method: 'PUT', url: `${location}?digest=${digest}`, payload: 'def', headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(done.statusCode, 201, done.body);
    });
  });
}
