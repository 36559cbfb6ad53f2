/**
 * The import-rule check (scripts/check-imports.mjs) against the rules of the architecture, written
 * down here a second time on purpose: a file breaking each rule, in each way a module can name another,
 * must fail, and the files that keep them must pass. Then the real src/ must pass.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { checkFile, checkTree, importsOf } from '../scripts/check-imports.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = join(REPO, 'scripts', 'check-imports.mjs');

const LAYERS = ['oci', 'config', 'observability', 'storage', 'db', 'upstream', 'registry', 'http', 'workers', 'main'] as const;
type Layer = (typeof LAYERS)[number];
const LEAVES: Layer[] = ['oci', 'config', 'observability'];

/** ARCHITECTURE.md's import rules: which layers each layer may import besides itself. */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  oci: [],
  config: ['oci'],
  observability: ['config'],
  storage: ['oci', 'config', 'observability'],
  db: ['oci', 'config', 'observability'],
  upstream: ['oci', 'config', 'observability'],
  registry: [...LEAVES, 'storage', 'db', 'upstream'],
  http: [...LEAVES, 'registry'],
  workers: [...LEAVES, 'registry'],
  main: LAYERS,
};

/** Where each package may be imported. */
const PACKAGES: Record<string, readonly Layer[]> = {
  fastify: ['http', 'main'],
  '@fastify/cors': ['http', 'main'],
  kysely: ['db', 'main'],
  'kysely/helpers/postgres': ['db', 'main'],
  pg: ['db', 'main'],
  'better-sqlite3': ['db', 'main'],
  undici: ['upstream'],
  pino: ['observability'],
  'prom-client': ['observability'],
  yaml: ['config', 'main'],
  zod: ['config', 'http', 'registry', 'main'],
  jose: ['registry'],
  selfsigned: ['main'],
  'left-pad': [],
};

/** Every way a module can name another, as a file of one statement. */
const SYNTAX: Record<string, (specifier: string) => string> = {
  static: (s) => `import { thing } from '${s}';\nexport const x = thing;\n`,
  default: (s) => `import thing from '${s}';\nexport const x = thing;\n`,
  namespace: (s) => `import * as thing from '${s}';\nexport const x = thing;\n`,
  'side-effect': (s) => `import '${s}';\n`,
  dynamic: (s) => `export async function load() {\n  return import('${s}');\n}\n`,
  'export-from': (s) => `export { thing } from '${s}';\n`,
  'export-star': (s) => `export * from '${s}';\n`,
  'type-only': (s) => `import type { Thing } from '${s}';\nexport type X = Thing;\n`,
  'inline-type': (s) => `import { type Thing } from '${s}';\nexport type X = Thing;\n`,
  'export-type-from': (s) => `export type { Thing } from '${s}';\n`,
  'import-type': (s) => `export type X = import('${s}').Thing;\n`,
  'import-require': (s) => `import thing = require('${s}');\nexport const x = thing;\n`,
  require: (s) => `export const x = require('${s}');\n`,
};

/** The violations of a file in `layer` (one directory deep) whose only import is `syntax` of `target`/mod.js. */
function layerImport(layer: string, target: string, syntax: string, opts: { file?: string; module?: string } = {}) {
  return checkFile(`src/${layer}/sub/${opts.file ?? 'file.ts'}`, SYNTAX[syntax]!(`../../${target}/${opts.module ?? 'mod.js'}`));
}

/** Cases that went the wrong way, for one readable assertion. */
function wrong(cases: Iterable<[string, boolean, { message: string }[]]>): string[] {
  const out: string[] = [];
  for (const [name, mustFail, violations] of cases) {
    if (mustFail && violations.length !== 1) out.push(`${name}: expected one violation, got ${JSON.stringify(violations.map((v) => v.message))}`);
    if (!mustFail && violations.length) out.push(`${name}: expected none, got ${JSON.stringify(violations.map((v) => v.message))}`);
  }
  return out;
}

describe('import-rule check', () => {
  it('reads every import syntax, with its line', () => {
    // A reference directive counts only at the top of a file.
    const text = '/// <reference path="./ref.d.ts" />\n'.concat(
      Object.values(SYNTAX)
        .map((f, i) => f(`./m${i}.js`))
        .join(''),
      "const v = 'x';\nexport const computed = import(v);\n",
    );
    const found = importsOf('src/oci/a.ts', text);
    const specifiers = found.map((i) => i.specifier);
    for (let i = 0; i < Object.keys(SYNTAX).length; i++) assert.ok(specifiers.includes(`./m${i}.js`), `./m${i}.js (${Object.keys(SYNTAX)[i]}) not found`);
    assert.ok(specifiers.includes('./ref.d.ts'));
    assert.ok(specifiers.includes(undefined), 'a computed dynamic import is reported without a specifier');
    const sideEffect = found.find((i) => i.specifier === `./m${Object.keys(SYNTAX).indexOf('side-effect')}.js`);
    assert.equal(sideEffect?.kind, 'side-effect import');
    assert.equal(sideEffect?.line, Object.values(SYNTAX).slice(0, Object.keys(SYNTAX).indexOf('side-effect')).reduce((n, f) => n + f('').split('\n').length - 1, 2));
    assert.equal(found.find((i) => i.specifier === `./m${Object.keys(SYNTAX).indexOf('inline-type')}.js`)?.kind, 'import type');
    // Imports inside strings, comments and member calls are not imports.
    assert.deepEqual(importsOf('src/oci/a.ts', "// import x from '../db/a.js'\nconst s = \"import '../db/b.js'\";\nthis.require('../db/c.js');\n"), []);
  });

  for (const syntax of Object.keys(SYNTAX)) {
    it(`layers: each forbidden pair fails and each allowed pair passes (${syntax})`, () => {
      const cases: [string, boolean, { message: string }[]][] = [];
      for (const layer of LAYERS) {
        for (const target of LAYERS) {
          const allowed = target === layer || MAY_IMPORT[layer].includes(target);
          const v = layerImport(layer, target, syntax);
          cases.push([`${layer} -> ${target}`, !allowed, v]);
          if (!allowed && v.length === 1) assert.match(v[0]!.message, new RegExp(`^src/${layer}/sub/file\\.ts:\\d+: ${layer}/ must not import ${target}/`));
        }
      }
      assert.deepEqual(wrong(cases), []);
    });
  }

  it('layers: a file directly in its layer directory, and a deeper one, resolve the same way', () => {
    assert.equal(checkFile('src/http/app.ts', "import '../db/connect.js';\n").length, 1);
    assert.equal(checkFile('src/http/api/deep/x.ts', "import '../../../db/connect.js';\n").length, 1);
    assert.deepEqual(checkFile('src/http/api/deep/x.ts', "import '../../../registry/tags.js';\nimport '../../v2/plugin.js';\n"), []);
    // Going up and down again into another layer is seen through.
    assert.equal(checkFile('src/http/x.ts', "import '../registry/../db/connect.js';\n").length, 1);
  });

  it('workers may import db/ only for their lease', () => {
    const cases: [string, boolean, { message: string }[]][] = [];
    for (const syntax of Object.keys(SYNTAX)) {
      cases.push([`workers -> db/worker-lease-store (${syntax})`, false, layerImport('workers', 'db', syntax, { module: 'worker-lease-store.js' })]);
      cases.push([`workers -> db/autoprune-store (${syntax})`, true, layerImport('workers', 'db', syntax, { module: 'autoprune-store.js' })]);
      cases.push([`workers -> db/connect (${syntax})`, true, layerImport('workers', 'db', syntax, { module: 'connect.js' })]);
      // The exception is the workers' alone.
      for (const layer of ['http', 'storage', 'upstream', 'oci'] as const) {
        cases.push([`${layer} -> db/worker-lease-store (${syntax})`, true, layerImport(layer, 'db', syntax, { module: 'worker-lease-store.js' })]);
      }
      // And it does not open the way back.
      cases.push([`db -> workers (${syntax})`, true, layerImport('db', 'workers', syntax)]);
    }
    assert.deepEqual(wrong(cases), []);
    assert.match(layerImport('workers', 'db', 'static', { module: 'autoprune-store.js' })[0]!.message, /workers\/ must not import db\/ \(only db\/worker-lease-store\)/);
    // A file of the lease's name elsewhere is not the lease.
    assert.equal(checkFile('src/workers/x.ts', "import '../db/sub/worker-lease-store.js';\n").length, 1);
    assert.deepEqual(checkFile('src/workers/x.ts', "import '../db/worker-lease-store.ts';\n"), []);
  });

  for (const syntax of ['static', 'side-effect', 'dynamic', 'export-from', 'type-only', 'import-type', 'require']) {
    it(`packages: each package only where its rule allows it (${syntax})`, () => {
      const cases: [string, boolean, { message: string }[]][] = [];
      for (const [pkg, layers] of Object.entries(PACKAGES)) {
        for (const layer of LAYERS) cases.push([`${layer} -> ${pkg}`, !layers.includes(layer), checkFile(`src/${layer}/file.ts`, SYNTAX[syntax]!(pkg))]);
      }
      for (const builtin of ['node:fs', 'node:stream/promises', 'fs', 'path']) {
        for (const layer of LAYERS) cases.push([`${layer} -> ${builtin}`, false, checkFile(`src/${layer}/file.ts`, SYNTAX[syntax]!(builtin))]);
      }
      assert.deepEqual(wrong(cases), []);
    });
  }

  it('packages: the message names the rule, and a package without a rule is refused', () => {
    assert.match(checkFile('src/registry/a.ts', "import type { Kysely } from 'kysely';\n")[0]!.message, /^src\/registry\/a\.ts:1: registry\/ must not import kysely \(only db, main\) \(import type 'kysely'\)$/);
    assert.match(checkFile('src/main/a.ts', "import leftPad from 'left-pad';\n")[0]!.message, /package left-pad has no import rule/);
  });

  it('only main/ constructs db/ and storage/ implementations', () => {
    const store = "import { NamespaceStore } from '../../db/namespace-store.js';\nexport const s = (db: never) => new NamespaceStore(db, db);\n";
    const v = checkFile('src/registry/sub/a.ts', store);
    assert.equal(v.length, 1);
    assert.match(v[0]!.message, /^src\/registry\/sub\/a\.ts:2: registry\/ must not construct db\/ implementations; main\/ builds them \(new NamespaceStore from/);
    assert.equal(checkFile('src/registry/sub/a.ts', "import * as stores from '../../db/namespace-store.js';\nexport const s = new stores.NamespaceStore();\n").length, 1);
    assert.equal(checkFile('src/registry/sub/a.ts', "import { MemoryBlobDriver as M } from '../../storage/memory/memory-blob-driver.js';\nexport const d = new M();\n").length, 1);
    assert.equal(checkFile('src/workers/a.ts', "import { WorkerLeaseStore } from '../db/worker-lease-store.js';\nexport const l = (db: never) => new WorkerLeaseStore(db);\n").length, 1);
    // Receiving them is fine; so is using their functions and errors; main/ and tests build them.
    assert.deepEqual(checkFile('src/registry/sub/a.ts', "import type { NamespaceStore } from '../../db/namespace-store.js';\nexport class S { constructor(readonly s: NamespaceStore) {} }\n"), []);
    assert.deepEqual(checkFile('src/registry/sub/a.ts', "import { QuotaExceeded, limitThreshold } from '../../db/quota-store.js';\nexport const e = new Error(String(limitThreshold)); export const q = QuotaExceeded;\n"), []);
    assert.deepEqual(checkFile('src/main/a.ts', store.replaceAll('../../', '../')), []);
    assert.deepEqual(checkFile('src/registry/sub/a.test.ts', store), []);
    // A db/ file builds its own classes.
    assert.deepEqual(checkFile('src/db/a.ts', "import { NamespaceStore } from './namespace-store.js';\nexport const s = (db: never) => new NamespaceStore(db, db);\n"), []);
  });

  it('tests may import main/, test helpers and the layers below theirs, but not above or beside', () => {
    const test = (layer: string, target: string) => checkFile(`src/${layer}/x.test.ts`, `import '../${target}/m.js';\nimport type { K } from 'kysely';\n`);
    const cases: [string, boolean, { message: string }[]][] = [
      ['registry test -> main', false, test('registry', 'main')],
      ['registry test -> db', false, test('registry', 'db')],
      ['registry test -> storage', false, test('registry', 'storage')],
      ['registry test -> upstream', false, test('registry', 'upstream')],
      ['http test -> db', false, test('http', 'db')],
      ['http test -> storage', false, test('http', 'storage')],
      ['workers test -> db', false, test('workers', 'db')],
      ['workers test -> storage', false, test('workers', 'storage')],
      ['db test -> observability', false, test('db', 'observability')],
      ['db test -> config', false, test('db', 'config')],
      ['db test -> test helpers', false, checkFile('src/db/x.test.ts', "import '../../test/helpers/databases.js';\n")],
      ['storage suite -> oci', false, checkFile('src/storage/driver-test-suite.ts', "import '../oci/digest.js';\n")],
      ['db test -> registry', true, test('db', 'registry')],
      ['db test -> storage', true, test('db', 'storage')],
      ['storage test -> db', true, test('storage', 'db')],
      ['upstream test -> registry', true, test('upstream', 'registry')],
      ['oci test -> config', true, test('oci', 'config')],
      ['registry test -> http', true, test('registry', 'http')],
      ['registry test -> workers', true, test('registry', 'workers')],
      ['http test -> workers', true, test('http', 'workers')],
      ['workers test -> http', true, test('workers', 'http')],
      ['storage suite -> db', true, checkFile('src/storage/driver-test-suite.ts', "import '../db/connect.js';\n")],
    ];
    assert.deepEqual(wrong(cases), []);
  });

  it('/v2 routes may not import the proxy cache: they read through the content resolver', () => {
    const cases: [string, boolean, { message: string }[]][] = [];
    for (const [syntax, write] of Object.entries(SYNTAX)) {
      cases.push([`http/v2 -> registry/proxy (${syntax})`, true, checkFile('src/http/v2/blobs.ts', write('../../registry/proxy/proxy-cache.js'))]);
      cases.push([`http/v2 test -> registry/proxy (${syntax})`, true, checkFile('src/http/v2/blobs.test.ts', write('../../registry/proxy/proxy-cache.js'))]);
      cases.push([`http/v2 -> registry/content (${syntax})`, false, checkFile('src/http/v2/blobs.ts', write('../../registry/content.js'))]);
      cases.push([`http/api -> registry/proxy (${syntax})`, false, checkFile('src/http/api/proxycache.ts', write('../../registry/proxy/proxy-config.js'))]);
    }
    assert.deepEqual(wrong(cases), []);
    assert.match(checkFile('src/http/v2/x.ts', "import '../../registry/proxy/proxy-directory.js';\n")[0]!.message, /http\/v2\/ must not import registry\/proxy\/: routes read through the content resolver/);
  });

  it('refuses what it cannot check or what is not a layer', () => {
    assert.match(checkFile('src/registry/a.ts', "const m = './x.js';\nexport const x = import(m);\n")[0]!.message, /computed import specifier cannot be checked/);
    assert.match(checkFile('src/registry/a.ts', "import '../../test/helpers/app.js';\n")[0]!.message, /registry\/ must not import test code/);
    assert.match(checkFile('src/registry/a.ts', "import '../../bench/lib/x.js';\n")[0]!.message, /must not import bench\/lib\/x\.js \(outside src\/\)/);
    assert.match(checkFile('src/registry/a.ts', "import '../cli/x.js';\n")[0]!.message, /cli\/ is not a known layer/);
    assert.match(checkFile('src/cli/a.ts', '')[0]!.message, /not in a known layer/);
    assert.match(checkFile('src/index.ts', '')[0]!.message, /not in a known layer/);
  });

  it('passes a file that keeps every rule', () => {
    const clean = [
      "import { createHash } from 'node:crypto';",
      "import { z } from 'zod';",
      "import type { Config } from '../../config/schema.js';",
      "import type { ManifestStore } from '../../db/manifest-store.js';",
      "import { QuotaExceeded } from '../../db/quota-store.js';",
      "import { digestOf } from '../../oci/digest.js';",
      "import type { Logger } from '../../observability/logger.js';",
      "import type { BlobDriver } from '../../storage/blob-driver.js';",
      "import { UpstreamClient } from '../../upstream/upstream-client.js';",
      "import './side-effect.js';",
      "export { TagService } from '../tags.js';",
      "export type { Registry } from '../registry.js';",
      'export class Service {',
      '  constructor(private readonly deps: { manifests: ManifestStore; storage: BlobDriver; config: Config; log: Logger }) {}',
      "  client() { return new UpstreamClient(null as never); }",
      "  async later() { return import('../gc.js'); }",
      '  check(e: unknown) { return e instanceof QuotaExceeded || z.string().parse(digestOf(createHash)); }',
      '}',
      "export type T = import('../../db/tables.js').Database;",
    ].join('\n');
    assert.deepEqual(checkFile('src/registry/proxy/service.ts', clean), []);
  });

  it('passes the real src/, tests included', () => {
    const { files, violations } = checkTree(REPO);
    assert.deepEqual(violations, []);
    assert.ok(files.some((f) => f.endsWith('.test.ts')), 'tests are checked too');
    assert.ok(files.length > 150, `${files.length} files`);
  });

  it('the command lists every violation and exits 1, or says that none was found', () => {
    const root = mkdtempSync(join(tmpdir(), 'wharf-imports-'));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), text);
      };
      write('src/oci/a.ts', "import { x } from '../db/b.js';\nexport default x;\n");
      write('src/db/b.ts', "import type { FastifyInstance } from 'fastify';\nexport const x = 1;\nexport type F = FastifyInstance;\n");
      write('src/http/c.ts', "export const y = () => import('../upstream/d.js');\n");
      let r = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, [
        'import rule violations:',
        "src/db/b.ts:1: db/ must not import fastify (only http, main) (import type 'fastify')",
        "src/http/c.ts:1: http/ must not import upstream/ (dynamic import() '../upstream/d.js')",
        "src/oci/a.ts:1: oci/ must not import db/ (import '../db/b.js')",
        '',
      ].join('\n'));
      rmSync(join(root, 'src', 'http'), { recursive: true });
      write('src/oci/a.ts', 'export const x = 1;\n');
      write('src/db/b.ts', "import { x } from '../oci/a.js';\nexport const y = x;\n");
      r = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'import rules: 2 files checked, no violations\n');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
