import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { digestOf, type Digest } from '../oci/digest.js';
import { HashWorker } from './hash-worker.js';

const SHA256 = `sha256:${'0'.repeat(64)}` as Digest;
const SHA512 = `sha512:${'0'.repeat(128)}` as Digest;

function shared(data: Uint8Array): Buffer {
  const b = Buffer.from(new SharedArrayBuffer(data.byteLength));
  b.set(data);
  return b;
}

describe('HashWorker', () => {
  const pool = new HashWorker();
  after(() => pool.close());

  it('computes the digests of interleaved hashes, chunk by chunk, with each algorithm', async () => {
    const a = randomBytes(3 * 1024 * 1024 + 17);
    const b = randomBytes(1024 * 1024);
    const ha = pool.hasher(SHA256);
    const hb = pool.hasher(SHA512);
    const slot = Buffer.from(new SharedArrayBuffer(256 * 1024));
    // One buffer reused for every chunk: each update must be hashed before the next overwrites it.
    for (let i = 0; i < Math.max(a.length, b.length); i += slot.length) {
      for (const [h, data] of [[ha, a], [hb, b]] as const) {
        if (i >= data.length) continue;
        const n = Math.min(slot.length, data.length - i);
        slot.set(data.subarray(i, i + n));
        await h.update(slot.subarray(0, n));
      }
    }
    assert.equal(await ha.digest(), digestOf(a));
    assert.equal(await hb.digest(), `sha512:${createHash('sha512').update(b).digest('hex')}`);
  });

  it('hashes nothing to the empty digest, and refuses memory it cannot share', async () => {
    assert.equal(await pool.hasher(SHA256).digest(), digestOf(Buffer.alloc(0)));
    const h = pool.hasher(SHA256);
    await assert.rejects(h.update(Buffer.from('not shared')), /SharedArrayBuffer/);
    await h.update(shared(Buffer.from('abc')));
    assert.equal(await h.digest(), digestOf(Buffer.from('abc')));
    await assert.rejects(h.digest(), /twice/);
  });

  it('keeps answering the other hashes after one is discarded mid-way', async () => {
    const dropped = pool.hasher(SHA256);
    const kept = pool.hasher(SHA256);
    const pending = dropped.update(shared(randomBytes(64 * 1024)));
    dropped.discard();
    await pending; // sent before the discard: still answered
    await assert.rejects(dropped.update(shared(Buffer.from('x'))), /after digest/);
    await kept.update(shared(Buffer.from('abc')));
    assert.equal(await kept.digest(), digestOf(Buffer.from('abc')));
  });

  it('fails the hashes in flight when the thread stops, and starts a new one for the next', async () => {
    const own = new HashWorker();
    const h = own.hasher(SHA256);
    const inFlight = h.update(shared(randomBytes(8 * 1024 * 1024)));
    const closed = own.close();
    await assert.rejects(inFlight, /closed/);
    await closed;
    const next = own.hasher(SHA256);
    await next.update(shared(Buffer.from('abc')));
    assert.equal(await next.digest(), digestOf(Buffer.from('abc')));
    await own.close();
  });

  it('lets the process exit once no reply is awaited', () => {
    const script = [
      `import { HashWorker } from ${JSON.stringify(join(import.meta.dirname, 'hash-worker.ts'))};`,
      'const h = new HashWorker().hasher(`sha256:${"0".repeat(64)}`);',
      'await h.update(Buffer.from(new SharedArrayBuffer(4)));',
      'console.log(await h.digest());',
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), digestOf(Buffer.alloc(4)));
  });
});
