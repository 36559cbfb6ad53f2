/** The `wharf` command line. */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { ACCOUNT_COMMANDS, runAccountCommand, UsageError } from './account-commands.js';
import { PROXYCACHE_COMMANDS, PROXYCACHE_OPTIONS, runProxyCacheCommand } from './proxycache-commands.js';
import { AUTOPRUNE_COMMANDS, AUTOPRUNE_OPTIONS, runAutopruneCommand } from './autoprune-commands.js';
import { QUOTA_COMMANDS, QUOTA_OPTIONS, runQuotaCommand } from './quota-commands.js';
import { MIRROR_COMMANDS, MIRROR_OPTIONS, runMirrorCommand } from './mirror-commands.js';
import { REPLICATE_COMMANDS, REPLICATE_OPTIONS, runReplicateCommand } from './replicate-commands.js';
import { STORAGE_COMMANDS, STORAGE_OPTIONS, runStorageCommand } from './storage-commands.js';
import { SecretKeyError } from '../registry/proxy/secret-box.js';
import { NODES_CONFIG_OPTIONS, runNodesConfig } from './nodes-config.js';
import { generalHelp, helpFor, isCommandGroup } from './cli-help.js';
import { WHARF_VERSION } from '../http/app.js';
import { GC_OPTIONS, runGcCommand } from './gc-command.js';
import { serve } from './serve.js';
import { StartupError } from './startup-error.js';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'tls-self-signed': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      password: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      superuser: { type: 'boolean' },
      email: { type: 'string' },
      owner: { type: 'string' },
      description: { type: 'string' },
      repo: { type: 'string', multiple: true },
      role: { type: 'string' },
      ...PROXYCACHE_OPTIONS,
      ...AUTOPRUNE_OPTIONS,
      ...GC_OPTIONS,
      ...QUOTA_OPTIONS,
      ...NODES_CONFIG_OPTIONS,
      ...MIRROR_OPTIONS,
      ...REPLICATE_OPTIONS,
      ...STORAGE_OPTIONS,
    },
  });
  const accountCommand = ACCOUNT_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const proxyCommand = PROXYCACHE_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const autopruneCommand = AUTOPRUNE_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const quotaCommand = QUOTA_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const mirrorCommand = MIRROR_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const replicateCommand = REPLICATE_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const storageCommand = STORAGE_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const command = accountCommand ?? proxyCommand ?? autopruneCommand ?? quotaCommand ?? mirrorCommand ?? replicateCommand ?? storageCommand ?? positionals.join(' ');
  if (values.version) {
    process.stdout.write(`wharf ${WHARF_VERSION}\n`);
    return 0;
  }
  if (values.help || command === '' || isCommandGroup(positionals.join(' '))) {
    process.stdout.write(helpFor(positionals));
    return values.help ? 0 : 2;
  }
  const overrides: Record<string, unknown> = {};
  if (values['tls-self-signed']) overrides['tls.self_signed_hostname'] = values['tls-self-signed'];
  const config = loadConfig({ file: values.config, overrides });
  switch (command) {
    case 'serve':
      await serve(config);
      return -1;
    case accountCommand: {
      const { password, superuser, email, owner, description, repo, role } = values;
      const foreign = [...Object.keys(PROXYCACHE_OPTIONS), ...Object.keys(MIRROR_OPTIONS)].filter((k) => values[k as keyof typeof values] !== undefined);
      if (foreign.length) throw new UsageError(`wharf ${command} does not take --${foreign.join(', --')}`);
      return runAccountCommand(command, positionals.slice(2), { password, 'password-stdin': values['password-stdin'], superuser, email, owner, description, repo, role }, config, readStdin);
    }
    case proxyCommand: {
      const { config: _config, 'tls-self-signed': _tls, help: _help, ...opts } = values;
      return runProxyCacheCommand(command, positionals.slice(2), opts, config, readStdin);
    }
    case autopruneCommand: {
      const { config: _config, 'tls-self-signed': _tls, help: _help, ...opts } = values;
      return runAutopruneCommand(command, positionals.slice(2), opts, config);
    }
    case quotaCommand: {
      const { config: _config, 'tls-self-signed': _tls, help: _help, ...opts } = values;
      return runQuotaCommand(command, positionals.slice(2), opts, config);
    }
    case mirrorCommand: {
      const { config: _config, 'tls-self-signed': _tls, help: _help, ...opts } = values;
      return runMirrorCommand(command, positionals.slice(2), opts, config, readStdin);
    }
    case replicateCommand: {
      const { config: _config, 'tls-self-signed': _tls, help: _help, ...opts } = values;
      return runReplicateCommand(command, positionals.slice(2), opts, config);
    }
    case storageCommand: {
      const { config: _config, 'tls-self-signed': _tls, help: _help, ...opts } = values;
      return runStorageCommand(command, positionals.slice(2), opts, config);
    }
    case 'gc': {
      const { config: _config, 'tls-self-signed': _tls, help: _help, ...opts } = values;
      return runGcCommand([], opts, config);
    }
    case 'nodes-config':
      return runNodesConfig({ format: values.format, url: values.url, 'ca-file': values['ca-file'], 'org-in-path': values['org-in-path'], 'output-dir': values['output-dir'] }, config);
    case 'config check':
      process.stdout.write(`${JSON.stringify(redact(config), null, 2)}\n`);
      return 0;
    default:
      process.stderr.write(`wharf: unknown command "${command}"\n\n${isCommandGroup(positionals[0] ?? '') ? helpFor(positionals) : generalHelp()}`);
      return 2;
  }
}

function redact(config: object): object {
  return JSON.parse(
    JSON.stringify(config, (k, v) => {
      if (k === 'url' && typeof v === 'string') return v.replace(/\/\/[^@/]*@/, '//***@');
      if ((k === 'admin_password' || k === 'secret_key' || k === 'secret_access_key') && typeof v === 'string') return '***';
      return v;
    }),
  ) as object;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const code = (err as { code?: string })?.code;
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof SecretKeyError || code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`wharf: ${(err as Error).message}\n`);
      process.exitCode = 2;
    } else if (err instanceof StartupError) {
      // Something outside the configuration stops the command (port in use, database unreachable...).
      process.stderr.write(`wharf: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`wharf: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
