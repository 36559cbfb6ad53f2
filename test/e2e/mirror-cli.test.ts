/**
 * `wharf mirror set|show|sync|cancel|delete` of the real CLI on SQLite and PostgreSQL, on a nested
 * repository: create and change a mirror (credentials from stdin, never shown), refusals with their
 * exit codes, and `sync --wait` following a run through the row a mirror worker reports to (this test
 * plays the worker's part on the database: it claims the mirror, reports progress and releases it),
 * exiting 0 on SUCCESS and 1 on PARTIAL.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../src/db/connect.js';
import { createPostgresDatabase, DIALECTS } from '../helpers/databases.js';
import { waitFor } from '../helpers/e2e-utils.js';
import { runWharf } from '../helpers/wharf-cli.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const REPO = 'acme/team/app';

for (const dialect of DIALECTS) {
  describe(`wharf mirror commands (${dialect})`, () => {
    let dir: string;
    let db: DatabaseHandle;
    let drop: (() => Promise<void>) | undefined;
    const env: Record<string, string | undefined> = {};
    const wharf = (args: string[], input?: string) => runWharf(dir, args, { env, input, timeoutMs: 60_000 });
    const ok = async (args: string[], input?: string) => {
      const res = await wharf(args, input);
      assert.equal(res.code, 0, `wharf ${args.join(' ')}: ${res.stderr}`);
      return res;
    };
    const fails = async (args: string[], code: number, re: RegExp) => {
      const res = await wharf(args);
      assert.equal(res.code, code, `wharf ${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, re);
    };
    const row = async () => {
      const repo = await db.db.selectFrom('repositories as r').innerJoin('namespaces as n', 'n.id', 'r.namespace_id').select(['r.id', 'r.state']).where('n.name', '=', 'acme').where('r.name', '=', 'team/app').executeTakeFirstOrThrow();
      return { repo, mirror: await db.db.selectFrom('repository_mirrors').selectAll().where('repository_id', '=', repo.id).executeTakeFirst() };
    };
    const report = async (values: Record<string, unknown>) => {
      const { repo } = await row();
      await db.db.updateTable('repository_mirrors').set(values as never).where('repository_id', '=', repo.id).execute();
    };

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'wharf-mirrorcli-'));
      env.WHARF_PROXY_CACHE_SECRET_KEY = undefined;
      if (dialect === 'postgres') {
        const pg = await createPostgresDatabase();
        env.WHARF_DB_URL = pg.url;
        drop = pg.drop;
      }
      await ok(['user', 'create', 'alice', '--password', 'alice-password']);
      await ok(['org', 'create', 'acme', '--owner', 'alice']);
      await ok(['robot', 'create', 'acme+mirrorbot']);
      await ok(['robot', 'create', 'acme+builder', '--repo', REPO]);
      db = await openDatabase({ url: env.WHARF_DB_URL ?? `sqlite:${join(dir, 'wharf.db')}`, dataDir: dir });
    });
    after(async () => {
      await db?.close();
      await drop?.();
      await rm(dir, { recursive: true, force: true });
    });

    it('set creates the mirror (credentials from stdin); show prints the API view without them', async () => {
      const set = await ok(['mirror', 'set', REPO, '--source', '203.0.113.10:5000/library/app', '--tags', 'v1*,latest', '--tags', 'v2.[0-9]', '--robot', 'acme+mirrorbot', '--interval', '6h', '--start', '2026-01-01T00:00:00Z', '--username', 'puller', '--password-stdin', '--architecture', 'amd64', '--architecture', 'arm64'], 'puller-secret\n');
      assert.match(set.stderr, /acme\/team\/app is now a mirror: from 203\.0\.113\.10:5000\/library\/app; tags v1\* latest v2\.\[0-9\]; every 21600 s from 2026-01-01T00:00:00Z; robot acme\+mirrorbot; enabled; as puller; only amd64, arm64/);
      const shown = await ok(['mirror', 'show', REPO]);
      assert.ok(!shown.stdout.includes('puller-secret'));
      const view = JSON.parse(shown.stdout) as Record<string, any>;
      assert.equal(view.repository, REPO);
      assert.equal(view.sync_status, 'NEVER_RUN');
      assert.equal(view.external_registry_username, 'puller');
      assert.deepEqual(view.root_rule.rule_value, ['v1*', 'latest', 'v2.[0-9]']);
      const { repo, mirror } = await row();
      assert.equal(repo.state, 'MIRROR');
      assert.match(String(mirror?.password_enc), /^v1:/);
    });

    it('set on a mirror changes only the settings given', async () => {
      const res = await ok(['mirror', 'set', REPO, '--disable', '--no-verify-tls', '--rollback', '--https-proxy', 'http://proxy.corp:3128']);
      assert.match(res.stderr, /updated the mirror of acme\/team\/app: .*disabled; as puller; TLS not verified; only amd64, arm64; rolled back on failure/);
      const view = JSON.parse((await ok(['mirror', 'show', REPO])).stdout) as Record<string, any>;
      assert.deepEqual(view.external_registry_config, { verify_tls: false, unsigned_images: false, proxy: { http_proxy: null, https_proxy: 'http://proxy.corp:3128', no_proxy: null } });
      assert.equal(view.sync_interval, 21_600);
    });

    it('refuses bad input (2), unknown repositories and mirrors (1)', async () => {
      await fails(['mirror', 'set', REPO, '--tags', 'a b'], 2, /never appears in a tag/);
      await fails(['mirror', 'set', REPO, '--source', '127.0.0.1:5000/x/y'], 2, /^wharf: The provided registry location is not allowed: /);
      await fails(['mirror', 'set', REPO, '--interval', '0'], 2, /sync_interval must be a whole number of seconds above 0/);
      await fails(['mirror', 'set', REPO, '--enable', '--disable'], 2, /give --enable or --disable, not both/);
      await fails(['mirror', 'set', 'acme/other', '--source', '203.0.113.10/a/b'], 1, /repository acme\/other not found/);
      await fails(['mirror', 'show', 'acme'], 2, /no repository name/);
      await fails(['mirror', 'sync', REPO, '--source', 'x/y'], 2, /does not take --source/);
      await fails(['mirror', 'cancel', REPO], 1, /no sync of acme\/team\/app is running or asked for/);
    });

    /** Runs `mirror sync REPO --wait`, calling `step(stderrSoFar)` as its output grows. */
    const syncWait = (steps: Array<[RegExp, () => Promise<void>]>, opts: { terminal?: boolean } = {}) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done, reject) => {
        const argv = [process.execPath, '--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), 'mirror', 'sync', REPO, '--wait'];
        // On a terminal: `script` runs the command on a pseudo-terminal (its output, both streams, on stdout).
        const [bin, ...args] = opts.terminal ? ['script', '-qefc', argv.map((a) => `'${a}'`).join(' '), '/dev/null'] : argv;
        const child = spawn(bin!, args, {
          cwd: repoRoot,
          env: Object.fromEntries(Object.entries({ ...process.env, WHARF_DATA_DIR: dir, WHARF_LOG_LEVEL: 'warn', WHARF_DB_URL: undefined, ...env }).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
        });
        let stdout = '';
        let stderr = '';
        let next = 0;
        let busy = false;
        const advance = () => {
          if (busy || next >= steps.length || !steps[next]![0].test(opts.terminal ? stdout : stderr)) return;
          busy = true;
          steps[next++]![1]().then(
            () => {
              busy = false;
              advance();
            },
            (err: unknown) => {
              child.kill();
              reject(err);
            },
          );
        };
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          advance();
        });
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          advance();
        });
        child.on('error', reject);
        // A step that never comes would leave the command waiting: end it so that the test fails.
        const stop = setTimeout(() => child.kill('SIGKILL'), 120_000);
        child.on('close', () => clearTimeout(stop));
        child.on('close', (code) => (next === steps.length ? done({ code, stdout, stderr }) : reject(new Error(`exited ${code} after ${next} steps: ${stderr}`))));
      });

    it('sync --wait follows the run the worker reports and exits 0 on SUCCESS', async () => {
      const started = Date.now();
      const res = await syncWait([
        [
          /queued; waiting for a mirror worker/,
          async () => {
            assert.equal((await row()).mirror?.sync_status, 'SYNC_NOW', 'also a disabled mirror syncs when asked');
            await report({ sync_status: 'SYNCING', sync_expires_at: started + 60_000, run_started_at: started, run_tags_total: 3, run_tags_done: 1, run_bytes: 1024 * 1024, run_current_tag: 'v1.1' });
          },
        ],
        [
          /1\/3 tags, 1\.0 MiB, v1\.1\n/,
          async () => {
            await report({ run_tags_done: 2, run_bytes: 2 * 1024 * 1024, run_current_tag: 'v2.0' });
          },
        ],
        [
          /2\/3 tags, 2\.0 MiB, v2\.0\n/,
          async () => {
            await report({ sync_status: 'SUCCESS', sync_expires_at: null, run_started_at: null, last_started_at: started, last_finished_at: started + 1, last_outcome: 'SUCCESS', last_message: '3 tags mirrored', last_bytes: 3 });
          },
        ],
      ]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, 'SUCCESS: 3 tags mirrored\n');
    });

    it('sync --wait on a terminal draws a progress bar in place', async () => {
      const started = Date.now();
      const res = await syncWait(
        [
          [/queued; waiting for a mirror worker/, async () => report({ sync_status: 'SYNCING', sync_expires_at: started + 60_000, run_started_at: started, run_tags_total: 2, run_tags_done: 1, run_bytes: 1024, run_current_tag: 'v2' })],
          [/\r\x1b\[K\[#{12}\.{12}\] 1\/2 tags, 1\.0 KiB, v2/, async () => report({ sync_status: 'SUCCESS', last_started_at: started, last_finished_at: started + 3, last_outcome: 'SUCCESS', last_message: 'done', last_bytes: 1024 })],
        ],
        { terminal: true },
      );
      assert.equal(res.code, 0, res.stdout);
      assert.match(res.stdout, /\r\x1b\[KSUCCESS: done\r?\n$/);
    });

    it('sync --wait follows a sync that is running already instead of asking for another', async () => {
      const started = Date.now();
      await report({ sync_status: 'SYNCING', sync_expires_at: started + 60_000, run_started_at: started, run_tags_total: 2, run_tags_done: 0, run_bytes: 0, run_current_tag: 'latest' });
      const res = await syncWait([
        [/a sync of acme\/team\/app is running already; following it\n(.|\n)*0\/2 tags, 0\.0 Byte, latest\n/, async () => {
          await report({ sync_status: 'SUCCESS', last_started_at: started, last_finished_at: started + 2, last_outcome: 'SUCCESS', last_message: '2 tags mirrored', last_bytes: 0 });
        }],
      ]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, 'SUCCESS: 2 tags mirrored\n');
    });

    it('sync --wait exits 1 when the run is partial; sync without --wait only asks', async () => {
      const res = await syncWait([
        [
          /queued/,
          async () => {
            await report({ sync_status: 'FAIL', last_started_at: Date.now(), last_finished_at: Date.now() + 5, last_outcome: 'PARTIAL', last_message: 'v2.0 failed and kept its previous target', last_bytes: 0 });
          },
        ],
      ]);
      assert.equal(res.code, 1, res.stderr);
      assert.equal(res.stdout, 'PARTIAL: v2.0 failed and kept its previous target\n');
      await ok(['mirror', 'sync', REPO]);
      await waitFor('SYNC_NOW', async () => (await row()).mirror?.sync_status === 'SYNC_NOW');
    });

    it('cancel, then delete: the repository is ordinary again and its robot keeps its grant', async () => {
      await ok(['mirror', 'cancel', REPO]);
      assert.deepEqual([(await row()).mirror?.sync_status, (await row()).mirror?.sync_retries_remaining], ['CANCEL', 0]);
      const res = await ok(['mirror', 'delete', REPO]);
      assert.match(res.stderr, /acme\/team\/app is no longer a mirror; its tags stay/);
      const { repo, mirror } = await row();
      assert.deepEqual([repo.state, mirror], ['NORMAL', undefined]);
      await fails(['mirror', 'show', REPO], 1, /has no mirror configuration/);
      const kinds = await db.db.selectFrom('audit_log').select(['kind', 'actor_name']).where('kind', 'in', ['repo_mirror_config_changed', 'delete_repo_mirror']).execute();
      assert.ok(kinds.length >= 6 && kinds.every((k) => k.actor_name === 'cli'), JSON.stringify(kinds));
    });
  });
}
