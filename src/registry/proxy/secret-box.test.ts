import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../config/load.js';
import { SECRET_KEY_FILE, SecretBox, SecretBoxError, SecretKeyError, lazySecretBox, loadOrCreateSecretKey, parseSecretKey } from './secret-box.js';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips, with a fresh IV for every value', () => {
    for (const text of ['', 'robot$ci', 'pässwörd ✓ with spaces', 'x'.repeat(5000)]) {
      const sealed = box.seal(text, 'password');
      assert.match(sealed, /^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]*$/);
      assert.ok(!sealed.includes(text) || text === '');
      assert.equal(box.open(sealed, 'password'), text);
    }
    assert.notEqual(box.seal('same', 'password'), box.seal('same', 'password'));
  });

  it('refuses another key, another field, a tampered value and unknown formats', () => {
    const sealed = box.seal('secret', 'password');
    assert.throws(() => new SecretBox(randomBytes(32)).open(sealed, 'password'), SecretBoxError);
    assert.throws(() => box.open(sealed, 'username'), SecretBoxError, 'bound to its field');
    const [v, iv, tag, ct] = sealed.split(':') as [string, string, string, string];
    const flip = (b64: string) => {
      const b = Buffer.from(b64, 'base64');
      b[0]! ^= 1;
      return b.toString('base64');
    };
    for (const bad of [`${v}:${iv}:${tag}:${flip(ct)}`, `${v}:${iv}:${flip(tag)}:${ct}`, `${v}:${flip(iv)}:${tag}:${ct}`, `v2:${iv}:${tag}:${ct}`, 'plain', `${v}:${iv}:${tag}`, `${v}:AAAA:${tag}:${ct}`]) {
      assert.throws(() => box.open(bad, 'password'), SecretBoxError, bad);
    }
  });

  it('needs a 32-byte key', () => {
    assert.throws(() => new SecretBox(randomBytes(16)), SecretKeyError);
  });
});

describe('parseSecretKey', () => {
  const key = randomBytes(32);
  it('reads hex and base64 (standard, URL-safe, with or without padding)', () => {
    for (const text of [key.toString('hex'), key.toString('hex').toUpperCase(), key.toString('base64'), key.toString('base64url'), key.toString('base64').replace(/=$/, ''), ` ${key.toString('base64')}\n`]) {
      assert.deepEqual(parseSecretKey(text), key, text);
    }
  });
  it('refuses anything else with a clear error', () => {
    for (const text of ['', 'short', randomBytes(16).toString('hex'), randomBytes(31).toString('base64'), randomBytes(33).toString('hex'), 'z'.repeat(64)]) {
      assert.throws(() => parseSecretKey(text), /proxy_cache\.secret_key must be 32 bytes written as 64 hex digits or as base64/, text);
    }
  });
});

describe('loadOrCreateSecretKey', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-secret-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const config = (dataDir: string, secretKey?: string) => loadConfig({ env: {}, overrides: { data_dir: dataDir, ...(secretKey ? { 'proxy_cache.secret_key': secretKey } : {}) } });

  it('uses proxy_cache.secret_key and writes nothing', async () => {
    const key = randomBytes(32);
    const d = join(dir, 'configured');
    const s = await loadOrCreateSecretKey(config(d, key.toString('hex')));
    assert.deepEqual([s.key, s.origin], [key, 'config']);
    await assert.rejects(stat(d), /ENOENT/);
    await assert.rejects(loadOrCreateSecretKey(config(d, 'not-a-key')), SecretKeyError);
  });

  it('generates <data_dir>/proxy-secret.key with mode 0600 on first use and reuses it', async () => {
    const d = join(dir, 'generated', 'nested');
    const first = await loadOrCreateSecretKey(config(d));
    assert.equal(first.origin, 'generated');
    assert.equal(first.path, join(d, SECRET_KEY_FILE));
    assert.equal((await stat(first.path!)).mode & 0o777, 0o600);
    assert.deepEqual(parseSecretKey(await readFile(first.path!, 'utf8')), first.key);
    const again = await loadOrCreateSecretKey(config(d));
    assert.deepEqual([again.key, again.origin], [first.key, 'file']);
    // A value sealed before a restart opens after it.
    const sealed = new SecretBox(first.key).seal('pw', 'password');
    assert.equal(new SecretBox(again.key).open(sealed, 'password'), 'pw');
  });

  it('concurrent first starts agree on one key', async () => {
    const d = join(dir, 'race');
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateSecretKey(config(d))));
    for (const k of keys) assert.deepEqual(k.key, keys[0]!.key);
  });

  it('a damaged or unreadable key file is a clear error, and lazySecretBox tries again later', async () => {
    const d = join(dir, 'damaged');
    await loadOrCreateSecretKey(config(d));
    const file = join(d, SECRET_KEY_FILE);
    await writeFile(file, 'garbage');
    await assert.rejects(loadOrCreateSecretKey(config(d)), (err: Error) => err instanceof SecretKeyError && err.message.includes(file));
    const lazy = lazySecretBox(config(d));
    await assert.rejects(lazy(), SecretKeyError);
    await writeFile(file, randomBytes(32).toString('base64'));
    await chmod(file, 0o600);
    assert.ok((await lazy()) instanceof SecretBox);
    assert.equal(await lazy(), await lazy(), 'loaded once');
  });
});
