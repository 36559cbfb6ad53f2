/**
 * Thin async wrappers around the `skopeo` CLI for end-to-end tests.
 *
 * Every call talks plain HTTP / skips TLS verification, never retries (`--retry-times 0`, so a
 * registry bug shows up as a failure rather than being papered over), captures stderr, and throws a
 * `SkopeoError` carrying stderr when skopeo exits non-zero.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DigestTree, Platform } from './oci-layout.js';

export const SKOPEO = process.env.SKOPEO_BIN ?? 'skopeo';
const DEFAULT_TIMEOUT_MS = 180_000;

export class SkopeoError extends Error {
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly signal: NodeJS.Signals | null = null,
  ) {
    super(
      `skopeo ${args.join(' ')} failed (${signal ? `signal ${signal}` : `exit ${exitCode}`}):\n${stderr.trim() || '(no stderr)'}`,
    );
    this.name = 'SkopeoError';
  }
}

export interface SkopeoResult {
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  /** Kill skopeo (SIGKILL) after this long; default 180 s. */
  timeoutMs?: number;
  /** Global options placed before the subcommand, e.g. ['--override-arch', 'arm64']. */
  globalArgs?: string[];
  /**
   * Credentials for the registry (`--creds`, or `--src-creds`/`--dest-creds` for copy); null sends none.
   * Default: those registered for the reference's host with `registerCredentials`.
   */
  creds?: Credentials | null;
}

export interface Credentials {
  username: string;
  password: string;
}

const hostCredentials = new Map<string, Credentials>();

/** Makes every helper call to docker://<host>/… use these credentials unless it passes `creds` itself. */
export function registerCredentials(host: string, creds: Credentials): void {
  hostCredentials.set(host, creds);
}

/**
 * `[flag, user:password]` for a docker:// reference; for `creds: null`, the matching `--…no-creds`
 * flag, so that no stored login (auth.json) is used either.
 */
function credsArgs(flag: string, ref: string, creds: Credentials | null | undefined): string[] {
  if (!ref.startsWith('docker://')) return [];
  if (creds === null) return [flag.replace('creds', 'no-creds')];
  const c = creds ?? hostCredentials.get(ref.slice('docker://'.length).split('/')[0]!);
  return c ? [flag, `${c.username}:${c.password}`] : [];
}

/** Runs `skopeo <globalArgs> <args>`; resolves with raw stdout and stderr, rejects with SkopeoError. */
export function runSkopeo(args: string[], opts: RunOptions = {}): Promise<SkopeoResult> {
  const fullArgs = [...(opts.globalArgs ?? []), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(SKOPEO, fullArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      err += `\n(killed by test helper after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms)`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new SkopeoError(fullArgs, code, err, signal));
    });
  });
}

export interface CopyOptions extends RunOptions {
  /** `--all`: copy every image of a list/index. */
  all?: boolean;
  /** `--multi-arch <mode>` */
  multiArch?: 'system' | 'all' | 'index-only';
  /** `--preserve-digests`: make skopeo fail rather than write anything with a different digest. */
  preserveDigests?: boolean;
  /** `--format` of the destination manifest. */
  format?: 'oci' | 'v2s2' | 'v2s1';
  extraArgs?: string[];
}

export interface CopyResult extends SkopeoResult {
  /** Digest of the manifest (or index) written to the destination, from `--digestfile`. */
  digest: string;
}

/** `skopeo copy SRC DEST`; returns the digest skopeo wrote to the destination. */
export async function skopeoCopy(src: string, dest: string, opts: CopyOptions = {}): Promise<CopyResult> {
  const tmp = await mkdtemp(join(tmpdir(), 'wharf-skopeo-'));
  try {
    const digestFile = join(tmp, 'digest');
    const args = [
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--retry-times',
      '0',
      '--digestfile',
      digestFile,
      ...(opts.all ? ['--all'] : []),
      ...(opts.multiArch ? ['--multi-arch', opts.multiArch] : []),
      ...(opts.preserveDigests ? ['--preserve-digests'] : []),
      ...(opts.format ? ['--format', opts.format] : []),
      ...(opts.extraArgs ?? []),
      ...credsArgs('--src-creds', src, opts.creds),
      ...credsArgs('--dest-creds', dest, opts.creds),
      src,
      dest,
    ];
    const res = await runSkopeo(args, opts);
    const digest = (await readFile(digestFile, 'utf8')).trim();
    return { ...res, digest };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The JSON `skopeo inspect` prints (the fields tests use). */
export interface InspectOutput {
  Name?: string;
  Digest: string;
  RepoTags: string[];
  Created?: string;
  Architecture: string;
  Os: string;
  Variant?: string;
  Layers: string[];
  /** Only printed by skopeo ≥ 1.10. */
  LayersData?: { MIMEType: string; Digest: string; Size: number }[] | null;
  Labels?: Record<string, string> | null;
  Env?: string[] | null;
}

export interface InspectOptions extends RunOptions {
  /** `--no-tags`: skip the tag listing `skopeo inspect` does for docker:// references. */
  noTags?: boolean;
}

function inspectArgs(ref: string, extra: string[], opts: RunOptions): string[] {
  return ['inspect', '--tls-verify=false', '--retry-times', '0', ...credsArgs('--creds', ref, opts.creds), ...extra, ref];
}

/** `skopeo inspect REF`, parsed. For an index, describes the image for the current (or overridden) platform. */
export async function skopeoInspect(ref: string, opts: InspectOptions = {}): Promise<InspectOutput> {
  const { stdout } = await runSkopeo(inspectArgs(ref, opts.noTags ? ['--no-tags'] : [], opts), opts);
  return JSON.parse(stdout.toString('utf8')) as InspectOutput;
}

/** `skopeo inspect --raw REF`: the manifest (or index) exactly as the registry serves it. */
export async function skopeoInspectRaw(ref: string, opts: RunOptions = {}): Promise<Buffer> {
  return (await runSkopeo(inspectArgs(ref, ['--raw'], opts), opts)).stdout;
}

/** `skopeo inspect --config --raw REF`: the image config blob bytes. */
export async function skopeoInspectConfigRaw(ref: string, opts: RunOptions = {}): Promise<Buffer> {
  return (await runSkopeo(inspectArgs(ref, ['--config', '--raw'], opts), opts)).stdout;
}

/** `skopeo list-tags REF` (REF without tag, e.g. docker://host/repo); returns the tags as listed. */
export async function skopeoListTags(ref: string, opts: RunOptions = {}): Promise<string[]> {
  const { stdout } = await runSkopeo(['list-tags', '--tls-verify=false', '--retry-times', '0', ...credsArgs('--creds', ref, opts.creds), ref], opts);
  return (JSON.parse(stdout.toString('utf8')) as { Tags: string[] | null }).Tags ?? [];
}

/** `skopeo delete REF`. */
export async function skopeoDelete(ref: string, opts: RunOptions = {}): Promise<void> {
  await runSkopeo(['delete', '--tls-verify=false', '--retry-times', '0', ...credsArgs('--creds', ref, opts.creds), ref], opts);
}

/** sha256 digest ("sha256:<hex>") of raw bytes, e.g. manifest bytes from skopeoInspectRaw. */
export function digestOf(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** `docker://host/repo:tag` or `docker://host/repo@sha256:…` */
export function dockerRef(host: string, repo: string, tagOrDigest: string): string {
  return tagOrDigest.includes(':') ? `docker://${host}/${repo}@${tagOrDigest}` : `docker://${host}/${repo}:${tagOrDigest}`;
}

/** `docker://host/repo` (for list-tags) */
export function dockerRepo(host: string, repo: string): string {
  return `docker://${host}/${repo}`;
}

/** `oci:dir:tag` */
export function ociRef(dir: string, tag: string): string {
  return `oci:${dir}:${tag}`;
}

/**
 * Reads `reference` (tag or digest) of `host/repo` with `skopeo inspect --raw` and, for an index,
 * each child by digest; checks that every manifest fetched by digest hashes to that digest. The
 * result compares directly with `expectedDigestTree(built)` / `layoutDigestTree(dir, tag)`.
 */
export async function registryDigestTree(host: string, repo: string, reference: string, opts: RunOptions = {}): Promise<DigestTree> {
  const raw = await skopeoInspectRaw(dockerRef(host, repo, reference), opts);
  const digest = digestOf(raw);
  if (reference.startsWith('sha256:') && digest !== reference) {
    throw new Error(`${host}/${repo}@${reference}: the registry served bytes hashing to ${digest}`);
  }
  const m = JSON.parse(raw.toString('utf8')) as {
    mediaType?: string;
    config?: { digest: string };
    layers?: { digest: string }[];
    manifests?: { digest: string; platform?: Platform }[];
  };
  const mediaType = m.mediaType ?? '(none)';
  if (m.manifests) {
    const children: (DigestTree & { platform?: Platform })[] = [];
    for (const child of m.manifests) {
      const tree = await registryDigestTree(host, repo, child.digest, opts);
      children.push(child.platform ? { ...tree, platform: child.platform } : tree);
    }
    return { digest, mediaType, manifests: children };
  }
  if (!m.config || !m.layers) throw new Error(`${host}/${repo}:${reference} is neither an image manifest nor an index`);
  return { digest, mediaType, config: m.config.digest, layers: m.layers.map((l) => l.digest) };
}
