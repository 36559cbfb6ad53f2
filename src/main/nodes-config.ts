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
 */
import { hostname } from 'node:os';
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
          `server = "${upstreamServer(host, cache.insecure)}"`,
          '',
          `[host."${endpoint(cache.organization)}"]`,
          '  capabilities = ["pull", "resolve"]',
          ...(opts.orgInPath ? ['  override_path = true'] : []),
        ];
        if (opts.caFile) lines.push(`  ca = "${opts.caFile}"`);
        return { path: `/etc/containerd/certs.d/${host}/hosts.toml`, content: `${lines.join('\n')}\n` };
      });
      notes.push('containerd reads these when its CRI registry config_path is /etc/containerd/certs.d (`ctr` with --hosts-dir /etc/containerd/certs.d)');
      return { files, notes };
    }
    case 'k3s':
    case 'rke2': {
      const lines = ['mirrors:'];
      for (const { host, cache } of entries) {
        lines.push(`  # through proxy organization ${cache.organization}`, `  "${host}":`, '    endpoint:', `      - "${endpoint(cache.organization)}"`);
      }
      lines.push('configs:', `  "${wharfHost}":`);
      if (needsAuth.length) lines.push('    # auth:', '    #   username: <org>+<robot>', '    #   password: <robot token>');
      if (opts.caFile) lines.push('    tls:', `      ca_file: ${opts.caFile}`);
      else if (plain) lines.push('    # plain HTTP: no tls section needed');
      else lines.push('    tls:', '      # ca_file: /etc/rancher/wharf.crt   (when Wharf uses a private CA)');
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
          `prefix = "${prefix}"`,
          `location = "${prefix}"`,
          '',
          '[[registry.mirror]]',
          `location = "${wharfHost}/${cache.organization}"`,
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

/** The files as one text: each preceded by a comment line naming its path. */
export function formatNodesConfig(rendered: RenderedNodesConfig, format: NodeFormat): string {
  const comment = format === 'docker' ? undefined : '#';
  return rendered.files
    .map((f) => (comment ? `${comment} ${f.path}\n${f.content}` : `// ${f.path} (JSON: remove this line)\n${f.content}`))
    .join('\n');
}

/** Runs `wharf nodes-config`: prints the files for every proxy organization; returns the exit code. */
export async function runNodesConfig(opts: { format?: string; url?: string; 'ca-file'?: string; 'org-in-path'?: boolean }, config: Readonly<Config>): Promise<number> {
  const format = opts.format ?? 'containerd';
  if (!(NODE_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${NODE_FORMATS.join(', ')}`);
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
  try {
    const caches = await createProxyConfigService(db.db, db.dialect, config).list();
    const rendered = renderNodesConfig(format as NodeFormat, caches, { url, caFile: opts['ca-file'], defaultOrganization: config.proxy_cache.default_organization, orgInPath: opts['org-in-path'] });
    process.stdout.write(formatNodesConfig(rendered, format as NodeFormat));
    for (const note of rendered.notes) process.stderr.write(`note: ${note}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
