/** The `wharf` command line. */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { serve } from './serve.js';

const USAGE = `Usage: wharf <command> [options]

Commands:
  serve                 start the registry
  config check          validate the configuration and print it (secrets redacted)

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
    },
  });
  const command = positionals.join(' ');
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
    case 'config check':
      process.stdout.write(`${JSON.stringify(redact(config), null, 2)}\n`);
      return 0;
    default:
      process.stderr.write(`wharf: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

function redact(config: object): object {
  return JSON.parse(JSON.stringify(config, (k, v) => (k === 'url' && typeof v === 'string' ? v.replace(/\/\/[^@/]*@/, '//***@') : v))) as object;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || (err as { code?: string })?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`wharf: ${(err as Error).message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`wharf: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
