/**
 * One discovery run of an organization mirror: list the repositories of the external namespace
 * (org-mirror-source.ts), keep those `repository_filters` select (fnmatch globs over the whole path,
 * ORed; none = every repository), and make each a repository mirror of the organization — the local
 * repository `org/<path at the source>` with the configured visibility, state MIRROR, the org mirror's
 * robot (given write), tag glob `*`, the org mirror's credentials, TLS, proxy, interval and timeout —
 * due at once. The tags are then synced by the repository-mirror workers like any repository mirror's
 * (one sync engine).
 *
 * On every run, repositories found before are brought in line with the configuration (credentials,
 * source, robot, interval...); a run asked for with sync-now asks each of them for a sync now too.
 * A repository the source no longer has (or the filters no longer select) keeps its repository and
 * tags, but its mirror is disabled and it is listed as SKIP with the reason; it resumes when it is found
 * again. A repository of the same name that exists already but is not one this mirror created is left
 * alone (listed with the reason).
 *
 * The run checks between repositories that its claim still holds (a cancel or a takeover stops it).
 */
import type { MirrorFields, MirrorStore } from '../../db/mirror-store.js';
import type { OrgMirrorScheduleStore } from '../../db/org-mirror-schedule-store.js';
import type { OrgMirrorRecord } from '../../db/org-mirror-store.js';
import type { RepositoryDetails, RepositoryStore } from '../../db/repository-store.js';
import type { GrantService } from '../accounts/grant-service.js';
import { roleAtLeast } from '../accounts/roles.js';
import type { SecretBox } from '../proxy/secret-box.js';
import { MIRROR_SECRET_FIELDS } from './mirror-upstream.js';
import { OrgMirrorSourceError, type OrgMirrorSource } from './org-mirror-source.js';
import { TagGlobs } from './tag-glob.js';

export interface OrgMirrorRunReport {
  outcome: 'SUCCESS' | 'FAIL' | 'CANCEL';
  message: string;
  found: string[];
  created: string[];
  vanished: string[];
}

export interface OrgMirrorRunDeps {
  source: Pick<OrgMirrorSource, 'list' | 'credentials'>;
  schedule: Pick<OrgMirrorScheduleStore, 'discovered' | 'found' | 'vanished' | 'holds'>;
  repositories: Pick<RepositoryStore, 'create' | 'findDetails'>;
  mirrors: Pick<MirrorStore, 'create' | 'update' | 'find' | 'syncNow'>;
  grants: Pick<GrantService, 'getRepositoryPermission' | 'setRepositoryPermission'>;
  robots: { nameOf(robotId: number): Promise<string | undefined> };
  secrets: () => Promise<SecretBox>;
  now?: () => number;
}

export class OrgMirrorRun {
  private readonly now: () => number;

  constructor(private readonly deps: OrgMirrorRunDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Runs the discovery of `record` under the claim `txn`; `requested`: asked for with sync-now. */
  async run(record: OrgMirrorRecord, txn: string, requested: boolean): Promise<OrgMirrorRunReport> {
    const report: OrgMirrorRunReport = { outcome: 'SUCCESS', message: '', found: [], created: [], vanished: [] };
    const fail = (message: string): OrgMirrorRunReport => ({ ...report, outcome: 'FAIL', message });
    const robot = record.robotId === null ? undefined : await this.deps.robots.nameOf(record.robotId);
    if (!robot || record.robotId === null) return fail("the organization mirror's robot no longer exists: set robot_username");
    let listed: string[];
    let fields: Omit<MirrorFields, 'externalReference'>;
    try {
      listed = await this.deps.source.list(record);
      fields = await this.mirrorFields(record);
    } catch (err) {
      if (err instanceof OrgMirrorSourceError) return fail(err.message);
      throw err;
    }
    const globs = record.repositoryFilters.length ? new TagGlobs(record.repositoryFilters) : undefined;
    const selected = globs ? globs.select(listed) : listed;
    const known = await this.deps.schedule.discovered(record.namespaceId);
    const ns = record.namespaceId;
    const skipped: string[] = [];
    for (const name of selected) {
      if (!(await this.deps.schedule.holds(ns, txn))) return { ...report, outcome: 'CANCEL', message: 'cancelled' };
      const now = this.now();
      const reference = { ...fields, externalReference: `${hostOf(record.registryUrl)}/${record.externalNamespace}/${name}` };
      const before = known.get(name);
      const mirrored = before?.repositoryId != null ? await this.deps.mirrors.find(before.repositoryId) : undefined;
      if (mirrored) {
        await this.deps.mirrors.update(mirrored.repositoryId, { ...reference, robotId: record.robotId }, now);
        if (requested) await this.deps.mirrors.syncNow(mirrored.repositoryId, now);
        await this.deps.schedule.found(ns, name, mirrored.repositoryId, null, now);
        report.found.push(name);
        continue;
      }
      const made = await this.deps.repositories.create(record.organization, name, { visibility: record.visibility });
      if (!made) return fail(`organization ${record.organization} no longer exists`);
      if (!made.created && !(before?.repositoryId === made.repository.id)) {
        await this.deps.schedule.found(ns, name, null, `a repository ${record.organization}/${name} exists already and is not mirrored: left alone`, now);
        skipped.push(name);
        continue;
      }
      await this.grantWrite(made.repository, robot);
      const created = await this.deps.mirrors.create(made.repository.id, reference, { startAt: now, robotId: record.robotId, now });
      if (!created) await this.deps.mirrors.update(made.repository.id, { ...reference, robotId: record.robotId }, now);
      await this.deps.schedule.found(ns, name, made.repository.id, null, now);
      report.found.push(name);
      report.created.push(name);
    }
    const selectedSet = new Set(selected);
    const listedSet = new Set(listed);
    for (const [name, d] of known) {
      if (selectedSet.has(name) || d.vanishedAt !== null) continue;
      const now = this.now();
      if (d.repositoryId !== null && (await this.deps.mirrors.find(d.repositoryId))) await this.deps.mirrors.update(d.repositoryId, { enabled: false }, now);
      await this.deps.schedule.vanished(ns, name, listedSet.has(name) ? 'no longer selected by repository_filters: not synced any more' : 'no longer at the source: not synced any more', now);
      report.vanished.push(name);
    }
    report.message =
      `${listed.length} repositories at the source, ${selected.length} selected, ${report.created.length} new` +
      (report.vanished.length ? `, ${report.vanished.length} no longer synced` : '') +
      (skipped.length ? `, ${skipped.length} left alone (a repository of that name exists)` : '');
    return report;
  }

  /** The repository-mirror settings every repository of the organization mirror gets. */
  private async mirrorFields(record: OrgMirrorRecord): Promise<Omit<MirrorFields, 'externalReference'>> {
    const creds = await this.deps.source.credentials(record);
    const box = creds ? await this.deps.secrets() : undefined;
    const plainHttp = new URL(record.registryUrl).protocol === 'http:';
    return {
      enabled: true,
      usernameEnc: creds && box ? box.seal(creds.username, MIRROR_SECRET_FIELDS.username) : null,
      passwordEnc: creds && box && creds.password ? box.seal(creds.password, MIRROR_SECRET_FIELDS.password) : null,
      // A source named with http:// is dialled in plain HTTP (a repository mirror without TLS verification falls back to it).
      verifyTls: record.verifyTls && !plainHttp,
      unsignedImages: false,
      proxy: record.proxy,
      tagGlobs: ['*'],
      architectures: [],
      rollbackOnFailure: false,
      syncIntervalS: record.syncIntervalS,
      timeoutS: record.timeoutS,
    };
  }

  private async grantWrite(repo: RepositoryDetails, robot: string): Promise<void> {
    const held = await this.deps.grants.getRepositoryPermission(repo, { kind: 'robot', name: robot });
    if (!roleAtLeast(held, 'write')) await this.deps.grants.setRepositoryPermission(repo, { kind: 'robot', name: robot }, 'write');
  }
}

/** `host[:port]` of the registry URL. */
function hostOf(url: string): string {
  return new URL(url).host;
}
