/** A logger whose JSON lines are kept, parsed, for tests that assert on what the registry logs. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/observability/logger.js';

export interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  err?: { stack?: string; message?: string };
  [key: string]: unknown;
}

export interface CapturedLog {
  logger: Logger;
  /** Every line written so far, parsed, in order. */
  lines: LogLine[];
  /** The lines at error level or above, or carrying a stack trace. */
  alarming(): LogLine[];
}

export function captureLog(level = 'info'): CapturedLog {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return {
    logger: createLogger(level, sink),
    lines,
    alarming: () => lines.filter((l) => l.level >= 50 || typeof l.err?.stack === 'string' || typeof l.stack === 'string'),
  };
}
