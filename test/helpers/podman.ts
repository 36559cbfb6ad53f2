/**
 * podman as a registry client in end-to-end tests: root podman with vfs storage in a throw-away
 * directory (`--root`, `--runroot`, `--tmpdir`), its own containers.conf (cgroupfs, no events),
 * registries.conf and auth file, so nothing of the machine's podman setup is read or touched and
 * no systemd is needed. Pulling needs no container runtime.
 *
 * Every pull is `--tls-verify=false` unless asked otherwise (test registries speak plain HTTP) and
 * throws a `PodmanError` carrying stderr when podman fails. podman 4.3 (Debian 12) has no `--retry`
 * flag; as observed, a 5xx or a truncated blob fails the pull at once, while a 429 is retried
 * (containers/image: 5 attempts in all, honouring Retry-After up to 60 s) — answer 429s with
 * `Retry-After: 0` in tests.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandResult } from './e2e-utils.js';
import type { Credentials } from './skopeo.js';

export const PODMAN = process.env.PODMAN_BIN ?? 'podman';
const DEFAULT_TIMEOUT_MS = 120_000;

export class PodmanError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: CommandResult,
  ) {
    const how = result.signal ? `signal ${result.signal}` : `exit ${result.code}`;
    super(`podman ${args.join(' ')} failed (${how}):\n${result.stderr.trim() || '(no stderr)'}`);
    this.name = 'PodmanError';
  }
}

/** A `[[registry]]` entry of registries.conf (v2 format). */
export interface RegistryEntry {
  /** e.g. `docker.io` */
  prefix: string;
  /** Where `prefix` really lives; default the prefix itself. */
  location?: string;
  insecure?: boolean;
  /** Tried in order before `location`, e.g. a Wharf proxy-cache organization. */
  mirrors?: { location: string; insecure?: boolean }[];
}

/** One throw-away podman storage, configuration and auth file. */
export interface PodmanStore {
  dir: string;
  authFile: string;
  registriesConf: string;
  /** The environment podman runs with (CONTAINERS_CONF, CONTAINERS_REGISTRIES_CONF, TMPDIR…). */
  env: NodeJS.ProcessEnv;
  /** Global options placed before every subcommand (`--root`, `--storage-driver vfs`…). */
  globalArgs: string[];
  /** Removes the whole directory (storage included). */
  cleanup(): Promise<void>;
}

export interface PodmanStoreOptions {
  /** registries.conf entries; by default none (fully qualified references only, no search registries). */
  registries?: RegistryEntry[];
  /** Default vfs (works everywhere); overlay for image builds, where vfs copies the whole tree per layer. */
  storageDriver?: 'vfs' | 'overlay';
}

export async function createPodmanStore(opts: PodmanStoreOptions = {}): Promise<PodmanStore> {
  if (process.getuid?.() !== 0) throw new Error('the podman helper runs podman as root (rootless podman needs user namespaces)');
  const dir = await mkdtemp(join(tmpdir(), 'wharf-podman-'));
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  const containersConf = join(dir, 'containers.conf');
  await writeFile(containersConf, ['[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "none"', ''].join('\n'));
  const storageConf = join(dir, 'storage.conf');
  const driver = opts.storageDriver ?? 'vfs';
  await writeFile(storageConf, ['[storage]', `driver = "${driver}"`, `graphroot = ${JSON.stringify(join(dir, 'root'))}`, `runroot = ${JSON.stringify(join(dir, 'run'))}`, ''].join('\n'));
  const authFile = join(dir, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n', { mode: 0o600 });
  const store: PodmanStore = {
    dir,
    authFile,
    registriesConf: join(dir, 'registries.conf'),
    env: {
      ...process.env,
      CONTAINERS_CONF: containersConf,
      CONTAINERS_STORAGE_CONF: storageConf,
      CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
      REGISTRY_AUTH_FILE: authFile,
      TMPDIR: tmp,
    },
    globalArgs: [
      '--root', join(dir, 'root'),
      '--runroot', join(dir, 'run'),
      '--tmpdir', tmp,
      '--storage-driver', driver,
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'none',
    ],
    cleanup: async () => {
      // overlay keeps layers mounted; podman unmounts and removes its own storage first.
      if (driver === 'overlay') {
        await runCommand(PODMAN, [...store.globalArgs, 'system', 'reset', '--force'], { env: store.env, timeoutMs: DEFAULT_TIMEOUT_MS });
        // What is still mounted below the store (the overlay directory is itself a mount), deepest first.
        const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
        for (const m of mounts.sort().reverse()) await runCommand('umount', ['-l', m]);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  await writeRegistriesConf(store, opts.registries ?? []);
  return store;
}

/** (Re)writes the store's registries.conf: no search registries, no short-name prompts, plus `entries`. */
export async function writeRegistriesConf(store: PodmanStore, entries: readonly RegistryEntry[]): Promise<void> {
  const q = JSON.stringify;
  const lines = ['unqualified-search-registries = []', 'short-name-mode = "disabled"', ''];
  for (const e of entries) {
    lines.push('[[registry]]', `prefix = ${q(e.prefix)}`, `location = ${q(e.location ?? e.prefix)}`, `insecure = ${e.insecure ?? false}`);
    for (const m of e.mirrors ?? []) lines.push('[[registry.mirror]]', `location = ${q(m.location)}`, `insecure = ${m.insecure ?? false}`);
    lines.push('');
  }
  await writeFile(store.registriesConf, lines.join('\n'));
}

/** Runs `podman <store globals> <args>`; rejects with PodmanError on a non-zero exit. */
export async function runPodman(store: PodmanStore, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  const full = [...store.globalArgs, ...args];
  const res = await runCommand(PODMAN, full, { env: store.env, timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, input: opts.input });
  if (res.code !== 0) throw new PodmanError(args, res);
  return res;
}

export interface PodmanPullOptions {
  /** The store to pull into; by default a fresh one, removed after the pull (so every blob is fetched). */
  store?: PodmanStore;
  /** `--creds user:password`; otherwise whatever the store's auth file holds (see podmanLogin). */
  creds?: Credentials;
  /**
   * Default false: plain HTTP and unverified TLS for every registry (mirrors included). 'config' passes
   * no flag, so registries.conf's `insecure` decides (an explicit `--tls-verify` overrides it).
   */
  tlsVerify?: boolean | 'config';
  /** `--platform os/arch[/variant]` for a multi-platform image. */
  platform?: string;
  timeoutMs?: number;
}

export interface PodmanPullResult {
  /** The local image ID (config digest without `sha256:`), as podman prints it. */
  imageId: string;
  /** The digest the image was pulled by: the index's for a multi-platform image, else the manifest's. */
  digest: string;
  /** `host/repo@sha256:…` entries podman recorded (for an index: the index's and the platform manifest's). */
  repoDigests: string[];
  architecture: string;
  stdout: string;
  stderr: string;
}

/** `podman pull REF` (REF without transport: `host:port/repo:tag` or `…@sha256:…`), then inspects the image. */
export async function podmanPull(ref: string, opts: PodmanPullOptions = {}): Promise<PodmanPullResult> {
  const store = opts.store ?? (await createPodmanStore());
  try {
    const args = [
      'pull',
      '--quiet',
      ...(opts.tlsVerify === 'config' ? [] : [`--tls-verify=${opts.tlsVerify ?? false}`]),
      ...(opts.creds ? ['--creds', `${opts.creds.username}:${opts.creds.password}`] : []),
      ...(opts.platform ? ['--platform', opts.platform] : []),
      ref,
    ];
    const res = await runPodman(store, args, { timeoutMs: opts.timeoutMs });
    const imageId = res.stdout.trim().split('\n').pop() ?? '';
    const info = await podmanInspect(store, imageId);
    return { imageId, ...info, stdout: res.stdout, stderr: res.stderr };
  } finally {
    if (!opts.store) await store.cleanup();
  }
}

/** The digest of a pulled image (see PodmanPullResult.digest). */
export async function podmanImageDigest(store: PodmanStore, ref: string): Promise<string> {
  return (await podmanInspect(store, ref)).digest;
}

async function podmanInspect(store: PodmanStore, ref: string): Promise<{ digest: string; repoDigests: string[]; architecture: string }> {
  const res = await runPodman(store, ['image', 'inspect', '--format', 'json', ref]);
  const [info] = JSON.parse(res.stdout) as { Digest: string; RepoDigests: string[] | null; Architecture: string }[];
  if (!info) throw new Error(`podman image inspect ${ref}: no image`);
  return { digest: info.Digest, repoDigests: info.RepoDigests ?? [], architecture: info.Architecture };
}

/** `podman login` into the store's auth file (password over stdin). */
export async function podmanLogin(store: PodmanStore, host: string, creds: Credentials, opts: { tlsVerify?: boolean } = {}): Promise<void> {
  await runPodman(store, ['login', `--tls-verify=${opts.tlsVerify ?? false}`, '--authfile', store.authFile, '--username', creds.username, '--password-stdin', host], {
    input: creds.password,
  });
}

/** `podman logout` of `host` from the store's auth file. */
export async function podmanLogout(store: PodmanStore, host: string): Promise<void> {
  await runPodman(store, ['logout', '--authfile', store.authFile, host]);
}

/** Removes every image of the store, so that the next pull fetches everything again. */
export async function podmanRemoveImages(store: PodmanStore): Promise<void> {
  await runPodman(store, ['rmi', '--all', '--force']);
}
