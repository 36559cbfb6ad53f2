/**
 * The configuration side of repository mirroring (Quay's `/repository/{repo}/mirror` API, plus DELETE):
 * create, change, show and delete a repository's mirror, ask for a run now or cancel one. Routes and the
 * CLI call the same methods, after deciding who may (repository admins); the workers read the same row
 * (db/mirror-store.ts) and never go through here.
 *
 * Guarantees:
 *   - every check runs before anything changes (a refused request stores nothing and grants nothing);
 *   - `external_reference` passed the SSRF guard (with DNS) when it was stored; the worker checks again;
 *   - credentials are stored only sealed with the registry's SecretBox and never leave this service but
 *     as the user name; moving stored credentials to another registry host needs them given again;
 *   - the mirror robot is a robot of the repository's own namespace and holds at least write on it;
 *   - the repository is in state MIRROR while it has a mirror, and NORMAL again after DELETE;
 *   - each changed field is recorded as `repo_mirror_config_changed {changed, to}` (a password as "********").
 */
import type { MirrorChanges, MirrorFields, MirrorProxySettings, MirrorRecord, MirrorStore } from '../../db/mirror-store.js';
import type { RepositoryDetails } from '../../db/repository-store.js';
import type { SsrfGuard } from '../../upstream/ssrf.js';
import { AccountError } from '../accounts/account-error.js';
import type { AuditContext } from '../accounts/audit-service.js';
import type { GrantService } from '../accounts/grant-service.js';
import { roleAtLeast } from '../accounts/roles.js';
import type { RobotService } from '../accounts/robot-service.js';
import { SecretBoxError, type SecretBox } from '../proxy/secret-box.js';
import {
  ALREADY_EXISTS,
  ARCHITECTURES,
  BAD_DATE,
  ChangesSchema,
  CreateSchema,
  DEFAULT_TIMEOUT_S,
  DELETE_USERNAME_WITH_PASSWORD,
  EMPTY_RULE,
  globProblem,
  INVALID_ROBOT,
  MAX_GLOBS,
  MIN_TIMEOUT_S,
  parseStartDate,
  PASSWORD_WITHOUT_USERNAME,
  TIMEOUT_TOO_SHORT_CREATE,
  TIMEOUT_TOO_SHORT_UPDATE,
  UNKNOWN_ROBOT,
  type MirrorChangesInput,
} from './mirror-config-input.js';
import { checkMirrorSource } from './mirror-source.js';
import { MIRROR_SECRET_FIELDS } from './mirror-upstream.js';
import { MirrorHealthReport, type MirrorHealthDeps, type MirrorHealthQuery, type MirrorHealthView } from './mirror-health.js';

export type AuditWho = Pick<AuditContext, 'actor' | 'ip' | 'userAgent'>;


/** What the username shows when the stored one cannot be decrypted (Quay's text). */
export const UNDECRYPTABLE_USERNAME = '(invalid. please re-enter)';

/** A mirror as the API and the CLI show it: the user name decrypted, never the password. */
export interface MirrorView extends Omit<MirrorRecord, 'usernameEnc' | 'passwordEnc'> {
  username: string | null;
  hasPassword: boolean;
}

export interface MirrorConfigServiceDeps {
  store: MirrorStore;
  health: MirrorHealthDeps['store'];
  robots: Pick<RobotService, 'get'>;
  grants: Pick<GrantService, 'getRepositoryPermission' | 'setRepositoryPermission'>;
  /** Whether the namespace is a proxy-cache organization (its repositories are filled on demand instead). */
  isProxyCache(namespaceId: number): Promise<boolean>;
  /** Whether the namespace is an organization mirror (its repository mirrors are made by its discovery). */
  isOrgMirror?(namespaceId: number): Promise<boolean>;
  audit?: { record(kind: string, ctx: AuditContext): Promise<void> };
  secrets: () => Promise<SecretBox>;
  guard: SsrfGuard;
  /** The running server's guard, when this process (the CLI) has another allowlist: both must pass. */
  serverGuard?: SsrfGuard;
  now?: () => number;
}

type Credentials = { usernameEnc: string | null; passwordEnc: string | null };

export class MirrorConfigService {
  private readonly now: () => number;
  private readonly report: MirrorHealthReport;

  constructor(private readonly deps: MirrorConfigServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.report = new MirrorHealthReport({ store: deps.health, now: this.now });
  }

  /** The repository's mirror, or undefined. */
  async get(repo: RepositoryDetails): Promise<MirrorView | undefined> {
    const record = await this.deps.store.find(repo.id);
    return record && this.view(record);
  }

  /** Makes the repository a mirror (Quay's POST); 409 when it is one already. */
  async create(repo: RepositoryDetails, body: unknown, who: AuditWho): Promise<MirrorView> {
    const input = parse(CreateSchema, body);
    const name = `${repo.namespace}/${repo.name}`;
    if (await this.deps.isProxyCache(repo.namespaceId)) throw invalid(`${repo.namespace} is a proxy-cache organization: its repositories are filled from its upstream and cannot be mirrors`);
    if (await this.deps.store.find(repo.id)) throw new AccountError('conflict', ALREADY_EXISTS(name));
    if (await this.deps.isOrgMirror?.(repo.namespaceId)) throw invalid(`${repo.namespace} is an organization mirror: its repositories are mirrored from the source its mirror configuration names`);
    await this.checkReference(input.external_reference);
    const architectures = checkArchitectures(input.architecture_filter);
    const timeoutS = input.skopeo_timeout_interval ?? DEFAULT_TIMEOUT_S;
    if (timeoutS < MIN_TIMEOUT_S) throw invalid(TIMEOUT_TOO_SHORT_CREATE);
    const startAt = parseStartDate(input.sync_start_date);
    if (startAt === undefined) throw invalid(BAD_DATE);
    const tagGlobs = checkGlobs(input.root_rule.rule_value);
    const robot = await this.robot(repo, input.robot_username);
    const config = input.external_registry_config ?? {};
    const fields: MirrorFields = {
      enabled: input.is_enabled ?? true,
      externalReference: input.external_reference,
      ...(await this.seal(input.external_registry_username ?? null, input.external_registry_password ?? null)),
      verifyTls: config.verify_tls ?? true,
      unsignedImages: config.unsigned_images ?? false,
      proxy: proxySettings({}, config.proxy ?? {}),
      tagGlobs,
      architectures,
      rollbackOnFailure: input.rollback_on_failure ?? false,
      syncIntervalS: input.sync_interval,
      timeoutS,
    };
    await this.grantWrite(repo, robot.name);
    const record = await this.deps.store.create(repo.id, fields, { startAt, robotId: robot.id, now: this.now() });
    if (!record) throw new AccountError('conflict', ALREADY_EXISTS(name));
    await this.changed(repo, who, [['external_reference', input.external_reference]]);
    return this.view(record);
  }

  /** Changes the fields the body has (Quay's PUT); 404 when the repository has no mirror. */
  async update(repo: RepositoryDetails, body: unknown, who: AuditWho): Promise<MirrorView> {
    const input: MirrorChangesInput = parse(ChangesSchema, body);
    const current = await this.require(repo);
    const has = (k: keyof MirrorChangesInput) => Object.prototype.hasOwnProperty.call(input, k) && input[k] !== undefined;
    const changes: MirrorChanges = {};
    const log: Array<[string, unknown]> = [];

    if (has('external_reference')) await this.checkReference(input.external_reference!);
    let startAt: number | undefined;
    if (has('sync_start_date')) {
      startAt = parseStartDate(input.sync_start_date!);
      if (startAt === undefined) throw invalid(BAD_DATE);
    }
    if (has('skopeo_timeout_interval') && input.skopeo_timeout_interval! < MIN_TIMEOUT_S) throw invalid(TIMEOUT_TOO_SHORT_UPDATE);
    const architectures = 'architecture_filter' in input ? checkArchitectures(input.architecture_filter) : undefined;
    const givesUser = 'external_registry_username' in input;
    const givesPassword = 'external_registry_password' in input;
    if (givesPassword && !givesUser) throw invalid(PASSWORD_WITHOUT_USERNAME);
    if (givesUser && givesPassword && input.external_registry_username === null && input.external_registry_password !== null) throw invalid(DELETE_USERNAME_WITH_PASSWORD);
    const tagGlobs = has('root_rule') ? checkGlobs(input.root_rule!.rule_value) : undefined;
    const robot = has('robot_username') ? await this.robot(repo, input.robot_username!) : undefined;
    const hasCredentials = current.usernameEnc !== null || current.passwordEnc !== null;
    if (has('external_reference') && hasCredentials && !(givesUser && givesPassword) && registryOf(input.external_reference!) !== registryOf(current.externalReference)) {
      throw invalid(
        'moving the stored credentials to another registry host needs them given again: send external_registry_username and external_registry_password with the new external_reference (both null to drop them)',
      );
    }

    if (has('is_enabled')) (changes.enabled = input.is_enabled!), log.push(['is_enabled', input.is_enabled]);
    if (has('external_reference')) (changes.externalReference = input.external_reference!), log.push(['external_reference', input.external_reference]);
    if (robot) (changes.robotId = robot.id), log.push(['robot_username', robot.name]);
    if (startAt !== undefined) (changes.startAt = startAt), log.push(['sync_start_date', input.sync_start_date]);
    if (has('sync_interval')) (changes.syncIntervalS = input.sync_interval!), log.push(['sync_interval', input.sync_interval]);
    if (has('skopeo_timeout_interval')) (changes.timeoutS = input.skopeo_timeout_interval!), log.push(['skopeo_timeout_interval', input.skopeo_timeout_interval]);
    if (architectures !== undefined) (changes.architectures = architectures), log.push(['architecture_filter', architectures]);
    if (givesUser) {
      const username = input.external_registry_username ?? null;
      if (givesPassword) {
        const password = input.external_registry_password ?? null;
        Object.assign(changes, await this.seal(username, password));
        log.push(['external_registry_username', username], ['external_registry_password', password ? '********' : null]);
      } else {
        // A password never stays without its user name: dropping the name drops both.
        Object.assign(changes, username ? { usernameEnc: (await this.seal(username, null)).usernameEnc } : { usernameEnc: null, passwordEnc: null });
        log.push(['external_registry_username', username]);
      }
    }
    const config = input.external_registry_config;
    if (config?.verify_tls !== undefined) (changes.verifyTls = config.verify_tls), log.push(['verify_tls', config.verify_tls]);
    if (config?.unsigned_images !== undefined) (changes.unsignedImages = config.unsigned_images), log.push(['unsigned_images', config.unsigned_images]);
    if (config?.proxy) {
      changes.proxy = proxySettings(current.proxy, config.proxy);
      for (const key of ['http_proxy', 'https_proxy', 'no_proxy'] as const) if (key in config.proxy) log.push([key, config.proxy[key] ?? null]);
    }
    if (tagGlobs) (changes.tagGlobs = tagGlobs), log.push(['mirror_rule', tagGlobs]);
    if (has('rollback_on_failure')) (changes.rollbackOnFailure = input.rollback_on_failure!), log.push(['rollback_on_failure', input.rollback_on_failure]);

    if (robot) await this.grantWrite(repo, robot.name);
    const record = Object.keys(changes).length ? await this.deps.store.update(repo.id, changes, this.now()) : current;
    if (!record) throw notConfigured(repo);
    await this.changed(repo, who, log);
    return this.view(record);
  }

  /** Ends the mirroring (Wharf's addition): the repository is NORMAL again; 409 while a run is in flight. */
  async delete(repo: RepositoryDetails, who: AuditWho): Promise<void> {
    const current = await this.require(repo);
    const result = await this.deps.store.delete(repo.id, this.now());
    if (result === 'missing') throw notConfigured(repo);
    if (result === 'syncing') throw new AccountError('conflict', `a sync of ${repo.namespace}/${repo.name} is running: cancel it (sync-cancel) and delete the mirror once it has stopped`);
    await this.deps.audit?.record('delete_repo_mirror', { ...who, namespace: repo.namespace, repository: repo.name, metadata: { external_reference: current.externalReference } });
    await this.deps.audit?.record('change_repo_state', { ...who, namespace: repo.namespace, repository: repo.name, metadata: { state: 'NORMAL', previous_state: 'MIRROR' } });
  }

  /** Asks for a run now, also of a disabled mirror (Quay's sync-now); 404 when there is none or it is SYNCING. */
  async syncNow(repo: RepositoryDetails, who: AuditWho): Promise<MirrorView> {
    await this.require(repo);
    const record = await this.deps.store.syncNow(repo.id, this.now());
    if (!record) throw new AccountError('not_found', `the mirror of ${repo.namespace}/${repo.name} is syncing already`);
    await this.changed(repo, who, [['sync_status', 'SYNC_NOW']]);
    return this.view(record);
  }

  /** Cancels a run in flight or asked for (Quay's sync-cancel); 404 when there is none. */
  async cancel(repo: RepositoryDetails, who: AuditWho): Promise<MirrorView> {
    await this.require(repo);
    const record = await this.deps.store.cancel(repo.id, this.now());
    if (!record) throw new AccountError('not_found', `no sync of ${repo.namespace}/${repo.name} is running or asked for`);
    await this.changed(repo, who, [['sync_status', 'SYNC_CANCEL']]);
    return this.view(record);
  }

  /** The health of mirroring (Quay's shape); the caller decides who may see which namespace. */
  health(query: MirrorHealthQuery): Promise<MirrorHealthView> {
    return this.report.build(query);
  }

  private async require(repo: RepositoryDetails): Promise<MirrorRecord> {
    const record = await this.deps.store.find(repo.id);
    if (!record) throw notConfigured(repo);
    return record;
  }

  /** The robot `<namespace>+<name>` of the repository's namespace. */
  private async robot(repo: RepositoryDetails, name: string) {
    const plus = name.indexOf('+');
    if (plus < 1 || plus === name.length - 1) throw invalid(INVALID_ROBOT);
    const robot = await this.deps.robots.get(name);
    if (!robot) throw invalid(UNKNOWN_ROBOT);
    if (robot.namespace !== repo.namespace) throw invalid(INVALID_ROBOT);
    return robot;
  }

  /** Gives the robot write on the repository when it holds less (an admin robot stays admin). */
  private async grantWrite(repo: RepositoryDetails, robot: string): Promise<void> {
    const held = await this.deps.grants.getRepositoryPermission(repo, { kind: 'robot', name: robot });
    if (!roleAtLeast(held, 'write')) await this.deps.grants.setRepositoryPermission(repo, { kind: 'robot', name: robot }, 'write');
  }

  private async checkReference(reference: string): Promise<void> {
    const problem = await checkMirrorSource(reference, this.deps.guard, this.deps.serverGuard);
    if (problem) throw invalid(problem);
  }

  private async seal(username: string | null, password: string | null): Promise<Credentials> {
    const box = username || password ? await this.deps.secrets() : undefined;
    return {
      usernameEnc: username ? box!.seal(username, MIRROR_SECRET_FIELDS.username) : null,
      passwordEnc: password ? box!.seal(password, MIRROR_SECRET_FIELDS.password) : null,
    };
  }

  private async view(r: MirrorRecord): Promise<MirrorView> {
    const { usernameEnc, passwordEnc, ...rest } = r;
    let username: string | null = null;
    if (usernameEnc !== null) {
      try {
        username = (await this.deps.secrets()).open(usernameEnc, MIRROR_SECRET_FIELDS.username);
      } catch (err) {
        if (!(err instanceof SecretBoxError)) throw err;
        username = UNDECRYPTABLE_USERNAME;
      }
    }
    return { ...rest, username, hasPassword: passwordEnc !== null };
  }

  private async changed(repo: RepositoryDetails, who: AuditWho, fields: Array<[string, unknown]>): Promise<void> {
    for (const [changed, to] of fields) {
      await this.deps.audit?.record('repo_mirror_config_changed', { ...who, namespace: repo.namespace, repository: repo.name, metadata: { changed, to } });
    }
  }
}

function invalid(message: string): AccountError {
  return new AccountError('invalid_request', message);
}

function notConfigured(repo: RepositoryDetails): AccountError {
  return new AccountError('not_found', `repository ${repo.namespace}/${repo.name} has no mirror configuration`);
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ message: string; path: PropertyKey[] }> } } }, input: unknown): T {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('the body must be a JSON object');
  const r = schema.safeParse(input);
  if (!r.success) throw invalid([...new Set(r.error.issues.map((i) => i.message))].join('; '));
  return r.data;
}

function checkGlobs(globs: string[]): string[] {
  if (globs.length === 0) throw invalid(EMPTY_RULE);
  if (globs.length > MAX_GLOBS) throw invalid(`root_rule.rule_value holds at most ${MAX_GLOBS} globs`);
  for (const g of globs) {
    const problem = globProblem(g);
    if (problem) throw invalid(`root_rule.rule_value: ${problem}`);
  }
  return [...new Set(globs)];
}

/** The architectures, deduplicated; [] for null (every platform). */
function checkArchitectures(list: string[] | null | undefined): string[] {
  if (!list) return [];
  const bad = [...new Set(list.filter((a) => !(ARCHITECTURES as readonly string[]).includes(a)))].sort();
  if (bad.length) throw invalid(`Invalid architectures: ${bad.join(', ')} (valid: ${ARCHITECTURES.join(', ')})`);
  return [...new Set(list)];
}

/** `current` with the keys given set (a null or empty value removes the key). */
function proxySettings(current: MirrorProxySettings, given: { http_proxy?: string | null; https_proxy?: string | null; no_proxy?: string | null }): MirrorProxySettings {
  const out: MirrorProxySettings = { ...current };
  for (const key of ['http_proxy', 'https_proxy', 'no_proxy'] as const) {
    if (!(key in given)) continue;
    const v = given[key];
    if (v) out[key] = v;
    else delete out[key];
  }
  return out;
}

/** The registry part (`host[:port]`, lower case) of a reference. */
function registryOf(reference: string): string {
  return reference.slice(0, Math.max(0, reference.indexOf('/'))).toLowerCase();
}
