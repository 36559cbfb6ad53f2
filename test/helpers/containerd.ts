/**
 * A private containerd daemon (Debian's `containerd`, 1.6) and its `ctr` client for end-to-end tests.
 *
 * Everything lives under one temp directory — config.toml, root/, state/, the socket, a `certs.d/`
 * hosts directory — so a system containerd is neither used nor disturbed. The CRI plugin is off (no
 * Kubernetes client here); `ctr` resolves registries on the client side, reading `hosts.toml` files
 * from the directory passed as `--hosts-dir` (`ctrPull` passes the daemon's `certs.d/` by default),
 * exactly as the CRI plugin reads its `config_path` on a node. So a test writes
 * `certs.d/docker.io/hosts.toml` (see `writeHostsToml`) and `ctr` sends docker.io pulls to the mirror,
 * adding `?ns=docker.io` to every request.
 *
 *   <dir>/config.toml  root/  state/  tmp/  opt/  containerd.sock  certs.d/<registry host>/hosts.toml
 *
 * Pulls unpack with the overlayfs snapshotter (works as root on this kernel); `native` is there too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, waitFor, type CommandResult } from './e2e-utils.js';
import type { Credentials } from './skopeo.js';

export const CONTAINERD_BIN = process.env.CONTAINERD_BIN ?? '/usr/bin/containerd';
export const CTR_BIN = process.env.CTR_BIN ?? '/usr/bin/ctr';
const DEFAULT_TIMEOUT_MS = 120_000;

/** Plugins a pull does not need (CRI wants CNI and a kubelet; the rest are absent or write outside the dir). */
const DISABLED_PLUGINS = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

export class CtrError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: CommandResult,
  ) {
    const how = result.signal ? `signal ${result.signal}` : `exit ${result.code}`;
    super(`ctr ${args.join(' ')} failed (${how}):\n${result.stderr.trim() || result.stdout.trim() || '(no output)'}`);
    this.name = 'CtrError';
  }
}

export interface ContainerdProcess {
  dir: string;
  /** The gRPC socket, for `ctr --address`. */
  address: string;
  /** `<dir>/certs.d`: one `<registry host>/hosts.toml` per configured registry. */
  hostsDir: string;
  /** Namespace `ctr` uses unless told otherwise. */
  namespace: string;
  child: ChildProcess;
  /** Everything the daemon wrote so far. */
  output(): string;
  /** Runs `ctr --address <sock> -n <namespace> <args>`; rejects with CtrError on a non-zero exit. */
  ctr(args: readonly string[], opts?: { namespace?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** SIGTERM (SIGKILL after 5 s), then removes the directory. */
  stop(): Promise<void>;
}

export interface StartContainerdOptions {
  /** Default 'wharf-e2e'. */
  namespace?: string;
  /** Daemon log level, default 'warn'. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** Starts `containerd --config <dir>/config.toml` and waits until `ctr version` answers. */
export async function startContainerd(opts: StartContainerdOptions = {}): Promise<ContainerdProcess> {
  if (process.getuid?.() !== 0) throw new Error('the containerd helper needs root');
  const dir = await mkdtemp(join(tmpdir(), 'wharf-containerd-'));
  const address = join(dir, 'containerd.sock');
  const hostsDir = join(dir, 'certs.d');
  const q = JSON.stringify;
  await mkdir(hostsDir);
  await writeFile(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = ${q(join(dir, 'root'))}`,
      `state = ${q(join(dir, 'state'))}`,
      `temp = ${q(join(dir, 'tmp'))}`,
      `disabled_plugins = ${q(DISABLED_PLUGINS)}`,
      '[grpc]',
      `  address = ${q(address)}`,
      '[ttrpc]',
      `  address = ${q(`${address}.ttrpc`)}`,
      '[debug]',
      '  address = ""',
      `  level = ${q(opts.logLevel ?? 'warn')}`,
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${q(join(dir, 'opt'))}`,
      // Read by the CRI plugin on a node (disabled here): the same directory ctr gets as --hosts-dir.
      '[plugins."io.containerd.grpc.v1.cri".registry]',
      `  config_path = ${q(hostsDir)}`,
      '',
    ].join('\n'),
  );
  const child = spawn(CONTAINERD_BIN, ['--config', join(dir, 'config.toml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const namespace = opts.namespace ?? 'wharf-e2e';

  const ctr = async (args: readonly string[], o: { namespace?: string; timeoutMs?: number } = {}): Promise<CommandResult> => {
    const full = ['--address', address, '--namespace', o.namespace ?? namespace, ...args];
    const res = await runCommand(CTR_BIN, full, { timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS });
    if (res.code !== 0) throw new CtrError(args, res);
    return res;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      'containerd to answer',
      async () => {
        if (spawnError) throw new Error(`cannot start ${CONTAINERD_BIN}: ${spawnError.message}`);
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`containerd exited during start:\n${out}`);
        if (!existsSync(address)) return false;
        return (await runCommand(CTR_BIN, ['--address', address, 'version'], { timeoutMs: 5_000 })).code === 0;
      },
      15_000,
      50,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, address, hostsDir, namespace, child, output: () => out, ctr, stop };
}

/** One `[host."<url>"]` table of hosts.toml. */
export interface HostsTomlHost {
  /** e.g. `http://127.0.0.1:40123` (the scheme decides plain HTTP vs TLS). */
  url: string;
  /** Default ["pull", "resolve"]: a mirror that may resolve tags. */
  capabilities?: ('pull' | 'resolve' | 'push')[];
  skipVerify?: boolean;
  /** `override_path = true`: the URL's path replaces `/v2` (for mirrors served under a prefix). */
  overridePath?: boolean;
  /** Extra request headers. */
  header?: Record<string, string>;
}

/**
 * Writes `<hostsDir>/<registry>/hosts.toml`: `server` (the registry itself, tried last; omit it to
 * use the default `https://<registry>`, or docker.io's `registry-1.docker.io`) and `hosts`, tried
 * first in order. Returns the file's path.
 */
export async function writeHostsToml(hostsDir: string, registry: string, config: { server?: string; hosts?: HostsTomlHost[] }): Promise<string> {
  const q = JSON.stringify;
  const lines: string[] = [];
  if (config.server) lines.push(`server = ${q(config.server)}`, '');
  for (const h of config.hosts ?? []) {
    lines.push(`[host.${q(h.url)}]`, `  capabilities = ${q(h.capabilities ?? ['pull', 'resolve'])}`);
    if (h.skipVerify) lines.push('  skip_verify = true');
    if (h.overridePath) lines.push('  override_path = true');
    if (h.header) {
      lines.push(`  [host.${q(h.url)}.header]`);
      for (const [k, v] of Object.entries(h.header)) lines.push(`    ${q(k)} = ${q(v)}`);
    }
    lines.push('');
  }
  const regDir = join(hostsDir, registry);
  await mkdir(regDir, { recursive: true });
  const path = join(regDir, 'hosts.toml');
  await writeFile(path, lines.join('\n'));
  return path;
}

export interface CtrPullOptions {
  /** `--hosts-dir`; default the daemon's certs.d, `false` for none. */
  hostsDir?: string | false;
  /** `--user user:password` */
  user?: Credentials;
  /** `--platform os/arch[/variant]`; default the machine's. */
  platform?: string;
  /** `--all-platforms` */
  allPlatforms?: boolean;
  /** `--plain-http`: talk HTTP to registries that hosts.toml does not describe (default true). */
  plainHttp?: boolean;
  /** Default overlayfs. */
  snapshotter?: 'overlayfs' | 'native';
  namespace?: string;
  timeoutMs?: number;
}

export interface CtrPullResult {
  /** The image name as containerd stored it: the reference as given (ctr does not normalise). */
  name: string;
  /** Digest of the image's target: the index for a multi-platform image, else the manifest. */
  digest: string;
  mediaType: string;
  stdout: string;
  stderr: string;
}

/**
 * `ctr images pull REF` (fully qualified: `host:port/repo:tag`, `docker.io/library/x:1`, or `…@sha256:…`):
 * fetches, unpacks into the snapshotter and records the image; returns its digest.
 */
export async function ctrPull(daemon: ContainerdProcess, ref: string, opts: CtrPullOptions = {}): Promise<CtrPullResult> {
  const hostsDir = opts.hostsDir === undefined ? daemon.hostsDir : opts.hostsDir;
  const args = [
    'images',
    'pull',
    ...(hostsDir ? ['--hosts-dir', hostsDir] : []),
    ...(opts.plainHttp === false ? [] : ['--plain-http']),
    ...(opts.user ? ['--user', `${opts.user.username}:${opts.user.password}`] : []),
    ...(opts.platform ? ['--platform', opts.platform] : []),
    ...(opts.allPlatforms ? ['--all-platforms'] : []),
    ...(opts.snapshotter ? ['--snapshotter', opts.snapshotter] : []),
    ref,
  ];
  const res = await daemon.ctr(args, { namespace: opts.namespace, timeoutMs: opts.timeoutMs });
  const image = (await ctrImages(daemon, opts.namespace)).find((i) => i.name === ref);
  if (!image) throw new Error(`ctr pulled ${ref} but lists no image of that name:\n${res.stdout}`);
  return { ...image, stdout: res.stdout, stderr: res.stderr };
}

/** `ctr images ls`, parsed: name, media type and target digest of each image. */
export async function ctrImages(daemon: ContainerdProcess, namespace?: string): Promise<{ name: string; mediaType: string; digest: string }[]> {
  const res = await daemon.ctr(['images', 'ls'], { namespace });
  return res.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 3 && cols[2]!.startsWith('sha256:'))
    .map(([name, mediaType, digest]) => ({ name: name!, mediaType: mediaType!, digest: digest! }));
}

/** Removes every image of the namespace and waits for the garbage collector, so the next pull fetches everything. */
export async function ctrRemoveImages(daemon: ContainerdProcess, namespace?: string): Promise<void> {
  const names = (await ctrImages(daemon, namespace)).map((i) => i.name);
  if (names.length > 0) await daemon.ctr(['images', 'rm', '--sync', ...names], { namespace });
}
