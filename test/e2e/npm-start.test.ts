/**
 * `npm start` as the README's quick start runs it, on a copy of the project (src, bin, the build script,
 * package.json and the tsconfig files; node_modules linked) so that the checkout's own dist/ is left alone:
 *   1. the first start builds everything and serves;
 *   2. a start with an up-to-date build compiles nothing (no file under dist/ is written again) and serves;
 *   3. after a source change, the start compiles that change (and only what it affects) before serving.
 * How long a start takes is measured, not tested (docs/benchmarks.md).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, waitForHttp } from '../helpers/ports.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');

/** Every file under `dir` with its modification time. */
function mtimes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), statSync(p).mtimeMs);
    }
  };
  walk(dir);
  return out;
}

/** Runs `npm start` in `cwd` until /v2/ answers, then stops the whole process group; returns its output. */
async function npmStart(cwd: string, dataDir: string): Promise<string> {
  const port = await freePort();
  const child = spawn('npm', ['start'], {
    cwd,
    detached: true,
    env: { ...process.env, WHARF_HOST: '127.0.0.1', WHARF_PORT: String(port), WHARF_DATA_DIR: dataDir, WHARF_LOG_LEVEL: 'warn', WHARF_AUTH_ADMIN_PASSWORD: 'npm-start-admin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await Promise.race([
      waitForHttp(`http://127.0.0.1:${port}/v2/`, 300_000),
      exited.then(() => {
        throw new Error(`npm start exited:\n${out}`);
      }),
    ]);
  } finally {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // Already gone.
    }
    await exited;
  }
  return out;
}

describe('npm start', () => {
  let project: string;
  let dataDir: string;
  before(async () => {
    project = await mkdtemp(join(tmpdir(), 'wharf-npm-start-'));
    dataDir = join(project, 'data');
    for (const entry of ['src', 'bin', join('scripts', 'build.mjs'), 'package.json', 'tsconfig.json', 'tsconfig.build.json']) cpSync(join(repoRoot, entry), join(project, entry), { recursive: true });
    symlinkSync(join(repoRoot, 'node_modules'), join(project, 'node_modules'));
  });
  after(() => rm(project, { recursive: true, force: true }));

  it('builds on the first start, compiles nothing when the build is up to date, and compiles a source change before serving', async () => {
    await npmStart(project, dataDir);
    const dist = join(project, 'dist');
    const built = mtimes(dist);
    assert.ok(built.has(join('main', 'cli.js')), 'the first start built dist/');

    await npmStart(project, dataDir);
    assert.deepEqual(mtimes(dist), built, 'an up-to-date build is not compiled again');

    const probe = `build-probe-${process.pid}-${Date.now()}`;
    const source = join(project, 'src', 'main', 'startup-error.ts');
    appendFileSync(source, `\nexport const BUILD_PROBE = '${probe}';\n`);
    await npmStart(project, dataDir);
    const rebuilt = mtimes(dist);
    assert.ok(readFileSync(join(dist, 'main', 'startup-error.js'), 'utf8').includes(probe), 'the change was compiled before the server started');
    assert.notEqual(rebuilt.get(join('main', 'startup-error.js')), built.get(join('main', 'startup-error.js')));
    assert.equal(rebuilt.get(join('oci', 'digest.js')), built.get(join('oci', 'digest.js')), 'files the change does not affect are not written again');
  });
});
