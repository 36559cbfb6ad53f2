/**
 * The import rules of the architecture, checked. Every file under src/ belongs to the layer named by its
 * first directory, and may import only what the two tables below allow. Every way a module can name
 * another counts: `import x from`, `import type`, `import './x.js'` (side effect), `import('./x.js')`,
 * `export ... from`, `import('./x.js').T` in a type, `import x = require()`, `require()` and
 * `/// <reference>`. A dynamic import of a computed specifier cannot be checked, so it is refused.
 *
 * Layers (src/<layer>/ may import src/<other>/ only when listed; its own layer always):
 *
 * | layer         | may import                                                              |
 * |---------------|-------------------------------------------------------------------------|
 * | oci           | nothing of ours                                                         |
 * | config        | oci                                                                     |
 * | observability | config                                                                  |
 * | storage       | oci, config, observability                                              |
 * | db            | oci, config, observability                                              |
 * | upstream      | oci, config, observability                                              |
 * | registry      | oci, config, observability, storage, db, upstream                       |
 * | http          | oci, config, observability, registry                                    |
 * | workers       | oci, config, observability, registry; from db/ only worker-lease-store  |
 * | main          | everything (the composition root)                                       |
 *
 * Packages (node:* built-ins anywhere; a package not in this table is refused until it has a row):
 *
 * | package                          | only in                         |
 * |----------------------------------|---------------------------------|
 * | fastify, @fastify/*              | http, main                      |
 * | kysely, pg, better-sqlite3       | db, main                        |
 * | undici                           | upstream                        |
 * | pino, prom-client                | observability                   |
 * | yaml                             | config, main                    |
 * | zod                              | config, http, registry, main    |
 * | jose                             | registry                        |
 * | selfsigned                       | main                            |
 *
 * Construction: only main/ builds the implementations of db/ and storage/ (`new SomeStore(...)`);
 * every other layer receives them, typed by their interface, through constructors.
 *
 * Seams inside a layer (a folder that may not import another folder; tests included):
 *
 * | folder        | must not import    | because                                                        |
 * |---------------|--------------------|----------------------------------------------------------------|
 * | http/v2       | registry/proxy     | routes read through the content resolver and never ask whether a repository is proxied |
 *
 * Tests (`*.test.ts`, `*test-suite.ts`) build their own world, so they may also import main/ (the way
 * the composition root builds things), test/ (the shared helpers) and every layer below their own
 * (what their layer's imports may import, all the way down), import any package and construct what
 * they need; they still may not import a layer above or beside their own (a db/ test cannot reach into
 * registry/, an http/ test into workers/).
 *
 * `node scripts/check-imports.mjs [repository]` checks src/ and exits 1 listing every violation. The functions are
 * exported for test/check-imports.test.ts.
 */
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Which layers each layer may import (besides itself); '*' for all. */
export const LAYERS = {
  oci: [],
  config: ['oci'],
  observability: ['config'],
  storage: ['oci', 'config', 'observability'],
  db: ['oci', 'config', 'observability'],
  upstream: ['oci', 'config', 'observability'],
  registry: ['oci', 'config', 'observability', 'storage', 'db', 'upstream'],
  http: ['oci', 'config', 'observability', 'registry'],
  workers: ['oci', 'config', 'observability', 'registry'],
  main: '*',
};

/** Single modules a layer may import from a layer it otherwise may not (paths under src/, no extension). */
export const EXCEPTIONS = {
  workers: ['db/worker-lease-store'],
};

/** Which layers may import each package (a name ending in `/*` covers a scope). */
export const PACKAGES = {
  fastify: ['http', 'main'],
  '@fastify/*': ['http', 'main'],
  kysely: ['db', 'main'],
  pg: ['db', 'main'],
  'better-sqlite3': ['db', 'main'],
  undici: ['upstream'],
  pino: ['observability'],
  'prom-client': ['observability'],
  yaml: ['config', 'main'],
  zod: ['config', 'http', 'registry', 'main'],
  jose: ['registry'],
  selfsigned: ['main'],
  '@aws-sdk/client-s3': ['storage'],
  '@aws-sdk/s3-request-presigner': ['storage'],
};

/** Folders (under src/) that may not import other folders: the decorator seams. */
export const SEAMS = {
  'http/v2': { forbidden: ['registry/proxy'], because: 'routes read through the content resolver (registry/content.ts) and never ask whether a repository is proxied' },
};

/** Layers whose classes only these layers (and tests) may construct with `new`. */
export const CONSTRUCTED = ['db', 'storage'];
export const CONSTRUCTS = ['main'];

const SOURCE = /\.(?:[cm]?ts|tsx|[cm]?js)$/;
const EXTENSION = /(?:\.d)?\.(?:[cm]?ts|tsx|[cm]?js)$/;
const BUILTINS = new Set(builtinModules);

/** True for test code: unit tests and shared test suites. */
export function isTestFile(path) {
  return /\.test\.[cm]?tsx?$/.test(path) || /test-suite\.[cm]?tsx?$/.test(path);
}

/**
 * Every module `text` names, with how it names it (`kind`), the line, and the local names a value
 * import binds (`names`; `namespace` for `import * as`). `specifier` is undefined for a dynamic import
 * whose specifier is computed.
 */
export function importsOf(path, text) {
  return scan(path, text).imports;
}

function scan(path, text) {
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imports = [];
  const constructions = [];
  const line = (pos) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const add = (node, specifier, kind, names = [], namespace) => imports.push({ specifier, kind, line: line(node.getStart(sf)), names, namespace });
  const literal = (node) => (node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined);
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      const kind = importKind(node.importClause);
      const c = node.importClause;
      const named = c?.namedBindings;
      const names = kind !== 'import' ? [] : [...(c.name ? [c.name.text] : []), ...(named && ts.isNamedImports(named) ? named.elements.filter((e) => !e.isTypeOnly).map((e) => e.name.text) : [])];
      add(node, literal(node.moduleSpecifier), kind, names, kind === 'import' && named && ts.isNamespaceImport(named) ? named.name.text : undefined);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node, literal(node.moduleSpecifier), node.isTypeOnly ? 'export type from' : 'export from');
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, literal(node.moduleReference.expression), 'import = require()', [], node.name.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, literal(node.arguments[0]), 'dynamic import()');
    } else if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require' && node.arguments.length === 1) {
      add(node, literal(node.arguments[0]), 'require()');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, literal(node.argument.literal), 'import() type');
    } else if (ts.isNewExpression(node)) {
      const e = node.expression;
      if (ts.isIdentifier(e)) constructions.push({ name: e.text, line: line(node.getStart(sf)) });
      else if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression)) constructions.push({ namespace: e.expression.text, name: e.name.text, line: line(node.getStart(sf)) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  for (const r of sf.referencedFiles) imports.push({ specifier: r.fileName.startsWith('.') ? r.fileName : `./${r.fileName}`, kind: 'reference path', line: line(r.pos), names: [] });
  for (const r of sf.typeReferenceDirectives) imports.push({ specifier: r.fileName, kind: 'reference types', line: line(r.pos), names: [] });
  return { imports, constructions };
}

function importKind(clause) {
  if (!clause) return 'side-effect import';
  if (clause.isTypeOnly) return 'import type';
  const named = clause.namedBindings;
  const onlyTypes = !clause.name && named && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
  return onlyTypes ? 'import type' : 'import';
}

/**
 * What a specifier names, seen from `path` (relative to the repository root, with `/`): a module of a
 * layer (`layer`, `module` = its path under src/ without extension), a test helper, a file elsewhere, a
 * built-in or a package.
 */
export function targetOf(path, specifier) {
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    const to = posix.normalize(specifier.startsWith('/') ? specifier : posix.join(posix.dirname(path), specifier));
    const parts = to.split('/');
    if (parts[0] === 'src' && parts.length > 2) return { type: 'layer', layer: parts[1], module: parts.slice(1).join('/').replace(EXTENSION, '') };
    if (parts[0] === 'test') return { type: 'test' };
    return { type: 'outside', where: to };
  }
  if (specifier.startsWith('node:') || BUILTINS.has(specifier.split('/')[0])) return { type: 'builtin' };
  const parts = specifier.split('/');
  return { type: 'package', name: specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] };
}

/** The layers a test of `layer` may import: its layer's, and theirs, all the way down, and main/. */
function testLayers(layer) {
  const seen = new Set([layer, 'main']);
  const walk = (l) => {
    const allowed = LAYERS[l];
    if (allowed === '*') return;
    for (const a of allowed) if (!seen.has(a)) (seen.add(a), walk(a));
  };
  walk(layer);
  return seen;
}

function packageLayers(name) {
  if (name in PACKAGES) return PACKAGES[name];
  const scope = name.startsWith('@') ? `${name.split('/')[0]}/*` : undefined;
  return scope && scope in PACKAGES ? PACKAGES[scope] : undefined;
}

/**
 * The violations of one file: `path` relative to the repository root with `/` (e.g.
 * `src/registry/tags.ts`), `text` its content. Each violation is `{ file, line, specifier, kind, message }`.
 */
export function checkFile(path, text) {
  const parts = path.split('/');
  const layer = parts[0] === 'src' && parts.length > 2 ? parts[1] : undefined;
  if (!layer || !(layer in LAYERS)) {
    return [{ file: path, line: 1, specifier: '', kind: '', message: `${path}: not in a known layer (add the layer to scripts/check-imports.mjs)` }];
  }
  const test = isTestFile(path);
  const allowed = LAYERS[layer];
  const { imports, constructions } = scan(path, text);
  const violations = [];
  for (const imp of imports) {
    const problem = problemOf(path, layer, test, allowed, imp);
    if (problem) violations.push({ file: path, line: imp.line, specifier: imp.specifier ?? '', kind: imp.kind, message: `${path}:${imp.line}: ${problem} (${imp.kind}${imp.specifier === undefined ? '' : ` '${imp.specifier}'`})` });
  }
  if (!test && !CONSTRUCTS.includes(layer)) {
    // Local names bound to a class of a layer whose implementations only the composition root builds.
    const classes = new Map();
    const namespaces = new Map();
    for (const imp of imports) {
      const t = imp.specifier === undefined ? undefined : targetOf(path, imp.specifier);
      if (t?.type !== 'layer' || !CONSTRUCTED.includes(t.layer) || t.layer === layer) continue;
      for (const n of imp.names) classes.set(n, imp);
      if (imp.namespace) namespaces.set(imp.namespace, imp);
    }
    for (const c of constructions) {
      const imp = c.namespace === undefined ? classes.get(c.name) : namespaces.get(c.namespace);
      if (!imp) continue;
      const t = targetOf(path, imp.specifier);
      violations.push({
        file: path,
        line: c.line,
        specifier: imp.specifier,
        kind: 'new',
        message: `${path}:${c.line}: ${layer}/ must not construct ${t.layer}/ implementations; main/ builds them (new ${c.namespace ? `${c.namespace}.` : ''}${c.name} from '${imp.specifier}')`,
      });
    }
  }
  return violations;
}

function problemOf(path, layer, test, allowed, imp) {
  if (imp.specifier === undefined) return 'a computed import specifier cannot be checked; name the module literally';
  const t = targetOf(path, imp.specifier);
  switch (t.type) {
    case 'builtin':
      return undefined;
    case 'test':
      return test ? undefined : `${layer}/ must not import test code`;
    case 'outside':
      return `${layer}/ must not import ${t.where} (outside src/)`;
    case 'package': {
      if (test) return undefined;
      const layers = packageLayers(t.name);
      if (!layers) return `package ${t.name} has no import rule (add it to PACKAGES in scripts/check-imports.mjs)`;
      return layers.includes(layer) ? undefined : `${layer}/ must not import ${t.name} (only ${layers.join(', ')})`;
    }
    case 'layer': {
      if (!(t.layer in LAYERS)) return `${t.layer}/ is not a known layer`;
      const from = path.split('/').slice(1).join('/');
      for (const [folder, seam] of Object.entries(SEAMS)) {
        const hit = from.startsWith(`${folder}/`) && seam.forbidden.find((f) => t.module.startsWith(`${f}/`));
        if (hit) return `${folder}/ must not import ${hit}/: ${seam.because}`;
      }
      if (t.layer === layer || allowed === '*') return undefined;
      if (test) return testLayers(layer).has(t.layer) ? undefined : `a test of ${layer}/ must not import ${t.layer}/ (a layer above or beside it)`;
      if (allowed.includes(t.layer) || EXCEPTIONS[layer]?.includes(t.module)) return undefined;
      const exception = (EXCEPTIONS[layer] ?? []).filter((m) => m.startsWith(`${t.layer}/`));
      return `${layer}/ must not import ${t.layer}/${exception.length ? ` (only ${exception.join(', ')})` : ''}`;
    }
  }
  return undefined;
}

/** The source files under `dir` (repository-relative paths with `/`), tests included. */
export function sourceFiles(dir = 'src', root = '.') {
  const files = [];
  (function walk(d) {
    for (const name of readdirSync(join(root, d)).sort()) {
      const p = `${d}/${name}`;
      if (statSync(join(root, p)).isDirectory()) walk(p);
      else if (SOURCE.test(name)) files.push(p);
    }
  })(dir);
  return files;
}

/** The violations of every source file under `root`/src. */
export function checkTree(root = '.') {
  const files = sourceFiles('src', root);
  return { files, violations: files.flatMap((f) => checkFile(f, readFileSync(join(root, f), 'utf8'))) };
}

if (process.argv[1] && realpathSync(resolve(process.argv[1])) === fileURLToPath(import.meta.url)) {
  // The repository to check: the one this script lives in, or the directory given.
  const { files, violations } = checkTree(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));
  if (violations.length) {
    console.error(`import rule violations:\n${violations.map((v) => v.message).join('\n')}`);
    process.exit(1);
  }
  console.log(`import rules: ${files.length} files checked, no violations`);
}

