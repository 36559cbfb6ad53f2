/**
 * Several `wharf serve` processes as one registry, the way docs/operations.md#several-processes runs
 * them: one fresh PostgreSQL database (from WHARF_TEST_PG_URL), one fresh key prefix in the test
 * bucket (test/helpers/s3.ts), and Debian's haproxy in front, configured by rendering
 * docs/examples/haproxy.cfg (only its `bind` address and `server` lines are replaced).
 *
 *   const c = await startCluster({ processes: 2 });
 *   c.url / c.host          haproxy: what clients use (every process's base_url)
 *   c.processes[i]          each process, addressable directly (url, host, kill(), stop(), output())
 *   await c.restart(i)      a new process in slot i, on the same port (haproxy finds it again)
 *   await c.stop()          stops everything it started, drops the database, empties the prefix
 *
 * Every process gets the same settings (database, bucket prefix, base_url = haproxy's URL, trust_proxy,
 * proxy_cache.secret_key), as docs/operations.md asks. The first process migrates the database and
 * creates the superuser and the test organizations; the others start after it. haproxy runs in the foreground (-db) as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createPostgresDatabase } from './databases.js';
import { rethrowFailures, waitFor } from './e2e-utils.js';
import { freePort } from './ports.js';
import { openTestS3Driver, testS3Options } from './s3.js';
import { ADMIN, startWharf, type WharfProcess } from './wharf-process.js';

export const HAPROXY = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy';
/** The example configuration the harness renders (and docs/operations.md shows). */
export const HAPROXY_CONFIG = resolve(import.meta.dirname, '..', '..', 'docs', 'examples', 'haproxy.cfg');

export interface ClusterOptions {
  /** Number of `wharf serve` processes (default 2). */
  processes?: number;
  /** Extra environment of every process (e.g. WHARF_GC_INTERVAL); a variable set to undefined is removed. */
  env?: Record<string, string | undefined>;
  /** Extra environment of process i only, over `env` (e.g. to point one process at a fault proxy). */
  envOf?: (i: number) => Record<string, string | undefined>;
}

export interface Cluster {
  /** haproxy's base URL, e.g. http://127.0.0.1:40123 — every process's base_url. */
  url: string;
  /** haproxy's host:port, as registry clients write it. */
  host: string;
  /** The processes, in haproxy's server order (slot i is `wharf<i+1>`). */
  processes: WharfProcess[];
  /** The shared PostgreSQL database. */
  dbUrl: string;
  /** The shared key prefix in the test bucket. */
  prefix: string;
  /** The bucket under `prefix`, as the processes see it. */
  bucket: Awaited<ReturnType<typeof openTestS3Driver>>['driver'];
  admin: { username: string; password: string };
  /** The haproxy configuration in use. */
  haproxyConfig: string;
  /** Starts a new process in slot i (after a kill or stop), on the slot's port. */
  restart(i: number): Promise<WharfProcess>;
  /** Stops the processes (SIGTERM) and haproxy, drops the database and empties the prefix. */
  stop(): Promise<void>;
}

/** Starts the processes, then haproxy, and waits until haproxy answers through every process. */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const n = opts.processes ?? 2;
  const work = await mkdtemp(join(tmpdir(), 'wharf-cluster-'));
  const database = await createPostgresDatabase();
  const bucket = await openTestS3Driver();
  const processes: WharfProcess[] = [];
  let haproxy: { child: ChildProcess; exited: Promise<void>; output(): string } | undefined;
  const stop = async () => {
    const stopped = await Promise.allSettled(processes.map((p) => p.stop()));
    if (haproxy && haproxy.child.exitCode === null && haproxy.child.signalCode === null) {
      haproxy.child.kill('SIGTERM');
      await haproxy.exited;
    }
    const cleaned = await Promise.allSettled([database.drop(), bucket.cleanup(), rm(work, { recursive: true, force: true })]);
    rethrowFailures([...stopped, ...cleaned]);
  };
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
    const s3 = testS3Options();
    const secretKey = randomBytes(32).toString('base64');
    const env = (i: number): Record<string, string | undefined> => ({
      WHARF_DB_URL: database.url,
      WHARF_BASE_URL: url,
      WHARF_TRUST_PROXY: '127.0.0.1',
      WHARF_STORAGE_DRIVER: 's3',
      WHARF_STORAGE_S3_ENDPOINT: s3.endpoint,
      WHARF_STORAGE_S3_BUCKET: s3.bucket,
      WHARF_STORAGE_S3_REGION: s3.region,
      WHARF_STORAGE_S3_ACCESS_KEY_ID: s3.accessKeyId,
      WHARF_STORAGE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      WHARF_STORAGE_S3_PREFIX: bucket.prefix,
      WHARF_STORAGE_S3_PART_SIZE: '5 MiB',
      // One key for every process: upstream credentials sealed by one are opened by the others.
      WHARF_PROXY_CACHE_SECRET_KEY: secretKey,
      ...opts.env,
      ...opts.envOf?.(i),
    });
    const startSlot = (i: number, organizations?: readonly string[]) => startWharf({ port: ports[i], env: env(i), organizations });
    processes.push(await startSlot(0));
    // The first start migrated and created the superuser and organizations: the others only serve.
    processes.push(...(await Promise.all(ports.slice(1).map((_, j) => startSlot(j + 1, [])))));

    const haproxyConfig = renderHaproxyConfig(await readFile(HAPROXY_CONFIG, 'utf8'), `127.0.0.1:${port}`, ports.map((p) => `127.0.0.1:${p}`));
    const cfgPath = join(work, 'haproxy.cfg');
    await writeFile(cfgPath, haproxyConfig);
    haproxy = startHaproxy(cfgPath);
    const h = haproxy;
    // Every process answers through haproxy (round robin: n consecutive health checks hit each once).
    await waitFor(
      'haproxy to route to every process',
      async () => {
        if (h.child.exitCode !== null) throw new Error(`haproxy exited:\n${h.output()}`);
        for (let k = 0; k < n; k++) {
          const res = await fetch(`${url}/health/instance`).catch(() => undefined);
          await res?.arrayBuffer();
          if (res?.status !== 200) return false;
        }
        return true;
      },
      30_000,
      100,
    );
    return {
      url,
      host: `127.0.0.1:${port}`,
      processes,
      dbUrl: database.url,
      prefix: bucket.prefix,
      bucket: bucket.driver,
      admin: { ...ADMIN },
      haproxyConfig,
      async restart(i) {
        const old = processes[i];
        if (!old) throw new Error(`no process in slot ${i}`);
        await old.stop();
        processes[i] = await startSlot(i, []);
        return processes[i];
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** The example configuration with its `bind` address and `server` lines replaced. */
export function renderHaproxyConfig(template: string, bind: string, servers: readonly string[]): string {
  const lines = template.split('\n');
  const serverAt = lines.findIndex((l) => /^\s+server\s/.test(l));
  if (serverAt < 0 || !lines.some((l) => /^\s+bind\s/.test(l))) throw new Error(`${HAPROXY_CONFIG} has no bind or server line`);
  const indent = /^(\s+)/.exec(lines[serverAt]!)![1]!;
  const out = lines
    .map((l) => l.replace(/^(\s+)bind\s+\S+/, `$1bind ${bind}`))
    .filter((l, i) => i === serverAt || !/^\s+server\s/.test(l));
  out.splice(out.indexOf(lines[serverAt]!), 1, ...servers.map((s, i) => `${indent}server wharf${i + 1} ${s}`));
  return out.join('\n');
}

function startHaproxy(cfgPath: string): { child: ChildProcess; exited: Promise<void>; output(): string } {
  const child = spawn(HAPROXY, ['-db', '-f', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited, output: () => out };
}
