/**
 * Throwaway TLS for tests: a certificate authority and a server certificate for 127.0.0.1 and
 * `localhost`, made with openssl, and Debian's haproxy terminating TLS in front of a plain-HTTP server
 * (the test S3 server: an `https://` endpoint the way production stores are reached).
 *
 *   const pki = await makeTestPki();                         pki.ca, pki.key, pki.cert (PEM), pki.caFile
 *   const front = await startTlsFront(pki, 'http://127.0.0.1:7480');   front.url = https://127.0.0.1:<port>
 *   await front.stop(); await pki.remove();
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HAPROXY } from './cluster.js';
import { waitFor } from './e2e-utils.js';
import { freePort } from './ports.js';

const run = promisify(execFile);

export interface TestPki {
  dir: string;
  /** The authority's certificate (PEM), and its file. */
  ca: string;
  caFile: string;
  /** The server's key and certificate (PEM). */
  key: string;
  cert: string;
  /** Key and certificate in one file, as haproxy's `crt` wants them. */
  bundleFile: string;
  remove(): Promise<void>;
}

/** A fresh authority and a server certificate it signed, for IP 127.0.0.1 and DNS localhost, valid 2 days. */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-pki-'));
  const f = (n: string) => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=wharf test CA']);
  await run('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(f('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext')]);
  const [ca, key, cert] = await Promise.all([readFile(f('ca.pem'), 'utf8'), readFile(f('server.key'), 'utf8'), readFile(f('server.pem'), 'utf8')]);
  await writeFile(f('bundle.pem'), cert + key);
  return { dir, ca, caFile: f('ca.pem'), key, cert, bundleFile: f('bundle.pem'), remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface TlsFront {
  /** https://127.0.0.1:<port> */
  url: string;
  stop(): Promise<void>;
}

/** haproxy on a free port of 127.0.0.1, terminating TLS with `pki`'s certificate and passing requests to `backend` (an http:// URL). */
export async function startTlsFront(pki: TestPki, backend: string): Promise<TlsFront> {
  const port = await freePort();
  const target = new URL(backend);
  const cfg = [
    'global',
    '    maxconn 1024',
    'defaults',
    '    mode http',
    '    timeout connect 5s',
    '    timeout client 5m',
    '    timeout server 5m',
    'frontend tls',
    `    bind 127.0.0.1:${port} ssl crt ${pki.bundleFile}`,
    '    default_backend store',
    'backend store',
    `    server store ${target.hostname}:${target.port || 80}`,
    '',
  ].join('\n');
  const cfgFile = join(pki.dir, `haproxy-${port}.cfg`);
  await writeFile(cfgFile, cfg);
  const child = spawn(HAPROXY, ['-db', '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitFor(
      'haproxy to listen with TLS',
      async () => {
        if (child.exitCode !== null) throw new Error(`haproxy exited:\n${out}`);
        return new Promise<boolean>((resolve) => {
          const s = connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        });
      },
      15_000,
      50,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `https://127.0.0.1:${port}`, stop };
}
