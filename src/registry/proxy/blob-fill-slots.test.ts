import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AlignedBuffers, isPageAligned } from '../../storage/aligned-buffers.js';
import { FillSlots } from './blob-fill-slots.js';

const SLOT = 64 * 1024;

describe('FillSlots', () => {
  it('takes page-aligned slots from the pool first, plain ones beyond it, and gives each back where it came from', () => {
    const pool = new AlignedBuffers(SLOT, 2, 1);
    const slots = new FillSlots(SLOT, 4, pool);
    const taken = [slots.take(), slots.take(), slots.take()];
    assert.deepEqual(taken.map((s) => isPageAligned(s)), [true, true, false], 'two from the pool, then a plain one');
    assert.equal(pool.idle, 0);
    for (const s of taken) slots.give(s);
    assert.equal(pool.idle, 2, 'the aligned slots went back to the pool');
    assert.equal(slots.idle, 3);
    assert.ok(isPageAligned(slots.take()), 'the pool again first');
  });

  it('ignores a pool whose buffers are not the slot size', () => {
    const slots = new FillSlots(SLOT, 4, new AlignedBuffers(2 * SLOT, 2, 1));
    const s = slots.take();
    assert.equal(s.byteLength, SLOT);
    assert.equal(isPageAligned(s), false);
  });
});
