import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDigest } from './digest.js';
import { parseReference, parseRepositoryName, splitRepositoryName } from './reference.js';

describe('repository names', () => {
  it('accepts the spec grammar and files one-component names under the default namespace', () => {
    for (const ok of ['a/b', 'org/team/app', 'a.b/c_d/e__f/g-h/i--j', 'x0/y1', 'library/alpine']) {
      const r = parseRepositoryName(ok);
      assert.ok(r.ok, ok);
      assert.equal(r.ok && r.name, ok);
    }
    const one = parseRepositoryName('alpine');
    assert.ok(one.ok && one.name === 'library/alpine');
    const custom = parseRepositoryName('alpine', 'mirror');
    assert.ok(custom.ok && custom.name === 'mirror/alpine');
    const deep = parseRepositoryName('org/team/app');
    assert.ok(deep.ok);
    assert.deepEqual(splitRepositoryName(deep.name), { namespace: 'org', repository: 'team/app' });
  });

  it('refuses names outside the grammar with a reason', () => {
    for (const bad of ['', 'A/b', 'a//b', '/a', 'a/', 'a/-b', 'a/b-', 'a/b___c', 'a/b.', 'a/.b', 'a b', 'a/b:c', 'x'.repeat(256)]) {
      const r = parseRepositoryName(bad);
      assert.equal(r.ok, false, bad);
      assert.ok(!r.ok && r.reason.length > 0);
    }
    assert.equal(parseRepositoryName(`${'a'.repeat(250)}`, 'library').ok, false, 'library/ + 250 chars exceeds 255');
  });
});

describe('references', () => {
  it('parses tags and digests', () => {
    assert.deepEqual(parseReference('latest'), { ok: true, reference: { kind: 'tag', tag: 'latest' } });
    assert.deepEqual(parseReference('_v1.2-rc'), { ok: true, reference: { kind: 'tag', tag: '_v1.2-rc' } });
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseReference(d), { ok: true, reference: { kind: 'digest', digest: d } });
  });

  it('refuses bad tags and digests', () => {
    for (const bad of ['.x', '-x', 'a'.repeat(129), 'a/b', 'sha256:abc', `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, '']) {
      assert.equal(parseReference(bad).ok, false, bad);
    }
    assert.equal(parseReference('a'.repeat(128)).ok, true);
  });
});

describe('digests', () => {
  it('checks algorithm and length', () => {
    assert.ok(parseDigest(`sha256:${'0'.repeat(64)}`).ok);
    assert.ok(parseDigest(`sha512:${'f'.repeat(128)}`).ok);
    assert.equal(parseDigest(`sha512:${'f'.repeat(64)}`).ok, false);
    const r = parseDigest(`blake3:${'a'.repeat(64)}`);
    assert.ok(!r.ok && /unsupported digest algorithm/.test(r.reason));
    assert.equal(parseDigest('sha256').ok, false);
  });
});
