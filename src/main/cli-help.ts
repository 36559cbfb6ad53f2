/**
 * The help of `wharf`: one table of commands, from which `wharf --help` (every command), `wharf GROUP`
 * (the commands of a group such as `org` or `quota limit`) and `wharf COMMAND --help` (one command and
 * its options) are printed. A command is one to three words; its group is every word but the last.
 */

export interface CommandHelp {
  /** The command's words: `serve`, `org create`, `quota limit add`. */
  command: string;
  /** What follows the words: arguments and options (`\n` where a long one breaks). */
  synopsis: string;
  /** What it does, in a few short lines. */
  summary: string[];
  /** Its own options: flag (with its argument) and meaning. */
  options: Array<[string, string]>;
}

const PASSWORD: Array<[string, string]> = [
  ['--password P', 'the password (at least 8 characters; visible to other local users: prefer --password-stdin)'],
  ['--password-stdin', 'read the password from standard input (one line)'],
];

const PROXY_SETTINGS: Array<[string, string]> = [
  ['--upstream U', 'the upstream registry: host[:port][/namespace] (docker.io for Docker Hub)'],
  ['--username X', 'log in to the upstream as X (with --password or --password-stdin)'],
  ['--password P', "the upstream password (visible to other local users: prefer --password-stdin)"],
  ['--password-stdin', 'read the upstream password from standard input (one line)'],
  ['--no-credentials', 'pull from the upstream anonymously (forget stored credentials)'],
  ['--expiration SECONDS', 'keep a cached tag this long without a successful check upstream (3600, 24h, 7d; 0: forever)'],
  ['--[no-]insecure', 'talk plain HTTP to the upstream'],
  ['--[no-]anonymous-pull', 'let clients without credentials pull through the organization (nodes, Docker mirrors)'],
  ['--revalidate-interval SECONDS', "reuse the upstream's answer for a tag this long before asking again (0: ask every time)"],
  ['--[no-]prefetch-layers', 'fetch all layers of a manifest as soon as the manifest is pulled'],
  ['--answers-for HOST', 'serve mirror requests for registry HOST (ns=HOST from containerd); repeat for several'],
  ['--no-answers-for', 'answer mirror requests for no registry'],
];

const MIRROR_SETTINGS: Array<[string, string]> = [
  ['--source REF', 'the repository to mirror: host[:port]/path/name (no scheme)'],
  ['--tags GLOB', 'tags to mirror, as globs (*, ?, [a-z], [!a-z]); repeat or separate with commas'],
  ['--robot NS+NAME', 'the robot of the namespace that writes the mirrored tags (gets write on the repository)'],
  ['--interval SECONDS', 'time between two syncs (3600, 6h, 1d; default 1d)'],
  ['--start DATE', 'the first sync: YYYY-MM-DDTHH:MM:SSZ or now (default now)'],
  ['--timeout SECONDS', 'longest run (at least 300, the default)'],
  ['--enable', 'sync on the schedule (the default for a new mirror)'],
  ['--disable', 'stop the scheduled syncs (mirror sync still runs one)'],
  ['--username X', 'log in to the source as X (with --password or --password-stdin)'],
  ['--password P', 'the source password (visible to other local users: prefer --password-stdin)'],
  ['--password-stdin', 'read the source password from standard input (one line)'],
  ['--no-credentials', 'pull from the source anonymously (forget stored credentials)'],
  ['--[no-]verify-tls', 'verify the source\'s TLS certificate (default: yes)'],
  ['--[no-]unsigned-images', 'accept images without signatures (kept for Quay compatibility)'],
  ['--http-proxy URL', 'the proxy for plain HTTP to the source ("" for none)'],
  ['--https-proxy URL', 'the proxy for HTTPS to the source ("" for none)'],
  ['--no-proxy HOSTS', 'hosts reached without the proxy, comma-separated ("" for none)'],
  ['--architecture A', 'keep only these platforms of multi-platform images (amd64, arm64, arm, ppc64le, s390x, 386, riscv64); repeat for several'],
  ['--all-architectures', 'keep every platform (the default)'],
  ['--[no-]rollback', 'when a sync fails, put every tag it changed back (default: only failed tags keep their old target)'],
];

export const COMMAND_HELP: readonly CommandHelp[] = [
  { command: 'serve', synopsis: '[--tls-self-signed HOST]', summary: ['start the registry'], options: [['--tls-self-signed HOST', 'serve HTTPS with a self-signed certificate for HOST (generated once, kept in the data directory)']] },
  { command: 'config check', synopsis: '', summary: ['validate the configuration and print it (secrets redacted)'], options: [] },
  {
    command: 'user create',
    synopsis: 'NAME [--password P | --password-stdin] [--superuser] [--email E]',
    summary: ['create a user (a generated password is printed once when none is given)'],
    options: [...PASSWORD, ['--superuser', 'the user may do anything, on every namespace'], ['--email E', "the user's email address"]],
  },
  { command: 'user passwd', synopsis: 'NAME (--password P | --password-stdin)', summary: ["set a user's password"], options: PASSWORD },
  {
    command: 'org create',
    synopsis: 'NAME [--email E] [--owner USER]',
    summary: ['create an organization owned by USER (default: auth.admin_username)'],
    options: [['--email E', "the organization's email address"], ['--owner USER', 'the user who owns it (default: auth.admin_username)']],
  },
  {
    command: 'robot create',
    synopsis: 'NAMESPACE+NAME [--description D] [--repo NAMESPACE/REPO ...] [--role read|write|admin]',
    summary: ['create a robot account and print its token; with --repo, give it', 'ROLE (default write) on each repository, creating missing ones'],
    options: [
      ['--description D', 'what the robot is for'],
      ['--repo NAMESPACE/REPO', 'a repository of the namespace to give the robot ROLE on; repeat for several'],
      ['--role read|write|admin', 'its role on each --repo (default write)'],
    ],
  },
  {
    command: 'proxycache set',
    synopsis:
      'ORG [--upstream U] [--username X (--password P | --password-stdin) | --no-credentials]\n[--expiration SECONDS] [--[no-]insecure] [--[no-]anonymous-pull]\n[--revalidate-interval SECONDS] [--[no-]prefetch-layers] [--answers-for HOST ... | --no-answers-for]',
    summary: ['make ORG a proxy cache of registry U (host[:port][/namespace]), or change the', 'settings given of an existing one (--upstream is needed only to create)'],
    options: PROXY_SETTINGS,
  },
  { command: 'proxycache show', synopsis: 'ORG', summary: ["print ORG's proxy-cache configuration as JSON (never the credentials)"], options: [] },
  { command: 'proxycache delete', synopsis: 'ORG', summary: ["delete ORG's proxy-cache configuration (cached repositories stay)"], options: [] },
  {
    command: 'proxycache validate',
    synopsis: '(ORG | --upstream U) [settings as for set]',
    summary: ['check access to the upstream: prints Valid or Anonymous'],
    options: PROXY_SETTINGS,
  },
  { command: 'proxycache list', synopsis: '', summary: ['list the proxy-cache organizations'], options: [] },
  {
    command: 'mirror set',
    synopsis:
      'NAMESPACE/REPO [--source REF] [--tags GLOB ...] [--robot NS+NAME] [--interval SECONDS]\n[--start DATE] [--timeout SECONDS] [--enable | --disable]\n[--username X (--password P | --password-stdin) | --no-credentials] [--[no-]verify-tls]\n[--http-proxy URL] [--https-proxy URL] [--no-proxy HOSTS]\n[--architecture A ... | --all-architectures] [--[no-]rollback] [--[no-]unsigned-images]',
    summary: ['make REPO a mirror of the repository REF, or change the settings given of its', 'mirror (--source, --tags and --robot are needed only to create it)'],
    options: MIRROR_SETTINGS,
  },
  { command: 'mirror show', synopsis: 'NAMESPACE/REPO', summary: ["print REPO's mirror configuration and its runs as JSON (never the password)"], options: [] },
  {
    command: 'mirror sync',
    synopsis: 'NAMESPACE/REPO [--wait]',
    summary: ['sync REPO as soon as a mirror worker is free; with --wait, follow the run', '(a progress bar on a terminal) and exit 0 only if it succeeded'],
    options: [['--wait', 'wait for the run to end, showing its progress; exit 1 when it fails, is partial or is cancelled']],
  },
  { command: 'mirror cancel', synopsis: 'NAMESPACE/REPO', summary: ['cancel the running or requested sync of REPO (it stops between two tags)'], options: [] },
  { command: 'mirror delete', synopsis: 'NAMESPACE/REPO', summary: ['stop mirroring REPO: it becomes an ordinary repository (its tags stay)'], options: [] },
  {
    command: 'autoprune run',
    synopsis: '[--dry-run]',
    summary: ['apply the auto-prune policies of every namespace now (pruned tags stay', 'restorable); --dry-run only lists what would be pruned'],
    options: [['--dry-run', 'only list what would be pruned; change nothing']],
  },
  {
    command: 'quota set',
    synopsis: 'NAMESPACE LIMIT',
    summary: ['give NAMESPACE (an organization or user) a storage quota of LIMIT (bytes, or', 'a size such as "10 GiB", "500 MiB", "1.5 GB"), or change its limit'],
    options: [],
  },
  { command: 'quota show', synopsis: 'NAMESPACE [--json]', summary: ['print the quota, its limits and the storage NAMESPACE uses'], options: [['--json', "Quay's quota view and the usage, as JSON"]] },
  { command: 'quota delete', synopsis: 'NAMESPACE', summary: ["delete NAMESPACE's quota and its limits"], options: [] },
  { command: 'quota limit add', synopsis: 'NAMESPACE Warning|Reject PERCENT', summary: ['warn (log and audit) or refuse pushes at PERCENT (1-100) of the quota'], options: [] },
  { command: 'quota limit delete', synopsis: 'NAMESPACE LIMIT_ID', summary: ['delete a limit (LIMIT_ID as quota show prints it)'], options: [] },
  {
    command: 'quota recount',
    synopsis: '[--dry-run] [--json]',
    summary: ['recompute every repository and namespace size from the manifests, print', 'the totals that had drifted and correct them (--dry-run: only print)'],
    options: [['--dry-run', 'only print what drifted; correct nothing'], ['--json', 'the report as JSON']],
  },
  {
    command: 'replicate status',
    synopsis: '[NAMESPACE[/REPO]] [--json]',
    summary: ['per storage location: how many blobs (and bytes) of the registry, a namespace', 'or a repository it holds, the copies queued and failing, the last error'],
    options: [['--json', 'the status as JSON (as GET /api/v1/replication/status)']],
  },
  {
    command: 'replicate backfill',
    synopsis: '[--location LOCATION]',
    summary: ['queue a copy of every blob that LOCATION lacks (e.g. a location added', 'later), or without --location every blob missing in any of its targets;', 'the replication workers copy them in the background'],
    options: [['--location L', 'fill only this location, with every blob of the registry']],
  },
  {
    command: 'replicate targets',
    synopsis: 'ORG [LOCATION...] [--clear]',
    summary: ["print the organization's own replication targets, or replace them with the", 'LOCATIONs given (its blobs are copied there besides the registry-wide targets)'],
    options: [['--clear', 'remove its own targets (only the registry-wide ones apply)']],
  },
  {
    command: 'storage adopt',
    synopsis: 'LOCATION [--forget-placements]',
    summary: [
      "make the database take the identity marker of LOCATION's configured storage",
      '(after moving the location: processes refuse storage whose marker is not the',
      "one recorded); run it with the configuration of a process that has the right storage",
    ],
    options: [['--forget-placements', 'also forget which blobs it holds (new, empty storage: then replicate backfill)']],
  },
  {
    command: 'gc',
    synopsis: '[--dry-run] [--json]',
    summary: ['run one garbage-collection pass now (tag history past the time-machine', 'window, then unreferenced manifests and blobs); --dry-run only reports', 'what would go (counts and digests)'],
    options: [['--dry-run', 'only report what a pass would remove'], ['--json', 'the report as JSON']],
  },
  {
    command: 'nodes-config',
    synopsis: '[--format containerd|k3s|rke2|crio|docker] [--url URL] [--ca-file PATH]\n[--org-in-path] [--output-dir DIR]',
    summary: [
      'print node configuration that pulls every registry a proxy organization',
      'answers for through Wharf; one file is printed exactly as it is (remarks go to',
      'standard error), several each after a # comment naming its path',
    ],
    options: [
      ['--format F', 'containerd (default: one hosts.toml per registry), k3s or rke2 (registries.yaml), crio (a registries.conf.d drop-in) or docker (daemon.json)'],
      ['--url URL', 'Wharf as the nodes reach it (default: base_url, or this host and port)'],
      ['--ca-file PATH', 'the CA certificate on the nodes that signs Wharf\'s certificate'],
      ['--org-in-path', 'containerd/k3s/rke2 endpoints name the organization, <URL>/v2/<org> with override_path, instead of relying on ns= routing'],
      ['--output-dir DIR', 'write the files at their node paths under DIR instead of printing them (/: in place, on a machine that is itself a node)'],
    ],
  },
];

const GLOBAL_OPTIONS: Array<[string, string]> = [
  ['-c, --config FILE', 'YAML configuration file (WHARF_* environment variables override it)'],
  ['-h, --help', 'show this help'],
];

/** Every group: the words before the last of a command of two or more words (`org`, `quota`, `quota limit`). */
const GROUPS = new Set(COMMAND_HELP.flatMap((c) => c.command.split(' ').slice(0, -1).map((_, i, words) => words.slice(0, i + 1).join(' '))));

/** True when `words` name a group of commands (`org`, `quota limit`), not a command. */
export function isCommandGroup(words: string): boolean {
  return GROUPS.has(words);
}

const COLUMN = 24;

/** `name` then `text` at the help column (on the next line when `name` is too long), wrapped lines indented. */
function entry(name: string, text: string[]): string {
  const pad = ' '.repeat(COLUMN);
  const first = name.length <= COLUMN - 4 && !name.includes('\n') ? `  ${name.padEnd(COLUMN - 2)}${text[0] ?? ''}` : `  ${name}${text.length ? `\n${pad}${text[0]}` : ''}`;
  return [first, ...text.slice(1).map((t) => `${pad}${t}`)].join('\n');
}

/** `command synopsis`, the synopsis's continuation lines aligned under its first word after `indent` columns. */
function usageLine(c: CommandHelp, indent: number): string {
  return `${c.command}${c.synopsis ? ` ${c.synopsis.replaceAll('\n', `\n${' '.repeat(indent + c.command.length + 1)}`)}` : ''}`;
}

function commandsSection(commands: readonly CommandHelp[]): string {
  return commands.map((c) => entry(usageLine(c, 2), c.summary)).join('\n');
}

/** `text` in lines of at most `width` characters, broken at spaces. */
function wrap(text: string, width = 76): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line];
}

function optionsSection(options: ReadonlyArray<[string, string]>): string {
  return options.map(([flag, text]) => entry(flag, wrap(text))).join('\n');
}

/** `wharf --help`: every command and the global options. */
export function generalHelp(): string {
  return [
    'Usage: wharf <command> [options]',
    '',
    'Commands:',
    commandsSection(COMMAND_HELP),
    '',
    'Options:',
    optionsSection([GLOBAL_OPTIONS[0]!, ['--version', 'print the version'], GLOBAL_OPTIONS[1]!]),
    '',
    'wharf COMMAND --help shows one command and its options.',
    '',
  ].join('\n');
}

/**
 * The help for the words typed: a command's own (synopsis, summary, its options and the global ones),
 * a group's list of commands, or the general help when the words name neither.
 */
export function helpFor(words: readonly string[]): string {
  for (let n = Math.min(words.length, 3); n > 0; n--) {
    const typed = words.slice(0, n).join(' ');
    const command = COMMAND_HELP.find((c) => c.command === typed);
    if (command) {
      return [
        `Usage: wharf ${usageLine(command, 'Usage: wharf '.length)}`,
        '',
        ...command.summary.map((l, i, all) => `${i === 0 ? l.charAt(0).toUpperCase() + l.slice(1) : l}${i === all.length - 1 ? '.' : ''}`),
        '',
        'Options:',
        optionsSection([...command.options, ...GLOBAL_OPTIONS]),
        '',
      ].join('\n');
    }
    if (GROUPS.has(typed)) {
      return [
        `Usage: wharf ${typed} <command> [options]`,
        '',
        'Commands:',
        commandsSection(COMMAND_HELP.filter((c) => c.command.startsWith(`${typed} `))),
        '',
        `wharf ${typed} COMMAND --help shows one command and its options.`,
        '',
      ].join('\n');
    }
  }
  return generalHelp();
}
