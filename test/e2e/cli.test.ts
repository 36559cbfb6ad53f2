/**
 * The account commands of the real `wharf` CLI (`user create|passwd`, `org create`, `robot create`)
 * against a temporary SQLite data directory, and the first-start bootstrap of `wharf serve`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAccountServices } from '../../src/main/compose.js';
import { openDatabase } from '../../src/db/connect.js';
import { loadConfig } from '../../src/config/load.js';
import { RepositoryStore } from '../../src/db/repository-store.js';
import type { RepositoryName } from '../../src/oci/reference.js';
import { RepositoryService } from '../../src/registry/repositories.js';
import { startWharf } from '../helpers/wharf-process.js';
import { runWharf, type CliResult } from '../helpers/wharf-cli.js';


function wharf(dataDir: string, args: string[], input?: string): Promise<CliResult> {
  return runWharf(dataDir, args, { input });
}

/** Checks credentials the way the registry does, on the same database. */
async function authenticates(dataDir: string, username: string, secret: string): Promise<boolean> {
  const db = await openDatabase({ url: `sqlite:${join(dataDir, 'wharf.db')}`, dataDir });
  try {
    const accounts = createAccountServices(db, loadConfig({ env: {}, overrides: { data_dir: dataDir } }));
    return (await accounts.authenticator.authenticate(username, secret)) !== undefined;
  } finally {
    await db.close();
  }
}

describe('wharf account commands', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('user create with --password, --superuser and --email; user passwd from stdin', async () => {
    const created = await wharf(dir, ['user', 'create', 'alice', '--password', 'alice-password', '--superuser', '--email', 'alice@example.com']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /created superuser alice/);
    assert.equal(created.stdout, '');
    assert.ok(await authenticates(dir, 'alice', 'alice-password'));

    const changed = await wharf(dir, ['user', 'passwd', 'alice', '--password-stdin'], 'alice-new-password\n');
    assert.equal(changed.code, 0, changed.stderr);
    assert.ok(await authenticates(dir, 'alice', 'alice-new-password'));
    assert.equal(await authenticates(dir, 'alice', 'alice-password'), false);
  });

  it('user create without a password prints a generated one once, alone on stdout', async () => {
    const res = await wharf(dir, ['user', 'create', 'bob']);
    assert.equal(res.code, 0, res.stderr);
    const password = res.stdout.trim();
    assert.match(password, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(await authenticates(dir, 'bob', password));
  });

  it('org create and robot create (token printed once)', async () => {
    const org = await wharf(dir, ['org', 'create', 'acme', '--owner', 'alice', '--email', 'ops@acme.example']);
    assert.equal(org.code, 0, org.stderr);
    const robot = await wharf(dir, ['robot', 'create', 'acme+ci', '--description', 'CI pushes']);
    assert.equal(robot.code, 0, robot.stderr);
    const token = robot.stdout.trim();
    assert.ok(token.length >= 40);
    assert.ok(await authenticates(dir, 'acme+ci', token));

    const pusher = await wharf(dir, ['robot', 'create', 'acme+pusher', '--repo', 'acme/app', '--repo', 'acme/web', '--role', 'write']);
    assert.equal(pusher.code, 0, pusher.stderr);
    assert.match(pusher.stderr, /write access to acme\/app, acme\/web/);
    const db = await openDatabase({ url: `sqlite:${join(dir, 'wharf.db')}`, dataDir: dir });
    try {
      const config = loadConfig({ env: {}, overrides: { data_dir: dir } });
      const repositories = new RepositoryService(new RepositoryStore(db.db, db.dialect));
      const accounts = createAccountServices(db, config, repositories);
      const repo = await repositories.details('acme/app' as RepositoryName);
      assert.ok(repo, 'the repository was created');
      assert.equal(repo.visibility, 'private');
      assert.equal(await accounts.grants.getRepositoryPermission(repo, { kind: 'robot', name: 'acme+pusher' }), 'write');
    } finally {
      await db.close();
    }
  });

  it('refuses bad input with exit code 2, and missing or conflicting accounts with 1', async () => {
    const cases: Array<[string[], number, RegExp, string?]> = [
      [['user', 'create', 'Bad Name', '--password', 'long-enough'], 2, /invalid user or organization name/],
      [['user', 'create', 'carol', '--password', 'short'], 2, /password must be 8/],
      [['user', 'create', 'carol', '--password', 'long-enough', '--password-stdin'], 2, /not both/],
      [['user', 'create'], 2, /exactly one name/],
      [['user', 'create', 'carol', '--owner', 'x'], 2, /does not take --owner/],
      [['user', 'create', 'carol', '--bogus'], 2, /unknown option/i],
      [['user', 'passwd', 'alice'], 2, /--password or --password-stdin/],
      [['robot', 'create', 'no-plus-sign'], 2, /<namespace>\+<name>/],
      [['robot', 'create', 'acme+Bad'], 2, /robot/i],
      [['robot', 'create', 'acme+x1', '--repo', 'acme/app', '--role', 'owner'], 2, /--role is read, write or admin/],
      [['robot', 'create', 'acme+x2', '--repo', 'other/app'], 2, /give a repository of acme/],
      [['robot', 'create', 'acme+x3', '--role', 'read'], 2, /--role needs --repo/],
      [['user', 'create', 'alice', '--password', 'long-enough'], 1, /already taken/],
      [['user', 'passwd', 'nobody', '--password', 'long-enough'], 1, /not found/],
      [['org', 'create', 'other', '--owner', 'nobody'], 1, /not found/],
      [['robot', 'create', 'nowhere+ci'], 1, /not found/],
    ];
    for (const [args, code, message] of cases) {
      const res = await wharf(dir, args);
      assert.equal(res.code, code, `wharf ${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message, args.join(' '));
      assert.equal(res.stdout, '', args.join(' '));
    }
  });
});

describe('wharf serve bootstrap', () => {
  it('creates the superuser on the first start and prints its generated password once, never in the log', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-bootstrap-'));
    try {
      const first = await startWharf({ dataDir, organizations: [], env: { WHARF_AUTH_ADMIN_PASSWORD: undefined, WHARF_ADMIN_PASSWORD: undefined, WHARF_LOG_LEVEL: 'info' } });
      let password: string | undefined;
      try {
        // The block goes to the terminal (stderr) right after the server starts listening; wait for it (a readiness wait).
        for (let i = 0; i < 200 && !/Password: +\S+/.test(first.stderr()); i++) await new Promise((r) => setTimeout(r, 25));
        const out = first.stderr();
        assert.match(out, new RegExp(`URL: +${first.url.replace(/[.]/g, '\\.')}`));
        assert.match(out, /Username: +admin/);
        password = /Password: +(\S+)/.exec(out)?.[1];
        assert.ok(password && password.length >= 32);
        assert.ok(first.stdout().split('\n').some((l) => l.startsWith('{')), 'JSON log lines were written');
        assert.ok(!first.stdout().includes(password), 'the password is not in the log (stdout)');
        assert.doesNotMatch(first.stdout(), /Password:/, 'the banner is not in the log');
        const res = await fetch(`${first.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
        assert.equal(res.status, 200);
      } finally {
        await first.stop({ keepData: true });
      }
      const second = await startWharf({ dataDir, organizations: [], env: { WHARF_AUTH_ADMIN_PASSWORD: undefined, WHARF_ADMIN_PASSWORD: undefined } });
      try {
        assert.doesNotMatch(second.output(), /Password:/);
        const res = await fetch(`${second.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
        assert.equal(res.status, 200, 'the same signing key and account after a restart');
      } finally {
        await second.stop({ keepData: true });
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('uses WHARF_ADMIN_PASSWORD (the alias) for the first superuser', async () => {
    const w = await startWharf({ organizations: [], env: { WHARF_AUTH_ADMIN_PASSWORD: undefined, WHARF_ADMIN_PASSWORD: 'alias-password-1', WHARF_AUTH_ADMIN_USERNAME: 'root' } });
    try {
      assert.doesNotMatch(w.output(), /Password:/);
      const res = await fetch(`${w.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from('root:alias-password-1').toString('base64')}` } });
      assert.equal(res.status, 200);
    } finally {
      await w.stop();
    }
  });
});
