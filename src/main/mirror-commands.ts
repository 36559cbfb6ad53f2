/**
 * `wharf mirror set|show|sync|cancel|delete`: repository mirrors from the command line, through the
 * same service as `/api/v1/repository/{repo}/mirror`, against the configured database (the same
 * `--config` and `WHARF_*` variables as `wharf serve`). `show` prints the API's JSON on stdout; messages
 * go to stderr. `sync --wait` follows the run the workers perform (mirror-wait.ts).
 *
 * Exit codes: 0 done (for `sync --wait`: the run succeeded), 1 not found, or the waited-for run ended
 * FAIL, PARTIAL or CANCEL, 2 usage or invalid input.
 */
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { MirrorStore } from '../db/mirror-store.js';
import { RepositoryStore } from '../db/repository-store.js';
import type { mirrorView } from '../http/api/mirror.js';
import { parseRepositoryName } from '../oci/reference.js';
import { AccountError } from '../registry/accounts/account-error.js';
import type { MirrorChangesInput } from '../registry/mirror/mirror-config-input.js';
import { formatDate } from '../registry/mirror/mirror-config-input.js';
import { RepositoryService } from '../registry/repositories.js';
import { UsageError, withDatabase } from './account-commands.js';
import { createAccountServices } from './compose.js';
import { createMirrorConfigService } from './compose-mirror-config.js';
import { waitForRun } from './mirror-wait.js';
import { serverPrivateUpstreams } from './server-settings.js';

/** Every option of these commands, for the parser (`username`, `password`, `password-stdin` and `no-credentials` are shared). */
export const MIRROR_OPTIONS = {
  source: { type: 'string' },
  tags: { type: 'string', multiple: true },
  interval: { type: 'string' },
  start: { type: 'string' },
  robot: { type: 'string' },
  timeout: { type: 'string' },
  enable: { type: 'boolean' },
  disable: { type: 'boolean' },
  'verify-tls': { type: 'boolean' },
  'no-verify-tls': { type: 'boolean' },
  'unsigned-images': { type: 'boolean' },
  'no-unsigned-images': { type: 'boolean' },
  'http-proxy': { type: 'string' },
  'https-proxy': { type: 'string' },
  'no-proxy': { type: 'string' },
  architecture: { type: 'string', multiple: true },
  'all-architectures': { type: 'boolean' },
  rollback: { type: 'boolean' },
  'no-rollback': { type: 'boolean' },
  wait: { type: 'boolean' },
} as const;

export interface MirrorOptions {
  source?: string;
  tags?: string[];
  interval?: string;
  start?: string;
  robot?: string;
  timeout?: string;
  enable?: boolean;
  disable?: boolean;
  'verify-tls'?: boolean;
  'no-verify-tls'?: boolean;
  'unsigned-images'?: boolean;
  'no-unsigned-images'?: boolean;
  'http-proxy'?: string;
  'https-proxy'?: string;
  'no-proxy'?: string;
  architecture?: string[];
  'all-architectures'?: boolean;
  rollback?: boolean;
  'no-rollback'?: boolean;
  wait?: boolean;
  username?: string;
  password?: string;
  'password-stdin'?: boolean;
  'no-credentials'?: boolean;
}

const SETTINGS = [...Object.keys(MIRROR_OPTIONS).filter((k) => k !== 'wait'), 'username', 'password', 'password-stdin', 'no-credentials'];
const ALLOWED: Record<string, string[]> = { set: SETTINGS, show: [], sync: ['wait'], cancel: [], delete: [] };

export const MIRROR_COMMANDS = Object.keys(ALLOWED).map((c) => `mirror ${c}`);

/** Default interval of a mirror made by `set` without --interval: a day. */
const DEFAULT_INTERVAL_S = 86_400;
const POLL_MS = 1000;

/** Runs one `mirror` command; returns the exit code. */
export async function runMirrorCommand(command: string, args: string[], opts: MirrorOptions & Record<string, unknown>, config: Readonly<Config>, stdin: () => Promise<string>): Promise<number> {
  const sub = command.replace(/^mirror /, '');
  const allowed = ALLOWED[sub];
  if (!allowed) throw new UsageError(`unknown command ${command}`);
  const extra = Object.keys(opts).filter((k) => opts[k] !== undefined && !allowed.includes(k));
  if (extra.length) throw new UsageError(`wharf ${command} does not take --${extra.join(', --')}`);
  if (args.length !== 1) throw new UsageError(`wharf ${command} takes exactly one repository (namespace/name)`);
  const parsed = parseRepositoryName(args[0]!);
  if (!parsed.ok || !args[0]!.includes('/')) throw new UsageError(`${JSON.stringify(args[0])} is no repository name (namespace/name): ${parsed.ok ? 'it has no namespace' : parsed.reason}`);
  const name = parsed.name;
  const body = sub === 'set' ? await bodyOf(opts, stdin) : {};

  return withDatabase(config, async (db) => {
    const accounts = createAccountServices(db, config);
    const service = createMirrorConfigService(db.db, db.dialect, config, accounts, { serverAllow: await serverPrivateUpstreams(db) });
    const who = { actor: { kind: 'system' as const, name: 'cli' } };
    const repo = await new RepositoryService(new RepositoryStore(db.db, db.dialect)).details(name);
    if (!repo) throw new AccountError('not_found', `repository ${name} not found`);
    // Imported here: the API's modules stay out of `wharf serve` until its first API request.
    const { mirrorView } = await import('../http/api/mirror.js');
    try {
      switch (sub) {
        case 'set': {
          if (await service.get(repo)) {
            const m = await service.update(repo, body, who);
            process.stderr.write(`updated the mirror of ${name}: ${describe(mirrorView(m))}\n`);
          } else {
            const missing = ['source', 'tags', 'robot'].filter((k) => opts[k] === undefined);
            if (missing.length) throw new UsageError(`${name} is no mirror yet: give --${missing.join(', --')}`);
            const m = await service.create(repo, { sync_interval: DEFAULT_INTERVAL_S, sync_start_date: formatDate(Date.now()), ...body }, who);
            process.stderr.write(`${name} is now a mirror: ${describe(mirrorView(m))}\n`);
          }
          return 0;
        }
        case 'show': {
          const m = await service.get(repo);
          if (!m) throw new AccountError('not_found', `repository ${name} has no mirror configuration`);
          process.stdout.write(`${JSON.stringify({ repository: name, ...mirrorView(m) }, null, 2)}\n`);
          return 0;
        }
        case 'sync': {
          const before = await service.get(repo);
          if (before?.sync.status === 'SYNCING' && opts.wait) {
            process.stderr.write(`a sync of ${name} is running already; following it\n`);
          } else {
            const m = await service.syncNow(repo, who);
            process.stderr.write(`asked for a sync of ${name} from ${m.externalReference}\n`);
          }
          if (!opts.wait) return 0;
          const store = new MirrorStore(db.db, db.dialect);
          const result = await waitForRun({
            read: () => store.find(repo.id),
            lastFinishedBefore: before?.sync.last?.finishedAt ?? null,
            out: process.stderr,
            sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
            intervalMs: POLL_MS,
          });
          process.stdout.write(`${result.outcome}${result.message ? `: ${result.message}` : ''}\n`);
          return result.outcome === 'SUCCESS' ? 0 : 1;
        }
        case 'cancel':
          await service.cancel(repo, who);
          process.stderr.write(`cancelled the sync of ${name}; it syncs again only when asked (wharf mirror sync)\n`);
          return 0;
        case 'delete':
          await service.delete(repo, who);
          process.stderr.write(`${name} is no longer a mirror; its tags stay\n`);
          return 0;
        default:
          throw new UsageError(`unknown command ${command}`);
      }
    } finally {
      await accounts.audit.flush();
    }
  });
}

/** The API body (Quay's fields) of the flags given; absent flags change nothing. */
async function bodyOf(o: MirrorOptions, stdin: () => Promise<string>): Promise<MirrorChangesInput> {
  const both = (a: keyof MirrorOptions, b: keyof MirrorOptions) => {
    if (o[a] !== undefined && o[b] !== undefined) throw new UsageError(`give --${a} or --${b}, not both`);
  };
  both('password', 'password-stdin');
  both('enable', 'disable');
  both('verify-tls', 'no-verify-tls');
  both('unsigned-images', 'no-unsigned-images');
  both('rollback', 'no-rollback');
  both('architecture', 'all-architectures');
  both('username', 'no-credentials');
  const password = o['password-stdin'] ? (await stdin()).replace(/\r?\n$/, '') : o.password;
  if (password !== undefined && o.username === undefined) throw new UsageError('give --username with --password or --password-stdin');
  const flag = (on: keyof MirrorOptions, off: keyof MirrorOptions) => (o[on] ? true : o[off] ? false : undefined);
  const body: Record<string, unknown> = {
    external_reference: o.source,
    root_rule: o.tags && { rule_kind: 'tag_glob_csv', rule_value: o.tags.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean) },
    robot_username: o.robot,
    sync_interval: seconds(o.interval, 'interval'),
    skopeo_timeout_interval: seconds(o.timeout, 'timeout'),
    sync_start_date: o.start === undefined ? undefined : o.start === 'now' ? formatDate(Date.now()) : o.start,
    is_enabled: flag('enable', 'disable'),
    architecture_filter: o['all-architectures'] ? [] : o.architecture?.flatMap((a) => a.split(',')).map((a) => a.trim()),
    rollback_on_failure: flag('rollback', 'no-rollback'),
  };
  if (o['no-credentials']) Object.assign(body, { external_registry_username: null, external_registry_password: null });
  else if (o.username !== undefined) Object.assign(body, { external_registry_username: o.username, external_registry_password: password ?? null });
  const config: Record<string, unknown> = { verify_tls: flag('verify-tls', 'no-verify-tls'), unsigned_images: flag('unsigned-images', 'no-unsigned-images') };
  const proxy = { http_proxy: o['http-proxy'], https_proxy: o['https-proxy'], no_proxy: o['no-proxy'] };
  if (Object.values(proxy).some((v) => v !== undefined)) config.proxy = Object.fromEntries(Object.entries(proxy).filter(([, v]) => v !== undefined).map(([k, v]) => [k, v === '' ? null : v]));
  if (Object.values(config).some((v) => v !== undefined)) body.external_registry_config = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)) as MirrorChangesInput;
}

/** Whole seconds from `3600` or a duration such as `6h`, `1d`. */
function seconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text.trim());
  if (ms === undefined || ms % 1000 !== 0) throw new UsageError(`--${flag} takes whole seconds or a duration such as 3600, 6h or 1d (got ${JSON.stringify(text)})`);
  return ms / 1000;
}

function describe(v: ReturnType<typeof mirrorView>): string {
  const parts = [
    `from ${v.external_reference}`,
    `tags ${v.root_rule.rule_value.join(' ')}`,
    `every ${v.sync_interval} s from ${v.sync_start_date}`,
    `robot ${v.robot_username}`,
    v.is_enabled ? 'enabled' : 'disabled',
  ];
  if (v.external_registry_username) parts.push(`as ${v.external_registry_username}`);
  if (!v.external_registry_config.verify_tls) parts.push('TLS not verified');
  if (v.architecture_filter.length) parts.push(`only ${v.architecture_filter.join(', ')}`);
  if (v.rollback_on_failure) parts.push('rolled back on failure');
  return parts.join('; ');
}
