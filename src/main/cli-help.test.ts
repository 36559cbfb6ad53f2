import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ACCOUNT_COMMANDS } from './account-commands.js';
import { AUTOPRUNE_COMMANDS, AUTOPRUNE_OPTIONS } from './autoprune-commands.js';
import { COMMAND_HELP, generalHelp, helpFor, isCommandGroup } from './cli-help.js';
import { GC_OPTIONS } from './gc-command.js';
import { NODES_CONFIG_OPTIONS } from './nodes-config.js';
import { PROXYCACHE_COMMANDS, PROXYCACHE_OPTIONS } from './proxycache-commands.js';
import { QUOTA_COMMANDS, QUOTA_OPTIONS } from './quota-commands.js';
import { MIRROR_COMMANDS, MIRROR_OPTIONS } from './mirror-commands.js';
import { REPLICATE_COMMANDS } from './replicate-commands.js';
import { STORAGE_COMMANDS, STORAGE_OPTIONS } from './storage-commands.js';

/** Every command cli.ts dispatches (`quota limit` takes add or delete as its next word). */
const DISPATCHED = [
  'serve',
  'config check',
  'gc',
  'nodes-config',
  ...ACCOUNT_COMMANDS,
  ...PROXYCACHE_COMMANDS,
  ...AUTOPRUNE_COMMANDS,
  ...MIRROR_COMMANDS,
  ...REPLICATE_COMMANDS,
  ...STORAGE_COMMANDS,
  ...QUOTA_COMMANDS.flatMap((c) => (c === 'quota limit' ? ['quota limit add', 'quota limit delete'] : [c])),
];

/** `--name`, or `--[no-]name` for a boolean flag that has a boolean `no-` twin. */
function flagsOf(options: Record<string, { type: string }>): string[] {
  const paired = (n: string) => options[n]?.type === 'boolean' && options[`no-${n}`]?.type === 'boolean';
  const names = Object.keys(options);
  return names.filter((n) => !(n.startsWith('no-') && paired(n.slice(3)))).map((n) => (paired(n) ? `--[no-]${n}` : `--${n}`));
}

describe('wharf help', () => {
  it('has one entry for every command the CLI runs, and no other', () => {
    assert.deepEqual(COMMAND_HELP.map((c) => c.command).sort(), [...DISPATCHED].sort());
  });

  it("a command's help lists the options it takes and the global ones, and nothing of other commands", () => {
    const cases: Array<[string, string[]]> = [
      ['serve', ['--tls-self-signed']],
      ['gc', flagsOf(GC_OPTIONS)],
      ['autoprune run', flagsOf(AUTOPRUNE_OPTIONS)],
      ['quota recount', flagsOf(QUOTA_OPTIONS)],
      ['nodes-config', flagsOf(NODES_CONFIG_OPTIONS)],
      ['proxycache set', [...flagsOf(PROXYCACHE_OPTIONS), '--password', '--password-stdin']],
      ['mirror set', [...flagsOf(Object.fromEntries(Object.entries(MIRROR_OPTIONS).filter(([k]) => k !== 'wait'))), '--username', '--password', '--password-stdin', '--no-credentials']],
      ['mirror sync', ['--wait']],
      ['replicate status', ['--json']],
      ['replicate backfill', ['--location']],
      ['replicate targets', ['--clear']],
      ['storage adopt', flagsOf(STORAGE_OPTIONS)],
      ['robot create', ['--description', '--repo', '--role']],
      ['user create', ['--password', '--password-stdin', '--superuser', '--email']],
    ];
    for (const [command, flags] of cases) {
      const text = helpFor(command.split(' '));
      assert.ok(text.startsWith(`Usage: wharf ${command}`), text);
      const listed = text
        .split('\n')
        .filter((l) => l.startsWith('  -'))
        .flatMap((l) => l.trim().split(/ {2,}/)[0]!.match(/--[\w[\]-]+/g) ?? []);
      assert.deepEqual(listed.sort(), [...flags, '--config', '--help'].sort(), command);
      for (const other of COMMAND_HELP) if (other.command !== command) assert.doesNotMatch(text, new RegExp(`^ {2}${other.command} `, 'm'), `${command} help names ${other.command}`);
    }
  });

  it("a group's help lists exactly its commands; other words fall back to the general help", () => {
    for (const group of ['user', 'org', 'robot', 'proxycache', 'mirror', 'autoprune', 'quota', 'quota limit', 'config']) {
      assert.ok(isCommandGroup(group), group);
      const lines = helpFor(group.split(' ')).split('\n').filter((l) => /^ {2}[a-z]/.test(l));
      const listed = lines.map((l) => DISPATCHED.filter((c) => `${l.trim()} `.startsWith(`${c} `)).sort((a, b) => b.length - a.length)[0]);
      assert.deepEqual(listed, DISPATCHED.filter((c) => c.startsWith(`${group} `)), group);
    }
    for (const notGroup of ['serve', 'gc', 'org create', 'bogus', '']) assert.equal(isCommandGroup(notGroup), false, notGroup);
    assert.equal(helpFor(['bogus']), generalHelp());
    assert.match(generalHelp(), /^ {2}--version +print the version$/m);
  });
});
