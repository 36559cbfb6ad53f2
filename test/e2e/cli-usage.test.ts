/**
 * The real `wharf` command as a user meets it: `--version`, a command group without its subcommand,
 * `COMMAND --help`, and secrets printed once (alone on stdout, one line with its newline, so `$(…)` and
 * `read` both get them whole). Each run starts a process, so groups and commands are a sample of
 * every shape (one word, two, three); src/main/cli-help.test.ts checks the text of every one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COMMAND_HELP } from '../../src/main/cli-help.js';
import { runWharf, type CliResult } from '../helpers/wharf-cli.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');

describe('wharf usage: version, help per group and per command, secrets printed once', () => {
  let dir: string;
  const wharf = (args: string[], input?: string): Promise<CliResult> => runWharf(dir, args, { input });
  /** Runs every argument list, a few at a time. */
  const all = async (runs: string[][]): Promise<CliResult[]> => {
    const results: CliResult[] = [];
    for (let i = 0; i < runs.length; i += 4) results.push(...(await Promise.all(runs.slice(i, i + 4).map((a) => wharf(a)))));
    return results;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-cli-usage-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('--version prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const res = await wharf(['--version']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `wharf ${version}\n`);
  });

  it('a command group without a subcommand lists its subcommands (exit 2); with --help too (exit 0)', async () => {
    const groups = ['org', 'quota', 'quota limit', 'config'];
    const bare = await all(groups.map((g) => g.split(' ')));
    const helped = await all(groups.map((g) => [...g.split(' '), '--help']));
    for (const [i, group] of groups.entries()) {
      const members = COMMAND_HELP.filter((c) => c.command.startsWith(`${group} `)).map((c) => c.command);
      assert.ok(members.length > 0, group);
      for (const [res, code] of [[bare[i]!, 2], [helped[i]!, 0]] as const) {
        assert.equal(res.code, code, `wharf ${group}: ${res.stderr}`);
        assert.ok(res.stdout.startsWith(`Usage: wharf ${group} <command>`), `wharf ${group}:\n${res.stdout}`);
        const listed = res.stdout.split('\n').filter((l) => /^ {2}[a-z]/.test(l));
        assert.equal(listed.length, members.length, `wharf ${group} lists only its commands:\n${res.stdout}`);
        for (const [j, m] of members.entries()) assert.ok(`${listed[j]!.trim()} `.startsWith(`${m} `), `wharf ${group}: ${listed[j]} is ${m}`);
      }
    }
    const unknown = await wharf(['org', 'bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^wharf: unknown command "org bogus"\n\nUsage: wharf org <command>/);
  });

  it('COMMAND --help shows that command and its options only', async () => {
    const commands = COMMAND_HELP.filter((c) => ['serve', 'robot create', 'quota limit add', 'nodes-config'].includes(c.command));
    const results = await all(commands.map((c) => [...c.command.split(' '), '--help']));
    for (const [i, c] of commands.entries()) {
      const res = results[i]!;
      assert.equal(res.code, 0, `${c.command}: ${res.stderr}`);
      assert.ok(res.stdout.startsWith(`Usage: wharf ${c.command}`), `${c.command}:\n${res.stdout}`);
      assert.doesNotMatch(res.stdout, /^Commands:/m, c.command);
      for (const [flag] of c.options) assert.ok(res.stdout.includes(`  ${flag}`), `${c.command} --help shows ${flag}`);
    }
    const serve = results[commands.findIndex((c) => c.command === 'serve')]!.stdout;
    assert.match(serve, /--tls-self-signed HOST/);
    for (const foreign of ['--format', '--password', '--dry-run', '--upstream', 'nodes-config', 'robot create']) assert.ok(!serve.includes(foreign), `serve --help shows ${foreign}`);
  });

  it('a generated password and a robot token are printed alone, as one line ending in a newline', async () => {
    assert.equal((await wharf(['user', 'create', 'admin', '--password', 'admin-password'])).code, 0);
    assert.equal((await wharf(['org', 'create', 'acme'])).code, 0);
    const user = await wharf(['user', 'create', 'bob']);
    assert.equal(user.code, 0, user.stderr);
    assert.match(user.stdout, /^[A-Za-z0-9_-]{43}\n$/);
    const robot = await wharf(['robot', 'create', 'acme+ci']);
    assert.equal(robot.code, 0, robot.stderr);
    assert.match(robot.stdout, /^[A-Za-z0-9_-]{32,}\n$/);
    assert.match(robot.stderr, /its token follows \(its administrators can read it again through the API\)\n$/);
  });
});

describe('bin/wharf.js in a checkout that cannot run yet', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-unbuilt-'));
    await mkdir(join(dir, 'bin'));
    await copyFile(join(repoRoot, 'bin', 'wharf.js'), join(dir, 'bin', 'wharf.js'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const run = (): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((done, fail) => {
      execFile(process.execPath, [join(dir, 'bin', 'wharf.js'), '--version'], (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return fail(err);
        done({ code: err ? (err.code as number) : 0, stdout, stderr });
      });
    });

  it('never built: one line naming the build command, exit 1, no stack trace', async () => {
    const res = await run();
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr, `wharf: not built yet: run \`npm run build\` in ${dir} (\`npm start\` builds and serves)\n`);
  });

  it('built but a dependency missing: one line naming npm ci, exit 1', async () => {
    await mkdir(join(dir, 'dist', 'main'), { recursive: true });
    await writeFile(join(dir, 'dist', 'main', 'wharf.js'), "import 'wharf-no-such-package';\n");
    const res = await run();
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^wharf: a dependency is missing \(.*wharf-no-such-package.*\): run `npm ci` in .*\n$/);
    assert.equal(res.stderr.split('\n').length, 2);
  });
});
