/**
 * Starts the reference registry — Debian's `docker-registry` (CNCF Distribution 2.8) — on a free port
 * with a throw-away filesystem store, for interoperability tests. Mirrors the shape of wharf-process.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHtpasswd } from './htpasswd.js';
import { freePort, waitForHttp } from './ports.js';

export const DISTRIBUTION_BIN = process.env.DISTRIBUTION_BIN ?? '/usr/bin/docker-registry';

export interface DistributionProcess {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** host:port, as registry clients write it */
  host: string;
  /** Temp directory holding config.yml and the storage root (data/). */
  dataDir: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Graceful stop (SIGTERM), then removes the data directory unless keepData. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** SIGKILL; the data directory is kept. */
  kill(): Promise<void>;
}

export interface StartDistributionOptions {
  port?: number;
  /** Log level of the registry, default warn. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /**
   * Basic auth from a bcrypt htpasswd file written for `users` (name → password): every request then
   * needs credentials, and a 401 carries `WWW-Authenticate: Basic realm="<realm>"`. Default: no auth.
   */
  auth?: { htpasswd: { realm: string; users: Readonly<Record<string, string>> } };
  /**
   * The data directory of a process stopped with `keepData`, to serve its content again (pass its
   * `port` too, to come back at the same address). Default: a new, empty one.
   */
  dataDir?: string;
}

/** Starts `docker-registry serve` on 127.0.0.1:<free port> and waits until /v2/ answers. */
export async function startDistribution(opts: StartDistributionOptions = {}): Promise<DistributionProcess> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-distribution-')));
  const storageDir = join(dataDir, 'data');
  await mkdir(storageDir, { recursive: true });
  /** Removes the data directory after a failed start, unless it is the caller's. */
  const discard = () => (opts.dataDir ? Promise.resolve() : rm(dataDir, { recursive: true, force: true }));
  const port = opts.port ?? (await freePort());
  const configPath = join(dataDir, 'config.yml');
  const authLines: string[] = [];
  if (opts.auth) {
    const htpasswdPath = join(dataDir, 'htpasswd');
    await writeHtpasswd(htpasswdPath, opts.auth.htpasswd.users).catch(async (err: unknown) => {
      await discard();
      throw err;
    });
    authLines.push(
      'auth:',
      '  htpasswd:',
      `    realm: ${JSON.stringify(opts.auth.htpasswd.realm)}`,
      `    path: ${JSON.stringify(htpasswdPath)}`,
    );
  }
  await writeFile(
    configPath,
    [
      'version: 0.1',
      'log:',
      `  level: ${opts.logLevel ?? 'warn'}`,
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(storageDir)}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...authLines,
      '',
    ].join('\n'),
  );
  // REGISTRY_* variables override the config file; keep the caller's out of it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  const child = spawn(DISTRIBUTION_BIN, ['serve', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const spawnFailed = new Promise<never>((_, reject) =>
    child.once('error', (err) => reject(new Error(`cannot start ${DISTRIBUTION_BIN}: ${err.message}`))),
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([
      waitForHttp(`${url}/v2/`),
      spawnFailed,
      exited.then(() => {
        throw new Error(`docker-registry exited during start:\n${out}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    await discard();
    throw err;
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    dataDir,
    child,
    output: () => out,
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      if (!keepData) await rm(dataDir, { recursive: true, force: true });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
