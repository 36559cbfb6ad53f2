/**
 * Upstream specs and the SSRF guard.
 *
 *   spec      ::= [scheme "://"] host [":" port] ["/" namespace]     scheme ::= "http" | "https"
 *   host      ::= DNS name | IPv4 | "[" IPv6 "]"
 *   namespace ::= component ("/" component)*                        (the repository-name grammar)
 *
 * `insecure` (or an explicit `http://`) selects plain HTTP; otherwise HTTPS. `docker.io` means
 * `registry-1.docker.io`, where a one-component repository gets `library/` as the Docker CLI does.
 *
 * Address policy, checked on every resolved address (all of them, not just the first):
 *   always refused    link-local 169.254/16 and fe80::/10, cloud metadata (169.254.169.254, fd00:ec2::254,
 *                     100.100.100.200, metadata.google.internal...), unspecified, multicast, reserved
 *   allowlist only    loopback 127/8 and ::1, private 10/8 172.16/12 192.168/16, CGNAT 100.64/10,
 *                     unique-local fc00::/7 — allowed when the host name or a CIDR covering the address
 *                     is in the allowlist
 *   allowed           everything else
 * IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4 address they embed. The guard runs when a
 * spec is validated and again inside every connection (a custom `lookup`, plus a check of IP literals,
 * which never reach `lookup`), so a DNS answer that changes after validation cannot reach a refused address.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP, isIPv4 } from 'node:net';
import type { buildConnector } from 'undici';
import { undici } from './undici.js';
import { parseRepositoryName } from '../oci/reference.js';
import { UpstreamBlockedError } from './errors.js';

export interface UpstreamSpec {
  /** The registry as configured, `host[:port]` (e.g. `docker.io`), without the namespace. */
  registry: string;
  scheme: 'http' | 'https';
  /** Host to dial: `registry-1.docker.io` for `docker.io`; an IPv6 address without brackets. */
  host: string;
  port: number;
  /** `ns` of `host/ns`: prefixed to every client repository path. */
  namespacePrefix: string | undefined;
  /** Docker Hub: one-component names get `library/`. */
  dockerHub: boolean;
  /** `scheme://host[:port]`, without a trailing slash. */
  baseUrl: string;
}

/** A spec that is malformed, carries credentials or uses another scheme. */
export class UpstreamSpecError extends Error {
  override name = 'UpstreamSpecError';
}

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
const DOCKER_HUB_HOST = 'registry-1.docker.io';

/** Parses an upstream spec (no DNS); throws UpstreamSpecError with a reason a user can act on. */
export function parseUpstreamSpec(input: string, opts: { insecure?: boolean } = {}): UpstreamSpec {
  const raw = input.trim();
  const fail = (why: string): never => {
    throw new UpstreamSpecError(`invalid upstream registry "${raw.slice(0, 200)}": ${why}`);
  };
  if (raw.length === 0) fail('it is empty');
  if (/[\s\\%?#]/.test(raw)) fail('whitespace, "\\", "%", "?" and "#" are not allowed');
  const schemeMatch = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw);
  const scheme = schemeMatch?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') fail(`scheme "${scheme}" is not allowed (http or https)`);
  const rest = schemeMatch ? raw.slice(schemeMatch[0].length) : raw;
  if (rest.includes('@')) fail('credentials must not be embedded in the URL; configure a username and password instead');
  if (/\/\/|(^|\/)\.\.?(\/|$)/.test(rest)) fail('empty, "." and ".." path segments are not allowed');
  const useHttp = opts.insecure === true || scheme === 'http';
  let url: URL;
  try {
    url = new URL(`${useHttp ? 'http' : 'https'}://${rest}`);
  } catch {
    return fail('not a host[:port][/namespace]');
  }
  if (url.username || url.password) fail('credentials must not be embedded in the URL');
  const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (!host) fail('the host is empty');
  const path = url.pathname.replace(/^\/+|\/+$/g, '');
  let namespacePrefix: string | undefined;
  if (path) {
    if (!parseRepositoryName(path).ok) fail(`namespace "${path}" is not a valid repository path`);
    namespacePrefix = path;
  }
  const dockerHub = DOCKER_HUB_ALIASES.has(host) && !url.port;
  const dialHost = dockerHub ? DOCKER_HUB_HOST : host;
  const port = url.port ? Number(url.port) : useHttp ? 80 : 443;
  const hostForUrl = isIP(dialHost) === 6 ? `[${dialHost}]` : dialHost;
  const registry = url.host.toLowerCase();
  return {
    registry,
    scheme: useHttp ? 'http' : 'https',
    host: dialHost,
    port,
    namespacePrefix,
    dockerHub,
    baseUrl: `${useHttp ? 'http' : 'https'}://${hostForUrl}${url.port ? `:${port}` : ''}`,
  };
}

/**
 * Maps a repository path as a client of the proxy sees it (after the organization) to the repository on
 * the upstream: `nginx` → `library/nginx` on Docker Hub, `app` → `ns/app` for an upstream `host/ns`.
 */
export function upstreamRepository(spec: UpstreamSpec, clientPath: string): string {
  const fail = (why: string): never => {
    throw new UpstreamSpecError(`invalid repository "${clientPath.slice(0, 200)}": ${why}`);
  };
  if (!parseRepositoryName(clientPath).ok) fail('not a valid repository path');
  let path = clientPath;
  if (spec.namespacePrefix) path = `${spec.namespacePrefix}/${clientPath}`;
  else if (spec.dockerHub && !clientPath.includes('/')) path = `library/${clientPath}`;
  if (!parseRepositoryName(path).ok) fail(`the upstream path "${path.slice(0, 200)}" is too long or invalid`);
  return path;
}

const METADATA_HOSTS = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
  'kubernetes.default',
  'kubernetes.default.svc',
  'kubernetes.default.svc.cluster.local',
]);

const ALWAYS_REFUSED = new BlockList();
for (const [net, prefix] of [['0.0.0.0', 8], ['169.254.0.0', 16], ['224.0.0.0', 4], ['240.0.0.0', 4], ['100.100.100.200', 32]] as const) {
  ALWAYS_REFUSED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [['::', 128], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['fd00:ec2::254', 128]] as const) {
  ALWAYS_REFUSED.addSubnet(net, prefix, 'ipv6');
}
const PRIVATE = new BlockList();
for (const [net, prefix] of [['127.0.0.0', 8], ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['198.18.0.0', 15], ['192.0.0.0', 24]] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [['::1', 128], ['fc00::', 7]] as const) PRIVATE.addSubnet(net, prefix, 'ipv6');

export type AddressClass = 'public' | 'private' | 'refused';

/** Classifies an IP address; IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) by their IPv4 part. */
export function classifyAddress(address: string): AddressClass {
  const { ip, family } = normalizeAddress(address);
  if (ALWAYS_REFUSED.check(ip, family)) return 'refused';
  if (PRIVATE.check(ip, family)) return 'private';
  return 'public';
}

function normalizeAddress(address: string): { ip: string; family: 'ipv4' | 'ipv6' } {
  const bare = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  if (isIPv4(bare)) return { ip: bare, family: 'ipv4' };
  const bytes = ipv6Bytes(bare);
  if (bytes) {
    const zero10 = bytes.slice(0, 10).every((b) => b === 0);
    const mapped = zero10 && bytes[10] === 0xff && bytes[11] === 0xff;
    const nat64 = bytes[0] === 0 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && bytes.slice(4, 12).every((b) => b === 0);
    if (mapped || nat64) return { ip: bytes.slice(12).join('.'), family: 'ipv4' };
  }
  return { ip: bare, family: 'ipv6' };
}

/** The 16 bytes of an IPv6 address (with an optional trailing dotted quad), or undefined. */
function ipv6Bytes(address: string): number[] | undefined {
  if (isIP(address) !== 6) return undefined;
  let text = address;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const p = quad[1]!.split('.').map(Number);
    text = `${text.slice(0, -quad[1]!.length)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 0xff];
  });
}

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface SsrfGuardOptions {
  /** Host names, IP addresses or CIDRs for which loopback/private/unique-local addresses are allowed. */
  allow?: readonly string[];
  /** DNS resolution, default node:dns lookup (all addresses); injectable for tests. */
  resolve?: Resolver;
}

/** Decides which hosts and addresses an upstream connection may reach. */
export class SsrfGuard {
  private readonly allowedNames = new Set<string>();
  private readonly allowedNets = new BlockList();
  private readonly resolver: Resolver;

  constructor(opts: SsrfGuardOptions = {}) {
    this.resolver = opts.resolve ?? systemResolver;
    for (const entry of opts.allow ?? []) {
      const e = entry.trim().toLowerCase();
      const cidr = /^\[?([^\]/]+)\]?\/(\d{1,3})$/.exec(e);
      if (cidr && isIP(cidr[1]!)) {
        const { ip, family } = normalizeAddress(cidr[1]!);
        this.allowedNets.addSubnet(ip, Number(cidr[2]), family);
      } else if (isIP(e.replace(/^\[(.*)\]$/, '$1'))) {
        const { ip, family } = normalizeAddress(e);
        this.allowedNets.addAddress(ip, family);
      } else if (/^[a-z0-9.-]+$/.test(e)) {
        this.allowedNames.add(e.replace(/\.$/, ''));
      } else {
        throw new UpstreamSpecError(`invalid SSRF allowlist entry "${entry}" (a host name, IP address or CIDR)`);
      }
    }
  }

  /** Throws UpstreamBlockedError unless `address` may be dialled for `hostname`. */
  checkAddress(address: string, hostname: string = address): void {
    const name = normalizeHostname(hostname);
    const cls = classifyAddress(address);
    if (cls === 'public') return;
    if (cls === 'private') {
      const { ip, family } = normalizeAddress(address);
      if (this.allowedNames.has(name) || this.allowedNets.check(ip, family)) return;
      const what = name === normalizeHostname(address) ? `"${name}" (or a CIDR covering it)` : `"${name}" (or ${address}, or a CIDR covering it)`;
      throw new UpstreamBlockedError(`upstream address ${address} of "${name}" is loopback or private; to allow it, add ${what} to proxy_cache.allow_private_upstreams`);
    }
    throw new UpstreamBlockedError(`upstream address ${address} of "${name}" is link-local, metadata or reserved and always refused`);
  }

  /** Resolves `hostname` (all addresses) and checks every one; returns the addresses. */
  async checkHost(hostname: string, family?: number): Promise<LookupAddress[]> {
    const name = normalizeHostname(hostname);
    if (METADATA_HOSTS.has(name)) throw new UpstreamBlockedError(`upstream host "${name}" is a cloud metadata or cluster-internal host`);
    if (isIP(name)) {
      this.checkAddress(name, name);
      return [{ address: name, family: isIP(name) }];
    }
    let addresses: LookupAddress[];
    try {
      addresses = await this.resolver(name);
    } catch (err) {
      throw Object.assign(new Error(`cannot resolve upstream host "${name}": ${(err as Error).message}`), { code: (err as NodeJS.ErrnoException).code, cause: err });
    }
    if (addresses.length === 0) throw Object.assign(new Error(`upstream host "${name}" has no addresses`), { code: 'ENOTFOUND' });
    for (const a of addresses) this.checkAddress(a.address, name);
    const wanted = family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
    if (wanted.length === 0) throw Object.assign(new Error(`upstream host "${name}" has no IPv${family} address`), { code: 'ENOTFOUND' });
    return wanted;
  }

  /** A `lookup` for net/tls connect that resolves through the guard (defeats DNS rebinding). */
  readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    this.checkHost(hostname, typeof options.family === 'number' ? options.family : undefined).then(
      (addrs) => (options.all ? callback(null, addrs) : callback(null, addrs[0]!.address, addrs[0]!.family)),
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };

  /**
   * An undici connector that checks IP-literal hosts itself and resolves names through `lookup`;
   * `rejectUnauthorized: false` accepts any TLS certificate (a mirror with `verify_tls: false`).
   */
  connector(opts: { timeout: number; rejectUnauthorized?: boolean }): buildConnector.connector {
    const base = undici().buildConnector({
      timeout: opts.timeout,
      lookup: this.lookup,
      autoSelectFamily: true,
      ...(opts.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
    });
    return (options, callback) => {
      const host = options.hostname.replace(/^\[(.*)\]$/, '$1');
      const name = normalizeHostname(host);
      try {
        if (METADATA_HOSTS.has(name)) throw new UpstreamBlockedError(`upstream host "${name}" is a cloud metadata or cluster-internal host`);
        if (isIP(host)) this.checkAddress(host, host);
      } catch (err) {
        queueMicrotask(() => callback(err as Error, null));
        return;
      }
      base(options, callback);
    };
  }
}

/**
 * Parses `input` and checks that its host resolves only to allowed addresses. Throws UpstreamSpecError
 * (malformed, credentials, scheme), UpstreamBlockedError (address policy) or a DNS error.
 */
export async function validateUpstream(input: string, opts: { insecure?: boolean; guard: SsrfGuard }): Promise<UpstreamSpec> {
  const spec = parseUpstreamSpec(input, opts);
  await opts.guard.checkHost(spec.host);
  return spec;
}

function normalizeHostname(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}
