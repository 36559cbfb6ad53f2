/**
 * The organization-mirror worker: every poll it claims the organization mirrors whose discovery run is
 * due (db/org-mirror-schedule-store.ts, a lease in the database, so any number of processes may run
 * it and each run happens once), runs each (registry/mirror/org-mirror-run.ts), renews the claim while
 * it runs and releases it with Quay's status (SUCCESS, FAIL, CANCEL). The repositories a run creates
 * are synced by the repository-mirror worker (mirror-worker.ts).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../../observability/logger.js';
import type { OrgMirrorRun, OrgMirrorRunReport } from '../../registry/mirror/org-mirror-run.js';
import type { OrgMirrorSchedule } from '../../registry/mirror/org-mirror-schedule.js';
import { Poller } from '../poller.js';

export interface OrgMirrorWorkerDeps {
  schedule: OrgMirrorSchedule;
  run: Pick<OrgMirrorRun, 'run'>;
  pollMs: number;
  /** How long a claim lasts unless renewed (renewed every third of it). */
  leaseMs: number;
  holder?: string;
  now?: () => number;
  log?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export class OrgMirrorWorker {
  readonly holder: string;
  private readonly now: () => number;
  private readonly poller: Poller;

  constructor(private readonly deps: OrgMirrorWorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.holder = deps.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.poller = new Poller(() => this.runOnce(), deps.pollMs, (err) => deps.log?.error({ err }, 'organization mirror poll failed'));
  }

  start(): void {
    this.poller.start();
  }

  async stop(): Promise<void> {
    await this.poller.stop();
  }

  /** Claims the discovery runs due now, one at a time runs them, and returns their reports. */
  async runOnce(): Promise<Array<OrgMirrorRunReport & { organization: string }>> {
    const { schedule, log } = this.deps;
    const claims = await schedule.claimDue(this.holder, this.now(), this.deps.leaseMs, 4);
    const reports: Array<OrgMirrorRunReport & { organization: string }> = [];
    for (const claim of claims) {
      const ns = claim.record.namespaceId;
      const organization = claim.record.organization;
      const renew = setInterval(() => {
        void schedule.renew(ns, claim.txn, this.now(), this.deps.leaseMs).catch((err: unknown) => log?.warn({ err, organization }, 'could not renew the claim on an organization mirror'));
      }, Math.max(100, Math.floor(this.deps.leaseMs / 3)));
      renew.unref();
      let report: OrgMirrorRunReport;
      try {
        report = await this.deps.run.run(claim.record, claim.txn, claim.requested);
      } catch (err) {
        log?.error({ err, organization }, 'organization mirror run failed');
        report = { outcome: 'FAIL', message: 'the discovery failed unexpectedly (see the log)', found: [], created: [], vanished: [] };
      } finally {
        clearInterval(renew);
      }
      const released = await schedule.release(ns, claim.txn, report.outcome, report.message, this.now());
      if (!released) log?.warn({ organization }, 'an organization mirror run ended after it was cancelled or taken over; its outcome is not recorded');
      log?.info({ organization, outcome: report.outcome, created: report.created.length, vanished: report.vanished.length }, 'organization mirror discovery finished');
      reports.push({ ...report, organization });
    }
    return reports;
  }
}
