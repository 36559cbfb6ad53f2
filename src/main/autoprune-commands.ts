/**
 * `wharf autoprune run [--dry-run]`: one auto-prune pass from the command line, against the configured
 * database, with the same rules as the worker of `wharf serve`. Without `--dry-run` it prunes every
 * namespace with policies now (whenever it last ran) and records the runs in the task table, as the
 * worker would; with it, it only lists what would be pruned and changes nothing. Pruned (or prunable)
 * tags go to stdout as a table; the summary goes to stderr.
 *
 * Exit codes: 0 done, 1 a namespace's run failed in part, 2 usage.
 */
import type { Config } from '../config/schema.js';
import type { PrunedTag } from '../registry/autoprune/namespace-pruner.js';
import { UsageError, withDatabase } from './account-commands.js';
import { createAutopruneWorker } from './compose-autoprune.js';
import { createServices } from './compose.js';
import { openVerifiedStorage } from './location-identities.js';

export const AUTOPRUNE_COMMANDS = ['autoprune run'];
export const AUTOPRUNE_OPTIONS = { 'dry-run': { type: 'boolean' } } as const;

export async function runAutopruneCommand(command: string, args: string[], opts: { 'dry-run'?: boolean } & Record<string, unknown>, config: Readonly<Config>): Promise<number> {
  if (command !== 'autoprune run') throw new UsageError(`unknown command ${command}`);
  if (args.length) throw new UsageError('wharf autoprune run takes no arguments');
  const extra = Object.keys(opts).filter((k) => opts[k] !== undefined && !(k in AUTOPRUNE_OPTIONS));
  if (extra.length) throw new UsageError(`wharf ${command} does not take --${extra.join(', --')}`);
  return withDatabase(config, async (db) => {
    const { registry } = createServices({ db, storage: await openVerifiedStorage(db, config), config });
    const worker = createAutopruneWorker(db, registry.autoprune.pruner, { intervalMs: config.autoprune.interval });
    const summary = opts['dry-run'] ? await worker.dryRun() : await worker.runOnce({ all: true });
    await registry.audit?.flush();
    const rows = summary.runs.flatMap((r) => r.pruned.map(row));
    if (rows.length) process.stdout.write(table([['REPOSITORY', 'TAG', 'METHOD', 'VALUE', 'POLICY'], ...rows]));
    for (const run of summary.runs) {
      for (const s of run.skipped) process.stderr.write(`skipped ${run.namespace}/${s.repository} (state ${s.state})\n`);
      for (const e of run.errors) process.stderr.write(`wharf: ${e}\n`);
    }
    const verb = opts['dry-run'] ? 'would prune' : 'pruned';
    process.stderr.write(`${verb} ${summary.pruned} tag${summary.pruned === 1 ? '' : 's'} in ${summary.runs.length} namespace${summary.runs.length === 1 ? '' : 's'}${opts['dry-run'] ? ' (dry run: nothing changed)' : '; they can be restored from tag history'}\n`);
    return summary.failed ? 1 : 0;
  });
}

function row(t: PrunedTag): string[] {
  return [`${t.namespace}/${t.repository}`, t.tag, t.method, String(t.value), t.policyUuid ?? 'default'];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
