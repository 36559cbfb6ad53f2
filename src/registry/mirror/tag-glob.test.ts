import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globToRegExp, TagGlobs } from './tag-glob.js';

const m = (glob: string, tag: string) => globToRegExp(glob).test(tag);

describe('tag globs (fnmatch semantics)', () => {
  it('* matches any run of characters, ? exactly one', () => {
    assert.ok(m('*', 'latest'));
    assert.ok(m('*', ''));
    assert.ok(m('v1.*', 'v1.2.3'));
    assert.ok(!m('v1.*', 'v10'));
    assert.ok(m('v?', 'v1'));
    assert.ok(!m('v?', 'v10'));
    assert.ok(!m('v?', 'v'));
  });

  it('[seq], ranges and [!seq]', () => {
    assert.ok(m('v[12]', 'v1'));
    assert.ok(!m('v[12]', 'v3'));
    assert.ok(m('v[0-9]', 'v7'));
    assert.ok(!m('v[0-9]', 'va'));
    assert.ok(m('v[!0-9]', 'va'));
    assert.ok(!m('v[!0-9]', 'v5'));
    assert.ok(m('a[]]b', 'a]b'), '] first in a set is literal');
    assert.ok(m('a[!]]b', 'axb'));
    assert.ok(!m('a[!]]b', 'a]b'));
    assert.ok(m('a[-x]', 'a-'));
  });

  it('regular-expression characters and an unclosed [ are literal; matching is case-sensitive', () => {
    assert.ok(m('1.0+build', '1.0+build'));
    assert.ok(!m('1.0+build', '1.00build'));
    assert.ok(m('v[1', 'v[1'));
    assert.ok(!m('Latest', 'latest'));
    assert.ok(m('a\\b', 'a\\b'));
    assert.ok(m('x.y', 'x.y') && !m('x.y', 'xzy'));
  });

  it('a list is ORed, deduplicated and sorted', () => {
    const g = new TagGlobs(['v1.*', '*-alpine', 'latest']);
    assert.deepEqual(g.select(['v2.0', 'v1.1-alpine', 'latest', 'v1.0', 'x-alpine', 'latest']), ['latest', 'v1.0', 'v1.1-alpine', 'x-alpine']);
    assert.deepEqual(new TagGlobs(['nomatch*']).select(['a', 'b']), []);
  });
});
