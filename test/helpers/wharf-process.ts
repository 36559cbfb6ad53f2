import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, waitForHttp } from './ports.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');

export interface WharfProcess {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** host:port, as registry clients write it */
  host: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Graceful stop (SIGTERM), then removes the data directory unless keepData. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** SIGKILL, as a crash would; the data directory is kept. */
  kill(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  dataDir?: string;
  args?: string[];
  port?: number;
}

/** Starts a real `wharf serve` process on a free port with its own data directory and waits until /v2/ answers. */
export async function startWharf(opts: StartOptions = {}): Promise<WharfProcess> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-e2e-')));
  const port = opts.port ?? (await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), 'serve', ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: {
      ...process.env,
      WHARF_HOST: '127.0.0.1',
      WHARF_PORT: String(port),
      WHARF_DATA_DIR: dataDir,
      WHARF_LOG_LEVEL: process.env.WHARF_LOG_LEVEL ?? 'warn',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([
      waitForHttp(`${url}/v2/`),
      exited.then(() => {
        throw new Error(`wharf exited during start:\n${out}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
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
      if (!keepData && !opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
