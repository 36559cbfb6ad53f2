/**
 * `wharf proxycache set|show|delete|validate|list`: proxy-cache organizations from the command line,
 * through the same service as `/api/v1/organization/{org}/proxycache`, against the configured database
 * (the same `--config` and `WHARF_*` variables as `wharf serve`). Results go to stdout (`show` prints
 * JSON, `list` a table, `validate` "Valid" or "Anonymous"); messages go to stderr.
 *
 * Exit codes as for the account commands: 0 done, 1 not found or the feature is off, 2 usage or invalid
 * input (a failed validation included).
 */
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { ProxyCacheSummary } from '../registry/proxy/proxy-config.js';
import type { ProxyConfigChanges } from '../registry/proxy/proxy-config-service.js';
import { UsageError, withDatabase } from './account-commands.js';
import { createAccountServices } from './compose.js';
import { createProxyConfigService } from './compose-proxy-config.js';
import { serverPrivateUpstreams } from './server-settings.js';

export interface ProxyCacheOptions {
  upstream?: string;
  username?: string;
  password?: string;
  'password-stdin'?: boolean;
  'no-credentials'?: boolean;
  expiration?: string;
  insecure?: boolean;
  'no-insecure'?: boolean;
  'anonymous-pull'?: boolean;
  'no-anonymous-pull'?: boolean;
  'revalidate-interval'?: string;
  'prefetch-layers'?: boolean;
  'no-prefetch-layers'?: boolean;
  'answers-for'?: string[];
  'no-answers-for'?: boolean;
}

/** Every option of these commands, for the parser. */
export const PROXYCACHE_OPTIONS = {
  upstream: { type: 'string' },
  username: { type: 'string' },
  'no-credentials': { type: 'boolean' },
  expiration: { type: 'string' },
  insecure: { type: 'boolean' },
  'no-insecure': { type: 'boolean' },
  'anonymous-pull': { type: 'boolean' },
  'no-anonymous-pull': { type: 'boolean' },
  'revalidate-interval': { type: 'string' },
  'prefetch-layers': { type: 'boolean' },
  'no-prefetch-layers': { type: 'boolean' },
  'answers-for': { type: 'string', multiple: true },
  'no-answers-for': { type: 'boolean' },
} as const;

const SETTINGS = Object.keys(PROXYCACHE_OPTIONS).filter((k) => k !== 'no-credentials') as Array<keyof ProxyCacheOptions>;
const ALLOWED: Record<string, { args: [number, number]; options: Array<keyof ProxyCacheOptions> }> = {
  set: { args: [1, 1], options: [...SETTINGS, 'password', 'password-stdin', 'no-credentials'] },
  show: { args: [1, 1], options: [] },
  delete: { args: [1, 1], options: [] },
  validate: { args: [0, 1], options: [...SETTINGS, 'password', 'password-stdin', 'no-credentials'] },
  list: { args: [0, 0], options: [] },
};

export const PROXYCACHE_COMMANDS = Object.keys(ALLOWED).map((c) => `proxycache ${c}`);

/** Runs one `proxycache` command; returns the exit code. */
export async function runProxyCacheCommand(
  command: string,
  args: string[],
  opts: ProxyCacheOptions & Record<string, unknown>,
  config: Readonly<Config>,
  stdin: () => Promise<string>,
): Promise<number> {
  const sub = command.replace(/^proxycache /, '');
  const spec = ALLOWED[sub];
  if (!spec) throw new UsageError(`unknown command ${command}`);
  const given = Object.keys(opts).filter((k) => opts[k] !== undefined);
  const extra = given.filter((k) => !(spec.options as string[]).includes(k));
  if (extra.length) throw new UsageError(`wharf ${command} does not take --${extra.join(', --')}`);
  if (args.length < spec.args[0] || args.length > spec.args[1]) {
    throw new UsageError(sub === 'list' ? 'wharf proxycache list takes no arguments' : `wharf ${command} takes ${spec.args[0] ? 'exactly one' : 'at most one'} organization name`);
  }
  if (!config.proxy_cache.enabled) {
    process.stderr.write('wharf: the proxy cache is turned off (proxy_cache.enabled is false)\n');
    return 1;
  }
  const org = args[0];
  const changes = await changesOf(opts, stdin);

  return withDatabase(config, async (db) => {
    const { audit } = createAccountServices(db, config);
    // The running server dials the upstreams: its allowlist counts as much as this command's.
    const service = createProxyConfigService(db.db, db.dialect, config, { audit, serverAllow: await serverPrivateUpstreams(db) });
    const who = { actor: { kind: 'system' as const, name: 'cli' } };
    switch (sub) {
      case 'set': {
        const existing = await service.get(org!);
        if (existing) {
          const updated = await service.update(org!, changes, who);
          process.stderr.write(`updated the proxy cache of ${updated.organization}: ${describe(updated)}\n`);
        } else {
          if (changes.upstreamRegistry === undefined) throw new UsageError(`${org} is no proxy cache yet: give --upstream`);
          const { username, password, ...rest } = changes;
          const created = await service.create(org!, { ...rest, upstreamRegistry: changes.upstreamRegistry, ...(username ? { username, password: password ?? undefined } : {}) }, who);
          process.stderr.write(`${created.organization} is now a proxy cache: ${describe(created)}\n`);
        }
        return 0;
      }
      case 'show': {
        const found = await service.get(org!);
        if (!found) {
          process.stderr.write(`wharf: organization ${org} has no proxy cache configuration\n`);
          return 1;
        }
        // Imported here: the API's modules stay out of `wharf serve` until its first API request.
        const { proxyCacheView } = await import('../http/api/proxycache.js');
        process.stdout.write(`${JSON.stringify(view(found, proxyCacheView), null, 2)}\n`);
        return 0;
      }
      case 'delete':
        await service.delete(org!, who);
        process.stderr.write(`deleted the proxy cache configuration of ${org}; its cached repositories stay as ordinary repositories\n`);
        return 0;
      case 'validate': {
        let result;
        if (changes.upstreamRegistry !== undefined && (org === undefined || !(await service.get(org)))) {
          const { username, password, ...rest } = changes;
          result = await service.validate({ ...rest, upstreamRegistry: changes.upstreamRegistry, ...(username ? { username, password: password ?? undefined } : {}) });
        } else if (org !== undefined) {
          result = await service.validateSaved(org, changes);
        } else {
          throw new UsageError('give an organization, or --upstream to check an unsaved configuration');
        }
        process.stdout.write(`${result}\n`);
        return 0;
      }
      case 'list': {
        const rows = (await service.list()).map((c) => [c.organization, c.upstreamRegistry, c.insecure ? 'http' : 'https', String(c.expirationS), c.anonymousPull ? 'yes' : 'no', c.hasCredentials ? 'yes' : 'no', c.answersFor.join(',') || '-']);
        process.stdout.write(table([['ORGANIZATION', 'UPSTREAM', 'SCHEME', 'EXPIRATION_S', 'ANONYMOUS_PULL', 'CREDENTIALS', 'ANSWERS_FOR'], ...rows]));
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  });
}

/** The service's changes from the flags given (absent flags change nothing). */
async function changesOf(o: ProxyCacheOptions, stdin: () => Promise<string>): Promise<ProxyConfigChanges> {
  const both = (a: keyof ProxyCacheOptions, b: keyof ProxyCacheOptions) => {
    if (o[a] !== undefined && o[b] !== undefined) throw new UsageError(`give --${a} or --${b}, not both`);
  };
  both('password', 'password-stdin');
  both('insecure', 'no-insecure');
  both('anonymous-pull', 'no-anonymous-pull');
  both('prefetch-layers', 'no-prefetch-layers');
  both('answers-for', 'no-answers-for');
  both('username', 'no-credentials');
  const password = o['password-stdin'] ? (await stdin()).replace(/\r?\n$/, '') : o.password;
  if ((o.username === undefined) !== (password === undefined)) throw new UsageError('give --username with --password or --password-stdin, or neither');
  const flag = (on: keyof ProxyCacheOptions, off: keyof ProxyCacheOptions) => (o[on] ? true : o[off] ? false : undefined);
  const changes: ProxyConfigChanges = {
    upstreamRegistry: o.upstream,
    insecure: flag('insecure', 'no-insecure'),
    anonymousPull: flag('anonymous-pull', 'no-anonymous-pull'),
    prefetchLayers: flag('prefetch-layers', 'no-prefetch-layers'),
    expirationS: seconds(o.expiration, 'expiration'),
    revalidateIntervalS: seconds(o['revalidate-interval'], 'revalidate-interval'),
    answersFor: o['no-answers-for'] ? [] : o['answers-for'],
    username: o['no-credentials'] ? null : o.username,
    password: o['no-credentials'] ? null : password,
  };
  return Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
}

/** Whole seconds from `3600` or a duration such as `24h`, `7d`, `0`. */
function seconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text.trim());
  if (ms === undefined || ms % 1000 !== 0) throw new UsageError(`--${flag} takes whole seconds or a duration such as 3600, 24h or 7d (got ${JSON.stringify(text)})`);
  return ms / 1000;
}

function view(c: ProxyCacheSummary, proxyCacheView: (c: ProxyCacheSummary) => object) {
  return { organization: c.organization, ...proxyCacheView(c), created: new Date(c.createdAt).toISOString(), updated: new Date(c.updatedAt).toISOString() };
}

function describe(c: ProxyCacheSummary): string {
  const parts = [`${c.insecure ? 'http' : 'https'}://${c.upstreamRegistry}`, c.expirationS ? `tags expire after ${c.expirationS} s` : 'tags never expire'];
  if (c.hasCredentials) parts.push('with credentials');
  if (c.anonymousPull) parts.push('anonymous pulls allowed');
  if (c.revalidateIntervalS) parts.push(`upstream answers reused for ${c.revalidateIntervalS} s`);
  if (c.prefetchLayers) parts.push('layers prefetched');
  parts.push(c.answersFor.length ? `answers for ${c.answersFor.join(', ')}` : 'answers for no mirror host');
  return parts.join('; ');
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
