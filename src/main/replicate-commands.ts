/**
 * `wharf replicate status|backfill|targets`: replication between storage locations from the command line,
 * through the same services as `/api/v1/replication/status` and `/api/v1/organization/{org}/replication`,
 * against the configured database and storage (the same `--config` and `WHARF_*` variables as
 * `wharf serve`). Results go to stdout; messages and the backfill's progress line (on a terminal only) to
 * stderr.
 *
 *   replicate status [NAMESPACE[/REPO]] [--json]   per location: blobs and bytes held, copies queued and failing
 *   replicate backfill [--location L]              queue a copy of every blob missing in L, or without
 *                                                  --location in any of its targets
 *   replicate targets ORG [LOCATION...] [--clear]  print, replace or (--clear) remove ORG's own targets
 *
 * Exit codes: 0 done, 1 not found or replication off (fewer than two locations), 2 usage or invalid input.
 */
import type { Config } from '../config/schema.js';
import type { DatabaseHandle } from '../db/connect.js';
import { AccountError, isAccountError } from '../registry/accounts/account-error.js';
import type { ReplicationAdmin, ReplicationStatus } from '../registry/replication/replication-admin.js';
import { formatSize } from '../registry/quota/size-text.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { UsageError, withDatabase } from './account-commands.js';
import { createAccountServices, createServices } from './compose.js';
import { openVerifiedStorage } from './location-identities.js';

export const REPLICATE_OPTIONS = { location: { type: 'string' }, clear: { type: 'boolean' }, json: { type: 'boolean' } } as const;

export const REPLICATE_COMMANDS = ['replicate status', 'replicate backfill', 'replicate targets'];

const ALLOWED: Record<string, { args: [number, number]; usage: string; options: string[] }> = {
  status: { args: [0, 1], usage: 'replicate status [NAMESPACE[/REPO]] [--json]', options: ['json'] },
  backfill: { args: [0, 0], usage: 'replicate backfill [--location LOCATION]', options: ['location'] },
  targets: { args: [1, 100], usage: 'replicate targets ORG [LOCATION...] [--clear]', options: ['clear'] },
};

/** Where output goes, and the storage (tests); default the process's streams and the configured storage. */
export interface ReplicateIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  storage?: BlobDriver;
}

/** Runs one `replicate` command; returns the exit code. */
export async function runReplicateCommand(command: string, args: string[], opts: Record<string, unknown>, config: Readonly<Config>, io: ReplicateIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const sub = command.replace(/^replicate /, '');
  const spec = ALLOWED[sub];
  if (!spec) throw new UsageError(`unknown command ${command}`);
  const extra = Object.keys(opts).filter((k) => opts[k] !== undefined && !spec.options.includes(k));
  if (extra.length) throw new UsageError(`wharf replicate ${sub} does not take --${extra.join(', --')}`);
  if (args.length < spec.args[0] || args.length > spec.args[1]) throw new UsageError(`usage: wharf ${spec.usage}`);
  if (sub === 'targets' && opts.clear && args.length > 1) throw new UsageError('wharf replicate targets: give either LOCATION... or --clear');

  return withDatabase(config, async (db) => {
    const { registry } = createServices({ db, storage: io.storage ?? (await openVerifiedStorage(db, config)), config });
    const admin = registry.replication?.admin;
    if (!admin) {
      io.stderr.write('wharf: replication is off: fewer than two storage locations are configured (storage.locations)\n');
      return 1;
    }
    try {
      return await run(admin, db);
    } catch (err) {
      if (!isAccountError(err)) throw err;
      io.stderr.write(`wharf: ${err.message}\n`);
      return err.type === 'invalid_request' ? 2 : 1;
    }
  });

  async function run(admin: ReplicationAdmin, db: DatabaseHandle): Promise<number> {
    switch (sub) {
      case 'status': {
        const scope = args[0];
        const status = await admin.status(scope);
        // Imported here: the API's modules stay out of `wharf serve` until its first API request.
        const { replicationStatusView } = await import('../http/api/replication.js');
        io.stdout.write(opts.json ? `${JSON.stringify(replicationStatusView(scope, status), null, 2)}\n` : statusText(scope, status));
        return 0;
      }
      case 'backfill': {
        const location = opts.location as string | undefined;
        const tty = io.stderr.isTTY === true;
        const queued = await admin.backfill(location, (p) => {
          if (tty) io.stderr.write(`\r\x1b[K${p.location}: ${p.scanned} blobs looked at, ${p.queued} copies queued`);
        });
        if (tty) io.stderr.write('\n');
        io.stderr.write(`queued ${queued} ${queued === 1 ? 'copy' : 'copies'}${location ? ` to ${location}` : ''}; the replication workers copy them in the background (wharf replicate status)\n`);
        return 0;
      }
      case 'targets': {
        const [org, ...locations] = args;
        const found = await createAccountServices(db, config).accounts.getOrganization(org!);
        if (!found) throw new AccountError('not_found', `organization ${org} not found`);
        if (opts.clear || locations.length) {
          const change = await admin.setTargets(found.id, opts.clear ? [] : locations);
          await admin.idle();
          const set = change.locations;
          io.stderr.write(set.length ? `${org} is replicated to ${set.join(', ')} besides the registry-wide targets\n` : `${org} has no targets of its own now\n`);
          if (change.queued || change.backfilling) io.stderr.write(`queued copies of its blobs to the new targets; the replication workers copy them in the background (wharf replicate status ${org})\n`);
        }
        const own = await admin.targets(found.id);
        io.stdout.write(`organization:     ${org}\nown targets:      ${own.length ? own.join(', ') : 'none'}\nregistry targets: ${admin.defaultTargets.join(', ')}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  }
}

function statusText(scope: string | undefined, s: ReplicationStatus): string {
  const lines = [`${scope ?? 'registry'}: ${s.blobs} blobs, ${formatSize(s.bytes)}`];
  const width = Math.max(8, ...s.locations.map((l) => l.location.length));
  lines.push(`${'LOCATION'.padEnd(width)}  ${'BLOBS'.padStart(12)}  ${'BYTES'.padStart(12)}  ${'QUEUED'.padStart(8)}  ${'FAILING'.padStart(8)}  LAST ERROR`);
  for (const l of s.locations) {
    const share = s.blobs ? ` (${Math.floor((l.blobs / s.blobs) * 1000) / 10}%)` : '';
    lines.push(`${l.location.padEnd(width)}  ${`${l.blobs}${share}`.padStart(12)}  ${formatSize(l.bytes).padStart(12)}  ${String(l.backlog).padStart(8)}  ${String(l.failing).padStart(8)}  ${l.lastError ?? ''}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}
