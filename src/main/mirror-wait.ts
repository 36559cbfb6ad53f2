/**
 * `wharf mirror sync REPO --wait`: follows the mirror's row until the run asked for has finished, and
 * shows its progress as the worker reports it (`run_*` columns): a bar redrawn in place on a terminal,
 * one line per change otherwise. The run is over when a new last run is recorded (its finish time
 * differs from the one before the request, whatever the clocks of the worker and of this process) or
 * when the mirror leaves SYNC_NOW/SYNCING without one (a cancel before any worker claimed it).
 */
import type { MirrorRecord, MirrorRunOutcome } from '../db/mirror-store.js';
import { formatSize } from '../registry/quota/size-text.js';

export interface WaitOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface WaitOptions {
  /** The mirror's row now; undefined when it was deleted. */
  read(): Promise<MirrorRecord | undefined>;
  /** `sync.last.finishedAt` before the run was asked for (null when it had never run). */
  lastFinishedBefore: number | null;
  out: WaitOutput;
  sleep(ms: number): Promise<void>;
  intervalMs: number;
}

export interface WaitResult {
  outcome: MirrorRunOutcome;
  message: string | null;
  bytes: number;
}

const BAR = 24;

/** The progress of a run as one line: a bar on a terminal, plain text otherwise. */
export function progressLine(run: NonNullable<MirrorRecord['sync']['run']>, tty: boolean, columns = 80): string {
  const counts = run.tagsTotal === null ? `${run.tagsDone} tags` : `${run.tagsDone}/${run.tagsTotal} tags`;
  const text = `${counts}, ${formatSize(run.bytes)}${run.currentTag ? `, ${run.currentTag}` : ''}`;
  if (!tty) return text;
  const share = run.tagsTotal ? Math.min(1, run.tagsDone / run.tagsTotal) : 0;
  const filled = Math.round(share * BAR);
  const line = `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${text}`;
  // A terminal that reports no width (0 on some consoles and pseudo-terminals) gets 80 columns.
  const width = columns >= 20 ? columns : 80;
  return line.length > width - 1 ? line.slice(0, width - 1) : line;
}

/** Waits for the run asked for; the outcome of the new last run (see the file comment). */
export async function waitForRun(o: WaitOptions): Promise<WaitResult> {
  const tty = o.out.isTTY === true;
  let shown = '';
  let queued = false;
  const clear = () => {
    if (tty && shown) o.out.write('\r\x1b[K');
    shown = '';
  };
  for (;;) {
    const record = await o.read();
    if (!record) {
      clear();
      throw new Error('the mirror configuration was deleted while waiting for its sync');
    }
    const { status, run, last } = record.sync;
    if (last && last.finishedAt !== o.lastFinishedBefore && status !== 'SYNCING' && status !== 'SYNC_NOW') {
      clear();
      return { outcome: last.outcome, message: last.message, bytes: last.bytes };
    }
    if (status !== 'SYNCING' && status !== 'SYNC_NOW') {
      clear();
      const outcome: MirrorRunOutcome = status === 'SUCCESS' ? 'SUCCESS' : status === 'CANCEL' ? 'CANCEL' : 'FAIL';
      return { outcome, message: status === 'CANCEL' ? 'cancelled before a worker started it' : `the mirror is ${status} with no run recorded`, bytes: 0 };
    }
    if (status === 'SYNC_NOW' && !queued) {
      queued = true;
      o.out.write('queued; waiting for a mirror worker to start it\n');
    }
    if (status === 'SYNCING' && run) {
      const line = progressLine(run, tty, o.out.columns);
      if (line !== shown) {
        o.out.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
        shown = line;
      }
    }
    await o.sleep(o.intervalMs);
  }
}
