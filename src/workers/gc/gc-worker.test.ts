import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../oci/digest.js';
import { Metrics } from '../../observability/metrics.js';
import { blobKey } from '../../storage/keys.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { createGcWorker } from '../../main/compose-gc.js';

for (const dialect of DIALECTS) {
  describe(`garbage-collection worker (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.enabled': false, 'gc.grace_period': 0 } });
    });
    after(async () => t.close());

    it('runs one pass per interval across workers, and records it in the metrics', async () => {
      let clock = Date.now();
      const metrics = new Metrics({ defaultMetrics: false });
      // Bytes a writer committed before it died: the first pass sweeps them.
      const stray = Buffer.from('left by a crash');
      const w = await t.storage.writer(blobKey(digestOf(stray)));
      await w.write(stray);
      await w.commit();
      await new Promise((r) => setTimeout(r, 5));
      const worker = () => createGcWorker(t.db, t.registry.gc, { intervalMs: 3_600_000, now: () => clock, metrics });
      const [a, b, c] = [worker(), worker(), worker()];
      const first = await Promise.all([a.runOnce(), b.runOnce(), c.runOnce()]);
      assert.equal(first.filter((r) => r !== undefined).length, 1, 'exactly one worker ran the pass');
      assert.equal(await b.runOnce(), undefined, 'not due again before the interval');
      clock += 3_600_001;
      assert.notEqual(await c.runOnce(), undefined);
      const text = await metrics.registry.metrics();
      assert.match(text, /wharf_gc_passes_total\{result="ok"\} 2/);
      assert.match(text, /wharf_gc_removed_total\{kind="manifest"\} 0/);
      assert.match(text, /wharf_gc_swept_blobs_total 1\n/);
      assert.match(text, new RegExp(`wharf_gc_swept_bytes_total ${stray.length}\\n`));
    });

    it('lets another worker take over a lease whose holder died', async () => {
      let clock = Date.now() + 10 * 3_600_000;
      const dead = createGcWorker(t.db, { run: () => new Promise(() => {}) } as never, { intervalMs: 1000, now: () => clock });
      void dead.runOnce();
      await new Promise((r) => setTimeout(r, 50));
      const other = createGcWorker(t.db, t.registry.gc, { intervalMs: 1000, now: () => clock });
      assert.equal(await other.runOnce(), undefined, 'the lease is held');
      clock += 11 * 60_000;
      assert.notEqual(await other.runOnce(), undefined, 'the lease expired');
    });

    it('takes over after the configured lease (gc.lease), not before', async () => {
      let clock = Date.now() + 20 * 3_600_000;
      const dead = createGcWorker(t.db, { run: () => new Promise(() => {}) } as never, { intervalMs: 1000, leaseMs: 5000, now: () => clock });
      void dead.runOnce();
      await new Promise((r) => setTimeout(r, 50));
      const other = createGcWorker(t.db, t.registry.gc, { intervalMs: 1000, leaseMs: 5000, now: () => clock });
      clock += 4999;
      assert.equal(await other.runOnce(), undefined, 'the lease is held');
      clock += 1;
      assert.notEqual(await other.runOnce(), undefined, 'the lease expired');
    });
  });
}
