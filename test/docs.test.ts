/**
 * Keeps the operator documentation in step with the code:
 * - docs/configuration.md names every configuration key (YAML path and environment variable), and its
 *   key table names no key that does not exist;
 * - docs/examples/wharf.yaml and every YAML block marked `<!-- wharf-config -->` in
 *   docs/configuration.md load through the real configuration loader;
 * - the error table in docs/api.md lists exactly the codes of ERROR_CODES, with the same statuses.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { configLeaves, loadConfig } from '../src/config/load.js';
import { ERROR_CODES } from '../src/oci/errors.js';

const docsDir = resolve(import.meta.dirname, '..', 'docs');
const read = (name: string) => readFileSync(join(docsDir, name), 'utf8');

/** The text between `<!-- <name>:start -->` and `<!-- <name>:end -->`. */
function section(doc: string, name: string): string {
  const start = doc.indexOf(`<!-- ${name}:start -->`);
  const end = doc.indexOf(`<!-- ${name}:end -->`);
  assert.ok(start >= 0 && end > start, `missing <!-- ${name}:start --> … <!-- ${name}:end --> markers`);
  return doc.slice(start, end);
}

/** Cells of the body rows of the markdown tables in `text` (header and separator rows dropped). */
function tableRows(text: string): string[][] {
  const rows: string[][] = [];
  let previous = '';
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line.startsWith('|')) {
      previous = '';
      continue;
    }
    const cells = line.replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
    const isSeparator = cells.every((c) => /^:?-+:?$/.test(c));
    const isHeader = previous === '';
    previous = line;
    if (isSeparator || isHeader) continue;
    rows.push(cells);
  }
  return rows;
}

const unquote = (cell: string) => cell.replace(/^`|`$/g, '');

describe('docs/configuration.md', () => {
  const doc = read('configuration.md');

  it('names every configuration key by YAML path and environment variable', () => {
    const missing: string[] = [];
    for (const leaf of configLeaves()) {
      const path = leaf.path.join('.');
      if (!doc.includes(`\`${path}\``)) missing.push(path);
      if (!doc.includes(leaf.env)) missing.push(leaf.env);
    }
    assert.deepEqual(missing, [], `not documented in docs/configuration.md: ${missing.join(', ')}`);
  });

  it('has a key table that lists exactly the configuration keys, with matching environment variables', () => {
    const rows = tableRows(section(doc, 'config-keys'));
    const documented = rows.map((r) => [unquote(r[0]!), unquote(r[1]!)] as const);
    const actual = configLeaves().map((l) => [l.path.join('.'), l.env] as const);
    const sort = (a: ReadonlyArray<readonly [string, string]>) => [...a].sort((x, y) => x[0].localeCompare(y[0]));
    assert.deepEqual(sort(documented), sort(actual));
  });

  describe('example configurations load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-docs-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    const blocks = [...doc.matchAll(/<!-- wharf-config -->\s*\n```ya?ml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const example = readFileSync(join(docsDir, 'examples', 'wharf.yaml'), 'utf8');

    it('marks at least one full example', () => {
      assert.ok(blocks.length >= 1, 'no ```yaml block preceded by <!-- wharf-config --> in docs/configuration.md');
    });

    it('docs/examples/wharf.yaml is the full example of docs/configuration.md', () => {
      assert.ok(blocks.includes(example), 'docs/examples/wharf.yaml differs from every marked block in docs/configuration.md');
    });

    it('docs/examples/wharf.yaml mentions every key', () => {
      const missing = configLeaves()
        .map((l) => l.path[l.path.length - 1]!)
        .filter((key) => !new RegExp(`^\\s*#?\\s*${key}:`, 'm').test(example));
      assert.deepEqual(missing, [], `keys missing from docs/examples/wharf.yaml: ${missing.join(', ')}`);
    });

    const files: Array<[string, string]> = [
      ['docs/examples/wharf.yaml', join(docsDir, 'examples', 'wharf.yaml')],
      ...blocks.map((text, i): [string, string] => {
        const file = join(dir, `block-${i + 1}.yaml`);
        writeFileSync(file, text);
        return [`docs/configuration.md block ${i + 1}`, file];
      }),
    ];
    for (const [name, file] of files) {
      it(`${name} loads`, () => {
        assert.doesNotThrow(() => loadConfig({ file, env: {} }));
      });
    }
  });
});

describe('docs/api.md', () => {
  it('lists exactly the error codes of ERROR_CODES with their statuses', () => {
    const rows = tableRows(section(read('api.md'), 'error-table'));
    const documented = Object.fromEntries(rows.map((r) => [unquote(r[0]!), Number(r[1])]));
    const actual = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, e]) => [code, e.status]));
    assert.deepEqual(documented, actual);
    assert.equal(rows.length, Object.keys(ERROR_CODES).length, 'a code is listed more than once');
  });
});
