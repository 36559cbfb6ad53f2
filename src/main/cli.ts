/** The `wharf` command line. */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { ACCOUNT_COMMANDS, runAccountCommand, UsageError } from './account-commands.js';
import { PROXYCACHE_COMMANDS, PROXYCACHE_OPTIONS, runProxyCacheCommand } from './proxycache-commands.js';
import { AUTOPRUNE_COMMANDS, AUTOPRUNE_OPTIONS, runAutopruneCommand } from './autoprune-commands.js';
import { QUOTA_COMMANDS, QUOTA_OPTIONS, runQuotaCommand } from './quota-commands.js';
import { SecretKeyError } from '../registry/proxy/secret-box.js';
import { runNodesConfig } from './nodes-config.js';
import { GC_OPTIONS, runGcCommand } from './gc-command.js';
import { serve } from './serve.js';
import { StartupError } from './startup-error.js';

const USAGE = `Usage: wharf <command> [options]

Commands:
  serve                 start the registry
  config check          validate the configuration and print it (secrets redacted)
  user create NAME [--password P | --password-stdin] [--superuser] [--email E]
                        create a user (a generated password is printed once when none is given)
  user passwd NAME (--password P | --password-stdin)
                        set a user's password
  org create NAME [--email E] [--owner USER]
                        create an organization owned by USER (default: auth.admin_username)
  robot create NAMESPACE+NAME [--description D] [--repo NAMESPACE/REPO ...] [--role read|write|admin]
                        create a robot account and print its token (shown once); with --repo, give it
                        ROLE (default write) on each repository, creating missing ones
  proxycache set ORG [--upstream U] [--username X (--password P | --password-stdin) | --no-credentials]
                 [--expiration SECONDS] [--[no-]insecure] [--[no-]anonymous-pull]
                 [--revalidate-interval SECONDS] [--[no-]prefetch-layers] [--answers-for HOST ... | --no-answers-for]
                        make ORG a proxy cache of registry U (host[:port][/namespace]), or change the
                        settings given of an existing one (--upstream is needed only to create)
  proxycache show ORG   print ORG's proxy-cache configuration as JSON (never the credentials)
  proxycache delete ORG delete ORG's proxy-cache configuration (cached repositories stay)
  proxycache validate (ORG | --upstream U) [settings as for set]
                        check access to the upstream: prints Valid or Anonymous
  proxycache list       list the proxy-cache organizations
  autoprune run [--dry-run]
                        apply the auto-prune policies of every namespace now (pruned tags stay
                        restorable); --dry-run only lists what would be pruned
  quota set NAMESPACE LIMIT
                        give NAMESPACE (an organization or user) a storage quota of LIMIT (bytes, or
                        a size such as "10 GiB", "500 MiB", "1.5 GB"), or change its limit
  quota show NAMESPACE [--json]
                        print the quota, its limits and the storage NAMESPACE uses
  quota delete NAMESPACE
                        delete NAMESPACE's quota and its limits
  quota limit add NAMESPACE Warning|Reject PERCENT
                        warn (log and audit) or refuse pushes at PERCENT (1-100) of the quota
  quota limit delete NAMESPACE LIMIT_ID
                        delete a limit (LIMIT_ID as quota show prints it)
  quota recount [--dry-run] [--json]
                        recompute every repository and namespace size from the manifests, print
                        the totals that had drifted and correct them (--dry-run: only print)
  gc [--dry-run] [--json]
                        run one garbage-collection pass now (tag history past the time-machine
                        window, then unreferenced manifests and blobs); --dry-run only reports
                        what would go (counts and digests)
  nodes-config [--format containerd|k3s|rke2|crio|docker] [--url URL] [--ca-file PATH] [--org-in-path]
                        print node configuration that pulls every registry a proxy organization
                        answers for through Wharf (URL: Wharf as the nodes reach it;
                        --org-in-path: containerd/k3s/rke2 endpoints name the organization,
                        <URL>/v2/<org> with override_path, instead of relying on ns= routing)

Options:
  -c, --config FILE     YAML configuration file (WHARF_* environment variables override it)
  --tls-self-signed HOST
                        serve HTTPS with a self-signed certificate for HOST (generated once)
  -h, --help            show this help
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'tls-self-signed': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
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
      format: { type: 'string' },
      url: { type: 'string' },
      'ca-file': { type: 'string' },
      'org-in-path': { type: 'boolean' },
    },
  });
  const accountCommand = ACCOUNT_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const proxyCommand = PROXYCACHE_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const autopruneCommand = AUTOPRUNE_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const quotaCommand = QUOTA_COMMANDS.find((c) => positionals.slice(0, 2).join(' ') === c);
  const command = accountCommand ?? proxyCommand ?? autopruneCommand ?? quotaCommand ?? positionals.join(' ');
  if (values.help || command === '') {
    process.stdout.write(USAGE);
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
      const foreign = Object.keys(PROXYCACHE_OPTIONS).filter((k) => values[k as keyof typeof values] !== undefined);
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
    case 'gc': {
      const { config: _config, 'tls-self-signed': _tls, help: _help, ...opts } = values;
      return runGcCommand([], opts, config);
    }
    case 'nodes-config':
      return runNodesConfig({ format: values.format, url: values.url, 'ca-file': values['ca-file'], 'org-in-path': values['org-in-path'] }, config);
    case 'config check':
      process.stdout.write(`${JSON.stringify(redact(config), null, 2)}\n`);
      return 0;
    default:
      process.stderr.write(`wharf: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

function redact(config: object): object {
  return JSON.parse(
    JSON.stringify(config, (k, v) => {
      if (k === 'url' && typeof v === 'string') return v.replace(/\/\/[^@/]*@/, '//***@');
      if ((k === 'admin_password' || k === 'secret_key') && typeof v === 'string') return '***';
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
