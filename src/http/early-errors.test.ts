/**
 * Requests refused before they reach an endpoint, sent byte for byte on a socket: every answer is in
 * the error shape of its API (the OCI envelope on /v2 and other paths, the API's JSON error on
 * /api/v1), nothing is logged as an error, and Node answers none of them with a body of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../test/helpers/app.js';
import { DIALECTS } from '../../test/helpers/databases.js';
import { waitFor } from '../../test/helpers/e2e-utils.js';
import { captureLog, type CapturedLog } from '../../test/helpers/log-capture.js';
import { sendRaw, type Answer } from '../../test/helpers/raw-http.js';

/** The OCI error envelope with `code`. */
function assertOci(answer: Answer | undefined, status: number, code: string, what: string): void {
  assert.ok(answer, `${what}: an answer`);
  assert.equal(answer.status, status, `${what}: ${answer.body}`);
  assert.match(String(answer.headers['content-type']), /^application\/json/, what);
  const body = JSON.parse(answer.body.toString()) as { errors: Array<{ code: string; message: string }> };
  assert.equal(body.errors[0]?.code, code, `${what}: ${answer.body}`);
  assert.equal(typeof body.errors[0]?.message, 'string');
}

/** The management API's JSON error. */
function assertApi(answer: Answer | undefined, status: number, what: string): void {
  assert.ok(answer, `${what}: an answer`);
  assert.equal(answer.status, status, `${what}: ${answer.body}`);
  const body = JSON.parse(answer.body.toString()) as Record<string, unknown>;
  assert.equal(body.status, status, `${what}: ${answer.body}`);
  assert.equal(body.error_type, 'invalid_request', what);
  assert.equal(typeof body.detail, 'string', what);
}

for (const dialect of DIALECTS) {
  describe(`requests refused before routing (${dialect})`, () => {
    let t: TestApp;
    let log: CapturedLog;
    let port: number;
    before(async () => {
      log = captureLog('info');
      t = await buildTestApp(dialect, { logger: log.logger });
      await t.accounts!.accounts.createUser({ name: 'root', password: 'root-password-1', superuser: true });
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      port = (t.app.server.address() as { port: number }).port;
      // The first request that reaches an API route loads the route declarations, asynchronously; the
      // raw requests below half-close after writing, and Node closes the connection when it reads that,
      // so only an answer written before then arrives: the declarations are loaded here first.
      await t.app.inject({ method: 'GET', url: '/api/v1/user/' });
    });
    after(async () => {
      await t.close();
      assert.deepEqual(log.alarming(), [], 'no error-level log line, no stack trace');
    });

    const raw = (head: string, extra = '', body = '') => sendRaw(port, { bytes: `${head} HTTP/1.1\r\nHost: test\r\n${extra}\r\n${body}`, method: head.split(' ')[0]!, path: head.split(' ')[1]! });

    it('a path that is not valid percent-encoding: the code names the part on /v2; the API error on /api/v1', async () => {
      assertOci(await raw('GET /v2/acme/app/manifests/%'), 400, 'TAG_INVALID', 'reference');
      assertOci(await raw('PUT /v2/acme/app/manifests/sha256:%zz'), 400, 'DIGEST_INVALID', 'digest reference');
      assertOci(await raw('GET /v2/acme/%zz/manifests/v1'), 400, 'NAME_INVALID', 'name');
      assertOci(await raw('DELETE /v2/acme/%e0%80/blobs/sha256:00'), 400, 'NAME_INVALID', 'name of a blob');
      assertOci(await raw('GET /v2/acme/app/blobs/%C0%AF'), 400, 'DIGEST_INVALID', 'digest');
      assertOci(await raw('PATCH /v2/acme/app/blobs/uploads/%zz'), 400, 'BLOB_UPLOAD_INVALID', 'upload id');
      assertOci(await raw('GET /v2/%zz'), 400, 'UNSUPPORTED', 'no endpoint');
      assertOci(await raw('GET /%zz'), 400, 'UNSUPPORTED', 'outside /v2');
      assertApi(await raw('GET /api/v1/repository/acme/%e0%80/tag/'), 400, 'repository path');
      assertApi(await raw('DELETE /api/v1/user/apitokens/%'), 400, 'parameter');
    });

    it('a path parameter of the API up to 1000 characters reaches the route; a longer one is a 414', async () => {
      assertApi(await raw(`GET /api/v1/organization/${'a'.repeat(300)}`), 400, 'a name longer than names may be');
      assertApi(await raw(`GET /api/v1/organization/${'a'.repeat(1001)}`), 414, 'a parameter past the router limit');
    });

    it('headers too large (431), bytes the parser refuses (400)', async () => {
      const big = `X-Big: ${'a'.repeat(20_000)}\r\n`;
      assertOci(await raw('GET /v2/', big), 431, 'UNSUPPORTED', 'headers on /v2');
      assertApi(await raw('GET /api/v1/user/', big), 431, 'headers on /api/v1');
      const chunked = 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n';
      // With credentials, so that the manifest handler reads the body (without, it answers 401 first).
      const root = `Authorization: Basic ${Buffer.from('root:root-password-1').toString('base64')}\r\n`;
      assertOci(await raw('PUT /v2/acme/app/manifests/v1', root + chunked, '5\r\n{"sch\r\nzz\r\n'), 400, 'UNSUPPORTED', 'bad chunk size on /v2');
      assertApi(await raw('POST /api/v1/organization/', chunked, '5\r\n{"nam\r\nzz\r\n'), 400, 'bad chunk size on /api/v1');
      assertOci(await raw('GET /v2/', 'Bad Header: x\r\n'), 400, 'UNSUPPORTED', 'a header name with a space');
      assertOci(await raw('GET /v2/', 'Content-Length: 1\r\nTransfer-Encoding: chunked\r\n'), 400, 'UNSUPPORTED', 'two framings');
      const preface = await sendRaw(port, { bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', method: 'PRI', path: '*' });
      assertOci(preface, 400, 'UNSUPPORTED', 'an HTTP/2 preface');
    });

    it('an Expect other than 100-continue (417), no Host (400), CONNECT (405), %00 in the URL (400)', async () => {
      assertOci(await raw('GET /v2/', 'Expect: garbage\r\n'), 417, 'UNSUPPORTED', 'Expect on /v2');
      assertApi(await raw('GET /api/v1/user/', 'Expect: garbage\r\n'), 417, 'Expect on /api/v1');
      const continued = await raw('GET /v2/', 'Expect: 100-continue\r\n');
      assert.equal(continued?.status, 100, '100-continue still works');
      const hostless = await sendRaw(port, { bytes: 'GET /v2/ HTTP/1.1\r\n\r\n', method: 'GET', path: '/v2/' });
      assertOci(hostless, 400, 'UNSUPPORTED', 'no Host');
      const connect = await sendRaw(port, { bytes: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', method: 'CONNECT', path: 'example.com:443' });
      assertOci(connect, 405, 'UNSUPPORTED', 'CONNECT');
      assertOci(await raw('GET /v2/_catalog?last=%00'), 400, 'UNSUPPORTED', 'NUL in a /v2 query');
      assertApi(await raw('GET /api/v1/organization/a%00b'), 400, 'NUL in an /api/v1 path');
    });

    it('logs each of them at info, naming the request, without a stack trace', async () => {
      await waitFor('the log lines', () => log.lines.filter((l) => l.msg === 'malformed request').length >= 8);
      const lines = log.lines.filter((l) => l.msg === 'malformed request');
      assert.ok(lines.every((l) => l.level === 30 && l.err === undefined));
      assert.ok(lines.some((l) => l.code === 'HPE_HEADER_OVERFLOW'));
      assert.ok(lines.some((l) => l.code === 'FST_ERR_BAD_URL'));
    });
  });
}

describe('requests that arrive while the registry shuts down', () => {
  it('get 503 UNAVAILABLE in the OCI envelope, with Connection: close', async () => {
    const t = await buildTestApp('sqlite', { config: { 'auth.enabled': false } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (t.app.server.address() as { port: number }).port;
    const started = await t.app.inject({ method: 'POST', url: '/v2/acme/app/blobs/uploads/' });
    const location = String(started.headers.location);
    // A chunk in flight keeps the connection busy while the server starts closing; the request
    // pipelined behind it arrives during the shutdown. `100 Continue` says the chunk's request is in.
    const { connect } = await import('node:net');
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write(`PATCH ${location} HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\nabc`);
    await waitFor('the chunk to be in flight', () => text.startsWith('HTTP/1.1 100 Continue'));
    const closing = t.app.close();
    await waitFor('the server to stop listening', () => !t.app.server.listening);
    socket.write('defGET /v2/ HTTP/1.1\r\nHost: test\r\n\r\n');
    await closed;
    await closing;
    const [, first, second] = text.split(/(?=HTTP\/1\.1 )/);
    assert.match(first ?? '', /^HTTP\/1\.1 202/, 'the chunk in flight completes');
    assert.match(second ?? '', /^HTTP\/1\.1 503/, text);
    assert.match(second!, /\r\nconnection: close\r\n/i);
    assert.match(second!, /\{"errors":\[\{"code":"UNAVAILABLE","message":"the registry is shutting down; retry the request"\}\]\}/);
    await t.close();
  });
});
