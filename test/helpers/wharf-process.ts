import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { jsonLogProblems } from './json-lines.js';
import { freePort, waitForHttp } from './ports.js';
import { ensureOrganizations } from './wharf-accounts.js';

/**
 * Organizations every test process gets (owned by the admin), so that the suites' repositories —
 * `e2e/…`, `crash/app`, `conformance/app`… — can be pushed by the admin (a push never creates a
 * namespace).
 */
export const E2E_ORGANIZATIONS = ['e2e', 'org', 'deep', 'mirror', 'crash', 'metrics', 'pg', 'sqlite', 'shutdown', 'logs', 'conformance', 'robots', 'public'];

const repoRoot = resolve(import.meta.dirname, '..', '..');

/** The superuser password every test process is started with (WHARF_AUTH_ADMIN_PASSWORD). */
export const ADMIN = Object.freeze({ username: 'admin', password: 'wharf-e2e-admin-password' });

export interface WharfProcess {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** host:port, as registry clients write it */
  host: string;
  dataDir: string;
  /** The process's database URL (its WHARF_DB_URL, or the SQLite file in the data directory). */
  dbUrl: string;
  /** The superuser created on first start (auth is on unless the test turned it off). */
  admin: { username: string; password: string };
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** What the process wrote to stdout alone (the JSON log lines). */
  stdout(): string;
  /** What the process wrote to stderr alone (messages for the terminal, such as the first superuser's password). */
  stderr(): string;
  /**
   * Graceful stop (SIGTERM), then removes the data directory unless keepData. Fails when what the process
   * wrote to stdout is not one JSON object per line with unique keys (docs/operations.md#logs), so that
   * every end-to-end test checks the log format.
   */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** SIGKILL, as a crash would; the data directory is kept. Checks the complete stdout lines as `stop` does. */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** Extra environment; a variable set to undefined is removed (e.g. WHARF_AUTH_ADMIN_PASSWORD). */
  env?: Record<string, string | undefined>;
  dataDir?: string;
  args?: string[];
  port?: number;
  /** 'https' when the process serves TLS: readiness is then polled over HTTPS and `url` is https://. */
  scheme?: 'http' | 'https';
  /**
   * CA certificate that must verify the server during the readiness poll; without it the HTTPS
   * readiness poll does not verify the certificate (the test checks the certificate itself).
   */
  ca?: string | Buffer;
  /** Organizations to create once the process answers (default E2E_ORGANIZATIONS; [] for none). */
  organizations?: readonly string[];
  /** Node options before the entry, e.g. `['--import', './test/helpers/module-log.mjs']`. */
  nodeArgs?: string[];
}

/**
 * Starts a real `wharf serve` process (through the `wharf` command's entry, src/main/wharf.ts) on a free
 * port with its own data directory and waits until /v2/ answers.
 */
export async function startWharf(opts: StartOptions = {}): Promise<WharfProcess> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-e2e-')));
  const port = opts.port ?? (await freePort());
  const env: Record<string, string | undefined> = {
      ...process.env,
      WHARF_HOST: '127.0.0.1',
      WHARF_PORT: String(port),
      WHARF_DATA_DIR: dataDir,
      WHARF_LOG_LEVEL: process.env.WHARF_LOG_LEVEL ?? 'warn',
      WHARF_AUTH_ADMIN_PASSWORD: ADMIN.password,
      ...opts.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', join(repoRoot, 'src/main/wharf.ts'), 'serve', ...(opts.args ?? [])], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
    stderr += d.toString();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const scheme = opts.scheme ?? 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  try {
    await Promise.race([
      scheme === 'https' ? waitForHttps(`${url}/v2/`, opts.ca) : waitForHttp(`${url}/v2/`),
      exited.then(() => {
        throw new Error(`wharf exited during start:\n${out}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const dbUrl = opts.env?.WHARF_DB_URL ?? `sqlite:${join(dataDir, 'wharf.db')}`;
  if (opts.env?.WHARF_AUTH_ENABLED !== 'false') await ensureOrganizations({ dataDir, dbUrl, admin: ADMIN }, opts.organizations ?? E2E_ORGANIZATIONS);
  return {
    url,
    host: `127.0.0.1:${port}`,
    dataDir,
    dbUrl,
    admin: { ...ADMIN },
    child,
    output: () => out,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      if (!keepData && !opts.dataDir) await rm(dataDir, { recursive: true, force: true });
      assertJsonLog(stdout, url, { partialTail: child.signalCode === 'SIGKILL' });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      assertJsonLog(stdout, url, { partialTail: true });
    },
  };
}

/** Throws when `stdout` breaks the JSON-lines log contract. */
function assertJsonLog(stdout: string, url: string, opts: { partialTail: boolean }): void {
  const problems = jsonLogProblems(stdout, opts);
  if (problems.length) throw new Error(`wharf ${url} wrote ${problems.length} stdout line(s) that break the JSON log format:\n${problems.slice(0, 5).join('\n')}`);
}

/** Polls an HTTPS `url` until it answers with any status (verifying against `ca` when given). */
async function waitForHttps(url: string, ca: string | Buffer | undefined, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      await new Promise<void>((resolve, reject) => {
        const req = httpsGet(url, { agent: false, ...(ca ? { ca } : { rejectUnauthorized: false }) }, (res) => {
          res.resume();
          res.on('end', resolve);
          res.on('error', reject);
        });
        req.on('error', reject);
      });
      return;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(lastError)}`);
}

/** `Authorization: Basic …` for the credentials. */
export function basicAuth(creds: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

/** fetch with the admin's Basic credentials (unless the request sets Authorization itself). */
export const adminFetch: typeof fetch = (input, init = {}) => {
  const headers = new Headers(init.headers);
  if (!headers.has('authorization')) headers.set('authorization', basicAuth(ADMIN));
  return fetch(input, { ...init, headers });
};
