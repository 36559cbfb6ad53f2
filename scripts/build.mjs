#!/usr/bin/env node
/**
 * `npm run build` and `npm start`: compiles src/ into dist/ with `tsc --build` (incremental: only what a
 * change affects), after a check that needs no TypeScript: when nothing the build reads is newer than
 * the last build's info file (dist/.tsbuildinfo) — no file or directory under src/ (a directory's time
 * changes when a file is added or removed), no tsconfig file, not package.json, not the installed
 * TypeScript — there is nothing to compile and tsc is not started at all. `--force` skips the check.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const buildInfo = join(root, 'dist', '.tsbuildinfo');

function newestUnder(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function upToDate() {
  let built;
  try {
    built = statSync(buildInfo).mtimeMs;
  } catch {
    return false;
  }
  const inputs = ['tsconfig.json', 'tsconfig.build.json', 'package.json', join('node_modules', 'typescript', 'package.json')];
  return Math.max(newestUnder(join(root, 'src')), ...inputs.map((f) => statSync(join(root, f)).mtimeMs)) <= built;
}

if (process.argv.includes('--force') || !upToDate()) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '--build', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
