/**
 * The control plane of proxy-cache organizations: create, change, show, delete and validate the one
 * upstream an organization caches. Routes and the CLI call the same methods; the data plane reads
 * `findByOrganization`/`findByNamespaceId` (credentials decrypted) and `list` (the service is its
 * ProxyConfigSource), and hears of every change through `subscribe` (or the `onChange` option) so that
 * it can drop its cached view.
 *
 * Guarantees: a stored upstream passed the SSRF guard when it was stored (the data plane's connections
 * are guarded again); credentials are stored only encrypted and never leave except through `find*`;
 * moving the credentials to another upstream host, or onto plain HTTP, needs them given again (an
 * organization admin cannot redirect credentials they never saw to a server of their choosing).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { NamespaceStore } from '../../db/namespace-store.js';
import type { ProxyCacheFields, ProxyCacheRecord, ProxyCacheStore } from '../../db/proxy-cache-store.js';
import { UpstreamAuthError, UpstreamBlockedError, UpstreamUnavailableError, isUpstreamError } from '../../upstream/errors.js';
import { UpstreamSpecError, parseUpstreamSpec, type SsrfGuard, type UpstreamSpec } from '../../upstream/ssrf.js';
import { admitUpstreamHost } from '../upstream-host-admission.js';
import type { Timeouts } from '../../upstream/transport.js';
import { UpstreamClient } from '../../upstream/upstream-client.js';
import { AccountError } from '../accounts/account-error.js';
import type { AuditContext } from '../accounts/audit-service.js';
import { isLookupName } from '../accounts/names.js';
import { DEFAULT_EXPIRATION_S, type ProxyCacheConfig, type ProxyCacheSummary } from './proxy-config.js';
import { SecretBoxError, type SecretBox } from './secret-box.js';
import { ALREADY_EXISTS, ChangesSchema, FAILED_LOGIN, FAILED_VALIDATION, InputSchema, NOT_ALLOWED, type ProxyConfigChanges, type ProxyConfigInput, type ValidationResult } from './proxy-config-input.js';

export { ALREADY_EXISTS, FAILED_LOGIN, FAILED_VALIDATION, NOT_ALLOWED };
export type { ProxyConfigChanges, ProxyConfigInput, ValidationResult };

/** Who asks, for the audit log. */
export type AuditWho = Pick<AuditContext, 'actor' | 'ip' | 'userAgent'>;

/** The stored credentials of `organization` cannot be decrypted with the current key. */
export class ProxyCredentialsError extends AccountError {
  constructor(readonly organization: string) {
    super(
      'invalid_request',
      `cannot decrypt the upstream credentials of proxy-cache organization ${organization}: they were encrypted with another proxy_cache.secret_key (or <data_dir>/proxy-secret.key), or are damaged; set them again`,
    );
    this.name = 'ProxyCredentialsError';
  }
}

export interface ProxyConfigServiceDeps {
  store: ProxyCacheStore;
  namespaces: NamespaceStore;
  /** Where create/update/delete are recorded (absent when the registry runs without accounts). */
  audit?: { record(kind: string, ctx: AuditContext): Promise<void> };
  /** The SecretBox, loaded on first use. */
  secrets: () => Promise<SecretBox>;
  guard: SsrfGuard;
  /** Whether the organization is an organization mirror (a proxy cache cannot be configured there). */
  isOrgMirror?(namespaceId: number): Promise<boolean>;
  /** Whether a repository of the organization is a repository mirror (its content would be shadowed by the cache). */
  hasRepositoryMirrors?(namespaceId: number): Promise<boolean>;
  /**
   * The SSRF guard of the server that will dial the upstream, when this process is another one (the
   * CLI) and the server's allowlist differs from its own: an upstream must pass both guards, and a
   * refusal says which side refused.
   */
  serverGuard?: SsrfGuard;
  /** Timeouts of the validation request. */
  timeouts?: Partial<Timeouts>;
  onChange?: ChangeListener;
  now?: () => number;
}

/** Hears of a created, changed or deleted configuration. */
export type ChangeListener = (namespaceId: number, organization: string) => void;

export class ProxyConfigService {
  private readonly listeners = new Set<ChangeListener>();
  private readonly now: () => number;

  constructor(private readonly deps: ProxyConfigServiceDeps) {
    this.now = deps.now ?? Date.now;
    if (deps.onChange) this.listeners.add(deps.onChange);
  }

  /** Calls `listener(namespaceId, organization)` after every create, update and delete; returns the unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The organization's configuration without credentials; undefined when it has none; 404 when it is no organization. */
  async get(org: string): Promise<ProxyCacheSummary | undefined> {
    const ns = await this.organization(org);
    const record = await this.deps.store.findByNamespaceId(ns.id);
    return record && summary(record);
  }

  /** Every configuration, by organization name, without credentials. */
  async list(): Promise<ProxyCacheSummary[]> {
    return (await this.deps.store.list()).map(summary);
  }

  /** The configuration with decrypted credentials (for the data plane); ProxyCredentialsError when they cannot be decrypted. */
  async findByOrganization(org: string): Promise<ProxyCacheConfig | undefined> {
    const record = isLookupName(org) ? await this.deps.store.findByOrganization(org) : undefined;
    return record && this.withCredentials(record);
  }

  async findByNamespaceId(namespaceId: number): Promise<ProxyCacheConfig | undefined> {
    const record = await this.deps.store.findByNamespaceId(namespaceId);
    return record && this.withCredentials(record);
  }

  /** Makes the organization a proxy cache of `input.upstreamRegistry`; 400 when it already is one. */
  async create(org: string, input: ProxyConfigInput, who: AuditWho): Promise<ProxyCacheSummary> {
    const ns = await this.organization(org);
    const parsed = parse(InputSchema, input);
    if (await this.deps.store.findByNamespaceId(ns.id)) throw invalid(ALREADY_EXISTS);
    if (await this.deps.isOrgMirror?.(ns.id)) throw invalid(`${org} is an organization mirror: remove its mirror configuration before making it a proxy cache`);
    if (await this.deps.hasRepositoryMirrors?.(ns.id)) throw invalid(`${org} has mirrored repositories: stop mirroring them (DELETE /api/v1/repository/{repo}/mirror) before making it a proxy cache`);
    const credentials = pair(parsed.username, parsed.password);
    const hosts = parsed.answersFor && normalizeHosts(parsed.answersFor);
    const { spec, upstreamRegistry } = await this.checkUpstream(parsed.upstreamRegistry, parsed.insecure);
    const answersFor = hosts ? await this.claim(ns.id, hosts) : await this.defaultHosts(ns.id, spec);
    const fields: ProxyCacheFields = {
      upstreamRegistry,
      insecure: spec.scheme === 'http',
      expirationS: parsed.expirationS ?? DEFAULT_EXPIRATION_S,
      anonymousPull: parsed.anonymousPull ?? false,
      revalidateIntervalS: parsed.revalidateIntervalS ?? 0,
      prefetchLayers: parsed.prefetchLayers ?? false,
      answersFor,
      ...(await this.seal(credentials ?? null)),
    };
    const record = await this.deps.store.create(ns.id, fields, this.now());
    if (!record) throw invalid(ALREADY_EXISTS);
    await this.changed('create_proxy_cache_config', record, who);
    return summary(record);
  }

  /** Changes the fields given (Quay has no such call); 404 when the organization has no configuration. */
  async update(org: string, changes: ProxyConfigChanges, who: AuditWho): Promise<ProxyCacheSummary> {
    const ns = await this.organization(org);
    const current = await this.require(ns.name, ns.id);
    const { fields } = await this.merge(current, changes);
    const record = await this.deps.store.update(ns.id, fields, this.now());
    if (!record) throw notConfigured(ns.name);
    await this.changed('update_proxy_cache_config', record, who, Object.keys(changes).filter((k) => (changes as Record<string, unknown>)[k] !== undefined));
    return summary(record);
  }

  /** Deletes the configuration only: the cached repositories stay, as ordinary repositories. */
  async delete(org: string, who: AuditWho): Promise<void> {
    const ns = await this.organization(org);
    const current = await this.require(ns.name, ns.id);
    if (!(await this.deps.store.delete(ns.id))) throw notConfigured(ns.name);
    await this.changed('delete_proxy_cache_config', current, who);
  }

  /** Checks an unsaved configuration against its upstream (`GET /v2/` with the credentials given). */
  async validate(input: ProxyConfigInput): Promise<ValidationResult> {
    const parsed = parse(InputSchema, input);
    const credentials = pair(parsed.username, parsed.password);
    if (parsed.answersFor) normalizeHosts(parsed.answersFor);
    const { spec } = await this.checkUpstream(parsed.upstreamRegistry, parsed.insecure);
    return this.check(spec, credentials ?? undefined);
  }

  /** Checks the organization's stored configuration, with `changes` applied as `update` would. */
  async validateSaved(org: string, changes: ProxyConfigChanges = {}): Promise<ValidationResult> {
    const ns = await this.organization(org);
    const current = await this.require(ns.name, ns.id);
    const { spec, credentials } = await this.merge(current, changes);
    return this.check(spec, credentials === undefined ? (await this.withCredentials(current)).credentials : (credentials ?? undefined));
  }

  /** The stored configuration with `changes` applied, checked; `credentials` undefined = unchanged. */
  private async merge(current: ProxyCacheRecord, changes: ProxyConfigChanges) {
    const parsed = parse(ChangesSchema, changes);
    if ((parsed.username === undefined) !== (parsed.password === undefined)) throw invalid('give upstream_registry_username and upstream_registry_password together (both null to drop the credentials)');
    const credentials = parsed.username === undefined ? undefined : pair(parsed.username ?? undefined, parsed.password ?? undefined);
    const hosts = parsed.answersFor && normalizeHosts(parsed.answersFor);
    const oldSpec = parseUpstreamSpec(current.upstreamRegistry, { insecure: current.insecure });
    let spec = oldSpec;
    let upstreamRegistry = current.upstreamRegistry;
    if (parsed.upstreamRegistry !== undefined || parsed.insecure !== undefined) {
      // An explicit https:// asks for HTTPS; otherwise the scheme stays as it was unless `insecure` says.
      const insecure = parsed.insecure ?? (/^https:\/\//i.test(parsed.upstreamRegistry ?? '') ? false : current.insecure);
      ({ spec, upstreamRegistry } = await this.checkUpstream(parsed.upstreamRegistry ?? current.upstreamRegistry, insecure));
    }
    const hasCredentials = current.usernameEnc !== null && current.passwordEnc !== null;
    if (hasCredentials && credentials === undefined && (spec.registry !== oldSpec.registry || (spec.scheme === 'http' && oldSpec.scheme === 'https'))) {
      throw invalid('moving the upstream credentials to another registry host or to plain HTTP needs them given again: send upstream_registry_username and upstream_registry_password (or both null to drop them)');
    }
    let answersFor: string[] | undefined;
    if (hosts) answersFor = await this.claim(current.namespaceId, hosts);
    else if (spec.registry !== oldSpec.registry && sameHosts(current.answersFor, defaultHost(oldSpec))) answersFor = await this.defaultHosts(current.namespaceId, spec);
    const fields: Partial<ProxyCacheFields> = {
      ...(upstreamRegistry !== current.upstreamRegistry || spec.scheme !== oldSpec.scheme ? { upstreamRegistry, insecure: spec.scheme === 'http' } : {}),
      ...(parsed.expirationS !== undefined ? { expirationS: parsed.expirationS } : {}),
      ...(parsed.anonymousPull !== undefined ? { anonymousPull: parsed.anonymousPull } : {}),
      ...(parsed.revalidateIntervalS !== undefined ? { revalidateIntervalS: parsed.revalidateIntervalS } : {}),
      ...(parsed.prefetchLayers !== undefined ? { prefetchLayers: parsed.prefetchLayers } : {}),
      ...(answersFor !== undefined ? { answersFor } : {}),
      ...(credentials !== undefined ? await this.seal(credentials) : {}),
    };
    return { fields, spec, credentials };
  }

  private async check(spec: UpstreamSpec, credentials: { username: string; password: string } | undefined): Promise<ValidationResult> {
    const client = new UpstreamClient({ spec, guard: this.deps.guard, credentials, timeouts: this.deps.timeouts, retries: 0 });
    try {
      return (await client.checkAccess()) === 'valid' ? 'Valid' : 'Anonymous';
    } catch (err) {
      if (err instanceof UpstreamAuthError) throw invalid(`${FAILED_LOGIN} (${err.message})`);
      if (err instanceof UpstreamBlockedError) throw invalid(`${NOT_ALLOWED}: ${err.message}`);
      if (err instanceof UpstreamUnavailableError) throw invalid(`${FAILED_VALIDATION}: the remote registry cannot be reached (${err.message})`);
      if (isUpstreamError(err) || err instanceof UpstreamSpecError) throw invalid(`${FAILED_VALIDATION}: ${err.message}`);
      throw err;
    } finally {
      await client.close().catch(() => {});
    }
  }

  /** Parses and SSRF-checks an upstream; returns it in canonical form (`host[:port][/ns]`, scheme in `insecure`). */
  private async checkUpstream(raw: string, insecure: boolean | undefined): Promise<{ spec: UpstreamSpec; upstreamRegistry: string }> {
    let spec: UpstreamSpec;
    try {
      spec = parseUpstreamSpec(raw, { insecure: insecure === true });
    } catch (err) {
      if (err instanceof UpstreamSpecError) throw invalid(err.message);
      throw err;
    }
    const admission = await admitUpstreamHost(spec.host, this.deps.guard, this.deps.serverGuard);
    if (!admission.ok) {
      throw invalid(admission.reason === 'blocked' ? `${NOT_ALLOWED}: ${admission.message}` : `${FAILED_VALIDATION}: ${admission.error.message}`);
    }
    return { spec, upstreamRegistry: `${spec.registry}${spec.namespacePrefix ? `/${spec.namespacePrefix}` : ''}` };
  }

  /** The hosts (normalized); 400 when another organization answers for one of them. */
  private async claim(namespaceId: number, hosts: string[]): Promise<string[]> {
    const taken = await this.takenHosts(namespaceId);
    for (const h of hosts) {
      const other = taken.get(h);
      if (other) throw invalid(`answers_for: organization ${other} already answers for ${h}`);
    }
    return hosts;
  }

  /** The upstream's registry host (`docker.io` for Docker Hub), unless another organization answers for it. */
  private async defaultHosts(namespaceId: number, spec: UpstreamSpec): Promise<string[]> {
    const host = defaultHost(spec);
    return (await this.takenHosts(namespaceId)).has(host[0]!) ? [] : host;
  }

  private async takenHosts(namespaceId: number): Promise<Map<string, string>> {
    const taken = new Map<string, string>();
    for (const r of await this.deps.store.list()) if (r.namespaceId !== namespaceId) for (const h of r.answersFor) taken.set(h, r.organization);
    return taken;
  }

  private async seal(credentials: { username: string; password: string } | null): Promise<Pick<ProxyCacheFields, 'usernameEnc' | 'passwordEnc'>> {
    if (!credentials) return { usernameEnc: null, passwordEnc: null };
    const box = await this.deps.secrets();
    return { usernameEnc: box.seal(credentials.username, 'username'), passwordEnc: box.seal(credentials.password, 'password') };
  }

  private async withCredentials(r: ProxyCacheRecord): Promise<ProxyCacheConfig> {
    const { usernameEnc, passwordEnc, ...rest } = r;
    const config: ProxyCacheConfig = { ...rest };
    if (usernameEnc === null || passwordEnc === null) return config;
    const box = await this.deps.secrets();
    try {
      config.credentials = { username: box.open(usernameEnc, 'username'), password: box.open(passwordEnc, 'password') };
    } catch (err) {
      if (err instanceof SecretBoxError) throw new ProxyCredentialsError(r.organization);
      throw err;
    }
    return config;
  }

  private async organization(name: string) {
    const ns = isLookupName(name) ? await this.deps.namespaces.findByName(name) : undefined;
    if (!ns || ns.kind !== 'org') throw new AccountError('not_found', `organization ${String(name).slice(0, 100)} not found`);
    return ns;
  }

  private async require(org: string, namespaceId: number): Promise<ProxyCacheRecord> {
    const record = await this.deps.store.findByNamespaceId(namespaceId);
    if (!record) throw notConfigured(org);
    return record;
  }

  private async changed(kind: string, r: ProxyCacheRecord, who: AuditWho, changed?: string[]): Promise<void> {
    for (const listener of this.listeners) {
      try {
        listener(r.namespaceId, r.organization);
      } catch {
        // A listener's failure must not undo or fail a stored change.
      }
    }
    const metadata: Record<string, unknown> = { upstream_registry: r.upstreamRegistry };
    if (changed) metadata.changed = changed.map((k) => SNAKE[k] ?? k);
    await this.deps.audit?.record(kind, { ...who, namespace: r.organization, metadata });
  }
}

const SNAKE: Record<string, string> = {
  upstreamRegistry: 'upstream_registry',
  expirationS: 'expiration_s',
  anonymousPull: 'anonymous_pull',
  revalidateIntervalS: 'revalidate_interval_s',
  prefetchLayers: 'prefetch_layers',
  answersFor: 'answers_for',
  username: 'upstream_registry_username',
  password: 'upstream_registry_password',
};

function summary(r: ProxyCacheRecord): ProxyCacheSummary {
  const { usernameEnc, passwordEnc, ...rest } = r;
  return { ...rest, hasCredentials: usernameEnc !== null && passwordEnc !== null };
}

function invalid(message: string): AccountError {
  return new AccountError('invalid_request', message);
}

function notConfigured(org: string): AccountError {
  return new AccountError('not_found', `organization ${org} has no proxy cache configuration`);
}

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw invalid([...new Set(r.error.issues.map((i) => i.message))].join('; '));
  return r.data;
}

/** Both credentials or neither. */
function pair(username: string | undefined, password: string | undefined): { username: string; password: string } | null {
  if ((username === undefined) !== (password === undefined)) throw invalid('give upstream_registry_username and upstream_registry_password together, or neither');
  return username === undefined || password === undefined ? null : { username, password };
}

function defaultHost(spec: UpstreamSpec): string[] {
  return [spec.dockerHub ? 'docker.io' : spec.registry];
}

function sameHosts(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((h, i) => h === b[i]);
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_RE = new RegExp(`^(${LABEL}(?:\\.${LABEL})*)(?::(\\d{1,5}))?$`);
const IPV6_RE = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/;

function normalizeHosts(hosts: string[]): string[] {
  return [...new Set(hosts.map(normalizeHost))];
}

/** `host[:port]` in lower case (a DNS name, an IPv4 address or a bracketed IPv6 address); 400 otherwise. */
function normalizeHost(entry: string): string {
  const e = entry.trim().toLowerCase().replace(/\.(?=:|$)/, '');
  const m = HOST_RE.exec(e) ?? IPV6_RE.exec(e);
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  const ok = m && e.length <= 255 && (port === undefined || (port >= 1 && port <= 65535)) && (!e.startsWith('[') || isIP(m[1]!) === 6);
  if (!ok) throw invalid(`answers_for: "${entry.slice(0, 100)}" is not a host[:port]`);
  return e;
}
