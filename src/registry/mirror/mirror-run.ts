/**
 * One run of a repository mirror (Quay's `perform_mirror`, with Wharf's differences), for a mirror the
 * caller has claimed:
 *
 *   1. connect (mirror-upstream.ts): SSRF guard again, credentials opened       failure ─▶ FAIL
 *   2. audit repo_mirror_sync_started; list every upstream tag (all pages)      failure ─▶ FAIL, no tag deleted
 *   3. select with the globs (tag-glob.ts); none ─▶ SUCCESS "No tags matched", local tags kept
 *   4. each selected tag, several at once: ImageImport brings it completely (one HEAD when unchanged),
 *      then moves the tag; a tag that fails keeps its previous target. Cancel and a lost claim are
 *      heard between tags (progress is reported at most every `progressIntervalMs`).
 *   5. a tag failed and `rollback_on_failure` ─▶ every tag the run changed goes back to its previous
 *      target (created ones are deleted), nothing else is deleted ─▶ FAIL
 *      otherwise local tags no longer selected (or gone upstream) are deleted into the time machine,
 *      and the run is SUCCESS, PARTIAL (some tags failed) or CANCEL.
 *
 * Audit entries (Quay's kinds and metadata keys): repo_mirror_sync_started / _success / _failed per
 * run, repo_mirror_sync_tag_success / _tag_failed per tag.
 */
import type { MirrorRecord, MirrorRunOutcome } from '../../db/mirror-store.js';
import type { MirrorProgress } from '../../db/mirror-schedule-store.js';
import type { Digest } from '../../oci/digest.js';
import { parseRepositoryName, type RepositoryName, type Tag } from '../../oci/reference.js';
import type { AuditContext } from '../accounts/audit-service.js';
import type { RepositoryRef, RepositoryService } from '../repositories.js';
import type { TagService } from '../tags.js';
import type { ImageImport } from '../upstream-import/image-import.js';
import { Limiter, forEachLimited } from '../upstream-import/limiter.js';
import type { ImportSource } from '../upstream-import/upstream-import.js';
import { failureReason, type MirrorFailureReason } from './mirror-failure.js';
import { MirrorSetupError, type MirrorUpstream, type MirrorUpstreams } from './mirror-upstream.js';
import { TagGlobs } from './tag-glob.js';

/** What the run hears back when it reports progress: go on, stop (cancelled), or stop (the claim is lost). */
export type MirrorRunSignal = 'go' | 'cancel' | 'lost';

export interface MirrorRunControl {
  /** Records progress (at most every `progressIntervalMs`); the answer says whether to go on. */
  progress(p: MirrorProgress): Promise<MirrorRunSignal>;
  /** Asked before every tag, without a database round trip: true stops the run as a lost claim (the worker is stopping, or its lease was lost). */
  interrupted?(): boolean;
}

export interface MirrorAudit {
  submit(kind: string, ctx: AuditContext, onError: (err: unknown) => void): void;
}

export interface MirrorRunReport {
  outcome: MirrorRunOutcome;
  message: string;
  /** Manifest and blob bytes fetched from the upstream. */
  bytes: number;
  startedAt: number;
  finishedAt: number;
  /** The failure of the run, or of its first failed tag. */
  reason?: MirrorFailureReason;
  /** The claim was lost (another worker took the mirror): nothing more may be written for it. */
  lost: boolean;
  tags: { changed: string[]; unchanged: string[]; failed: Array<{ tag: string; reason: MirrorFailureReason; message: string }>; deleted: string[]; rolledBack: string[] };
}

export interface MirrorRunDeps {
  upstreams: MirrorUpstreams;
  images: ImageImport;
  tags: TagService;
  repositories: RepositoryService;
  audit?: MirrorAudit;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Tags imported at once (their HEADs and manifests). Default 8. */
  tagConcurrency?: number;
  /** Blob transfers in flight per run. Default 6. */
  blobConcurrency?: number;
  /** Least time between two progress reports. Default 1 s. */
  progressIntervalMs?: number;
  now?: () => number;
}

interface Change {
  tag: string;
  previous?: Digest;
}

export class MirrorRun {
  private readonly now: () => number;

  constructor(private readonly deps: MirrorRunDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Runs the claimed mirror once (see the file comment); never throws for the upstream's or the content's failures. */
  async run(record: MirrorRecord, control: MirrorRunControl): Promise<MirrorRunReport> {
    const startedAt = this.now();
    const report: MirrorRunReport = { outcome: 'FAIL', message: '', bytes: 0, startedAt, finishedAt: startedAt, lost: false, tags: { changed: [], unchanged: [], failed: [], deleted: [], rolledBack: [] } };
    const audit = this.auditor(record);
    const parsed = parseRepositoryName(`${record.namespace}/${record.repository}`);
    const repo = parsed.ok ? await this.deps.repositories.find(parsed.name) : undefined;
    if (!parsed.ok || !repo) return this.finish(report, audit, 'FAIL', `repository ${record.namespace}/${record.repository} does not exist`, 'unknown_error');
    audit('repo_mirror_sync_started', { message: `'${record.externalReference}' with tag pattern '${record.tagGlobs.join(',')}'` });
    let upstream: MirrorUpstream;
    try {
      upstream = await this.deps.upstreams.connect(record);
    } catch (err) {
      return this.finish(report, audit, 'FAIL', (err as Error).message, err instanceof MirrorSetupError ? err.reason : failureReason(err));
    }
    try {
      return await this.sync(record, repo, parsed.name, upstream, control, report, audit);
    } finally {
      await upstream.close().catch(() => undefined);
    }
  }

  private async sync(record: MirrorRecord, repo: RepositoryRef, name: RepositoryName, upstream: MirrorUpstream, control: MirrorRunControl, report: MirrorRunReport, audit: Auditor): Promise<MirrorRunReport> {
    let upstreamTags: string[];
    try {
      upstreamTags = await listAllTags(upstream);
    } catch (err) {
      return this.finish(report, audit, 'FAIL', `cannot list the tags of ${record.externalReference}: ${(err as Error).message}`, failureReason(err));
    }
    const selected = new TagGlobs(record.tagGlobs).select(upstreamTags);
    if (selected.length === 0) {
      return this.finish(report, audit, 'SUCCESS', `No tags matched (${upstreamTags.length} upstream tags, patterns '${record.tagGlobs.join(',')}'); local tags kept`);
    }
    const local = await this.deps.tags.liveTargets(repo);
    const progress = new ProgressReporter(control, this.deps.progressIntervalMs ?? 1000, this.now);
    let signal: MirrorRunSignal = await progress.report({ tagsTotal: selected.length, tagsDone: 0, bytes: 0, currentTag: null }, true);
    const limiter = new Limiter(this.deps.blobConcurrency ?? 6);
    const copies = new Map<Digest, Promise<void>>();
    const changes: Change[] = [];
    let done = 0;
    await forEachLimited(
      selected,
      this.deps.tagConcurrency ?? 8,
      async (tag) => {
        let lastUpstreamError: unknown;
        const source: ImportSource = {
          name,
          client: upstream.client,
          upstreamRepository: upstream.upstreamRepository,
          registry: upstream.spec.registry,
          events: {
            upstreamBytes: (n) => (report.bytes += n),
            upstreamError: (err) => (lastUpstreamError = err),
          },
        };
        const current = local.get(tag);
        try {
          const res = await withTimeout(this.deps.images.image(source, tag, { current, architectures: record.architectures, blobs: limiter, copies }), record.timeoutS * 1000, tag);
          if (res.changed) {
            changes.push({ tag, ...(current ? { previous: current } : {}) });
            report.tags.changed.push(tag);
          } else {
            report.tags.unchanged.push(tag);
          }
          audit('repo_mirror_sync_tag_success', { verb: 'finish', tag, message: res.changed ? `${tag} now points at ${res.digest}` : `${tag} unchanged at ${res.digest}` });
        } catch (err) {
          const reason = failureReason(lastUpstreamError ?? err);
          const message = (err as Error).message;
          report.tags.failed.push({ tag, reason, message });
          audit('repo_mirror_sync_tag_failed', { verb: 'finish', tag, message, stderr: reason });
        }
        done++;
        const s = await progress.report({ tagsDone: done, bytes: report.bytes, currentTag: tag });
        if (s !== 'go') signal = s;
      },
      () => {
        if (signal === 'go' && control.interrupted?.()) signal = 'lost';
        return signal !== 'go';
      },
    );
    if (signal === 'go') signal = await progress.report({ tagsDone: done, bytes: report.bytes, currentTag: null }, true);
    if (signal === 'lost') {
      report.lost = true;
      return this.finish(report, audit, 'FAIL', 'the claim on the mirror was lost (another worker took it over); stopped', 'preempted');
    }
    const failed = report.tags.failed;
    if (failed.length && record.rollbackOnFailure && signal !== 'cancel') {
      await this.rollback(repo, changes, report);
      return this.finish(report, audit, 'FAIL', `${failed.length} of ${selected.length} tags failed; rolled back ${report.tags.rolledBack.length} changed tags: ${describeFailures(failed)}`, failed[0]!.reason);
    }
    await this.deleteObsolete(repo, selected, local, report);
    const summary = this.summary(selected.length, report);
    if (signal === 'cancel') return this.finish(report, audit, 'CANCEL', `Cancelled after ${done} of ${selected.length} tags; ${summary}`);
    if (failed.length) return this.finish(report, audit, 'PARTIAL', `PARTIAL SYNC: ${describeFailures(failed)}; ${summary}`, failed[0]!.reason);
    return this.finish(report, audit, 'SUCCESS', summary);
  }

  /** Local tags the run did not select (no longer matching, or gone upstream) go into the time machine. */
  private async deleteObsolete(repo: RepositoryRef, selected: readonly string[], local: Map<string, Digest>, report: MirrorRunReport): Promise<void> {
    const keep = new Set(selected);
    for (const tag of local.keys()) {
      if (keep.has(tag)) continue;
      try {
        await this.deps.tags.delete(repo, tag as Tag);
        report.tags.deleted.push(tag);
      } catch (err) {
        this.deps.log?.warn({ repository: `${repo.namespace}/${repo.name}`, tag, err: (err as Error).message }, 'could not delete a tag no longer mirrored');
      }
    }
  }

  /** Points every tag the run changed back at its previous target; deletes those it created. */
  private async rollback(repo: RepositoryRef, changes: readonly Change[], report: MirrorRunReport): Promise<void> {
    for (const c of changes) {
      try {
        if (c.previous) await this.deps.tags.set(repo, c.tag as Tag, c.previous);
        else await this.deps.tags.delete(repo, c.tag as Tag);
        report.tags.rolledBack.push(c.tag);
      } catch (err) {
        this.deps.log?.warn({ repository: `${repo.namespace}/${repo.name}`, tag: c.tag, err: (err as Error).message }, 'could not roll a mirrored tag back');
      }
    }
  }

  private summary(total: number, report: MirrorRunReport): string {
    const t = report.tags;
    const deleted = t.deleted.length ? `; deleted ${t.deleted.join(', ')}` : '';
    return `${total} tags: ${t.changed.length} changed, ${t.unchanged.length} unchanged, ${t.failed.length} failed${deleted}`;
  }

  private finish(report: MirrorRunReport, audit: Auditor, outcome: MirrorRunOutcome, message: string, reason?: MirrorFailureReason): MirrorRunReport {
    report.outcome = outcome;
    report.message = message;
    report.finishedAt = this.now();
    if (reason) report.reason = reason;
    const tags = [...report.tags.changed, ...report.tags.unchanged].sort();
    if (outcome === 'SUCCESS') audit('repo_mirror_sync_success', { message, tags });
    else audit('repo_mirror_sync_failed', { verb: outcome === 'CANCEL' ? 'Cancelled' : report.lost ? 'lost' : 'end', message, tags, ...(reason ? { stderr: reason } : {}) });
    return report;
  }

  private auditor(record: MirrorRecord): Auditor {
    const audit = this.deps.audit;
    if (!audit) return () => {};
    const actor = { kind: 'system' as const, name: record.robotName ?? 'mirror' };
    return (kind, metadata) =>
      audit.submit(kind, { actor, namespace: record.namespace, repository: record.repository, metadata: { namespace: record.namespace, repo: record.repository, ...metadata } }, (err) =>
        this.deps.log?.warn({ err, kind }, 'could not record a mirror audit entry'),
      );
  }
}

type Auditor = (kind: string, metadata: Record<string, unknown>) => void;

/** Reports progress at most every `intervalMs` (and when forced), and remembers the last answer. */
class ProgressReporter {
  private last = 0;
  private signal: MirrorRunSignal = 'go';
  private pending: Promise<MirrorRunSignal> | undefined;

  constructor(
    private readonly control: MirrorRunControl,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  async report(p: MirrorProgress, force = false): Promise<MirrorRunSignal> {
    if (this.signal !== 'go') return this.signal;
    if (this.pending) {
      if (!force) return this.signal;
      await this.pending;
    }
    if (!force && this.now() - this.last < this.intervalMs) return this.signal;
    this.last = this.now();
    this.pending = this.control.progress(p).finally(() => (this.pending = undefined));
    this.signal = await this.pending;
    return this.signal;
  }
}

/** Every tag of the upstream repository, following the `Link` pages. */
async function listAllTags(upstream: MirrorUpstream): Promise<string[]> {
  const tags: string[] = [];
  let page: { n?: number; last?: string } = {};
  for (let i = 0; i < 10_000; i++) {
    const res = await upstream.client.listTags(upstream.upstreamRepository, page, { fallback: false });
    tags.push(...res.tags);
    if (!res.next || res.tags.length === 0) break;
    page = res.next;
  }
  return tags;
}

function describeFailures(failed: MirrorRunReport['tags']['failed']): string {
  return failed.map((f) => `${f.tag} (FAILED: ${f.message})`).join(', ');
}

/** `p`, or a failure after `ms` (the tag's transfers go on in the background and are joined by the next run). */
async function withTimeout<T>(p: Promise<T>, ms: number, tag: string): Promise<T> {
  if (!(ms > 0)) return p;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`tag ${tag} timed out after ${Math.round(ms / 1000)} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
