/**
 * What a `wharf serve` process holds in memory by configuration: the modules of a database dialect, a
 * storage driver or the upstream client that the configuration does not use are not loaded at all
 * (each costs 10–30 MiB of resident memory), and the `wharf` entry keeps V8's young generation at its
 * initial size. Sizes in MiB are measured by `npm run bench` (BENCH_SUITE=memory), not here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { createPostgresDatabase } from '../helpers/databases.js';
import { startWharf } from '../helpers/wharf-process.js';
import { pinYoungGeneration } from '../../src/main/young-generation.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const moduleLog = join(repoRoot, 'test/helpers/module-log.mjs');
const work = await mkdtemp(join(tmpdir(), 'wharf-footprint-'));
after(() => rm(work, { recursive: true, force: true }));

/** The modules a `wharf serve` with `env` loads from start to a graceful stop. */
async function modulesOf(name: string, env: Record<string, string>): Promise<string[]> {
  const log = join(work, `${name}.modules`);
  const w = await startWharf({ env: { ...env, WHARF_TEST_MODULE_LOG: log }, nodeArgs: ['--import', moduleLog], organizations: [] });
  // A request that goes through the whole stack (auth, routes, database) before the stop.
  const res = await fetch(`${w.url}/v2/`);
  await res.arrayBuffer();
  await w.stop();
  return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
}

const holds = (modules: string[], pkg: string) => modules.some((m) => m.includes(`/node_modules/${pkg}/`));

describe('what wharf serve loads', () => {
  it('on SQLite and the filesystem: neither pg, nor the AWS SDK, nor undici', async () => {
    const modules = await modulesOf('sqlite-fs', {});
    assert.ok(holds(modules, 'better-sqlite3'), 'the SQLite driver is loaded (the module log works)');
    assert.ok(holds(modules, 'fastify'), 'fastify is loaded (the module log sees ES imports of CommonJS packages)');
    for (const pkg of ['pg', '@aws-sdk/client-s3', 'undici']) assert.equal(holds(modules, pkg), false, `${pkg} is not loaded`);
  });

  it('on PostgreSQL: pg, and not better-sqlite3', async () => {
    const db = await createPostgresDatabase();
    try {
      const modules = await modulesOf('postgres', { WHARF_DB_URL: db.url });
      assert.ok(holds(modules, 'pg'), 'pg is loaded');
      assert.equal(holds(modules, 'better-sqlite3'), false, 'better-sqlite3 is not loaded');
    } finally {
      await db.drop();
    }
  });
});

describe('the wharf entry', () => {
  /** The young generation's size (MiB) after plenty of short-lived allocations, in a node that calls pinYoungGeneration when `pin`. */
  function youngGenerationMiB(pin: boolean): number {
    const script = [
      `const { pinYoungGeneration } = await import(${JSON.stringify(join(repoRoot, 'src/main/young-generation.ts'))});`,
      "if (process.argv[1] === 'pin') pinYoungGeneration();",
      "const v8 = await import('node:v8');",
      'let keep = [];',
      'for (let i = 0; i < 5e6; i++) { keep.push({ i }); if (keep.length > 2e5) keep = []; }',
      "console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576);",
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, pin ? 'pin' : 'free'], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return Number(r.stdout.trim());
  }

  it('keeps the young generation small, where V8 alone grows it to its ceiling', () => {
    assert.ok(youngGenerationMiB(false) >= 16, 'without the flag V8 grows the young generation (the check can tell)');
    assert.ok(youngGenerationMiB(true) <= 4, 'with it the young generation stays at two semi-spaces of at most 2 MiB');
  });

  it('leaves the young generation alone when node was told its size', () => {
    assert.equal(pinYoungGeneration(['--max-semi-space-size=8']), false);
    assert.equal(pinYoungGeneration(['--semi-space-growth-factor=2']), false);
  });
});
