/**
 * Debian's haproxy in front of registry processes on loopback, configured as docs/operations.md runs it
 * in front of several Wharf processes: round robin, no stickiness, an HTTP health check per server.
 * The configuration is docs/examples/haproxy.cfg with its `bind` address and `server` lines replaced (as
 * the cluster tests render it).
 * haproxy runs in the foreground (`-db`) as a child process; its output goes to `<workDir>/<label>.log`.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, waitForHttp } from '../../test/helpers/ports.js';
import { repoRoot, type Server } from './servers.js';

export const HAPROXY_BIN = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy';
const EXAMPLE_CONFIG = join(repoRoot, 'docs/examples/haproxy.cfg');

/**
 * The configuration with `bind` and the `server` lines replaced, and the health check's URI replaced by
 * `healthUri` when given (Distribution has no `/health/instance`; its `/v2/` answers 200 without auth).
 */
export function renderHaproxyConfig(template: string, bind: string, servers: readonly string[], healthUri?: string): string {
  const lines = template.split('\n');
  const serverAt = lines.findIndex((l) => /^\s+server\s/.test(l));
  if (serverAt < 0 || !lines.some((l) => /^\s+bind\s/.test(l))) throw new Error('the haproxy configuration has no bind or server line');
  const indent = /^(\s+)/.exec(lines[serverAt]!)![1]!;
  const out: string[] = [];
  lines.forEach((l, i) => {
    if (i === serverAt) out.push(...servers.map((s, k) => `${indent}server s${k + 1} ${s}`));
    else if (/^\s+server\s/.test(l)) return;
    else if (/^\s+bind\s/.test(l)) out.push(l.replace(/bind\s+\S+/, `bind ${bind}`));
    else if (healthUri && /http-check send/.test(l)) out.push(l.replace(/uri\s+\S+/, `uri ${healthUri}`));
    else out.push(l);
  });
  return out.join('\n');
}

export interface HaproxyOptions<L extends string> {
  label: L;
  workDir: string;
  /** The processes behind it, in server order. */
  backends: ReadonlyArray<{ url: string }>;
  /** The health check's URI, when not `/health/instance`. */
  healthUri?: string;
}

/**
 * Starts haproxy on 127.0.0.1:<free port> and waits until it routes to every backend (round robin: as
 * many consecutive health requests as there are backends all answer 200). `pid` is haproxy's.
 */
export async function startHaproxy<L extends string>(o: HaproxyOptions<L>): Promise<Server<L>> {
  const port = await freePort();
  const template = readFileSync(EXAMPLE_CONFIG, 'utf8');
  const config = renderHaproxyConfig(
    template,
    `127.0.0.1:${port}`,
    o.backends.map((b) => new URL(b.url).host),
    o.healthUri,
  );
  const cfgPath = join(o.workDir, `${o.label}.cfg`);
  await writeFile(cfgPath, config);
  const logPath = join(o.workDir, `${o.label}.log`);
  const logFd = openSync(logPath, 'a');
  const child = spawn(HAPROXY_BIN, ['-db', '-f', cfgPath], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const healthPath = o.healthUri ?? '/health/instance';
  try {
    await Promise.race([
      (async () => {
        await waitForHttp(`${url}/v2/`);
        const deadline = Date.now() + 30_000;
        for (;;) {
          let ok = 0;
          for (let k = 0; k < o.backends.length; k++) {
            const res = await fetch(`${url}${healthPath}`).catch(() => undefined);
            await res?.arrayBuffer();
            if (res?.status === 200) ok++;
          }
          if (ok === o.backends.length) return;
          if (Date.now() >= deadline) throw new Error(`${o.label} does not route to every backend:\n${readFileSync(logPath, 'utf8')}`);
          await sleep(100);
        }
      })(),
      exited.then(() => {
        throw new Error(`${o.label} exited during start:\n${readFileSync(logPath, 'utf8')}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    label: o.label,
    url,
    pid: child.pid!,
    child,
    dataDir: o.workDir,
    logPath,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
