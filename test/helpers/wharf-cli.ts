/** Runs the real `wharf` CLI (src/main/cli.ts through tsx) on a data directory, with SQLite unless `env` says otherwise. */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '..', '..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The signal that ended the process (SIGKILL when `timeoutMs` ran out). */
  signal?: NodeJS.Signals | null;
}

/**
 * `env` adds to (or, with undefined, removes from) the environment. `timeoutMs`: SIGKILL after that long
 * (for commands that must end by themselves, such as a `wharf serve` that has to refuse to start).
 */
export function runWharf(dataDir: string, args: string[], opts: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((done, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, WHARF_DATA_DIR: dataDir, WHARF_LOG_LEVEL: 'warn', ...opts.env };
    if (!opts.env?.WHARF_DB_URL) delete env.WHARF_DB_URL;
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), ...args], { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, signal });
    });
    child.stdin.end(opts.input ?? '');
  });
}
