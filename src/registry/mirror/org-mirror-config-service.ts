/**
 * The configuration side of organization mirroring (Quay's `/organization/{org}/mirror` API): create,
 * change, show and delete an organization's mirror, ask for a discovery now, cancel one, check the
 * connection, list what was discovered. Routes decide who may (organization admins); the worker reads
 * the same row (db/org-mirror-schedule-store.ts) and never goes through here.
 *
 * Guarantees:
 *   - Quay's validation and messages (JSON-schema messages for the body's shape, then its own checks);
 *     every check runs before anything changes;
 *   - an organization mirror is created only in an organization that holds no repository (so no
 *     repository mirror either) and is not a proxy cache; a repository mirror or proxy cache cannot be
 *     configured in an organization that has one (the other services ask `exists`);
 *   - `external_registry_url` is an http(s) URL whose host passed the SSRF guard (with DNS) when stored;
 *     the run checks again;
 *   - credentials are stored only sealed with the registry's SecretBox (fields `org_mirror_username`,
 *     `org_mirror_password`), and shown only as the user name and `has_external_registry_password`;
 *   - the robot is a robot of the organization.
 */
import type { OrgMirrorChanges, OrgMirrorFields, OrgMirrorRecord, OrgMirrorRepositoryRecord, OrgMirrorStore } from '../../db/org-mirror-store.js';
import type { MirrorProxySettings } from '../../db/mirror-store.js';
import { UpstreamBlockedError } from '../../upstream/errors.js';
import type { SsrfGuard } from '../../upstream/ssrf.js';
import { AccountError } from '../accounts/account-error.js';
import type { AuditContext } from '../accounts/audit-service.js';
import type { RobotService } from '../accounts/robot-service.js';
import { SecretBoxError, type SecretBox } from '../proxy/secret-box.js';
import { parseStartDate } from './mirror-config-input.js';
import { ORG_MIRROR_SECRET_FIELDS, OrgMirrorSourceError, type OrgMirrorSource } from './org-mirror-source.js';

export type AuditWho = Pick<AuditContext, 'actor' | 'ip' | 'userAgent'>;

/** Quay's answer to a URL the SSRF guard refuses (it does not say why). */
export const SSRF_GENERIC_ERROR = 'The provided registry URL is not allowed';
export const NOT_EMPTY = 'Cannot create organization mirror: the organization already contains repositories. Organization mirroring requires an empty organization.';
export const HAS_PROXY_CACHE = 'Cannot create organization mirror: the organization has a proxy cache configuration. Remove the proxy cache configuration first.';
export const ALREADY_EXISTS = 'Mirror configuration already exists for this organization';
export const BAD_DATE = 'Invalid sync_start_date format. Use ISO 8601: YYYY-MM-DDTHH:MM:SSZ';
export const ROBOT_ELSEWHERE = 'Robot account must belong to the organization';
export const SYNCING_NOW = 'Cannot trigger sync: mirror is currently syncing';
export const CANCELLED_ALREADY = 'Cannot cancel: mirror is already cancelled';
export const MIN_INTERVAL_S = 60;
export const TIMEOUT_RANGE_S = [30, 3600] as const;

export interface OrgMirrorView extends Omit<OrgMirrorRecord, 'usernameEnc' | 'passwordEnc'> {
  username: string | null;
  hasPassword: boolean;
  counts: Record<string, number>;
}

export interface OrgMirrorConfigServiceDeps {
  store: OrgMirrorStore;
  robots: Pick<RobotService, 'get'>;
  isProxyCache(namespaceId: number): Promise<boolean>;
  source: Pick<OrgMirrorSource, 'list'>;
  audit?: { record(kind: string, ctx: AuditContext): Promise<void> };
  secrets: () => Promise<SecretBox>;
  guard: SsrfGuard;
  now?: () => number;
}

export interface OrgRef {
  id: number;
  name: string;
}

type Body = Record<string, unknown>;

const CREATE_REQUIRED = ['external_registry_type', 'external_registry_url', 'external_namespace', 'robot_username', 'visibility', 'sync_interval', 'sync_start_date'] as const;

export class OrgMirrorConfigService {
  private readonly now: () => number;

  constructor(private readonly deps: OrgMirrorConfigServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Whether the organization has an organization mirror (repository mirrors and proxy caches ask). */
  exists(namespaceId: number): Promise<boolean> {
    return this.deps.store.exists(namespaceId);
  }

  async get(org: OrgRef): Promise<OrgMirrorView | undefined> {
    const record = await this.deps.store.find(org.id);
    return record && this.view(record);
  }

  /** Quay's POST: 400 with its message for every refusal. */
  async create(org: OrgRef, body: unknown, who: AuditWho): Promise<void> {
    const b = object(body);
    for (const k of CREATE_REQUIRED) if (!(k in b)) throw invalid(`'${k}' is a required property`);
    checkShape(b);
    const robot = await this.robot(org, b.robot_username as string);
    const startAt = parseStartDate(b.sync_start_date as string);
    if (startAt === undefined) throw invalid(BAD_DATE);
    await this.checkUrl(b.external_registry_url as string);
    const config = registryConfig(b.external_registry_config);
    const fields: OrgMirrorFields = {
      enabled: (b.is_enabled as boolean | undefined) ?? true,
      registryType: b.external_registry_type as 'quay' | 'harbor',
      registryUrl: b.external_registry_url as string,
      externalNamespace: b.external_namespace as string,
      ...(await this.seal(b.external_registry_username as string | null | undefined, b.external_registry_password as string | null | undefined)),
      verifyTls: config.verifyTls,
      proxy: config.proxy,
      robotId: robot.id,
      visibility: b.visibility as 'public' | 'private',
      repositoryFilters: (b.repository_filters as string[] | undefined) ?? [],
      syncIntervalS: b.sync_interval as number,
      timeoutS: (b.skopeo_timeout as number | undefined) ?? 300,
    };
    if (await this.deps.isProxyCache(org.id)) throw invalid(HAS_PROXY_CACHE);
    const result = await this.deps.store.create(org.id, fields, { startAt, now: this.now() });
    if (result === 'not_empty') throw invalid(NOT_EMPTY);
    if (result === 'exists') throw invalid(ALREADY_EXISTS);
    await this.audit('org_mirror_enabled', org, who, {
      external_registry_type: fields.registryType,
      external_registry_url: fields.registryUrl,
      external_namespace: fields.externalNamespace,
      sync_interval: fields.syncIntervalS,
      robot_username: robot.name,
    });
  }

  /** Quay's PUT: the fields given; 404 when there is no configuration. */
  async update(org: OrgRef, body: unknown, who: AuditWho): Promise<void> {
    const b = object(body);
    checkShape(b, true);
    const current = await this.require(org);
    const changes: OrgMirrorChanges = {};
    if ('is_enabled' in b) changes.enabled = b.is_enabled as boolean;
    if ('external_registry_url' in b) {
      await this.checkUrl(b.external_registry_url as string);
      changes.registryUrl = b.external_registry_url as string;
    }
    if ('external_namespace' in b) changes.externalNamespace = b.external_namespace as string;
    if ('robot_username' in b) changes.robotId = (await this.robot(org, b.robot_username as string)).id;
    if ('visibility' in b) changes.visibility = b.visibility as 'public' | 'private';
    if ('sync_interval' in b) changes.syncIntervalS = b.sync_interval as number;
    if ('sync_start_date' in b) {
      const startAt = parseStartDate(b.sync_start_date as string);
      if (startAt === undefined) throw invalid(BAD_DATE);
      changes.startAt = startAt;
    }
    if ('external_registry_username' in b) changes.usernameEnc = (await this.seal(b.external_registry_username as string | null, null)).usernameEnc;
    if ('external_registry_password' in b) changes.passwordEnc = (await this.seal(null, b.external_registry_password as string | null)).passwordEnc;
    if ('external_registry_config' in b) {
      const config = registryConfig(b.external_registry_config);
      changes.verifyTls = config.verifyTls;
      changes.proxy = config.proxy;
    }
    if ('repository_filters' in b) changes.repositoryFilters = b.repository_filters as string[];
    if ('skopeo_timeout' in b) changes.timeoutS = b.skopeo_timeout as number;
    if (Object.keys(changes).length && !(await this.deps.store.update(org.id, changes, this.now()))) throw notConfigured(org);
    const url = (b.external_registry_url as string | undefined) ?? current.registryUrl;
    const ns = (b.external_namespace as string | undefined) ?? current.externalNamespace;
    await this.audit('org_mirror_config_changed', org, who, {
      updated_fields: Object.keys(b),
      old_external_reference: `${current.registryUrl}/${current.externalNamespace}`,
      external_reference: `${url}/${ns}`,
    });
  }

  /** Quay's DELETE; the repositories stay, as ordinary repositories (see OrgMirrorStore.delete). */
  async delete(org: OrgRef, who: AuditWho): Promise<void> {
    const current = await this.require(org);
    if (!(await this.deps.store.delete(org.id))) throw notConfigured(org);
    await this.audit('org_mirror_disabled', org, who, { external_reference: `${current.registryUrl}/${current.externalNamespace}` });
  }

  async syncNow(org: OrgRef, who: AuditWho): Promise<void> {
    const current = await this.require(org);
    if (!(await this.deps.store.syncNow(org.id, this.now()))) throw invalid(SYNCING_NOW);
    await this.audit('org_mirror_sync_now_requested', org, who, { external_reference: `${current.registryUrl}/${current.externalNamespace}` });
  }

  async cancel(org: OrgRef, who: AuditWho): Promise<void> {
    const current = await this.require(org);
    if (!(await this.deps.store.cancel(org.id, this.now()))) throw invalid(CANCELLED_ALREADY);
    await this.audit('org_mirror_sync_cancelled', org, who, { external_reference: `${current.registryUrl}/${current.externalNamespace}` });
  }

  /** Quay's verify: whether the source answers the repository list with these settings. */
  async verify(org: OrgRef): Promise<{ success: boolean; message: string }> {
    const current = await this.require(org);
    try {
      const names = await this.deps.source.list(current);
      return { success: true, message: `Connection successful: ${names.length} repositories in ${current.externalNamespace}` };
    } catch (err) {
      if (err instanceof OrgMirrorSourceError) return { success: false, message: err.message };
      throw err;
    }
  }

  async repositories(org: OrgRef, page: number, limit: number): Promise<{ repositories: OrgMirrorRepositoryRecord[]; total: number }> {
    await this.require(org);
    return this.deps.store.repositories(org.id, page, limit);
  }

  private async require(org: OrgRef): Promise<OrgMirrorRecord> {
    const record = await this.deps.store.find(org.id);
    if (!record) throw notConfigured(org);
    return record;
  }

  private async robot(org: OrgRef, name: string) {
    const robot = name.includes('+') ? await this.deps.robots.get(name) : undefined;
    if (!robot) throw invalid(`Invalid robot account: ${name.slice(0, 300)}`);
    if (robot.namespace !== org.name) throw invalid(ROBOT_ELSEWHERE);
    return robot;
  }

  /** An http(s) URL with a host the SSRF guard lets through. */
  private async checkUrl(value: string): Promise<void> {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw invalid('Invalid URL: the external registry URL must be an http:// or https:// URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('URL scheme must be http or https');
    if (!url.hostname) throw invalid('URL must include a hostname');
    if (url.username || url.password) throw invalid('URL must not include credentials');
    try {
      await this.deps.guard.checkHost(url.hostname.replace(/^\[(.*)\]$/, '$1'));
    } catch (err) {
      if (err instanceof UpstreamBlockedError) throw invalid(SSRF_GENERIC_ERROR);
      if ((err as NodeJS.ErrnoException)?.code) throw invalid(`Cannot resolve hostname '${url.hostname}'`);
      throw err;
    }
  }

  private async seal(username: string | null | undefined, password: string | null | undefined): Promise<{ usernameEnc: string | null; passwordEnc: string | null }> {
    const box = username || password ? await this.deps.secrets() : undefined;
    return {
      usernameEnc: username ? box!.seal(username, ORG_MIRROR_SECRET_FIELDS.username) : null,
      passwordEnc: password ? box!.seal(password, ORG_MIRROR_SECRET_FIELDS.password) : null,
    };
  }

  private async view(r: OrgMirrorRecord): Promise<OrgMirrorView> {
    const { usernameEnc, passwordEnc, ...rest } = r;
    let username: string | null = null;
    if (usernameEnc !== null) {
      try {
        username = (await this.deps.secrets()).open(usernameEnc, ORG_MIRROR_SECRET_FIELDS.username);
      } catch (err) {
        if (!(err instanceof SecretBoxError)) throw err;
        username = '(invalid. please re-enter)';
      }
    }
    return { ...rest, username, hasPassword: passwordEnc !== null, counts: await this.deps.store.statusCounts(r.namespaceId) };
  }

  private async audit(kind: string, org: OrgRef, who: AuditWho, metadata: Record<string, unknown>): Promise<void> {
    await this.deps.audit?.record(kind, { ...who, namespace: org.name, metadata });
  }
}

function invalid(message: string): AccountError {
  return new AccountError('invalid_request', message);
}

function notConfigured(org: OrgRef): AccountError {
  return new AccountError('not_found', `organization ${org.name} has no mirror configuration`);
}

function object(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the body must be a JSON object');
  return body as Body;
}

/** JSON Schema's message for a value (Python's repr of strings, as Quay's jsonschema writes them). */
const repr = (v: unknown): string => (typeof v === 'string' ? `'${v.slice(0, 200)}'` : v === null ? 'None' : typeof v === 'boolean' ? (v ? 'True' : 'False') : JSON.stringify(v)?.slice(0, 200) ?? String(v));

/** The shape checks of Quay's CreateOrgMirrorConfig / UpdateOrgMirrorConfig schemas, with jsonschema's messages. */
function checkShape(b: Body, update = false): void {
  const str = (k: string, opts: { nullable?: boolean; max?: number; enumOf?: string[] } = {}) => {
    if (!(k in b)) return;
    const v = b[k];
    if (v === null && opts.nullable) return;
    if (typeof v !== 'string') throw invalid(`${repr(v)} is not of type ${opts.nullable ? "'string', 'null'" : "'string'"}`);
    if (opts.max !== undefined && v.length > opts.max) throw invalid(`${repr(v)} is too long`);
    if (opts.enumOf && !opts.enumOf.includes(v)) throw invalid(`${repr(v)} is not one of [${opts.enumOf.map((e) => `'${e}'`).join(', ')}]`);
  };
  const int = (k: string, min?: number, max?: number) => {
    if (!(k in b)) return;
    const v = b[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || typeof v === 'boolean') throw invalid(`${repr(v)} is not of type 'integer'`);
    if (min !== undefined && v < min) throw invalid(`${v} is less than the minimum of ${min}`);
    if (max !== undefined && v > max) throw invalid(`${v} is greater than the maximum of ${max}`);
  };
  if (!update) str('external_registry_type', { enumOf: ['harbor', 'quay'] });
  str('external_registry_url');
  str('external_namespace', { max: 255 });
  str('robot_username');
  str('visibility', { enumOf: ['public', 'private'] });
  int('sync_interval', MIN_INTERVAL_S);
  str('sync_start_date');
  if ('is_enabled' in b && typeof b.is_enabled !== 'boolean') throw invalid(`${repr(b.is_enabled)} is not of type 'boolean'`);
  str('external_registry_username', { nullable: true });
  str('external_registry_password', { nullable: true });
  if ('external_registry_config' in b) {
    const c = b.external_registry_config;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) throw invalid(`${repr(c)} is not of type 'object'`);
    const cfg = c as Record<string, unknown>;
    if ('verify_tls' in cfg && typeof cfg.verify_tls !== 'boolean') throw invalid(`${repr(cfg.verify_tls)} is not of type 'boolean'`);
    if ('proxy' in cfg) {
      const p = cfg.proxy;
      if (typeof p !== 'object' || p === null || Array.isArray(p)) throw invalid(`${repr(p)} is not of type 'object'`);
      for (const key of ['http_proxy', 'https_proxy', 'no_proxy']) {
        const v = (p as Record<string, unknown>)[key];
        if (v !== undefined && v !== null && typeof v !== 'string') throw invalid(`${repr(v)} is not of type 'string', 'null'`);
      }
    }
  }
  if ('repository_filters' in b) {
    const f = b.repository_filters;
    if (!Array.isArray(f)) throw invalid(`${repr(f)} is not of type 'array'`);
    for (const g of f) if (typeof g !== 'string') throw invalid(`${repr(g)} is not of type 'string'`);
    if (f.length > 100) throw invalid('repository_filters holds at most 100 globs');
  }
  int('skopeo_timeout', TIMEOUT_RANGE_S[0], TIMEOUT_RANGE_S[1]);
}

/** verify_tls (default true) and the proxy settings of `external_registry_config` (empty values dropped). */
function registryConfig(value: unknown): { verifyTls: boolean; proxy: MirrorProxySettings } {
  const c = (value ?? {}) as { verify_tls?: boolean; proxy?: Record<string, string | null | undefined> };
  const proxy: MirrorProxySettings = {};
  for (const key of ['http_proxy', 'https_proxy', 'no_proxy'] as const) {
    const v = c.proxy?.[key];
    if (v) proxy[key] = v;
  }
  return { verifyTls: c.verify_tls ?? true, proxy };
}
