/**
 * The upstream of one mirror run, from the mirror's configuration: `external_reference`
 * (`host[:port]/path/repo`) parsed, its host checked again by the SSRF guard (a DNS answer may have
 * changed since the mirror was configured), the credentials opened with the registry's SecretBox (the
 * proxy cache's key; fields `username` and `password`), TLS verified unless `verify_tls` is false —
 * then, as skopeo's `--tls-verify=false` does, HTTPS without verification is tried first and plain
 * HTTP when the host does not speak TLS. `proxy` settings send the requests through an HTTP proxy
 * (`https_proxy` for an HTTPS upstream, `http_proxy` for plain HTTP, none for a host `no_proxy`
 * names); the proxy's own host is checked by the SSRF guard too. Each run gets its own client (its own
 * tokens), closed after it.
 */
import { parseRepositoryName } from '../../oci/reference.js';
import { isUpstreamError, UpstreamBlockedError } from '../../upstream/errors.js';
import { parseUpstreamSpec, UpstreamSpecError, type SsrfGuard, type UpstreamSpec } from '../../upstream/ssrf.js';
import type { Timeouts } from '../../upstream/transport.js';
import { UpstreamClient } from '../../upstream/upstream-client.js';
import type { MirrorRecord } from '../../db/mirror-store.js';
import type { MirrorFailureReason } from './mirror-failure.js';

/** Opens SecretBox strings (proxy/secret-box.ts). */
export interface SecretOpener {
  open(sealed: string, field: string): string;
}

/**
 * The SecretBox fields mirror credentials are sealed under (with the proxy cache's key): the
 * configuration service seals with them, a run opens with them.
 */
export const MIRROR_SECRET_FIELDS = { username: 'mirror_username', password: 'mirror_password' } as const;

/** A mirror whose upstream cannot be used as configured; `reason` as the failure metrics count it. */
export class MirrorSetupError extends Error {
  override name = 'MirrorSetupError';
  constructor(
    readonly reason: MirrorFailureReason,
    message: string,
  ) {
    super(message);
  }
}

export interface MirrorUpstream {
  client: UpstreamClient;
  spec: UpstreamSpec;
  upstreamRepository: string;
  close(): Promise<void>;
}

export interface MirrorUpstreamsOptions {
  guard: SsrfGuard;
  secrets: () => Promise<SecretOpener>;
  timeouts: Timeouts;
  maxManifestBytes: number;
}

export class MirrorUpstreams {
  constructor(private readonly opts: MirrorUpstreamsOptions) {}

  /** A client for the mirror's upstream; MirrorSetupError when the configuration cannot be used. */
  async connect(record: MirrorRecord): Promise<MirrorUpstream> {
    const ref = record.externalReference;
    const slash = ref.indexOf('/');
    const host = slash < 0 ? ref : ref.slice(0, slash);
    const path = slash < 0 ? '' : ref.slice(slash + 1);
    let spec: UpstreamSpec;
    try {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) throw new UpstreamSpecError(`"${ref}" must not name a scheme`);
      spec = parseUpstreamSpec(host);
    } catch (err) {
      throw new MirrorSetupError('invalid_source_registry', `Source registry location is not allowed: ${(err as Error).message}`);
    }
    const repository = spec.dockerHub && path && !path.includes('/') ? `library/${path}` : path;
    if (!repository || !parseRepositoryName(repository).ok) throw new MirrorSetupError('invalid_source_registry', `Source registry location is not allowed: "${ref}" names no valid repository`);
    try {
      await this.opts.guard.checkHost(spec.host);
    } catch (err) {
      if (err instanceof UpstreamBlockedError) throw new MirrorSetupError('invalid_source_registry', `Source registry location is not allowed: ${err.message}`);
      throw new MirrorSetupError('connection_error', (err as Error).message);
    }
    const credentials = await this.credentials(record);
    const proxies = { https: await this.proxyFor(record, spec, 'https'), http: await this.proxyFor(record, spec, 'http') };
    const client = (s: UpstreamSpec, verifyTls: boolean) =>
      new UpstreamClient({
        spec: s,
        guard: this.opts.guard,
        credentials,
        timeouts: this.opts.timeouts,
        maxManifestBytes: this.opts.maxManifestBytes,
        verifyTls,
        proxyUrl: proxies[s.scheme],
      });
    if (record.verifyTls) return this.upstream(client(spec, true), spec, repository);
    const https = client(spec, false);
    try {
      await https.checkAccess();
      return this.upstream(https, spec, repository);
    } catch (err) {
      if (isUpstreamError(err) && err.kind !== 'unavailable' && err.kind !== 'protocol') return this.upstream(https, spec, repository);
      await https.close().catch(() => undefined);
    }
    const plainSpec = parseUpstreamSpec(host, { insecure: true });
    return this.upstream(client(plainSpec, false), plainSpec, repository);
  }

  /** The proxy URL for `scheme` requests to the upstream, checked by the SSRF guard; undefined: direct. */
  private async proxyFor(record: MirrorRecord, spec: UpstreamSpec, scheme: 'http' | 'https'): Promise<string | undefined> {
    const raw = (scheme === 'https' ? record.proxy.https_proxy : record.proxy.http_proxy)?.trim();
    if (!raw || bypassesProxy(spec, record.proxy.no_proxy)) return undefined;
    let url: URL;
    try {
      url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
    } catch {
      throw new MirrorSetupError('invalid_source_registry', `the mirror's ${scheme}_proxy "${raw.slice(0, 200)}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MirrorSetupError('invalid_source_registry', `the mirror's ${scheme}_proxy must be an http:// or https:// URL`);
    try {
      await this.opts.guard.checkHost(url.hostname.replace(/^\[(.*)\]$/, '$1'));
    } catch (err) {
      if (err instanceof UpstreamBlockedError) throw new MirrorSetupError('invalid_source_registry', `the mirror's ${scheme}_proxy is not allowed: ${err.message}`);
      throw new MirrorSetupError('connection_error', `the mirror's ${scheme}_proxy: ${(err as Error).message}`);
    }
    return url.toString();
  }

  private upstream(client: UpstreamClient, spec: UpstreamSpec, upstreamRepository: string): MirrorUpstream {
    return { client, spec, upstreamRepository, close: () => client.close() };
  }

  private async credentials(record: MirrorRecord): Promise<{ username: string; password: string } | undefined> {
    if (record.usernameEnc === null) return undefined;
    try {
      const box = await this.opts.secrets();
      const username = box.open(record.usernameEnc, MIRROR_SECRET_FIELDS.username);
      const password = record.passwordEnc === null ? '' : box.open(record.passwordEnc, MIRROR_SECRET_FIELDS.password);
      return { username, password };
    } catch (err) {
      throw new MirrorSetupError('decryption_failed', `the mirror's upstream credentials cannot be decrypted (set them again): ${(err as Error).message}`);
    }
  }
}

/** Whether `no_proxy` (comma-separated hosts, `.suffix`es, `host:port`s or `*`) names the upstream. */
export function bypassesProxy(spec: Pick<UpstreamSpec, 'host' | 'port'>, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = spec.host.toLowerCase();
  for (const raw of noProxy.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const m = /^(.*?)(?::(\d+))?$/.exec(entry.replace(/^\[(.*)\](:\d+)?$/, '$1$2'))!;
    const name = m[1]!.replace(/^\*?\./, '.');
    if (m[2] !== undefined && Number(m[2]) !== spec.port) continue;
    if (host === name.replace(/^\./, '') || (name.startsWith('.') && host.endsWith(name)) || (!name.startsWith('.') && host.endsWith(`.${name}`))) return true;
  }
  return false;
}
