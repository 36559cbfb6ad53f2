/**
 * `wharf quota set|show|limit|delete|recount` of the real CLI against a temporary SQLite data
 * directory holding two images that share a layer: usage counted once per namespace, quotas and
 * limits changed and shown, refusals with their exit codes, audit entries by `cli`, and a recount
 * that finds (with --dry-run) and then corrects a drifted total.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createDatabase, createServices, createStorage } from '../../src/main/compose.js';
import { digestOf } from '../../src/oci/digest.js';
import type { RepositoryName, Tag } from '../../src/oci/reference.js';
import { runCommand } from '../helpers/e2e-utils.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const GiB = 1024 ** 3;

describe('wharf quota commands', () => {
  let dir: string;
  let config: Config;
  /** Bytes of acme's blobs: both configs, the shared layer once, app's own layer. */
  let acmeBytes: number;
  let appBytes: number;

  const env = () => {
    const e: NodeJS.ProcessEnv = { ...process.env, WHARF_DATA_DIR: dir, WHARF_LOG_LEVEL: 'warn' };
    delete e.WHARF_DB_URL;
    return e;
  };
  const wharf = (args: string[]) => runCommand(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), ...args], { env: env(), timeoutMs: 60_000 });
  const ok = async (args: string[]) => {
    const res = await wharf(args);
    assert.equal(res.code, 0, `wharf ${args.join(' ')}: ${res.stderr}`);
    return res;
  };
  const fails = async (args: string[], code: number, re: RegExp) => {
    const res = await wharf(args);
    assert.equal(res.code, code, `wharf ${args.join(' ')}: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, re);
  };
  /** Runs `work` on the data directory's database, as the server would. */
  const withServices = async <T>(work: (s: ReturnType<typeof createServices>, db: Awaited<ReturnType<typeof createDatabase>>) => Promise<T>): Promise<T> => {
    const db = await createDatabase(config);
    try {
      const services = createServices({ db, storage: await createStorage(config), config });
      const result = await work(services, db);
      await services.registry.audit?.flush();
      return result;
    } finally {
      await db.close();
    }
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-quota-cli-'));
    config = loadConfig({ env: {}, overrides: { data_dir: dir, log_level: 'silent' } });
    await withServices(async ({ registry, accounts }) => {
      await accounts!.accounts.createUser({ name: 'alice', password: 'alice-password' });
      await accounts!.accounts.createOrganization({ name: 'acme', creator: 'alice' });
      const shared = Buffer.from('a layer both images use '.repeat(40));
      const push = async (name: string, own: Buffer | undefined): Promise<number> => {
        const repo = await registry.repositories.ensure(name as RepositoryName);
        const cfg = Buffer.from(JSON.stringify({ os: 'linux', name }));
        const layers = own ? [shared, own] : [shared];
        for (const b of [cfg, ...layers]) await registry.uploads.monolithic(repo, digestOf(b), (async function* () { yield b; })(), b.length);
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(cfg), size: cfg.length },
            layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(l), size: l.length })),
          }),
        );
        await registry.manifests.put(repo, { kind: 'tag', tag: 'v1' as Tag }, manifest, 'application/vnd.oci.image.manifest.v1+json');
        return cfg.length;
      };
      const own = Buffer.from('app layer');
      const appConfig = await push('acme/app', own);
      const webConfig = await push('acme/web', undefined);
      appBytes = appConfig + shared.length + own.length;
      acmeBytes = appBytes + webConfig;
    });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('show prints the usage of a namespace without a quota', async () => {
    const text = await ok(['quota', 'show', 'acme']);
    assert.match(text.stdout, /^namespace: acme\nquota: +none\nused: +[\d.]+ KiB \((\d+) bytes\)\n$/);
    assert.equal(Number(/\((\d+) bytes\)/.exec(text.stdout)![1]), acmeBytes);
    assert.deepEqual(JSON.parse((await ok(['quota', 'show', 'acme', '--json'])).stdout), { namespace: 'acme', quota: null, usage_bytes: acmeBytes });
  });

  it('set creates and changes the quota; limit add and delete; show reports them', async () => {
    assert.match((await ok(['quota', 'set', 'acme', '10 GiB'])).stderr, /created a quota for acme: 10\.0 GiB \(10737418240 bytes\)/);
    // Unquoted works too, and a plain number is bytes.
    assert.match((await ok(['quota', 'set', 'acme', '2', 'GiB'])).stderr, /changed the quota of acme: 2\.0 GiB/);
    assert.match((await ok(['quota', 'limit', 'add', 'acme', 'warning', '80'])).stderr, /added limit \d+ to the quota of acme: Warning at 80% \(1\.6 GiB\)/);
    assert.match((await ok(['quota', 'limit', 'add', 'acme', 'Reject', '100'])).stderr, /Reject at 100% \(2\.0 GiB\)/);

    const doc = JSON.parse((await ok(['quota', 'show', 'acme', '--json'])).stdout) as { quota: { id: number; limits: Array<{ id: number }> } };
    const [warn, reject] = doc.quota.limits;
    assert.deepEqual(doc, {
      namespace: 'acme',
      quota: {
        id: doc.quota.id,
        limit_bytes: 2 * GiB,
        limit: '2.0 GiB',
        default_config: false,
        limits: [
          { id: warn!.id, type: 'Warning', limit_percent: 80 },
          { id: reject!.id, type: 'Reject', limit_percent: 100 },
        ],
        default_config_exists: false,
      },
      usage_bytes: acmeBytes,
    });
    const text = (await ok(['quota', 'show', 'acme'])).stdout;
    assert.match(text, new RegExp(`quota: +2\\.0 GiB \\(${2 * GiB} bytes\\), id ${doc.quota.id}\\n`));
    assert.match(text, new RegExp(`used: +.*\\(${acmeBytes} bytes\\), 0\\.0% of the quota\\n`));
    assert.match(text, new RegExp(`  id ${warn!.id}: Warning at 80% \\(1\\.6 GiB\\)\\n  id ${reject!.id}: Reject at 100% \\(2\\.0 GiB\\)\\n$`));

    assert.match((await ok(['quota', 'set', 'acme', `${4 * GiB}`])).stderr, /4\.0 GiB/);
    assert.match((await ok(['quota', 'limit', 'delete', 'acme', String(warn!.id)])).stderr, new RegExp(`deleted limit ${warn!.id}`));
    const after = JSON.parse((await ok(['quota', 'show', 'acme', '--json'])).stdout) as { quota: { limit_bytes: number; limits: unknown[] } };
    assert.equal(after.quota.limit_bytes, 4 * GiB);
    assert.deepEqual(after.quota.limits, [{ id: reject!.id, type: 'Reject', limit_percent: 100 }]);
  });

  it('refuses bad input (exit 2) and what does not exist (exit 1)', async () => {
    await fails(['quota', 'set', 'acme', '0'], 2, /Invalid quota size limit value: '0'/);
    await fails(['quota', 'set', 'acme', '10 XB'], 2, /Invalid quota size limit value: '10 XB'/);
    await fails(['quota', 'set', 'acme', '9 PiB'], 2, /Unsupported quota size limit/);
    await fails(['quota', 'limit', 'add', 'acme', 'Info', '10'], 2, /Quota type must be one of \[Warning, Reject\]/);
    await fails(['quota', 'limit', 'add', 'acme', 'Warning', '101'], 2, /Quota limit threshold must be between 1 and 100/);
    await fails(['quota', 'limit', 'add', 'acme', 'Reject', '100'], 2, /Quota limit already exists/);
    await fails(['quota', 'limit', 'delete', 'acme', '99999'], 1, /quota limit 99999 not found/);
    await fails(['quota', 'show', 'nosuch'], 1, /namespace nosuch not found/);
    await fails(['quota', 'delete', 'alice'], 1, /namespace alice has no quota/);
    await fails(['quota', 'set', 'acme'], 2, /usage: wharf quota set NAMESPACE LIMIT/);
    await fails(['quota', 'limit', 'acme'], 2, /quota limit takes add or delete/);
    await fails(['quota', 'show', 'acme', '--dry-run'], 2, /does not take --dry-run/);
  });

  it('changes are audited with the actor cli', async () => {
    const entries = await withServices(async ({ registry }) => (await registry.audit!.query({ namespace: 'acme' })).entries);
    const kinds = entries.map((e) => e.kind);
    for (const kind of ['org_create_quota', 'org_change_quota', 'org_create_quota_limit', 'org_delete_quota_limit']) assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(', ')}`);
    assert.ok(entries.filter((e) => e.kind.includes('quota')).every((e) => e.actor.kind === 'system' && e.actor.name === 'cli'));
  });

  it('recount finds a drifted total with --dry-run, then corrects it', async () => {
    const clean = JSON.parse((await ok(['quota', 'recount', '--dry-run', '--json'])).stdout) as { repositories: number; namespaces: number; drift: unknown; fixed: boolean; ms: number };
    assert.deepEqual({ ...clean, ms: 0 }, { repositories: 2, namespaces: 1, drift: { repositories: [], namespaces: [], blobCounts: 0 }, fixed: false, ms: 0 });
    assert.match((await ok(['quota', 'recount'])).stdout, /^Checked the totals of 2 repositories and 1 namespaces in \d+ ms\.\nNo total had drifted\.\n$/);

    await withServices(async (_s, db) => {
      await db.db.updateTable('namespace_sizes').set({ size_bytes: 1 }).execute();
      await db.db.deleteFrom('repository_sizes').execute();
    });
    const dry = await ok(['quota', 'recount', '--dry-run']);
    assert.match(dry.stdout, /^Dry run: nothing was changed\. Checked the totals of 2 repositories and 1 namespaces/);
    assert.match(dry.stdout, new RegExp(`\\n  namespace acme: stored 1, actual ${acmeBytes}\\n`));
    assert.match(dry.stdout, new RegExp(`\\n  repository acme/app: stored 0, actual ${appBytes}\\n`));
    assert.match(dry.stdout, /Run without --dry-run to correct them\.\n$/);
    assert.equal(JSON.parse((await ok(['quota', 'show', 'acme', '--json'])).stdout).usage_bytes, 1, 'a dry run changes nothing');

    const fixed = JSON.parse((await ok(['quota', 'recount', '--json'])).stdout) as { fixed: boolean; drift: { namespaces: Array<{ name: string; stored: number; actual: number }> } };
    assert.equal(fixed.fixed, true);
    assert.deepEqual(
      fixed.drift.namespaces.map(({ name, stored, actual }) => ({ name, stored, actual })),
      [{ name: 'acme', stored: 1, actual: acmeBytes }],
    );
    assert.equal(JSON.parse((await ok(['quota', 'show', 'acme', '--json'])).stdout).usage_bytes, acmeBytes);
    assert.match((await ok(['quota', 'recount', '--dry-run'])).stdout, /No total had drifted\./);
  });

  it('delete removes the quota and its limits', async () => {
    assert.match((await ok(['quota', 'delete', 'acme'])).stderr, /deleted the quota of acme and its limits/);
    assert.equal(JSON.parse((await ok(['quota', 'show', 'acme', '--json'])).stdout).quota, null);
  });
});
