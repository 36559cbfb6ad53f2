/**
 * A reason `wharf serve` cannot start that the operator can act on (port in use, data directory not
 * usable, database unreachable, TLS files unreadable, another server on the same SQLite database).
 * The CLI prints its message as one line, without a stack trace, and exits with status 1; the message
 * names the problem and what to do about it.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}
