/**
 * Why the metadata database could not be opened, as one line an operator can act on: PostgreSQL
 * unreachable or refusing the login or the database, an SQLite file that cannot be opened. Errors that
 * are none of these (a bug) are left as they are.
 */
import { StartupError } from './startup-error.js';

const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);
/** PostgreSQL: authentication, unknown database, server starting or shutting down, too many connections, no privilege. */
const POSTGRES = new Set(['28P01', '28000', '3D000', '57P01', '57P03', '53300', '42501']);
const FILES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'ENOTDIR', 'EISDIR']);

export function databaseStartupError(err: unknown, url: string): StartupError | undefined {
  const cause = rootCause(err);
  const code = String((cause as { code?: unknown }).code ?? '');
  const message = describe(cause);
  if (url.startsWith('sqlite:')) {
    if (!code.startsWith('SQLITE_') && !FILES.has(code)) return undefined;
    return new StartupError(`cannot open the SQLite database ${url.slice('sqlite:'.length)}: ${message}; check db.url (WHARF_DB_URL) and data_dir, and that the file is a Wharf database this user may write`);
  }
  const shown = redact(url);
  if (NETWORK.has(code) || /connection terminated|timeout/i.test(message)) {
    return new StartupError(`cannot connect to PostgreSQL at ${shown}: ${message}; check db.url (WHARF_DB_URL) and that the server runs and accepts connections from here`);
  }
  if (POSTGRES.has(code)) return new StartupError(`PostgreSQL at ${shown} refused: ${message}; check the user, password and database in db.url (WHARF_DB_URL)`);
  return undefined;
}

function rootCause(err: unknown): unknown {
  let e = err;
  for (let i = 0; i < 5 && e && typeof e === 'object' && !('code' in e) && 'cause' in e; i++) e = (e as { cause: unknown }).cause;
  return e;
}

/** The message, or for an AggregateError (every address of `localhost` refused) its parts'. */
function describe(err: unknown): string {
  const e = err as { message?: string; errors?: unknown[]; code?: string };
  if (e?.message) return e.message;
  if (Array.isArray(e?.errors) && e.errors.length) return e.errors.map((x) => (x as Error).message).join('; ');
  return e?.code ?? String(err);
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
