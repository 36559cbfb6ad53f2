import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { startFaultServer, type FaultServer } from '../../../test/helpers/fault-server.js';
import { makeTestPki, type TestPki } from '../../../test/helpers/tls.js';
import type { PositionalReader } from '../blob-driver.js';
import { DirectGetError, directGet } from './direct-get.js';

const opts = { connectTimeoutMs: 2000, idleTimeoutMs: 500 };

/** Every byte, read in order through buffers of `chunk` bytes (as the blob sender reads). */
async function readAll(reader: PositionalReader, start: number, length: number, chunk = 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let at = start;
  while (at < start + length) {
    const buf = Buffer.alloc(Math.min(chunk, start + length - at));
    const n = await reader.read(buf, at, buf.length);
    if (n === 0) break;
    parts.push(buf.subarray(0, n));
    at += n;
  }
  return Buffer.concat(parts);
}

describe('directGet: an S3 GET read from the socket', () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  let server: FaultServer;
  after(() => server?.close());

  it('reads the whole object and a range, whatever the sizes of the reads', async () => {
    server = await startFaultServer((req, res) => {
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (!m) return void res.writeHead(200, { 'Content-Length': data.length }).end(data);
      const start = Number(m[1]);
      const end = m[2] ? Number(m[2]) : data.length - 1;
      res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` });
      // In small pieces with pauses, so that the head and the body arrive apart.
      const body = data.subarray(start, end + 1);
      let at = 0;
      const next = () => {
        if (at >= body.length) return void res.end();
        res.write(body.subarray(at, (at += 100_000)));
        setTimeout(next, at < 300_000 ? 5 : 0);
      };
      next();
    });
    const whole = await directGet(new URL(`${server.url}/b/k?sig=1`), undefined, opts);
    assert.equal(whole.kind, 'body');
    if (whole.kind !== 'body') return;
    assert.equal(whole.reader.size, data.length);
    assert.ok((await readAll(whole.reader, 0, data.length)).equals(data));
    assert.equal(await whole.reader.read(Buffer.alloc(10), data.length, 10), 0, 'nothing after the end');
    await whole.reader.close();

    const range = await directGet(new URL(`${server.url}/b/k`), { offset: 1000, length: 2_000_000 }, opts);
    assert.equal(range.kind, 'body');
    if (range.kind !== 'body') return;
    assert.equal(range.reader.size, data.length, 'the object size, from Content-Range');
    assert.ok((await readAll(range.reader, 1000, 2_000_000, 77_777)).equals(data.subarray(1000, 2_001_000)));
    await assert.rejects(range.reader.read(Buffer.alloc(10), 5, 10), /follow each other/);
    await range.reader.close();
    assert.equal(server.requests[1]?.headers.range, 'bytes=1000-2000999');
  });

  it('leaves error statuses and unframed bodies to the caller, before reading any body', async () => {
    server.setHandler((req, res) => {
      if (req.url?.startsWith('/missing')) return void res.writeHead(404, { 'Content-Type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>');
      res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
      res.end('chunked body');
    });
    assert.deepEqual(await directGet(new URL(`${server.url}/missing`), undefined, opts), { kind: 'unsupported', status: 404 });
    assert.deepEqual(await directGet(new URL(`${server.url}/chunked`), undefined, opts), { kind: 'unsupported', status: 200 });
  });

  it('fails a read when the connection breaks off before the end, never ending short', async () => {
    server.setHandler((_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.write(data.subarray(0, 1024 * 1024), () => res.destroy());
    });
    const r = await directGet(new URL(`${server.url}/trunc`), undefined, opts);
    assert.equal(r.kind, 'body');
    if (r.kind !== 'body') return;
    await assert.rejects(readAll(r.reader, 0, data.length), (err: Error) => err instanceof DirectGetError && /closed \d+ bytes before the end/.test(err.message));
  });

  it('fails when the store goes silent mid-body, and when it never answers', async () => {
    server.setHandler((_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.write(data.subarray(0, 4096));
    });
    const r = await directGet(new URL(`${server.url}/stall`), undefined, opts);
    assert.equal(r.kind, 'body');
    if (r.kind !== 'body') return;
    await assert.rejects(readAll(r.reader, 0, data.length), (err: Error) => err instanceof DirectGetError && /silent/.test(err.message));

    server.setHandler(() => {});
    await assert.rejects(directGet(new URL(`${server.url}/mute`), undefined, opts), (err: Error) => err instanceof DirectGetError && /silent/.test(err.message));
  });

  it('fails at once when nothing listens, and on an answer that is not HTTP', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(directGet(new URL(`http://127.0.0.1:${port}/x`), undefined, opts), (err: Error) => err instanceof DirectGetError && /ECONNREFUSED/.test(err.message));

    const garbage = createServer((s) => {
      s.on('error', () => {});
      s.end(Buffer.alloc(70 * 1024, 'x'));
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    try {
      const url = new URL(`http://127.0.0.1:${(garbage.address() as { port: number }).port}/x`);
      await assert.rejects(directGet(url, undefined, opts), (err: Error) => err instanceof DirectGetError && /longer than/.test(err.message));
    } finally {
      await new Promise<void>((r) => garbage.close(() => r()));
    }
  });
});

describe('directGet over TLS (https: URLs)', () => {
  const data = randomBytes(2 * 1024 * 1024 + 5);
  let pki: TestPki;
  let server: FaultServer;
  let tlsOpts: typeof opts & { ca: string };
  after(async () => {
    await server?.close();
    await pki?.remove();
  });

  it('reads the whole object and a range from a server whose authority is given', async () => {
    pki = await makeTestPki();
    tlsOpts = { ...opts, ca: pki.ca };
    server = await startFaultServer(
      (req, res) => {
        const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
        if (!m) return void res.writeHead(200, { 'Content-Length': data.length }).end(data);
        const start = Number(m[1]);
        const end = m[2] ? Number(m[2]) : data.length - 1;
        res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` }).end(data.subarray(start, end + 1));
      },
      { tls: { key: pki.key, cert: pki.cert } },
    );
    assert.match(server.url, /^https:/);
    const whole = await directGet(new URL(`${server.url}/b/k?sig=1`), undefined, tlsOpts);
    assert.equal(whole.kind, 'body');
    if (whole.kind !== 'body') return;
    assert.ok((await readAll(whole.reader, 0, data.length, 100_000)).equals(data));
    await whole.reader.close();

    // By name too: the certificate is for 127.0.0.1 and localhost.
    const range = await directGet(new URL(`https://localhost:${server.port}/b/k`), { offset: 7, length: 1_500_000 }, tlsOpts);
    assert.equal(range.kind, 'body');
    if (range.kind !== 'body') return;
    assert.equal(range.reader.size, data.length);
    assert.ok((await readAll(range.reader, 7, 1_500_000)).equals(data.subarray(7, 1_500_007)));
    await range.reader.close();
    assert.equal(server.requests.at(-1)?.headers.host, `localhost:${server.port}`);
  });

  it('loses no byte when TLS hands over several records while the reader is not reading', async () => {
    // TLS decrypts every record already received in one go, calling the socket's read callback once
    // per record even after it asked to pause: a slow reader with small buffers must still get every byte.
    const r = await directGet(new URL(`${server.url}/b/k`), undefined, tlsOpts);
    assert.equal(r.kind, 'body');
    if (r.kind !== 'body') return;
    const parts: Buffer[] = [];
    for (let at = 0; at < data.length; ) {
      await new Promise((res) => setTimeout(res, at % 7 === 0 ? 1 : 0));
      const buf = Buffer.alloc(Math.min(5000, data.length - at));
      const n = await r.reader.read(buf, at, buf.length);
      assert.ok(n > 0, `a read at ${at} of ${data.length} ended the body`);
      parts.push(buf.subarray(0, n));
      at += n;
    }
    assert.ok(Buffer.concat(parts).equals(data));
    await r.reader.close();
  });

  it("refuses a certificate its authorities do not vouch for, as a failure of the connection", async () => {
    // Without `ca`: Node's own authorities (and NODE_EXTRA_CA_CERTS), which know nothing of the test CA.
    await assert.rejects(directGet(new URL(`${server.url}/b/k`), undefined, opts), (err: Error) => err instanceof DirectGetError && /UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(err.message));
    const other = await makeTestPki();
    try {
      await assert.rejects(directGet(new URL(`${server.url}/b/k`), undefined, { ...opts, ca: other.ca }), (err: Error) => err instanceof DirectGetError && /UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(err.message));
    } finally {
      await other.remove();
    }
    // Plain HTTP to the TLS port: no answer that parses.
    await assert.rejects(directGet(new URL(`http://127.0.0.1:${server.port}/b/k`), undefined, opts), DirectGetError);
  });

  it('fails a read when the TLS connection breaks off before the end', async () => {
    server.setHandler((_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.write(data.subarray(0, 512 * 1024), () => res.socket?.destroy());
    });
    const r = await directGet(new URL(`${server.url}/trunc`), undefined, tlsOpts);
    assert.equal(r.kind, 'body');
    if (r.kind !== 'body') return;
    await assert.rejects(readAll(r.reader, 0, data.length), (err: Error) => err instanceof DirectGetError && /closed \d+ bytes before the end/.test(err.message));
  });

  it('fails when the TLS server goes silent mid-body, and when it never finishes the handshake', async () => {
    server.setHandler((_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.write(data.subarray(0, 4096));
    });
    const r = await directGet(new URL(`${server.url}/stall`), undefined, tlsOpts);
    assert.equal(r.kind, 'body');
    if (r.kind !== 'body') return;
    await assert.rejects(readAll(r.reader, 0, data.length), (err: Error) => err instanceof DirectGetError && /silent/.test(err.message));

    // A plain TCP server that accepts and says nothing: the handshake never completes.
    const mute = createServer((s) => s.on('error', () => {}));
    await new Promise<void>((res) => mute.listen(0, '127.0.0.1', res));
    try {
      const url = new URL(`https://127.0.0.1:${(mute.address() as { port: number }).port}/x`);
      await assert.rejects(directGet(url, undefined, { ...tlsOpts, connectTimeoutMs: 300 }), (err: Error) => err instanceof DirectGetError && /no connection within 300 ms/.test(err.message));
    } finally {
      mute.close();
    }
  });
});
