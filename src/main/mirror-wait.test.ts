import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MirrorRecord, MirrorSyncState } from '../db/mirror-store.js';
import { progressLine, waitForRun, type WaitOutput } from './mirror-wait.js';

/** A mirror row in the given sync state (only `sync` matters to the waiter). */
const at = (sync: Partial<MirrorSyncState>): MirrorRecord => ({ sync: { status: 'NEVER_RUN', startAt: null, expiresAt: null, retriesRemaining: 3, txn: 't', holder: null, run: null, last: null, ...sync } }) as MirrorRecord;
const run = (done: number, tag: string | null, bytes = 0) => ({ startedAt: 1, tagsTotal: 4, tagsDone: done, bytes, currentTag: tag });
const last = (finishedAt: number, outcome: 'SUCCESS' | 'PARTIAL' | 'FAIL' | 'CANCEL', message: string | null = null) => ({ startedAt: 1, finishedAt, outcome, message, bytes: 2048 });

function output(tty: boolean): WaitOutput & { text: string } {
  const o = { text: '', isTTY: tty, columns: 80, write: (s: string) => (o.text += s) };
  return o;
}

async function follow(states: MirrorRecord[], out: WaitOutput, lastFinishedBefore: number | null = null) {
  let i = 0;
  let sleeps = 0;
  const result = await waitForRun({ read: async () => states[Math.min(i++, states.length - 1)], lastFinishedBefore, out, sleep: async () => void sleeps++, intervalMs: 1 });
  return { result, reads: i, sleeps };
}

describe('mirror sync --wait', () => {
  it('follows SYNC_NOW, then the run, to the new last run; plain lines off a terminal', async () => {
    const out = output(false);
    const { result, reads } = await follow(
      [at({ status: 'SYNC_NOW', last: last(5, 'FAIL') }), at({ status: 'SYNCING', run: run(0, 'a'), last: last(5, 'FAIL') }), at({ status: 'SYNCING', run: run(0, 'a'), last: last(5, 'FAIL') }), at({ status: 'SYNCING', run: run(2, 'c', 3 * 1024 * 1024), last: last(5, 'FAIL') }), at({ status: 'SUCCESS', last: last(9, 'SUCCESS', '4 tags') })],
      out,
      5,
    );
    assert.deepEqual(result, { outcome: 'SUCCESS', message: '4 tags', bytes: 2048 });
    assert.equal(reads, 5);
    assert.equal(out.text, 'queued; waiting for a mirror worker to start it\n0/4 tags, 0.0 Byte, a\n2/4 tags, 3.0 MiB, c\n');
  });

  it('draws a bar in place on a terminal and clears it at the end', async () => {
    const out = output(true);
    const { result } = await follow([at({ status: 'SYNCING', run: run(1, 'b') }), at({ status: 'FAIL', retriesRemaining: 2, last: last(3, 'PARTIAL', 'b failed') })], out);
    assert.equal(result.outcome, 'PARTIAL');
    assert.equal(out.text, `\r\x1b[K[${'#'.repeat(6)}${'.'.repeat(18)}] 1/4 tags, 0.0 Byte, b\r\x1b[K`);
    assert.equal(progressLine(run(4, null), true, 20).length, 19, 'cut to the terminal width');
    assert.equal(progressLine(run(4, null), true, 0), `[${'#'.repeat(24)}] 4/4 tags, 0.0 Byte`, 'a terminal without a width gets 80 columns');
  });

  it('a run that finished before the request is not the one waited for; a cancel before any run ends the wait', async () => {
    const { result, reads } = await follow([at({ status: 'SYNC_NOW', last: last(5, 'SUCCESS') }), at({ status: 'CANCEL', retriesRemaining: 0, last: last(5, 'SUCCESS') })], output(false), 5);
    assert.equal(reads, 2);
    assert.equal(result.outcome, 'CANCEL');
  });

  it('fails when the mirror is deleted while waiting', async () => {
    await assert.rejects(waitForRun({ read: async () => undefined, lastFinishedBefore: null, out: output(false), sleep: async () => {}, intervalMs: 1 }), /deleted/);
  });
});
