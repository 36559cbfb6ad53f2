/**
 * `wharf quota set|show|delete|limit|recount`: storage quotas from the command line, through the same
 * service as `/api/v1/organization/{org}/quota`, against the configured database (the same `--config`
 * and `WHARF_*` variables as `wharf serve`). Results go to stdout (`show` as text, or Quay's quota view
 * plus usage with `--json`; `recount` its report); messages go to stderr. Changes are audited with
 * the actor `cli`.
 *
 *   quota set NAMESPACE LIMIT                 create the quota, or change its limit ("10 GiB", "500M", bytes)
 *   quota show NAMESPACE [--json]             limit, limits and usage
 *   quota delete NAMESPACE                    the quota and its limits
 *   quota limit add NAMESPACE TYPE PERCENT    a Warning or Reject limit at PERCENT (1..100) of the quota
 *   quota limit delete NAMESPACE LIMIT_ID
 *   quota recount [--dry-run] [--json]        recompute every repository and namespace total, print what drifted
 *
 * Exit codes as for the account commands: 0 done, 1 not found, 2 usage or invalid input.
 */
import type { Config } from '../config/schema.js';
import type { RecountReport, SizeDrift } from '../db/quota-accounting.js';
import { limitThreshold } from '../db/quota-store.js';
import { AccountError } from '../registry/accounts/account-error.js';
import type { QuotaRecord, QuotaService } from '../registry/quota/quota-service.js';
import { formatSize } from '../registry/quota/size-text.js';
import { UsageError, withDatabase } from './account-commands.js';
import { createAccountServices } from './compose.js';
import { createQuotaService } from './compose-quota.js';

export const QUOTA_OPTIONS = { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } } as const;

const ALLOWED: Record<string, { args: [number, number]; usage: string; options: Array<keyof typeof QUOTA_OPTIONS> }> = {
  set: { args: [2, 3], usage: 'quota set NAMESPACE LIMIT (bytes, or a size such as "10 GiB")', options: [] },
  show: { args: [1, 1], usage: 'quota show NAMESPACE [--json]', options: ['json'] },
  delete: { args: [1, 1], usage: 'quota delete NAMESPACE', options: [] },
  'limit add': { args: [3, 3], usage: 'quota limit add NAMESPACE Warning|Reject PERCENT', options: [] },
  'limit delete': { args: [2, 2], usage: 'quota limit delete NAMESPACE LIMIT_ID', options: [] },
  recount: { args: [0, 0], usage: 'quota recount [--dry-run] [--json]', options: ['dry-run', 'json'] },
};

export const QUOTA_COMMANDS = ['quota set', 'quota show', 'quota delete', 'quota limit', 'quota recount'];

/** Runs one `quota` command (`quota limit` takes `add` or `delete` as its first argument); returns the exit code. */
export async function runQuotaCommand(command: string, args: string[], opts: Record<string, unknown>, config: Readonly<Config>): Promise<number> {
  let sub = command.replace(/^quota /, '');
  if (sub === 'limit') {
    if (args[0] !== 'add' && args[0] !== 'delete') throw new UsageError('wharf quota limit takes add or delete: quota limit add NAMESPACE Warning|Reject PERCENT, quota limit delete NAMESPACE LIMIT_ID');
    sub = `limit ${args.shift()}`;
  }
  const spec = ALLOWED[sub];
  if (!spec) throw new UsageError(`unknown command ${command}`);
  const extra = Object.keys(opts).filter((k) => opts[k] !== undefined && !(spec.options as string[]).includes(k));
  if (extra.length) throw new UsageError(`wharf quota ${sub} does not take --${extra.join(', --')}`);
  if (args.length < spec.args[0] || args.length > spec.args[1]) throw new UsageError(`usage: wharf ${spec.usage}`);
  const [namespace, ...rest] = args;

  return withDatabase(config, async (db) => {
    const { audit } = createAccountServices(db, config);
    const quota = createQuotaService(db.db, db.dialect, { audit });
    const who = { actor: { kind: 'system' as const, name: 'cli' } };
    try {
      switch (sub) {
        case 'set': {
          const limit = rest.join(' ');
          const input = /^\d+$/.test(limit) ? { limitBytes: Number(limit) } : { limit };
          const [current] = await quota.list(namespace!);
          const q = current ? await quota.update(namespace!, current.id, input, who) : await quota.create(namespace!, input, who);
          process.stderr.write(`${current ? 'changed the quota of' : 'created a quota for'} ${namespace}: ${formatSize(q.limitBytes)} (${q.limitBytes} bytes)\n`);
          return 0;
        }
        case 'show': {
          const usage = await quota.usage(namespace!);
          const q = usage.quota;
          if (opts.json) {
            // Imported here: the API's modules stay out of `wharf serve` until its first API request.
            const { quotaView } = await import('../http/api/quota-views.js');
            process.stdout.write(`${JSON.stringify({ namespace, quota: q ? quotaView(q) : null, usage_bytes: usage.usedBytes }, null, 2)}\n`);
          } else {
            process.stdout.write(describe(namespace!, q, usage.usedBytes));
          }
          return 0;
        }
        case 'delete': {
          const q = await required(quota, namespace!);
          await quota.delete(namespace!, q.id, who);
          process.stderr.write(`deleted the quota of ${namespace} and its limits\n`);
          return 0;
        }
        case 'limit add': {
          const q = await required(quota, namespace!);
          const l = await quota.addLimit(namespace!, q.id, { type: rest[0], thresholdPercent: rest[1] }, who);
          process.stderr.write(`added limit ${l.id} to the quota of ${namespace}: ${l.kind} at ${l.percent}% (${formatSize(limitThreshold(q.limitBytes, l.percent))})\n`);
          return 0;
        }
        case 'limit delete': {
          const q = await required(quota, namespace!);
          if (!/^\d{1,15}$/.test(rest[0]!)) throw new UsageError(`LIMIT_ID is a number, as quota show prints it (got ${JSON.stringify(rest[0])})`);
          await quota.deleteLimit(namespace!, q.id, Number(rest[0]), who);
          process.stderr.write(`deleted limit ${rest[0]} of the quota of ${namespace}\n`);
          return 0;
        }
        case 'recount': {
          const report = await quota.recount({ dryRun: opts['dry-run'] === true });
          process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : recountText(report, opts['dry-run'] === true));
          return 0;
        }
        default:
          throw new UsageError(`unknown command ${command}`);
      }
    } finally {
      await audit.flush();
    }
  });
}

async function required(quota: QuotaService, namespace: string): Promise<QuotaRecord> {
  const [q] = await quota.list(namespace);
  if (!q) throw new AccountError('not_found', `namespace ${namespace} has no quota`);
  return q;
}

function describe(namespace: string, q: QuotaRecord | undefined, used: number): string {
  const lines = [`namespace: ${namespace}`];
  if (!q) {
    lines.push('quota:     none', `used:      ${formatSize(used)} (${used} bytes)`);
    return `${lines.join('\n')}\n`;
  }
  const percent = ((used / q.limitBytes) * 100).toFixed(1);
  lines.push(`quota:     ${formatSize(q.limitBytes)} (${q.limitBytes} bytes), id ${q.id}`, `used:      ${formatSize(used)} (${used} bytes), ${percent}% of the quota`);
  if (!q.limits.length) lines.push('limits:    none (nothing is refused or warned about)');
  else lines.push('limits:', ...q.limits.map((l) => `  id ${l.id}: ${l.kind} at ${l.percent}% (${formatSize(limitThreshold(q.limitBytes, l.percent))})${used >= limitThreshold(q.limitBytes, l.percent) ? ' — reached' : ''}`));
  return `${lines.join('\n')}\n`;
}

function recountText(r: RecountReport, dryRun: boolean): string {
  const drift = (kind: string, d: SizeDrift) => `  ${kind} ${d.name}: stored ${d.stored}, actual ${d.actual}`;
  const lines = [
    `${dryRun ? 'Dry run: nothing was changed. ' : ''}Checked the totals of ${r.repositories} repositories and ${r.namespaces} namespaces in ${r.ms} ms.`,
    ...r.drift.namespaces.map((d) => drift('namespace', d)),
    ...r.drift.repositories.map((d) => drift('repository', d)),
  ];
  if (r.drift.blobCounts) lines.push(`  blob reference counts that differed: ${r.drift.blobCounts}`);
  const any = r.drift.namespaces.length + r.drift.repositories.length + r.drift.blobCounts > 0;
  lines.push(!any ? 'No total had drifted.' : r.fixed ? 'Corrected.' : dryRun ? 'Run without --dry-run to correct them.' : 'Not corrected.');
  return `${lines.join('\n')}\n`;
}
