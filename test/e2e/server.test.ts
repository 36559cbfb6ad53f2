/**
 * The `wharf serve` process end to end: TLS (self-signed and configured), graceful shutdown with a
 * download in flight, Prometheus metrics, the health endpoint, JSON request logs with request ids,
 * PostgreSQL and SQLite metadata databases, and configuration errors.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../helpers/ports.js';
import { ADMIN, adminFetch as fetch, basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';
import { fetchBody, sha256, waitFor } from '../helpers/e2e-utils.js';

const MiB = 1024 * 1024;
const repoRoot = resolve(import.meta.dirname, '..', '..');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';


/** Like `it`, but a failure also prints the output of the Wharf processes the test registered. */
function test(name: string, fn: (t: TestContext, show: (w: WharfProcess) => WharfProcess) => Promise<void>): void {
  it(name, async (t) => {
    const shown: WharfProcess[] = [];
    try {
      await fn(t, (w) => (shown.push(w), w));
    } catch (err) {
      for (const w of shown) t.diagnostic(`wharf ${w.url} output (tail):\n${w.output().slice(-3000)}`);
      throw err;
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Registry client bits

async function pushBlob(w: WharfProcess, repo: string, bytes: Uint8Array): Promise<string> {
  const digest = sha256(bytes);
  const res = await fetch(`${w.url}/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: fetchBody(bytes),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 201, `monolithic push of ${digest}`);
  return digest;
}

/** Pushes a layer with a chunked upload (two PATCHes and a PUT). */
async function pushBlobChunked(w: WharfProcess, repo: string, bytes: Uint8Array): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${w.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  assert.equal(start.status, 202);
  let location = start.headers.get('location')!;
  const half = Math.floor(bytes.byteLength / 2);
  for (const [from, to] of [
    [0, half],
    [half, bytes.byteLength],
  ] as const) {
    const res = await fetch(new URL(location, w.url), {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${from}-${to - 1}` },
      body: fetchBody(bytes.subarray(from, to)),
    });
    await res.arrayBuffer();
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('range'), `0-${to - 1}`);
    location = res.headers.get('location')!;
  }
  const put = new URL(location, w.url);
  put.searchParams.set('digest', digest);
  const res = await fetch(put, { method: 'PUT' });
  await res.arrayBuffer();
  assert.equal(res.status, 201);
  return digest;
}

interface PushedImage {
  repo: string;
  tag: string;
  manifest: Buffer;
  manifestDigest: string;
  blobs: Map<string, Buffer>;
}

async function pushImage(w: WharfProcess, repo: string, tag: string, layerSize = 256 * 1024): Promise<PushedImage> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layer = randomBytes(layerSize);
  const configDigest = await pushBlob(w, repo, config);
  const layerDigest = await pushBlobChunked(w, repo, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.byteLength }],
    }),
  );
  const res = await fetch(`${w.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'Content-Type': OCI_MANIFEST }, body: manifest });
  await res.arrayBuffer();
  assert.equal(res.status, 201, 'manifest push');
  const manifestDigest = sha256(manifest);
  assert.equal(res.headers.get('docker-content-digest'), manifestDigest);
  return { repo, tag, manifest, manifestDigest, blobs: new Map([[configDigest, config], [layerDigest, layer]]) };
}

/** Pulls the image by tag and by digest and checks every byte. */
async function assertPull(w: WharfProcess, img: PushedImage): Promise<void> {
  for (const ref of [img.tag, img.manifestDigest]) {
    const res = await fetch(`${w.url}/v2/${img.repo}/manifests/${ref}`, { headers: { Accept: OCI_MANIFEST } });
    assert.equal(res.status, 200, `manifest ${ref}`);
    assert.equal(res.headers.get('docker-content-digest'), img.manifestDigest);
    assert.equal(res.headers.get('content-type'), OCI_MANIFEST);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(img.manifest), 'manifest bytes as pushed');
  }
  for (const [digest, bytes] of img.blobs) {
    const res = await fetch(`${w.url}/v2/${img.repo}/blobs/${digest}`);
    assert.equal(res.status, 200, `blob ${digest}`);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), `blob ${digest} bytes`);
  }
  const tags = await fetch(`${w.url}/v2/${img.repo}/tags/list`);
  assert.equal(tags.status, 200);
  assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, [img.tag]);
}

// ---------------------------------------------------------------------------------------------------
// HTTPS client

interface HttpsResult {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  /** SHA-256 fingerprint of the certificate the server presented. */
  peerFingerprint: string;
}

/** GET over HTTPS verifying the server against `ca`; `localhost` is resolved over IPv4 (Wharf listens on 127.0.0.1). */
function httpsGet(url: string, ca: string | Buffer | undefined): Promise<HttpsResult> {
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequest(url, { method: 'GET', agent: false, family: 4, headers: { authorization: basicAuth(ADMIN) }, ...(ca ? { ca } : {}) }, (res) => {
      const peerFingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), peerFingerprint }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------
// Metrics

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `metrics line parses: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(w: WharfProcess): Promise<Sample[]> {
  const res = await fetch(`${w.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parseMetrics(await res.text());
}

function sampleValue(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

// ---------------------------------------------------------------------------------------------------
// Running `wharf` to completion (config errors)

function runWharf(args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), ...args], {
      cwd: repoRoot,
      env: { ...process.env, WHARF_HOST: '127.0.0.1', WHARF_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A process still running after the bound is a failure (it should have refused to start).
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

// ===================================================================================================

describe('server: TLS', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test('--tls-self-signed localhost: HTTPS with a generated certificate kept under <dataDir>/tls/ and reused on restart', async (_t, show) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-tls-'));
    dirs.push(dataDir);
    const port = await freePort();
    const w1 = show(await startWharf({ dataDir, port, scheme: 'https', args: ['--tls-self-signed', 'localhost'] }));
    try {
      const certPath = join(dataDir, 'tls', 'localhost.crt');
      const keyPath = join(dataDir, 'tls', 'localhost.key');
      assert.ok(existsSync(certPath), 'certificate file');
      assert.ok(existsSync(keyPath), 'key file');
      assert.equal(statSync(keyPath).mode & 0o077, 0, 'the private key is readable by its owner only');
      const cert = await readFile(certPath);
      const x509 = new X509Certificate(cert);
      assert.match(x509.subjectAltName ?? '', /DNS:localhost/);

      const res = await httpsGet(`https://localhost:${port}/v2/`, cert);
      assert.equal(res.status, 200);
      assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
      assert.equal(res.peerFingerprint, x509.fingerprint256, 'the server presents the stored certificate');

      // Without the CA the certificate is not trusted: TLS is really in the way.
      await assert.rejects(httpsGet(`https://localhost:${port}/v2/`, undefined), (err: NodeJS.ErrnoException) => {
        assert.match(String(err.code), /SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/);
        return true;
      });
      // Plain HTTP is not served on the port: the TLS server drops the connection.
      const plain = await fetch(`http://127.0.0.1:${port}/v2/`).then(
        async (r) => `HTTP ${r.status} ${await r.text()}`,
        () => 'connection failed',
      );
      assert.equal(plain, 'connection failed');

      await w1.stop();
      const w2 = show(await startWharf({ dataDir, port, scheme: 'https', ca: cert, args: ['--tls-self-signed', 'localhost'] }));
      try {
        assert.ok((await readFile(certPath)).equals(cert), 'the certificate file is unchanged');
        const again = await httpsGet(`https://localhost:${port}/v2/`, cert);
        assert.equal(again.status, 200);
        assert.equal(again.peerFingerprint, x509.fingerprint256, 'same certificate after restart');
      } finally {
        await w2.stop();
      }
    } finally {
      await w1.stop();
    }
  });

  test('tls.cert / tls.key via WHARF_TLS_CERT and WHARF_TLS_KEY', async (_t, show) => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-tls-conf-'));
    dirs.push(dir);
    const certPath = join(dir, 'server.crt');
    const keyPath = join(dir, 'server.key');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-days', '2', '-keyout', keyPath, '-out', certPath,
    ]);
    const cert = await readFile(certPath);
    const port = await freePort();
    const w = show(await startWharf({ port, scheme: 'https', ca: cert, env: { WHARF_TLS_CERT: certPath, WHARF_TLS_KEY: keyPath } }));
    try {
      for (const host of ['localhost', '127.0.0.1']) {
        const res = await httpsGet(`https://${host}:${port}/v2/`, cert);
        assert.equal(res.status, 200, host);
        assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
        assert.equal(res.peerFingerprint, new X509Certificate(cert).fingerprint256);
      }
      assert.equal(existsSync(join(w.dataDir, 'tls')), false, 'no self-signed certificate was generated');
    } finally {
      await w.stop();
    }
  });
});

describe('server: graceful shutdown', () => {
  test('SIGTERM lets an in-flight 64 MiB download finish with the exact bytes, refuses new connections, exits 0', async (_t, show) => {
    const w = show(await startWharf());
    try {
      const blob = randomBytes(64 * MiB);
      const digest = await pushBlob(w, 'shutdown/big', blob);

      // Start the download, take the first bytes, then stop reading: the server is stuck mid-response.
      const hash = createHash('sha256');
      let received = 0;
      const res = await new Promise<IncomingMessage>((r, reject) => httpGet(`${w.url}/v2/shutdown/big/blobs/${digest}`, { agent: false, headers: { authorization: basicAuth(ADMIN) } }, r).on('error', reject));
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], String(blob.byteLength));
      const done = new Promise<void>((r, reject) => {
        res.on('end', r);
        res.on('error', reject);
        res.on('aborted', () => reject(new Error(`download aborted after ${received} bytes`)));
      });
      const firstBytes = new Promise<void>((r) => res.once('data', () => r()));
      res.on('data', (c: Buffer) => {
        hash.update(c);
        received += c.byteLength;
      });
      await firstBytes;
      res.pause();

      const exited = new Promise<{ code: number | null; signal: string | null }>((r) => w.child.once('exit', (code, signal) => r({ code, signal })));
      w.child.kill('SIGTERM');

      // New connections are refused (or answered 503) once the server is closing.
      await waitFor('new connections to be refused', async () => {
        try {
          const r = await new Promise<IncomingMessage>((ok, ko) => httpGet(`${w.url}/v2/`, { agent: false, headers: { authorization: basicAuth(ADMIN) } }, ok).on('error', ko));
          r.resume();
          return r.statusCode === 503;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
        }
      });
      assert.equal(w.child.exitCode, null, 'the process waits for the download in flight');
      assert.ok(received < blob.byteLength, 'the download was still in flight during shutdown');

      res.resume();
      await done;
      assert.equal(received, blob.byteLength, 'all bytes arrived');
      assert.equal(`sha256:${hash.digest('hex')}`, digest, 'the bytes are exactly the blob');

      const { code, signal } = await exited;
      assert.equal(signal, null);
      assert.equal(code, 0, 'clean exit');
      await assert.rejects(fetch(`${w.url}/v2/`), 'nothing listens any more');
    } finally {
      await w.stop();
    }
  });
});

describe('server: observability', () => {
  let w: WharfProcess;
  after(async () => {
    await w?.stop();
  });

  test('/metrics: request counts by route, latency histogram, response bytes of a blob GET', async (_t, show) => {
    w = show(await startWharf());
    const img = await pushImage(w, 'metrics/app', 'v1', 300 * 1024);
    const m = await fetch(`${w.url}/v2/metrics/app/manifests/v1`, { headers: { Accept: OCI_MANIFEST } });
    assert.equal(m.status, 200);
    await m.arrayBuffer();
    const missing = await fetch(`${w.url}/v2/metrics/app/manifests/nope`);
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();

    // Request metrics are counted when a response has finished: wait until both GETs are in.
    let samples: Sample[] = [];
    await waitFor('the manifest GETs to be counted', async () => {
      samples = await scrape(w);
      return sampleValue(samples, 'wharf_http_requests_total', { method: 'GET', route: 'manifest_get', status: '404' }) === 1;
    });
    assert.equal(sampleValue(samples, 'wharf_http_requests_total', { method: 'GET', route: 'manifest_get', status: '200' }), 1);
    assert.equal(sampleValue(samples, 'wharf_http_requests_total', { method: 'PUT', route: 'manifest_put', status: '201' }), 1);
    assert.equal(sampleValue(samples, 'wharf_http_requests_total', { method: 'PATCH', route: 'upload_patch', status: '202' }), 2);
    assert.equal(sampleValue(samples, 'wharf_http_request_duration_seconds_count', { method: 'GET', route: 'manifest_get' }), 2);
    const buckets = samples.filter((s) => s.name === 'wharf_http_request_duration_seconds_bucket' && s.labels.route === 'manifest_get');
    assert.ok(buckets.length > 1, 'histogram buckets');
    assert.equal(buckets.find((b) => b.labels.le === '+Inf')?.value, 2);
    assert.ok(sampleValue(samples, 'wharf_http_request_duration_seconds_sum', { method: 'GET', route: 'manifest_get' })! > 0);
    assert.ok(samples.some((s) => s.name === 'wharf_process_cpu_user_seconds_total'), 'default process metrics');

    const before = sampleValue(samples, 'wharf_http_response_bytes_total', { route: 'blob' }) ?? 0;
    const [layerDigest, layer] = [...img.blobs].find(([, b]) => b.byteLength === 300 * 1024)!;
    const get = await fetch(`${w.url}/v2/metrics/app/blobs/${layerDigest}`);
    assert.equal(get.status, 200);
    assert.equal((await get.arrayBuffer()).byteLength, layer.byteLength);
    await waitFor('the blob GET to be counted', async () => {
      samples = await scrape(w);
      return sampleValue(samples, 'wharf_http_requests_total', { method: 'GET', route: 'blob_get', status: '200' }) === 1;
    });
    assert.equal(sampleValue(samples, 'wharf_http_response_bytes_total', { route: 'blob' }), before + layer.byteLength);
    assert.equal(sampleValue(samples, 'wharf_http_response_bytes_total', { route: 'manifest' }), img.manifest.byteLength);
  });

  test('/health/instance reports database and storage', async (_t, show) => {
    w ??= show(await startWharf());
    show(w);
    const res = await fetch(`${w.url}/health/instance`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await res.json()) as { data: { services: Record<string, boolean> }; status_code: number };
    assert.deepEqual(Object.keys(body).sort(), ['data', 'status_code']);
    assert.equal(body.status_code, 200);
    assert.equal(body.data.services.database, true);
    assert.equal(body.data.services.registry_storage, true);
    assert.ok(Object.values(body.data.services).every((v) => v === true));
  });

  test('JSON log lines on stdout carry reqId/method/status; X-Request-Id is returned and an incoming one honoured', async (_t, show) => {
    const lw = show(await startWharf({ env: { WHARF_LOG_LEVEL: 'info' } }));
    try {
      const given = await fetch(`${lw.url}/v2/`, { headers: { 'X-Request-Id': 'e2e-trace.42' } });
      await given.arrayBuffer();
      assert.equal(given.headers.get('x-request-id'), 'e2e-trace.42', 'incoming request id honoured');

      const fresh = await fetch(`${lw.url}/v2/logs/app/manifests/missing`);
      await fresh.arrayBuffer();
      assert.equal(fresh.status, 404);
      const freshId = fresh.headers.get('x-request-id');
      assert.match(freshId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a generated id');

      const bogus = await fetch(`${lw.url}/v2/`, { headers: { 'X-Request-Id': 'not ok/' + 'x'.repeat(80) } });
      await bogus.arrayBuffer();
      const bogusId = bogus.headers.get('x-request-id');
      assert.match(bogusId ?? '', /^[0-9a-f-]{36}$/, 'an unusable incoming id is replaced');

      type Line = Record<string, unknown>;
      let lines: Line[] = [];
      await waitFor('the request log lines', () => {
        const text = lw.stdout();
        // Only complete lines: the last one may still be in the pipe.
        lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => {
          try {
            return JSON.parse(l) as Line;
          } catch {
            assert.fail(`stdout line is not JSON: ${l}`);
          }
        });
        return [given.headers.get('x-request-id'), freshId, bogusId].every((id) => lines.some((l) => l.msg === 'request' && l.reqId === id));
      });
      assert.ok(lines.some((l) => l.msg === 'wharf is listening' && typeof l.url === 'string'), 'start-up line');
      for (const l of lines) {
        assert.equal(typeof l.level, 'number');
        assert.equal(typeof l.time, 'string');
      }
      const g = lines.find((l) => l.msg === 'request' && l.reqId === 'e2e-trace.42')!;
      assert.equal(g.method, 'GET');
      assert.equal(g.status, 200);
      assert.equal(g.url, '/v2/');
      assert.equal(g.route, 'base');
      const f = lines.find((l) => l.msg === 'request' && l.reqId === freshId)!;
      assert.equal(f.method, 'GET');
      assert.equal(f.status, 404);
      assert.equal(f.route, 'manifest_get');
      assert.equal(lines.filter((l) => l.msg === 'request' && l.reqId === freshId).length, 1, 'one access-log line per request');
    } finally {
      await lw.stop();
    }
  });
});

describe('server: metadata databases', () => {
  test('PostgreSQL (WHARF_DB_URL): starts, migrates, push and pull work, and survive a restart', async (_t, show) => {
    const admin = process.env.WHARF_TEST_PG_URL;
    assert.ok(admin, 'WHARF_TEST_PG_URL must name the dev PostgreSQL server');
    const name = `wharf_e2e_${randomBytes(6).toString('hex')}`;
    const adminClient = new pg.Client({ connectionString: admin });
    await adminClient.connect();
    await adminClient.query(`create database ${name}`);
    const u = new URL(admin);
    u.pathname = `/${name}`;
    const dbUrl = u.toString();
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-pg-'));
    try {
      const w1 = show(await startWharf({ dataDir, env: { WHARF_DB_URL: dbUrl } }));
      let img: PushedImage;
      try {
        img = await pushImage(w1, 'pg/app', 'v1');
        await assertPull(w1, img);
        const health = (await (await fetch(`${w1.url}/health/instance`)).json()) as { data: { services: { database: boolean } } };
        assert.equal(health.data.services.database, true);
      } finally {
        await w1.stop();
      }
      assert.equal(existsSync(join(dataDir, 'wharf.db')), false, 'no SQLite database was created');

      // The metadata really is in PostgreSQL.
      const c = new pg.Client({ connectionString: dbUrl });
      await c.connect();
      try {
        const tables = await c.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = 'public'`);
        const names = tables.rows.map((r) => r.table_name);
        for (const t of ['repositories', 'blobs', 'manifests', 'tags', 'uploads']) assert.ok(names.includes(t), `table ${t}`);
        const manifests = await c.query<{ n: string }>('select count(*) as n from manifests');
        assert.equal(Number(manifests.rows[0]!.n), 1);
      } finally {
        await c.end();
      }

      // A second start on the migrated database (migrations are idempotent) still serves the image.
      const w2 = show(await startWharf({ dataDir, env: { WHARF_DB_URL: dbUrl } }));
      try {
        await assertPull(w2, img);
      } finally {
        await w2.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
      await adminClient.query(`drop database if exists ${name} with (force)`);
      await adminClient.end();
    }
  });

  test('SQLite (default): starts, migrates, push and pull work, and survive a restart', async (_t, show) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-sqlite-'));
    try {
      const w1 = show(await startWharf({ dataDir }));
      let img: PushedImage;
      try {
        img = await pushImage(w1, 'sqlite/app', 'v1');
        await assertPull(w1, img);
      } finally {
        await w1.stop();
      }
      assert.ok(existsSync(join(dataDir, 'wharf.db')), 'SQLite database under the data dir');
      const w2 = show(await startWharf({ dataDir }));
      try {
        await assertPull(w2, img);
      } finally {
        await w2.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('server: configuration errors', () => {
  const cases: Array<{ env: Record<string, string>; names: RegExp; value: string }> = [
    { env: { WHARF_PORT: 'abc' }, names: /WHARF_PORT/, value: 'abc' },
    { env: { WHARF_REGISTRY_UPLOAD_TIMEOUT: '3x' }, names: /registry\.upload_timeout|WHARF_REGISTRY_UPLOAD_TIMEOUT/, value: '3x' },
    { env: { WHARF_PORT: '70000' }, names: /\bport\b|WHARF_PORT/, value: '' },
    { env: { WHARF_STORAGE_FSYNC: 'maybe' }, names: /WHARF_STORAGE_FSYNC|storage\.fsync/, value: 'maybe' },
  ];
  for (const c of cases) {
    const [key, raw] = Object.entries(c.env)[0]!;
    it(`${key}=${raw}: wharf serve exits non-zero naming the key, without a stack trace`, async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'wharf-conf-'));
      try {
        const res = await runWharf(['serve'], { WHARF_DATA_DIR: dataDir, WHARF_PORT: String(await freePort()), ...c.env });
        assert.equal(res.signal, null, `wharf serve should refuse to start; output:\n${res.stdout}${res.stderr}`);
        assert.notEqual(res.code, 0);
        assert.equal(res.code, 2, 'configuration errors exit with 2');
        assert.match(res.stderr, /^wharf: /);
        assert.match(res.stderr, c.names, 'the message names the key');
        if (c.value) assert.ok(res.stderr.includes(`"${c.value}"`), 'the message quotes the bad value');
        assert.doesNotMatch(res.stderr, /^\s+at /m, 'no stack trace');
        assert.doesNotMatch(res.stderr, /ZodError|\.ts:\d+/);
        assert.equal(res.stdout, '', 'nothing on stdout');
        assert.equal(existsSync(join(dataDir, 'wharf.db')), false, 'nothing was opened');
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }
});
