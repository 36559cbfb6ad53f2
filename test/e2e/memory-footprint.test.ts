/**
 * What a `wharf serve` process holds in memory by configuration: the modules of a database dialect, a
 * storage driver or the upstream client that the configuration does not use are not loaded at all
 * (each costs 10–30 MiB of resident memory), the management API's route declarations only once a
 * request needs them, the `wharf` entry keeps V8's young generation at its initial size, and the
 * heap is compacted once start-up is over. Sizes in MiB are measured by `npm run bench`
 * (BENCH_SUITE=memory), not here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { createPostgresDatabase } from '../helpers/databases.js';
import { adminFetch, startWharf } from '../helpers/wharf-process.js';
import { pinYoungGeneration } from '../../src/main/young-generation.js';
import { API_ROUTE_TABLE } from '../../src/http/api/route-table.js';

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
const loads = (modules: string[], file: string) => modules.some((m) => m.endsWith(`/src/${file}`));
/** Modules that declare `/api/v1` routes (with their handlers and zod schemas), and the OpenAPI document's. */
const API_DECLARATIONS = ['http/api/routes.ts', 'http/api/organizations.ts', 'http/api/tags.ts', 'http/api/repository-router.ts', 'http/api/openapi.ts'];

describe('what wharf serve loads', () => {
  it('on SQLite and the filesystem: neither pg, nor the AWS SDK, nor undici', async () => {
    const modules = await modulesOf('sqlite-fs', {});
    assert.ok(holds(modules, 'better-sqlite3'), 'the SQLite driver is loaded (the module log works)');
    assert.ok(holds(modules, 'fastify'), 'fastify is loaded (the module log sees ES imports of CommonJS packages)');
    for (const pkg of ['pg', '@aws-sdk/client-s3', 'undici']) assert.equal(holds(modules, pkg), false, `${pkg} is not loaded`);
  });

  it('the management API: its route declarations on the first request that needs them, not for /v2', async () => {
    const log = join(work, 'api.modules');
    const w = await startWharf({ env: { WHARF_TEST_MODULE_LOG: log }, nodeArgs: ['--import', moduleLog], organizations: [] });
    const modules = async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean);
    try {
      for (const path of ['/v2/', '/v2/_catalog', '/health']) await (await adminFetch(`${w.url}${path}`)).arrayBuffer();
      const served = await modules();
      assert.ok(loads(served, 'http/api/plugin.ts') && loads(served, 'http/api/route-table.ts'), 'the API plugin and its table are loaded at start (the check can see them)');
      for (const file of API_DECLARATIONS) assert.equal(loads(served, file), false, `${file} is not loaded while only /v2 is used`);

      // Every route of the table answers from the declarations then loaded, as before.
      const user = await adminFetch(`${w.url}/api/v1/user/`);
      assert.equal(user.status, 200, await user.clone().text());
      assert.equal(((await user.json()) as { username?: string }).username, 'admin');
      const after = await modules();
      for (const file of API_DECLARATIONS.filter((f) => f !== 'http/api/openapi.ts')) assert.ok(loads(after, file), `${file} is loaded by the first API request`);
      assert.equal(loads(after, 'http/api/openapi.ts'), false, 'the OpenAPI document waits for its own first request');
      const doc = await adminFetch(`${w.url}/api/v1/openapi.json`);
      assert.equal(doc.status, 200);
      const paths = Object.keys(((await doc.json()) as { paths: Record<string, unknown> }).paths);
      assert.ok(paths.length >= API_ROUTE_TABLE.length / 2, `the document lists the routes (${paths.length})`);
      assert.ok(loads(await modules(), 'http/api/openapi.ts'));
    } finally {
      await w.stop();
    }
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

describe('compactHeap', () => {
  /** Old-generation space V8 holds beyond its objects (MiB), after `garbage` left holes all over it and one full collection: `compactHeap`'s or a plain `gc()`. */
  function oldGenerationSlackMiB(collection: 'compact' | 'plain', exposeGc: boolean): { slack: number; gcGlobal: string } {
    const script = [
      `const { compactHeap } = await import(${JSON.stringify(join(repoRoot, 'src/main/heap.ts'))});`,
      "const v8 = await import('node:v8');",
      // Objects that live long enough to reach the old generation, seven in eight of them then dropped.
      'let keep = [];',
      'for (let i = 0; i < 300000; i++) keep.push({ i, a: [i, i + 1], s: `k${i}` });',
      'keep = keep.filter((_, i) => i % 8 === 0);',
      "if (process.argv[1] === 'compact') compactHeap(); else globalThis.gc();",
      "const old = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');",
      'console.log(JSON.stringify({ slack: (old.space_size - old.space_used_size) / 1048576, gcGlobal: typeof globalThis.gc, kept: keep.length }));',
    ].join('\n');
    const args = [...(exposeGc ? ['--expose-gc'] : []), '--import', 'tsx', '--input-type=module', '-e', script, collection];
    const r = spawnSync(process.execPath, args, { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim()) as { slack: number; gcGlobal: string };
  }

  it('gives back the pages that a full collection alone leaves resident', () => {
    assert.ok(oldGenerationSlackMiB('plain', true).slack >= 10, 'without compaction the freed space stays in the old generation (the check can tell)');
    assert.ok(oldGenerationSlackMiB('compact', true).slack <= 4, 'compacted, little free space is left');
  });

  it('works without --expose-gc, and leaves no gc global behind', () => {
    const r = oldGenerationSlackMiB('compact', false);
    assert.ok(r.slack <= 4, `compacted without --expose-gc (${r.slack} MiB free)`);
    assert.equal(r.gcGlobal, 'undefined');
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
