/**
 * A private Docker daemon (Debian's `docker.io`, 20.10) and its `docker` client for end-to-end tests.
 *
 * `dockerd --iptables=false --bridge=none --storage-driver=vfs`, with its data root, exec root (where
 * it starts its own containerd), pid file and API socket under one temp directory, and the daemon
 * configuration file the test gives (`--config-file`), so a system Docker is neither used nor
 * disturbed. It creates no network and runs no container; it pulls. Like any dockerd it reads (or
 * creates once) the daemon's identity key, /etc/docker/key.json: 20.10 has no flag to put it elsewhere
 * outside daemon.json, and the test feeds daemon.json as generated.
 *
 *   <dir>/data/  exec/  docker.pid  docker.sock  client/ (DOCKER_CONFIG)
 *
 * `startDockerd` resolves once the API answers `docker version`; a daemon that refuses its
 * configuration exits at once, and the returned error carries its output (see `DockerdStartError`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, waitFor, type CommandResult } from './e2e-utils.js';

export const DOCKERD_BIN = process.env.DOCKERD_BIN ?? '/usr/sbin/dockerd';
/** The package's client (a `docker` earlier on the PATH may be another build). */
export const DOCKER_BIN = process.env.DOCKER_BIN ?? '/usr/bin/docker';
const DEFAULT_TIMEOUT_MS = 120_000;

/** dockerd exited (or never answered) during start: `output` holds what it wrote. */
export class DockerdStartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(`${message}:\n${output.trim().split('\n').slice(-20).join('\n') || '(no output)'}`);
    this.name = 'DockerdStartError';
  }
}

export class DockerError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: CommandResult,
  ) {
    const how = result.signal ? `signal ${result.signal}` : `exit ${result.code}`;
    super(`docker ${args.join(' ')} failed (${how}):\n${result.stderr.trim() || result.stdout.trim() || '(no output)'}`);
    this.name = 'DockerError';
  }
}

export interface DockerdProcess {
  dir: string;
  /** `unix://<dir>/docker.sock`, for `docker -H`. */
  host: string;
  child: ChildProcess;
  /** Everything the daemon wrote so far. */
  output(): string;
  /** Runs `docker -H <socket> <args>` with a private DOCKER_CONFIG; rejects with DockerError on a non-zero exit. */
  docker(args: readonly string[], opts?: { timeoutMs?: number }): Promise<CommandResult>;
  /** SIGTERM (SIGKILL after 10 s), then removes the directory. */
  stop(): Promise<void>;
}

/** Why this machine cannot run the helper, or undefined when it can (root, and the package's binaries present). */
export function dockerdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'dockerd needs root';
  for (const bin of [DOCKERD_BIN, DOCKER_BIN]) if (!existsSync(bin)) return `${bin} is missing (Debian package docker.io; scripts/test.sh installs it when run as root)`;
  return undefined;
}

/** Starts dockerd with `configFile` as its daemon.json and waits until its API answers. */
export async function startDockerd(configFile: string): Promise<DockerdProcess> {
  const unavailable = dockerdUnavailable();
  if (unavailable) throw new Error(unavailable);
  const dir = await mkdtemp(join(tmpdir(), 'wharf-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  await mkdir(join(dir, 'client'));
  const args = [
    '--iptables=false',
    '--bridge=none',
    '--storage-driver=vfs',
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'docker.pid'),
    '-H', host,
    '--config-file', configFile,
  ];
  const child = spawn(DOCKERD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const env = { ...process.env, DOCKER_CONFIG: join(dir, 'client') };

  const docker = async (a: readonly string[], o: { timeoutMs?: number } = {}): Promise<CommandResult> => {
    const res = await runCommand(DOCKER_BIN, ['-H', host, ...a], { env, timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS });
    if (res.code !== 0) throw new DockerError(a, res);
    return res;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      'dockerd to answer',
      async () => {
        if (spawnError) throw new DockerdStartError(`cannot start ${DOCKERD_BIN}: ${spawnError.message}`, out);
        if (child.exitCode !== null || child.signalCode !== null) throw new DockerdStartError(`dockerd exited during start (${child.exitCode ?? child.signalCode})`, out);
        if (!existsSync(socket)) return false;
        return (await runCommand(DOCKER_BIN, ['-H', host, 'version'], { env, timeoutMs: 10_000 })).code === 0;
      },
      60_000,
      100,
    );
  } catch (err) {
    await stop();
    throw err instanceof DockerdStartError ? err : new DockerdStartError((err as Error).message, out);
  }
  return { dir, host, child, output: () => out, docker, stop };
}
