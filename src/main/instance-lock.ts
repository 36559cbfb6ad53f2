/**
 * One `wharf serve` per SQLite database. SQLite lets any number of processes open the database, and
 * two servers on it (and on its blob directory) would both run and write: each believes it alone runs
 * garbage collection, upload expiry and the sweeps. So a server on SQLite holds an exclusive lock for
 * as long as it runs, and a second server is refused with the first one's pid.
 *
 * The lock is an operating-system lock, not the existence of a file: `<data_dir>/wharf.lock` is a
 * small SQLite file on which the holder keeps a write transaction open (SQLite takes a POSIX `fcntl`
 * lock for it). The kernel drops the lock when the process ends however it ends (exit, crash,
 * SIGKILL), so a stale lock cannot block the next start; the file itself stays and is harmless.
 * When the database file lives outside data_dir, `<database file>.lock` is locked as well, so that
 * two servers with different data directories but one database are refused too.
 *
 * PostgreSQL takes no lock: several replicas sharing one database and one blob store is how Wharf
 * scales out. CLI commands (`wharf user`, `wharf gc`...) take no lock either; they may run beside
 * the server.
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type SqliteDatabase from 'better-sqlite3';
import type { Config } from '../config/schema.js';
import { StartupError } from './startup-error.js';

export interface InstanceLock {
  /** The lock files held. */
  readonly paths: string[];
  /** Gives the locks up (also done by the kernel when the process ends). */
  release(): void;
}

/** Takes the locks for `config` (none for PostgreSQL or an in-memory SQLite database); StartupError when another server holds one. */
export function acquireInstanceLock(config: Pick<Config, 'data_dir' | 'db'>): InstanceLock | undefined {
  const file = sqliteFile(config);
  if (file === undefined) return undefined;
  const paths = [join(config.data_dir, 'wharf.lock')];
  if (resolve(dirname(file)) !== resolve(config.data_dir)) paths.push(`${file}.lock`);
  const held: SqliteDatabase.Database[] = [];
  const release = () => {
    for (const db of held.splice(0)) {
      try {
        db.close();
      } catch {
        // Closing rolls the open transaction back; nothing else to undo.
      }
    }
  };
  try {
    for (const path of paths) held.push(lockFile(path, file));
  } catch (err) {
    release();
    throw err;
  }
  return { paths, release };
}

/** better-sqlite3, loaded on the first lock: a server on PostgreSQL takes none and never loads its native module. */
function loadSqlite(): typeof SqliteDatabase {
  return createRequire(import.meta.url)('better-sqlite3') as typeof SqliteDatabase;
}

function lockFile(path: string, database: string): SqliteDatabase.Database {
  let db: SqliteDatabase.Database;
  try {
    db = new (loadSqlite())(path, { timeout: 0 });
    db.pragma('journal_mode = DELETE');
    db.exec('create table if not exists holder (id integer primary key check (id = 1), pid integer not null, host text not null, started text not null)');
  } catch (err) {
    if (isBusy(err)) throw refused(path, database, undefined);
    throw new StartupError(`cannot use the lock file ${path}: ${(err as Error).message}`);
  }
  // Record who holds it (committed, so a refused server can name us), then hold the write lock. A
  // server that starts in between takes the lock first and we are the one refused: exactly one wins.
  try {
    db.exec('begin immediate');
    db.prepare('insert or replace into holder (id, pid, host, started) values (1, ?, ?, ?)').run(process.pid, hostname(), new Date().toISOString());
    db.exec('commit');
    db.exec('begin immediate');
    return db;
  } catch (err) {
    if (!isBusy(err)) {
      db.close();
      throw new StartupError(`cannot lock ${path}: ${(err as Error).message}`);
    }
    const holder = readHolder(db);
    db.close();
    throw refused(path, database, holder);
  }
}

function readHolder(db: SqliteDatabase.Database): { pid: number; host: string; started: string } | undefined {
  try {
    if (db.inTransaction) db.exec('rollback');
    db.pragma('busy_timeout = 2000');
    return db.prepare('select pid, host, started from holder where id = 1').get() as { pid: number; host: string; started: string } | undefined;
  } catch {
    return undefined;
  }
}

function refused(path: string, database: string, holder: { pid: number; host: string; started: string } | undefined): StartupError {
  const who = holder ? `pid ${holder.pid} on ${holder.host}, started ${holder.started}` : 'see who holds the lock with fuser';
  return new StartupError(
    `another wharf serve is already running on the SQLite database ${database} (${who}; lock ${path}): stop it first, or give this one its own data_dir; several servers may share one database only on PostgreSQL (db.url)`,
  );
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** The SQLite database file `wharf serve` will open, or undefined for PostgreSQL and `sqlite::memory:`. */
function sqliteFile(config: Pick<Config, 'data_dir' | 'db'>): string | undefined {
  const url = config.db.url ?? `sqlite:${join(config.data_dir, 'wharf.db')}`;
  if (!url.startsWith('sqlite:')) return undefined;
  const path = url.slice('sqlite:'.length);
  return path === ':memory:' ? undefined : resolve(path);
}
