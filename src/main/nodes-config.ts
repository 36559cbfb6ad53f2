/**
 * `wharf nodes-config`: ready-to-use node configuration that sends pulls of every registry a proxy
 * organization answers for through Wharf, with the registry itself as the fallback.
 *
 *   containerd  one `/etc/containerd/certs.d/<registry>/hosts.toml` per registry: Wharf as a pull/resolve
 *               host; containerd adds `?ns=<registry>` and Wharf routes by it (no path prefix needed).
 *               With `orgInPath` the host is `<wharf>/v2/<org>` with `override_path` instead, the form
 *               sites use for Harbor or Quay proxy projects; Wharf serves both.
 *   k3s, rke2   `registries.yaml` mirrors (containerd underneath, so `ns=` routing as well; with
 *               `orgInPath` the endpoint is `<wharf>/v2/<org>`, for which k3s sets `override_path`)
 *   crio        `registries.conf.d` drop-in: a mirror location with the organization as path prefix
 *               (CRI-O and Podman send no `ns=`)
 *   docker      `daemon.json` `registry-mirrors`: Docker Hub only, served through
 *               `proxy_cache.default_organization`
 *
 * Output contract: standard output holds exactly one file, byte for byte, when one file is produced
 * (`> /etc/docker/daemon.json` works; the path and every remark go to standard error). Several files
 * (containerd: one per registry) are printed each after a `#` comment naming its path, for reading;
 * `outputDir` writes them instead, each at its node path under that directory.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { createProxyConfigService } from './compose-proxy-config.js';
import type { ProxyCacheSummary } from '../registry/proxy/proxy-config.js';
import { UsageError } from './account-commands.js';
import { createDatabase } from './compose.js';

export const NODE_FORMATS = ['containerd', 'k3s', 'rke2', 'crio', 'docker'] as const;
export type NodeFormat = (typeof NODE_FORMATS)[number];

export interface NodesConfigOptions {
  /** Wharf as the nodes reach it: `https://registry.example.com:5000` (or `http://…`). */
  url: string;
  /** A CA certificate file on the nodes that signs Wharf's certificate. */
  caFile?: string;
  /** `proxy_cache.default_organization`. */
  defaultOrganization?: string;
  /** containerd, k3s, rke2: name the organization in the mirror endpoint's path (`/v2/<org>`). */
  orgInPath?: boolean;
}

export interface RenderedNodesConfig {
  /** What to write where: one or more files, each with its path on the node. */
  files: Array<{ path: string; content: string }>;
  /** Remarks for the operator (printed on stderr). */
  notes: string[];
}

const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** The registry host a client names in image references for one `answers_for` entry. */
function upstreamServer(host: string, insecure: boolean): string {
  if (DOCKER_HUB.has(host)) return 'https://registry-1.docker.io';
  return `${insecure ? 'http' : 'https'}://${host}`;
}

/** A TOML basic string (JSON's escapes are TOML's, plus DEL, which TOML wants escaped). */
const toml = (s: string): string => JSON.stringify(s).replace(/\u007f/g, '\\u007f');
/** A YAML double-quoted scalar (YAML reads every JSON string as the same string). */
const yaml = (s: string): string => JSON.stringify(s);

export function renderNodesConfig(format: NodeFormat, caches: readonly ProxyCacheSummary[], opts: NodesConfigOptions): RenderedNodesConfig {
  const url = new URL(opts.url);
  const wharfHost = url.host;
  const plain = url.protocol === 'http:';
  const base = `${url.protocol}//${wharfHost}`;
  const notes: string[] = [];
  /** The mirror endpoint of one proxy organization (with `orgInPath`, its path names the organization). */
  const endpoint = (org: string) => (opts.orgInPath ? `${base}/v2/${org}` : base);
  if (opts.orgInPath && (format === 'crio' || format === 'docker')) {
    notes.push(format === 'crio' ? 'CRI-O mirrors always name the organization in their location' : 'Docker registry-mirrors cannot name an organization: --org-in-path does not apply');
  }
  const entries = caches.flatMap((c) => c.answersFor.map((host) => ({ host, cache: c })));
  if (entries.length === 0) notes.push('no proxy organization answers for any registry host: configure one with `wharf proxycache set ORG --upstream …` (and --answers-for)');
  const needsAuth = caches.filter((c) => !c.anonymousPull).map((c) => c.organization);
  if (needsAuth.length && format !== 'docker') {
    notes.push(`anonymous_pull is off for ${needsAuth.join(', ')}: nodes need credentials of a member or robot of that organization, or turn anonymous_pull on`);
  }
  switch (format) {
    case 'containerd': {
      const files = entries.map(({ host, cache }) => {
        const lines = [
          `# Pulls of ${host}/… go through Wharf (proxy organization ${cache.organization}), then ${host} itself.`,
          `server = ${toml(upstreamServer(host, cache.insecure))}`,
          '',
          `[host.${toml(endpoint(cache.organization))}]`,
          '  capabilities = ["pull", "resolve"]',
          ...(opts.orgInPath ? ['  override_path = true'] : []),
        ];
        if (opts.caFile) lines.push(`  ca = ${toml(opts.caFile)}`);
        return { path: `/etc/containerd/certs.d/${host}/hosts.toml`, content: `${lines.join('\n')}\n` };
      });
      notes.push('containerd reads these when its CRI registry config_path is /etc/containerd/certs.d (`ctr` with --hosts-dir /etc/containerd/certs.d)');
      return { files, notes };
    }
    case 'k3s':
    case 'rke2': {
      const lines = entries.length ? ['mirrors:'] : ['mirrors: {}'];
      for (const { host, cache } of entries) {
        lines.push(`  # through proxy organization ${cache.organization}`, `  ${yaml(host)}:`, '    endpoint:', `      - ${yaml(endpoint(cache.organization))}`);
      }
      // `configs` only when it holds a real setting (an entry with nothing but comments would read as null).
      const auth = needsAuth.length ? [`auth:   # a robot of ${needsAuth.join(' or ')} (anonymous_pull is off)`, '  username: "<org>+<robot>"', '  password: "<robot token>"'] : [];
      const indent = (prefix: string, l: string[]) => l.map((x) => `${prefix}${x}`);
      if (opts.caFile) {
        lines.push('configs:', `  ${yaml(wharfHost)}:`, '    tls:', `      ca_file: ${yaml(opts.caFile)}`, ...indent('    # ', auth));
      } else {
        const tlsHint = plain ? [] : ['tls:', '  ca_file: "/etc/rancher/wharf.crt"   # when a private CA signs Wharf\'s certificate'];
        if (auth.length || tlsHint.length) lines.push('# configs:', `#   ${yaml(wharfHost)}:`, ...indent('#     ', [...tlsHint, ...auth]));
      }
      return { files: [{ path: `/etc/rancher/${format}/registries.yaml`, content: `${lines.join('\n')}\n` }], notes };
    }
    case 'crio': {
      const lines: string[] = [];
      for (const { host, cache } of entries) {
        // An upstream `host/ns` caches only ns: images `host/ns/…` map to `<org>/…`.
        const ns = cache.upstreamRegistry.includes('/') ? cache.upstreamRegistry.slice(cache.upstreamRegistry.indexOf('/') + 1) : undefined;
        const prefix = `${DOCKER_HUB.has(host) ? 'docker.io' : host}${ns ? `/${ns}` : ''}`;
        lines.push(
          `# ${prefix}/… through proxy organization ${cache.organization}, then ${prefix} itself`,
          '[[registry]]',
          `prefix = ${toml(prefix)}`,
          `location = ${toml(prefix)}`,
          '',
          '[[registry.mirror]]',
          `location = ${toml(`${wharfHost}/${cache.organization}`)}`,
          ...(plain ? ['insecure = true'] : []),
          '',
        );
      }
      if (opts.caFile) notes.push(`install the CA certificate as /etc/containers/certs.d/${wharfHost}/ca.crt`);
      return { files: [{ path: '/etc/containers/registries.conf.d/50-wharf.conf', content: lines.join('\n') }], notes };
    }
    case 'docker': {
      const hub = caches.find((c) => c.answersFor.some((h) => DOCKER_HUB.has(h)));
      if (!opts.defaultOrganization) {
        notes.push('Docker sends mirror requests without the organization: set proxy_cache.default_organization to the Docker Hub proxy organization' + (hub ? ` (${hub.organization})` : ''));
      } else if (hub && hub.organization !== opts.defaultOrganization) {
        notes.push(`proxy_cache.default_organization is ${opts.defaultOrganization}, but ${hub.organization} answers for Docker Hub`);
      }
      notes.push('Docker uses registry-mirrors for Docker Hub images only, and without credentials: the organization needs anonymous_pull');
      const daemon: Record<string, unknown> = { 'registry-mirrors': [base] };
      if (plain) daemon['insecure-registries'] = [wharfHost];
      if (opts.caFile) notes.push(`install the CA certificate as /etc/docker/certs.d/${wharfHost}/ca.crt`);
      return { files: [{ path: '/etc/docker/daemon.json', content: `${JSON.stringify(daemon, null, 2)}\n` }], notes };
    }
  }
}

/**
 * What `wharf nodes-config` prints on standard output: a single file exactly as it is; several (TOML or
 * YAML, where `#` starts a comment), each after a comment naming its path, separated by a blank line.
 */
export function formatNodesConfig(rendered: RenderedNodesConfig): string {
  if (rendered.files.length === 1) return rendered.files[0]!.content;
  return rendered.files.map((f) => `# ${f.path}\n${f.content}`).join('\n');
}

/** Writes every file at its node path under `dir` (creating directories, replacing files); returns the paths written. */
export async function writeNodesConfig(rendered: RenderedNodesConfig, dir: string): Promise<string[]> {
  const root = resolve(dir);
  const written: string[] = [];
  for (const f of rendered.files) {
    const target = join(root, f.path);
    if (relative(root, target).startsWith('..')) throw new Error(`refusing to write ${f.path} outside ${root}`);
    await mkdir(resolve(target, '..'), { recursive: true });
    await writeFile(target, f.content, { mode: 0o644 });
    written.push(target);
  }
  return written;
}

export const NODES_CONFIG_OPTIONS = {
  format: { type: 'string' },
  url: { type: 'string' },
  'ca-file': { type: 'string' },
  'org-in-path': { type: 'boolean' },
  'output-dir': { type: 'string' },
} as const;

export interface NodesConfigFlags {
  format?: string;
  url?: string;
  'ca-file'?: string;
  'org-in-path'?: boolean;
  'output-dir'?: string;
}

/**
 * Runs `wharf nodes-config`: the files for every proxy organization, on standard output (see the
 * output contract above) or under `--output-dir`; remarks on standard error. Returns the exit code.
 */
export async function runNodesConfig(opts: NodesConfigFlags, config: Readonly<Config>): Promise<number> {
  const format = opts.format ?? 'containerd';
  if (!(NODE_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${NODE_FORMATS.join(', ')}`);
  if (opts['output-dir'] === '') throw new UsageError('--output-dir needs a directory');
  if (!config.proxy_cache.enabled) {
    process.stderr.write('wharf: the proxy cache is turned off (proxy_cache.enabled is false)\n');
    return 1;
  }
  const scheme = config.tls.cert || config.tls.self_signed_hostname ? 'https' : 'http';
  const url = opts.url ?? config.base_url ?? `${scheme}://${config.tls.self_signed_hostname ?? hostname()}:${config.port}`;
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url must be a URL such as https://registry.example.com:5000, not "${url}"`);
  }
  const db = await createDatabase(config);
  let rendered: RenderedNodesConfig;
  try {
    const caches = await createProxyConfigService(db.db, db.dialect, config).list();
    rendered = renderNodesConfig(format as NodeFormat, caches, { url, caFile: opts['ca-file'], defaultOrganization: config.proxy_cache.default_organization, orgInPath: opts['org-in-path'] });
  } finally {
    await db.close();
  }
  if (opts['output-dir'] !== undefined) {
    for (const path of await writeNodesConfig(rendered, opts['output-dir'])) process.stderr.write(`wrote ${path}\n`);
  } else {
    process.stdout.write(formatNodesConfig(rendered));
    if (rendered.files.length === 1) process.stderr.write(`note: this is ${rendered.files[0]!.path} on the node\n`);
    else if (rendered.files.length > 1) process.stderr.write(`note: ${rendered.files.length} files, each after a comment naming its path on the node; --output-dir DIR writes them at their paths under DIR\n`);
  }
  for (const note of rendered.notes) process.stderr.write(`note: ${note}\n`);
  return 0;
}
