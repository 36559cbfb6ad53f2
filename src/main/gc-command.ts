/**
 * `wharf gc [--dry-run] [--json]`: one garbage-collection pass now, against the configured database and
 * storage (the same `--config` and `WHARF_*` variables as `wharf serve`), whether or not a server runs
 * its own passes (both are safe at once). With `--dry-run` it only reports what a pass would remove.
 * Its storage sweep checks every blob key in storage, not `gc.sweep_batch` of them (unless that is 0,
 * which turns the sweep off). The report goes to stdout (text, or JSON with `--json`).
 *
 * Exit codes: 0 done, 2 usage.
 */
import type { Config } from '../config/schema.js';
import type { GcPart, GcReport } from '../registry/gc.js';
import { formatDuration } from '../registry/time-machine.js';
import { UsageError, withDatabase } from './account-commands.js';
import { createServices } from './compose.js';
import { openVerifiedStorage } from './location-identities.js';

export const GC_OPTIONS = { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } } as const;

export async function runGcCommand(args: string[], opts: { 'dry-run'?: boolean; json?: boolean } & Record<string, unknown>, config: Readonly<Config>): Promise<number> {
  if (args.length) throw new UsageError('wharf gc takes no arguments');
  const extra = Object.keys(opts).filter((k) => opts[k] !== undefined && !(k in GC_OPTIONS));
  if (extra.length) throw new UsageError(`wharf gc does not take --${extra.join(', --')}`);
  return withDatabase(config, async (db) => {
    const { registry } = createServices({ db, storage: await openVerifiedStorage(db, config), config });
    const report = await registry.gc.run({ dryRun: opts['dry-run'] === true, sweepAll: true });
    await registry.audit?.flush();
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : describe(report, config));
    return 0;
  });
}

function describe(r: GcReport, config: Readonly<Config>): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines = [
    `${r.dryRun ? 'Dry run: nothing was changed. A' : 'A'} pass ${verb} (grace period ${formatDuration(config.gc.grace_period)}, default time-machine window ${formatDuration(config.gc.time_machine_default)}):`,
    `  tag history rows past the time-machine window: ${r.tags}`,
    ...part('manifests', r.manifests),
    `  blob links of repositories no manifest there uses: ${r.links}`,
    ...part('blobs', r.blobs),
  ];
  if (r.bytesLeft) lines.push(`  blobs whose bytes could not be deleted from storage (left behind): ${r.bytesLeft}`);
  if (config.gc.sweep_batch > 0) {
    lines.push(...part(`blob bytes in storage that no blob row records (of ${r.sweptKeys} blob keys checked)`, r.swept));
  } else lines.push('  storage sweep: off (gc.sweep_batch is 0)');
  lines.push(`  took ${r.durationMs} ms`);
  return `${lines.join('\n')}\n`;
}

function part(what: string, p: GcPart): string[] {
  const more = p.count > p.sample.length ? [`    … and ${p.count - p.sample.length} more`] : [];
  return [`  ${what}: ${p.count} (${p.bytes} bytes)`, ...p.sample.map((d) => `    ${d}`), ...more];
}
