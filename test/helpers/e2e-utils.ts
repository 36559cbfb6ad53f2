/** Small helpers shared by end-to-end tests. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';

/** A copy backed by a plain ArrayBuffer, which is what fetch's BodyInit accepts. */
export const fetchBody = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

export const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Polls `probe` until it returns true; fails after `timeoutMs` with `what`. Only a readiness wait. */
export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 15_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface CommandResult {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bin args` without a shell and collects its output; never rejects for a non-zero exit (the
 * caller decides). SIGKILL after `timeoutMs` (default 120 s), noted in stderr.
 */
export function runCommand(bin: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n(killed by the test helper after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * Throws the failures among settled results (the one, or an AggregateError of several): cleanup that
 * stops several processes at once with Promise.allSettled still reports a process that did not stop
 * cleanly, such as a Wharf whose log broke the JSON-lines format.
 */
export function rethrowFailures(results: ReadonlyArray<PromiseSettledResult<unknown>>): void {
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} processes did not stop cleanly: ${failures.map((f) => (f as Error)?.message ?? String(f)).join('; ')}`);
}
