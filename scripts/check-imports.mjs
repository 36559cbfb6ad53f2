// Enforces the layer import rules of the architecture: each src/<layer> may import only the layers
// listed for it. Exits non-zero and lists every violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ALLOWED = {
  oci: [],
  config: ['oci'],
  observability: ['config'],
  storage: ['oci', 'config', 'observability'],
  db: ['oci', 'config', 'observability'],
  upstream: ['oci', 'config', 'observability'],
  registry: ['oci', 'config', 'observability', 'storage', 'db', 'upstream'],
  http: ['oci', 'config', 'observability', 'registry'],
  workers: ['oci', 'config', 'observability', 'registry', 'db'],
  main: null, // the composition root may import everything
};

const root = resolve('src');
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('test-suite.ts')) files.push(p);
  }
})(root);

const problems = [];
for (const file of files) {
  const layer = relative(root, file).split('/')[0];
  if (!(layer in ALLOWED)) {
    problems.push(`${relative('.', file)}: unknown layer "${layer}" (add it to scripts/check-imports.mjs)`);
    continue;
  }
  const allowed = ALLOWED[layer];
  if (allowed === null) continue;
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    const target = relative(root, resolve(dirname(file), m[1])).split('/')[0];
    if (target !== layer && !allowed.includes(target)) problems.push(`${relative('.', file)}: ${layer}/ must not import ${target}/ (${m[1]})`);
  }
}
if (problems.length) {
  console.error(`import rule violations:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`import rules: ${files.length} files checked, no violations`);
