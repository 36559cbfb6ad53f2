import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BlobBuffers } from './blob-buffers.js';

describe('BlobBuffers', () => {
  it('hands a buffer given back to the next taker instead of allocating one', () => {
    const buffers = new BlobBuffers(1024, 3);
    const a = buffers.take();
    assert.equal(a.length, 1024);
    buffers.give(a);
    assert.equal(buffers.take(), a);
    assert.notEqual(buffers.take(), a, 'a buffer taken is not handed out twice');
  });

  it('keeps at most maxIdle, and none of another size', () => {
    const buffers = new BlobBuffers(1024, 2);
    const taken = [buffers.take(), buffers.take(), buffers.take()];
    for (const b of taken) buffers.give(b);
    assert.equal(buffers.waiting, 2);
    buffers.give(Buffer.alloc(512));
    assert.equal(buffers.waiting, 2);
    const again = [buffers.take(), buffers.take()];
    assert.deepEqual(new Set(again), new Set(taken.slice(0, 2)));
    assert.equal(buffers.waiting, 0);
  });
});
