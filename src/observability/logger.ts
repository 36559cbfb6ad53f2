/** Structured JSON logs (pino). Secrets never reach a log line: known sensitive fields are redacted. */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wharf' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['req.headers.authorization', 'headers.authorization', 'password', '*.password', 'token', '*.token'], censor: '[redacted]' },
    },
    destination,
  );
}
