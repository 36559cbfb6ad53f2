import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constantTimeEqual, hashPassword, needsRehash, randomSecret, SCRYPT_PARAMS, sha256, verifyPassword } from './passwords.js';

describe('passwords', () => {
  it('hashes in the self-describing scrypt format with a fresh salt each time', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    const parts = a.split('$');
    assert.equal(parts.length, 6);
    assert.deepEqual(parts.slice(0, 4), ['scrypt', String(2 ** 15), '8', '1']);
    assert.equal(Buffer.from(parts[4]!, 'base64').length, 16);
    assert.equal(Buffer.from(parts[5]!, 'base64').length, 64);
    assert.notEqual(a, b);
    assert.equal(needsRehash(a), false);
    assert.deepEqual({ ...SCRYPT_PARAMS }, { N: 32768, r: 8, p: 1 });
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const h = await hashPassword('correct horse');
    assert.equal(await verifyPassword('correct horse', h), true);
    assert.equal(await verifyPassword('correct horsE', h), false);
    assert.equal(await verifyPassword('', h), false);
    assert.equal(await verifyPassword('correct horse ', h), false);
  });

  it('treats canonically equivalent Unicode passwords alike', async () => {
    const h = await hashPassword('caf\u00e9');
    assert.equal(await verifyPassword('cafe\u0301', h), true);
  });

  it('never matches (nor throws on) malformed or abusive hashes', async () => {
    const good = await hashPassword('pw-pw-pw-pw');
    const [, , r, p, salt, key] = good.split('$');
    for (const bad of [
      '',
      'plain',
      'bcrypt$2b$10$abc',
      `scrypt$${2 ** 15}$${r}$${p}$${salt}`,
      `scrypt$1000$${r}$${p}$${salt}$${key}`,
      `scrypt$${2 ** 24}$${r}$${p}$${salt}$${key}`,
      `scrypt$${2 ** 15}$0$${p}$${salt}$${key}`,
      `scrypt$${2 ** 15}$${r}$${p}$$${key}`,
      `scrypt$${2 ** 15}$${r}$${p}$${salt}$AAAA`,
    ]) {
      assert.equal(await verifyPassword('pw-pw-pw-pw', bad), false, bad);
    }
    assert.equal(needsRehash(`scrypt$16384$8$1$${salt}$${key}`), true);
    assert.equal(await verifyPassword('x'.repeat(5000), good), false);
  });

  it('makes 256-bit base64url secrets and hex SHA-256 digests', () => {
    const s = randomSecret();
    assert.match(s, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(randomSecret(), s);
    assert.equal(sha256('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('compares strings in constant time, any lengths', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abd'), false);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
    assert.equal(constantTimeEqual('', ''), true);
    assert.equal(constantTimeEqual('', 'a'), false);
  });
});
