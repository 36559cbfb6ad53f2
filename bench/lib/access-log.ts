/**
 * Counts what reached a registry from its access log: Distribution writes one combined-format line per
 * request once the response is complete, e.g.
 *   127.0.0.1 - - [27/Nov/2026:16:15:00 +0000] "HEAD /v2/bench/big/manifests/bench HTTP/1.1" 200 405 "" "Go-http-client/1.1"
 * A benchmark takes a mark (the file's size) before a phase and reads the requests logged since.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  bytes: number;
}

const LINE = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/;

export class AccessLog {
  constructor(readonly path: string) {}

  /** The position up to which the log has been written. */
  mark(): number {
    return statSync(this.path).size;
  }

  /** The requests logged since `mark`, optionally only those `filter` accepts. */
  since(mark: number, filter?: (r: LoggedRequest) => boolean): LoggedRequest[] {
    const end = this.mark();
    const buffer = Buffer.alloc(Math.max(0, end - mark));
    const fd = openSync(this.path, 'r');
    try {
      let off = 0;
      while (off < buffer.length) {
        const n = readSync(fd, buffer, off, buffer.length - off, mark + off);
        if (n === 0) break;
        off += n;
      }
    } finally {
      closeSync(fd);
    }
    const out: LoggedRequest[] = [];
    for (const line of buffer.toString('utf8').split('\n')) {
      const m = LINE.exec(line);
      if (!m) continue;
      const r = { method: m[1]!, path: m[2]!.split('?')[0]!, status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]) };
      if (!filter || filter(r)) out.push(r);
    }
    return out;
  }

  /** Waits until nothing new has been logged for `quietMs` (requests still running log when they end). */
  async settle(quietMs = 300, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = this.mark();
    for (;;) {
      await sleep(quietMs);
      const now = this.mark();
      if (now === last || Date.now() >= deadline) return;
      last = now;
    }
  }
}
