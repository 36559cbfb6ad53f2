/**
 * The first superuser's generated password as an operator meets it: shown on the terminal (stderr) and
 * never in the JSON log, kept in `<data_dir>/initial-admin-password` (0600) and named on every start
 * until it is changed (CLI or API), so that a first start that dies on a busy port still lets the
 * operator in. The banner's commands are run as printed, with real podman and skopeo.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCommand, waitFor } from '../helpers/e2e-utils.js';
import { createPodmanStore, runPodman } from '../helpers/podman.js';
import { SKOPEO } from '../helpers/skopeo.js';
import { withAccounts } from '../helpers/wharf-accounts.js';
import { runWharf } from '../helpers/wharf-cli.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

/** No configured password: the first start generates one. */
const GENERATE = { WHARF_AUTH_ADMIN_PASSWORD: undefined, WHARF_ADMIN_PASSWORD: undefined };

async function loginStatus(w: WharfProcess, password: string): Promise<number> {
  const res = await fetch(`${w.url}/v2/`, { headers: { authorization: basicAuth({ username: 'admin', password }) } });
  await res.arrayBuffer();
  return res.status;
}

/** The banner's lines that start with `command` (indented as printed), split into words. */
function printed(banner: string, command: RegExp): string[][] {
  return banner
    .split('\n')
    .filter((l) => command.test(l.trim()))
    .map((l) => l.trim().split(/\s+/));
}

async function occupy(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

describe('first start and the generated superuser password', () => {
  it('a first start that dies on a busy port, then a good start: the banner names the password file, its commands log in as printed, user passwd deletes it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-first-'));
    const podman = await createPodmanStore();
    const skopeoAuth = join(dataDir, '..', `skopeo-auth-${process.pid}-${Date.now()}.json`);
    try {
      const busy = await occupy();
      let failed;
      try {
        failed = await runWharf(dataDir, ['serve'], { env: { ...GENERATE, WHARF_HOST: '127.0.0.1', WHARF_PORT: String(busy.port) }, timeoutMs: 60_000 });
      } finally {
        busy.server.close();
      }
      assert.equal(failed.signal, null, `wharf serve must refuse to start; output:\n${failed.stderr}`);
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /^wharf: cannot listen on 127\.0\.0\.1:\d+: the port is already in use/);
      assert.equal(failed.stderr.trimEnd().split('\n').length, 1, `one line:\n${failed.stderr}`);
      const file = join(dataDir, 'initial-admin-password');
      assert.ok(existsSync(file), 'the superuser was created with its password kept in the data directory');

      const w = await startWharf({ dataDir, port: busy.port, organizations: [], env: GENERATE });
      let password: string;
      try {
        await waitFor('the banner', () => w.stderr().includes('======\n'));
        const banner = w.stderr();
        assert.ok(banner.includes(file), `the banner names ${file}:\n${banner}`);
        assert.equal(statSync(file).mode & 0o777, 0o600, 'readable by its owner only');
        password = readFileSync(file, 'utf8').trim();
        assert.equal(await loginStatus(w, password), 200);
        assert.ok(!w.stdout().includes(password) && !w.stdout().includes('initial-admin-password'), 'nothing of it in the JSON log');

        // The login commands work as printed (the password given on stdin instead of at the prompt).
        const podmanLogin = printed(banner, /^podman login /);
        const skopeoLogin = printed(banner, /^skopeo login /);
        assert.deepEqual(podmanLogin, [['podman', 'login', '--tls-verify=false', w.host, '--username', 'admin']]);
        assert.deepEqual(skopeoLogin, [['skopeo', 'login', '--tls-verify=false', w.host, '--username', 'admin']]);
        await runPodman(podman, [...podmanLogin[0]!.slice(1), '--password-stdin'], { input: password });
        const sk = await runCommand(SKOPEO, [...skopeoLogin[0]!.slice(1), '--authfile', skopeoAuth, '--password-stdin'], { input: password, timeoutMs: 60_000 });
        assert.equal(sk.code, 0, sk.stderr);

        // The change command names the CLI as it runs from the checkout; the same CLI deletes the file.
        assert.deepEqual(printed(banner, /user passwd/), [['node', 'bin/wharf.js', 'user', 'passwd', 'admin', '--password-stdin']]);
        const changed = await runWharf(dataDir, ['user', 'passwd', 'admin', '--password-stdin'], { input: 'a-new-admin-password\n' });
        assert.equal(changed.code, 0, changed.stderr);
        assert.equal(existsSync(file), false, 'changing the password deletes the file');
        assert.equal(await loginStatus(w, 'a-new-admin-password'), 200);
      } finally {
        await w.stop({ keepData: true });
      }

      const again = await startWharf({ dataDir, organizations: [], env: GENERATE });
      try {
        assert.equal(await loginStatus(again, 'a-new-admin-password'), 200);
        assert.equal(await loginStatus(again, password), 401);
        assert.doesNotMatch(again.stderr(), /initial-admin-password|Password:/, 'nothing more to show');
      } finally {
        await again.stop({ keepData: true });
      }
    } finally {
      await podman.cleanup();
      await rm(skopeoAuth, { force: true });
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('the file goes when the password is changed through the API, or elsewhere (found stale at the next start)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-first-'));
    const file = join(dataDir, 'initial-admin-password');
    try {
      const w = await startWharf({ dataDir, organizations: [], env: GENERATE });
      try {
        await waitFor('the banner', () => /Password: +\S+/.test(w.stderr()));
        const password = /Password: +(\S+)/.exec(w.stderr())![1]!;
        assert.equal(readFileSync(file, 'utf8').trim(), password);
        const res = await fetch(`${w.url}/api/v1/superuser/users/admin`, {
          method: 'PUT',
          headers: { authorization: basicAuth({ username: 'admin', password }), 'content-type': 'application/json' },
          body: JSON.stringify({ password: 'api-changed-password' }),
        });
        assert.equal(res.status, 200, await res.text());
        assert.equal(existsSync(file), false, 'the API change deleted the file');
      } finally {
        await w.stop({ keepData: true });
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }

    // A change the data directory's processes never see (another replica, say): the next start finds the file stale.
    const dir2 = await mkdtemp(join(tmpdir(), 'wharf-first-'));
    const elsewhere = await mkdtemp(join(tmpdir(), 'wharf-elsewhere-'));
    try {
      const w = await startWharf({ dataDir: dir2, organizations: [], env: GENERATE });
      await w.stop({ keepData: true });
      assert.ok(existsSync(join(dir2, 'initial-admin-password')));
      await withAccounts({ dataDir: elsewhere, dbUrl: `sqlite:${join(dir2, 'wharf.db')}`, admin: { username: 'admin' } }, (a) => a.accounts.setPassword('admin', 'changed-elsewhere-1'));
      assert.ok(existsSync(join(dir2, 'initial-admin-password')), 'another data directory: the file is not seen');
      const again = await startWharf({ dataDir: dir2, organizations: [], env: { ...GENERATE, WHARF_LOG_LEVEL: 'info' } });
      try {
        await waitFor('the stale file to be deleted', () => !existsSync(join(dir2, 'initial-admin-password')));
        assert.doesNotMatch(again.stderr(), /initial-admin-password/, 'and not shown');
        assert.equal(await loginStatus(again, 'changed-elsewhere-1'), 200);
      } finally {
        await again.stop({ keepData: true });
      }
      assert.match(again.stdout(), /deleted the generated superuser password file/);
    } finally {
      await rm(dir2, { recursive: true, force: true });
      await rm(elsewhere, { recursive: true, force: true });
    }
  });
});
