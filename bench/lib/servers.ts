/**
 * The servers the benchmarks start, all on 127.0.0.1 with throw-away data under the benchmark's work
 * directory: Wharf (`wharf serve`, compiled or through tsx) and CNCF Distribution (Debian's
 * docker-registry), optionally as a pull-through cache of another registry. Every server's output goes
 * to `<workDir>/<label>.log`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { freePort, waitForHttp } from '../../test/helpers/ports.js';
import { run } from './measure.js';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const DISTRIBUTION_BIN = process.env.DISTRIBUTION_BIN ?? '/usr/bin/docker-registry';

export interface Server<L extends string = string> {
  label: L;
  url: string;
  /** `Authorization` for pushes and verification pulls (Basic), when the server needs credentials. */
  pushAuth?: string;
  /** `Authorization` for the load (a Bearer token with pull scope), when the server needs credentials. */
  pullAuth?: string;
  pid: number;
  child: ChildProcess;
  /** The server's data directory (Wharf's data_dir, Distribution's storage root). */
  dataDir: string;
  /** The file the server's output goes to. */
  logPath: string;
  stop(): Promise<void>;
}

/** Spawns `cmd`, waits until `<url>/v2/` answers, and wraps the process; kills it when it does not start. */
async function startProcess<L extends string>(
  label: L,
  cmd: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; port: number; workDir: string; dataDir: string },
): Promise<Server<L>> {
  const logPath = join(opts.workDir, `${label}.log`);
  const logFd = openSync(logPath, 'a');
  const child = spawn(cmd, args, { cwd: repoRoot, env: opts.env, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`cannot start ${cmd}: ${err.message}`))));
  const url = `http://127.0.0.1:${opts.port}`;
  try {
    await Promise.race([
      waitForHttp(`${url}/v2/`),
      spawnFailed,
      exited.then(() => {
        throw new Error(`${label} exited during start:\n${readFileSync(logPath, 'utf8')}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    label,
    url,
    pid: child.pid!,
    child,
    dataDir: opts.dataDir,
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

export interface WharfOptions<L extends string> {
  label: L;
  workDir: string;
  /** Compiled entry of the `wharf` command (`main/wharf.js`); without it Wharf runs from src through tsx. */
  cli?: string;
  logLevel: string;
  /** WHARF_* variables on top of host, port, data dir and log level (for the setup commands too). */
  env: Record<string, string>;
  /** `wharf` commands run against the same data directory before `serve` (e.g. `['org', 'create', 'x']`). */
  setup?: string[][];
  /** Node options for `serve` only, e.g. `--cpu-prof` (not allowed in NODE_OPTIONS). */
  nodeArgs?: string[];
}

/** A Wharf server on loopback, with its own data directory and SQLite database. */
export async function startWharf<L extends string>(o: WharfOptions<L>): Promise<Server<L>> {
  const dataDir = join(o.workDir, `${o.label}-data`);
  await mkdir(dataDir);
  const port = await freePort();
  const cliArgs = o.cli ? [o.cli] : ['--import', 'tsx', join(repoRoot, 'src/main/wharf.ts')];
  const env = { ...process.env, WHARF_HOST: '127.0.0.1', WHARF_PORT: String(port), WHARF_DATA_DIR: dataDir, WHARF_LOG_LEVEL: o.logLevel, ...o.env };
  for (const command of o.setup ?? []) {
    const r = await runWithEnv(process.execPath, [...cliArgs, ...command], env);
    if (r.code !== 0) throw new Error(`wharf ${command.join(' ')} (${o.label}) failed with exit ${r.code}: ${r.stderr}${r.stdout}`);
  }
  // WHARF_BENCH_NODE_ARGS: extra Node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it.
  const nodeArgs = o.nodeArgs ?? (process.env.WHARF_BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []);
  return startProcess(o.label, process.execPath, [...nodeArgs, ...cliArgs, 'serve'], { env, port, workDir: o.workDir, dataDir });
}

function runWithEnv(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

export interface DistributionOptions<L extends string> {
  label: L;
  workDir: string;
  /** Log level of the registry, default warn. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Write the access log (one combined-format line per request) to the server's log file. Default off. */
  accessLog?: boolean;
  /** Run as a pull-through cache of this registry (`proxy: remoteurl:`). */
  proxyRemoteUrl?: string;
  /** `http.secret` (default: a fixed one, the same for every Distribution the benchmarks start). */
  httpSecret?: string;
  /** Keep blobs in a bucket (the S3 driver) instead of the work directory. */
  s3?: DistributionS3;
}

/** Distribution's S3 driver on an S3-compatible store (RADOS Gateway): one bucket, a root directory in it. */
export interface DistributionS3 {
  /** `http://host:port` of the store (`regionendpoint`; plain HTTP: `secure: false`). */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Key prefix of everything Distribution writes, e.g. `/bench-1a2b/distribution`. */
  rootDirectory: string;
  /** Answer blob GETs with a redirect to a presigned URL of the object (`redirect: disable: false`). */
  redirect: boolean;
}

function storageConfig(o: DistributionOptions<string>, dataDir: string): string[] {
  if (!o.s3) return ['storage:', '  filesystem:', `    rootdirectory: ${JSON.stringify(dataDir)}`];
  const s = o.s3;
  return [
    'storage:',
    '  s3:',
    `    regionendpoint: ${JSON.stringify(s.endpoint)}`,
    `    region: ${JSON.stringify(s.region)}`,
    `    bucket: ${JSON.stringify(s.bucket)}`,
    `    accesskey: ${JSON.stringify(s.accessKeyId)}`,
    `    secretkey: ${JSON.stringify(s.secretAccessKey)}`,
    `    rootdirectory: ${JSON.stringify(s.rootDirectory)}`,
    `    secure: ${s.endpoint.startsWith('https:') ? 'true' : 'false'}`,
    '    v4auth: true',
    '  redirect:',
    `    disable: ${s.redirect ? 'false' : 'true'}`,
  ];
}

/** `docker-registry serve` on 127.0.0.1:<free port>, with filesystem storage under the work directory or an S3 bucket. */
export async function startDistribution<L extends string>(o: DistributionOptions<L>): Promise<Server<L>> {
  const dataDir = join(o.workDir, `${o.label}-data`);
  await mkdir(dataDir);
  const port = await freePort();
  const configPath = join(o.workDir, `${o.label}.yml`);
  await writeFile(
    configPath,
    [
      'version: 0.1',
      'log:',
      `  level: ${o.logLevel ?? 'warn'}`,
      '  accesslog:',
      `    disabled: ${o.accessLog ? 'false' : 'true'}`,
      ...storageConfig(o, dataDir),
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      // Signs upload state; processes sharing a bucket behind a load balancer must agree on it.
      `  secret: ${JSON.stringify(o.httpSecret ?? 'wharf-bench-distribution-secret')}`,
      ...(o.proxyRemoteUrl ? ['proxy:', `  remoteurl: ${JSON.stringify(o.proxyRemoteUrl)}`] : []),
      '',
    ].join('\n'),
  );
  // REGISTRY_* variables override the config file; keep the caller's out of it. The S3 driver (AWS SDK
  // for Go v1) panics at start when AWS_CA_BUNDLE is set and the endpoint is plain HTTP.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_') && k !== 'AWS_CA_BUNDLE'));
  return startProcess(o.label, DISTRIBUTION_BIN, ['serve', configPath], { env, port, workDir: o.workDir, dataDir });
}

/** `docker-registry --version`, e.g. "docker-registry github.com/docker/distribution 2.8.2+ds1". */
export async function distributionVersion(): Promise<string> {
  return (await run(DISTRIBUTION_BIN, ['--version'])).stdout.trim();
}

/** Where Distribution's filesystem driver keeps a committed blob (the file appears only on commit). */
export function distributionBlobPath(server: Server, digest: string): string {
  const hex = digest.slice(digest.indexOf(':') + 1);
  return join(server.dataDir, 'docker/registry/v2/blobs', digest.slice(0, digest.indexOf(':')), hex.slice(0, 2), hex, 'data');
}
