import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobDriverSuite } from '../driver-test-suite.js';
import { FsBlobDriver } from './fs-blob-driver.js';

blobDriverSuite('filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-fs-driver-'));
  return { driver: new FsBlobDriver(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describe('FsBlobDriver staging', () => {
  it('sweeps staged writes left by a crash, and only old ones', async () => {
    const root = await mkdtemp(join(tmpdir(), 'wharf-fs-sweep-'));
    try {
      const driver = new FsBlobDriver(root);
      const abandoned = await driver.writer('blobs/x');
      await abandoned.write(Buffer.from('partial'));
      // Not committed and never cancelled, as after a crash: the staged file stays in .tmp/.
      const staged = await readdir(join(root, '.tmp'));
      assert.equal(staged.length, 1);
      assert.equal(await driver.sweepStaging(60_000), 0);
      const old = new Date(Date.now() - 120_000);
      await utimes(join(root, '.tmp', staged[0]!), old, old);
      assert.equal(await driver.sweepStaging(60_000), 1);
      assert.deepEqual(await readdir(join(root, '.tmp')), []);
      assert.equal(await driver.stat('blobs/x'), undefined);
      await abandoned.cancel();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
