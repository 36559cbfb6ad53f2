/** Auto-prune rules without a database: policy parsing, tag selection and the regular-expression guard. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccountError } from '../accounts/account-error.js';
import { PatternMatcher, PatternTimeoutError } from './pattern-matcher.js';
import { durationSeconds, parsePolicy, policyValue } from './policy.js';
import { selectTagsToPrune, type AppliedPolicy } from './tag-selection.js';

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;
const matcher = new PatternMatcher();
const matches = (p: string, names: readonly string[]) => matcher.matches(p, names);

/** Tags named by age in days: `tags({ v1: 10, v2: 3 })`. */
function tags(ages: Record<string, number>) {
  return Object.entries(ages).map(([name, days], i) => ({ id: i + 1, name, lifetimeStart: NOW - days * DAY }));
}
const policy = (p: Partial<AppliedPolicy> & Pick<AppliedPolicy, 'method' | 'value'>): AppliedPolicy => ({ valueText: null, tagPattern: null, tagPatternMatches: true, ...p });
const pruned = (ts: ReturnType<typeof tags>, ps: AppliedPolicy[]) => selectTagsToPrune(ts, ps, NOW, matches).map((d) => d.tag.name).sort();

describe('parsePolicy', () => {
  it('accepts counts and durations', () => {
    assert.deepEqual(parsePolicy({ method: 'number_of_tags', value: 10 }), { method: 'number_of_tags', value: 10, valueText: null, tagPattern: null, tagPatternMatches: true });
    assert.equal(parsePolicy({ method: 'number_of_tags', value: '3' }).value, 3);
    const p = parsePolicy({ method: 'creation_date', value: '2w', tagPattern: '  ^v\\d ', tagPatternMatches: false });
    assert.deepEqual(p, { method: 'creation_date', value: 14 * 86_400, valueText: '2w', tagPattern: '^v\\d', tagPatternMatches: false });
    assert.equal(policyValue(p), '2w');
    assert.equal(durationSeconds('7d'), 7 * 86_400);
    assert.equal(durationSeconds('1y'), 365 * 86_400);
    assert.equal(durationSeconds('1h30m'), 5400);
    assert.equal(durationSeconds('30'), undefined);
  });

  it('refuses bad policies with clear messages', () => {
    const refused = (input: Record<string, unknown>, re: RegExp) =>
      assert.throws(() => parsePolicy(input), (err: unknown) => err instanceof AccountError && err.status === 400 && re.test(err.message), JSON.stringify(input));
    refused({ method: 'keep_some', value: 1 }, /Invalid method provided/);
    refused({ value: 1 }, /Invalid method provided: method is required/);
    refused({ method: 'number_of_tags', value: 0 }, /Invalid value given for method type number_of_tags/);
    refused({ method: 'number_of_tags', value: -3 }, /Invalid value given/);
    refused({ method: 'number_of_tags', value: 1.5 }, /Invalid value given/);
    refused({ method: 'number_of_tags', value: '10x' }, /got "10x"/);
    refused({ method: 'number_of_tags' }, /got nothing/);
    refused({ method: 'creation_date', value: '10x' }, /Invalid value given for method type creation_date/);
    refused({ method: 'creation_date', value: 7 }, /creation_date/);
    refused({ method: 'creation_date', value: '0d' }, /creation_date/);
    refused({ method: 'creation_date', value: '-1d' }, /creation_date/);
    refused({ method: 'creation_date', value: '500ms' }, /creation_date/);
    refused({ method: 'number_of_tags', value: 5, tagPattern: '' }, /tag_pattern cannot be empty/);
    refused({ method: 'number_of_tags', value: 5, tagPattern: '   ' }, /tag_pattern cannot be empty/);
    refused({ method: 'number_of_tags', value: 5, tagPattern: 7 }, /tag_pattern must be string/);
    refused({ method: 'number_of_tags', value: 5, tagPattern: '(unclosed' }, /tag_pattern is not a valid regular expression/);
    refused({ method: 'number_of_tags', value: 5, tagPatternMatches: 'yes' }, /tagPatternMatches must be true or false/);
  });
});

describe('selectTagsToPrune', () => {
  it('number_of_tags keeps the N newest', () => {
    assert.deepEqual(pruned(tags({ a: 5, b: 4, c: 3, d: 2, e: 1 }), [policy({ method: 'number_of_tags', value: 2 })]), ['a', 'b', 'c']);
    assert.deepEqual(pruned(tags({ a: 5 }), [policy({ method: 'number_of_tags', value: 2 })]), []);
  });

  it('creation_date prunes tags older than the duration', () => {
    assert.deepEqual(pruned(tags({ old: 10, edge: 7, fresh: 1 }), [policy({ method: 'creation_date', value: 7 * 86_400 - 1 })]), ['edge', 'old']);
    assert.deepEqual(pruned(tags({ old: 10, fresh: 1 }), [policy({ method: 'creation_date', value: 7 * 86_400 })]), ['old']);
  });

  it('patterns select matching tags, or with tagPatternMatches false the others; the count covers only those', () => {
    const ts = tags({ 'v1.0': 6, 'dev-1': 5, 'v1.1': 4, 'dev-2': 3, 'v1.2': 2, 'dev-3': 1 });
    assert.deepEqual(pruned(ts, [policy({ method: 'number_of_tags', value: 1, tagPattern: '^dev-' })]), ['dev-1', 'dev-2']);
    assert.deepEqual(pruned(ts, [policy({ method: 'number_of_tags', value: 1, tagPattern: '^dev-', tagPatternMatches: false })]), ['v1.0', 'v1.1']);
    // An unanchored search, not a glob.
    assert.deepEqual(pruned(ts, [policy({ method: 'creation_date', value: 3 * 86_400, tagPattern: '1' })]), ['dev-1', 'v1.0', 'v1.1']);
  });

  it('applies date policies before count policies, whatever their order', () => {
    const ts = tags({ a: 30, b: 20, c: 10, d: 2, e: 1 });
    const count = policy({ method: 'number_of_tags', value: 3 });
    const date = policy({ method: 'creation_date', value: 15 * 86_400 });
    // Date first: a, b go; then c, d, e are 3 tags: nothing more. (Count first would have pruned a, b and kept c.)
    for (const order of [[count, date], [date, count]]) {
      const decisions = selectTagsToPrune(ts, order, NOW, matches);
      assert.deepEqual(decisions.map((d) => [d.tag.name, d.policy.method]), [['a', 'creation_date'], ['b', 'creation_date']]);
    }
    assert.deepEqual(pruned(ts, [policy({ method: 'number_of_tags', value: 2 }), date]), ['a', 'b', 'c']);
  });

  it('never considers cosign signature, attestation and SBOM tags', () => {
    const sig = `sha256-${'a'.repeat(64)}.sig`;
    assert.deepEqual(pruned(tags({ [sig]: 9, old: 8, new: 1 }), [policy({ method: 'number_of_tags', value: 1 })]), ['old']);
  });
});

describe('PatternMatcher', () => {
  it('stops a catastrophic pattern instead of stalling the process', () => {
    const m = new PatternMatcher({ timeoutMs: 100 });
    const start = Date.now();
    assert.throws(() => m.matches('^(a+)+$', [`${'a'.repeat(40)}b`]), PatternTimeoutError);
    assert.ok(Date.now() - start < 2000);
    assert.deepEqual(m.matches('^v', ['v1', 'latest']), [true, false]);
  });
});
