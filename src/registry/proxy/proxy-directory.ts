/**
 * Which organizations are proxy caches, of what, and which registry hosts they answer for: the
 * configurations looked up per request through a short-lived cache (dropped on every change this
 * process makes; other processes' changes show after `configTtlMs`), one upstream client per
 * configuration version, and the routing of mirror requests (`ns=`, the default organization).
 */
import { RegistryError } from '../../oci/errors.js';
import type { RepositoryName } from '../../oci/reference.js';
import type { CircuitBreakers } from '../../upstream/circuit-breaker.js';
import { parseUpstreamSpec, upstreamRepository, type SsrfGuard, type UpstreamSpec } from '../../upstream/ssrf.js';
import type { Timeouts } from '../../upstream/transport.js';
import { UpstreamClient } from '../../upstream/upstream-client.js';
import type { ProxyCacheConfig } from './proxy-config.js';

/** Where the proxy reads organizations' configurations (decrypted). */
export interface ProxyConfigSource {
  findByOrganization(name: string): Promise<ProxyCacheConfig | undefined>;
  list(): Promise<Array<Pick<ProxyCacheConfig, 'organization' | 'answersFor'>>>;
}

export interface ProxyUpstream {
  config: ProxyCacheConfig;
  spec: UpstreamSpec;
  client: UpstreamClient;
}

/** A repository of a proxy organization, resolved. */
export interface ProxyTarget {
  upstream: ProxyUpstream;
  /** The full local name, `<org>/<path>`. */
  name: RepositoryName;
  /** The repository path on the upstream. */
  upstreamRepository: string;
}

export interface ProxyDirectoryOptions {
  configs: ProxyConfigSource;
  guard: SsrfGuard;
  breakers: CircuitBreakers;
  timeouts: Timeouts;
  maxManifestBytes: number;
  /** Organization serving names of no local namespace without `ns=` (Docker's registry-mirrors). */
  defaultOrganization?: string;
  /** Namespace of one-component names (`registry.default_namespace`). */
  defaultNamespace: string;
  /** Whether a local namespace of this name exists (for the default organization and `ns=` requests). */
  namespaceExists: (name: string) => Promise<boolean>;
  /** Whether a local repository of this full name exists (`ns=` requests that name local content). */
  repositoryExists: (name: string) => Promise<boolean>;
  /** How long a looked-up configuration is reused. Default 5 s. */
  configTtlMs?: number;
  now?: () => number;
}

const MEMO_LIMIT = 10_000;

export class ProxyDirectory {
  private readonly configCache = new Map<string, { value: ProxyUpstream | undefined; at: number }>();
  private readonly upstreams = new Map<number, ProxyUpstream>();
  private hostsCache: { at: number; byHost: Map<string, string> } | undefined;
  private readonly namespaceCache = new Map<string, { exists: boolean; at: number }>();
  private readonly repositoryCache = new Map<string, { exists: boolean; at: number }>();
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(private readonly opts: ProxyDirectoryOptions) {
    this.now = opts.now ?? Date.now;
    this.ttlMs = opts.configTtlMs ?? 5_000;
  }

  /** Forgets cached configurations (after a change); all of them when no organization is named. */
  invalidate(organization?: string): void {
    if (organization === undefined) this.configCache.clear();
    else this.configCache.delete(organization);
    this.hostsCache = undefined;
  }

  /** Closes upstream connections. */
  async close(): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.client.close().catch(() => undefined)));
    this.upstreams.clear();
  }

  /** The proxy organization's view of a repository name, or undefined when its namespace is no proxy cache. */
  async target(name: RepositoryName): Promise<ProxyTarget | undefined> {
    const slash = name.indexOf('/');
    if (slash < 0) return undefined;
    const upstream = await this.upstream(name.slice(0, slash));
    if (!upstream) return undefined;
    const path = name.slice(slash + 1);
    try {
      return { upstream, name, upstreamRepository: upstreamRepository(upstream.spec, path) };
    } catch (err) {
      throw new RegistryError('NAME_INVALID', (err as Error).message);
    }
  }

  /**
   * The local name a mirror request is served under: with `ns=<host>` (containerd), the proxy
   * organization answering for that host; without, the default organization for names of no local
   * namespace. Undefined: serve the name as it is. `ns` is only compared, never dialled.
   *
   * With `ns=`, a path that already names local content wins and `ns` only says which registry the
   * client meant: a node whose mirror endpoint names the organization (`/v2/hub` with
   * `override_path`, as k3s writes for an endpoint with a path) sends `hub/library/alpine?ns=docker.io`.
   * "Local content" is a proxy organization as the first component, or a repository that exists under
   * that name; a local namespace alone does not capture the upstream's names (a Docker Hub user
   * `grafana` stays Docker Hub's while the local `grafana` organization has no such repository).
   */
  async route(name: string, ns: string | undefined): Promise<string | undefined> {
    let org: string | undefined;
    if (ns) {
      org = (await this.hosts()).get(ns.trim().toLowerCase());
      if (!org) return undefined;
      if (await this.namesLocalContent(name)) return undefined;
    } else {
      org = this.opts.defaultOrganization;
      if (!org) return undefined;
      const first = name.includes('/') ? name.split('/', 1)[0]! : this.opts.defaultNamespace;
      if (first === org || (await this.namespaceExists(first))) return undefined;
    }
    const upstream = await this.upstream(org);
    if (!upstream) return undefined;
    const prefix = upstream.spec.namespacePrefix;
    if (prefix) {
      // The organization caches one upstream namespace: `<ns>/app` of that registry is `<org>/app` here.
      if (!name.startsWith(`${prefix}/`)) return undefined;
      return `${org}/${name.slice(prefix.length + 1)}`;
    }
    // Docker Hub's one-component names live under library/ locally too, so `nginx` and `library/nginx` share a cache.
    const path = upstream.spec.dockerHub && !name.includes('/') ? `library/${name}` : name;
    return `${org}/${path}`;
  }

  /** Whether `name` starts with a proxy organization or names an existing repository. */
  private async namesLocalContent(name: string): Promise<boolean> {
    const slash = name.indexOf('/');
    if (slash < 0) return false;
    const first = name.slice(0, slash);
    if ((await this.upstream(first)) !== undefined) return true;
    return (await this.namespaceExists(first)) && (await this.remembered(this.repositoryCache, name, () => this.opts.repositoryExists(name)));
  }

  /** The organization's upstream, or undefined when it is no proxy cache. */
  private async upstream(organization: string): Promise<ProxyUpstream | undefined> {
    const hit = this.configCache.get(organization);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value;
    const config = await this.opts.configs.findByOrganization(organization);
    const value = config ? this.upstreamFor(config) : undefined;
    if (this.configCache.size >= MEMO_LIMIT) this.configCache.clear();
    this.configCache.set(organization, { value, at: this.now() });
    return value;
  }

  /** One client per configuration version: a changed configuration gets a new client (new credentials, new tokens). */
  private upstreamFor(config: ProxyCacheConfig): ProxyUpstream {
    const existing = this.upstreams.get(config.namespaceId);
    if (existing && existing.config.updatedAt === config.updatedAt && existing.config.organization === config.organization) {
      existing.config = config;
      return existing;
    }
    if (existing) void existing.client.close().catch(() => undefined);
    const spec = parseUpstreamSpec(config.upstreamRegistry, { insecure: config.insecure });
    const client = new UpstreamClient({
      spec,
      guard: this.opts.guard,
      credentials: config.credentials,
      breaker: this.opts.breakers.forHost(`${spec.host}:${spec.port}`),
      timeouts: this.opts.timeouts,
      maxManifestBytes: this.opts.maxManifestBytes,
    });
    const upstream = { config, spec, client };
    this.upstreams.set(config.namespaceId, upstream);
    return upstream;
  }

  private async hosts(): Promise<Map<string, string>> {
    if (this.hostsCache && this.now() - this.hostsCache.at < this.ttlMs) return this.hostsCache.byHost;
    const byHost = new Map<string, string>();
    for (const c of await this.opts.configs.list()) {
      for (const h of c.answersFor) if (!byHost.has(h.toLowerCase())) byHost.set(h.toLowerCase(), c.organization);
    }
    this.hostsCache = { at: this.now(), byHost };
    return byHost;
  }

  private namespaceExists(name: string): Promise<boolean> {
    return this.remembered(this.namespaceCache, name, () => this.opts.namespaceExists(name));
  }

  /** A yes/no lookup, remembered for the configuration TTL. */
  private async remembered(cache: Map<string, { exists: boolean; at: number }>, key: string, lookup: () => Promise<boolean>): Promise<boolean> {
    const hit = cache.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.exists;
    const exists = await lookup();
    if (cache.size >= MEMO_LIMIT) cache.clear();
    cache.set(key, { exists, at: this.now() });
    return exists;
  }
}
