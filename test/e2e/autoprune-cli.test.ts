/**
 * `wharf autoprune run [--dry-run]` of the real CLI beside a real `wharf serve` on the same database
 * (SQLite in the data directory, and PostgreSQL), whose own auto-prune worker is off so that only the
 * CLI prunes. Five tags are pushed over /v2 and a `number_of_tags` policy keeping three is created
 * through the API. The dry run lists the two oldest tags and changes nothing; the run prunes exactly
 * them and reports them; the API's tag list shows them in the history (`onlyActiveTags=false`), a
 * second dry run finds nothing, and a pruned tag is restored through the API and pulls again.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, DIALECTS } from '../helpers/databases.js';
import { runCommand } from '../helpers/e2e-utils.js';
import { MEDIA_TYPE_OCI_MANIFEST } from '../helpers/oci-layout.js';
import { pushRandomImage } from '../helpers/registry-push.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const TAGS = ['t1', 't2', 't3', 't4', 't5'];

interface TagView {
  name: string;
  manifest_digest: string;
  end_ts?: number;
}


for (const dialect of DIALECTS) {
  describe(`wharf autoprune run (${dialect})`, () => {
    let w: WharfProcess;
    let database: { url: string; drop(): Promise<void> } | undefined;
    let dataDir: string;
    let policy: string;
    const digests: Record<string, string> = {};

    const wharf = (args: string[]) => {
      const env: NodeJS.ProcessEnv = { ...process.env, WHARF_DATA_DIR: dataDir, WHARF_LOG_LEVEL: 'warn' };
      delete env.WHARF_DB_URL;
      if (database) env.WHARF_DB_URL = database.url;
      return runCommand(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), ...args], { env, timeoutMs: 60_000 });
    };
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${w.url}/api/v1${path}`, {
        method,
        headers: { authorization: basicAuth(w.admin), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, text, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
    };
    const tags = async (query = '') => {
      const res = await api('GET', `/repository/prune/app/tag/?limit=100${query}`);
      assert.equal(res.status, 200, res.text);
      return (res.json!.tags as TagView[]).map((t) => ({ name: t.name, digest: t.manifest_digest, ended: t.end_ts !== undefined })).sort((a, b) => a.name.localeCompare(b.name));
    };
    const live = async () => (await tags()).map((t) => t.name);
    const manifestStatus = async (tag: string) =>
      (await fetch(`${w.url}/v2/prune/app/manifests/${tag}`, { headers: { authorization: basicAuth(w.admin), accept: MEDIA_TYPE_OCI_MANIFEST } })).status;
    /** The rows of the CLI's table (header dropped), as [repository, tag, method, value, policy], by tag. */
    const table = (stdout: string) =>
      stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.trim().split(/\s{2,}/))
        .sort((x, y) => x[1]!.localeCompare(y[1]!));

    before(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'wharf-autoprune-cli-'));
      if (dialect === 'postgres') database = await createPostgresDatabase();
      w = await startWharf({
        dataDir,
        organizations: ['prune'],
        env: { WHARF_AUTOPRUNE_ENABLED: 'false', WHARF_GC_ENABLED: 'false', WHARF_DB_URL: database?.url },
      });
      // One after the other, so that t1 is the oldest and t5 the newest.
      for (const tag of TAGS) digests[tag] = (await pushRandomImage(w.url, 'prune/app', tag, { basic: `${w.admin.username}:${w.admin.password}`, layerSizes: [1024] })).digest;
      const created = await api('POST', '/organization/prune/autoprunepolicy/', { method: 'number_of_tags', value: 3 });
      assert.equal(created.status, 201, created.text);
      policy = created.json!.uuid as string;
    });
    after(async () => {
      await w?.stop();
      await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('--dry-run lists the tags the policy would prune and changes nothing', async () => {
      const res = await wharf(['autoprune', 'run', '--dry-run']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^REPOSITORY +TAG +METHOD +VALUE +POLICY\n/);
      assert.deepEqual(table(res.stdout), [
        ['prune/app', 't1', 'number_of_tags', '3', policy],
        ['prune/app', 't2', 'number_of_tags', '3', policy],
      ]);
      assert.match(res.stderr, /^would prune 2 tags in 1 namespace \(dry run: nothing changed\)\n$/);
      assert.deepEqual(await live(), TAGS);
      assert.deepEqual((await tags('&onlyActiveTags=false')).filter((t) => t.ended), [], 'no history yet');
      assert.equal(await manifestStatus('t1'), 200);
    });

    it('prunes the oldest tags into the tag history and reports them', async () => {
      const res = await wharf(['autoprune', 'run']);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(table(res.stdout), [
        ['prune/app', 't1', 'number_of_tags', '3', policy],
        ['prune/app', 't2', 'number_of_tags', '3', policy],
      ]);
      assert.match(res.stderr, /^pruned 2 tags in 1 namespace; they can be restored from tag history\n$/);
      assert.deepEqual(await live(), ['t3', 't4', 't5']);
      assert.deepEqual(
        (await tags('&onlyActiveTags=false')).filter((t) => t.ended),
        [
          { name: 't1', digest: digests.t1, ended: true },
          { name: 't2', digest: digests.t2, ended: true },
        ],
      );
      for (const tag of ['t1', 't2']) assert.equal(await manifestStatus(tag), 404, tag);
      for (const tag of ['t3', 't4', 't5']) assert.equal(await manifestStatus(tag), 200, tag);

      const again = await wharf(['autoprune', 'run', '--dry-run']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, '', 'nothing left to prune');
      assert.match(again.stderr, /^would prune 0 tags in 1 namespace/);
    });

    it('a pruned tag is restored from the history through the API', async () => {
      const res = await api('POST', '/repository/prune/app/tag/t1/restore', { manifest_digest: digests.t1 });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(await live(), ['t1', 't3', 't4', 't5']);
      assert.equal((await tags()).find((t) => t.name === 't1')?.digest, digests.t1);
      assert.equal(await manifestStatus('t1'), 200);
    });

    it('refuses arguments and foreign options', async () => {
      const extra = await wharf(['autoprune', 'run', 'now']);
      assert.equal(extra.code, 2);
      assert.match(extra.stderr, /takes no arguments/);
      const foreign = await wharf(['autoprune', 'run', '--json']);
      assert.equal(foreign.code, 2);
      assert.match(foreign.stderr, /does not take --json/);
    });
  });
}
