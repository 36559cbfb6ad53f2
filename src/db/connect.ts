/**
 * Opens the metadata database named by config (SQLite by default, PostgreSQL for `postgres://` URLs).
 * Each dialect's driver package is loaded only when its dialect is opened: a process on SQLite never
 * holds pg's modules, one on PostgreSQL never loads better-sqlite3's native module.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase as SqliteDialectDatabase } from 'kysely';
import { postgresAdapter, sqliteAdapter, type DialectAdapter } from './dialect.js';
import { migrateToLatest } from './migrate.js';
import { ProcessLiveness } from './process-liveness.js';
import { registerDirectReader } from './prepared-query.js';
import type { Database } from './tables.js';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: DialectAdapter;
  /** A redacted description for logs: `sqlite:/path` or `postgres://host:port/db`. */
  description: string;
  /**
   * This process's id while it holds its liveness lock (PostgreSQL, opened with `processId`): the claims
   * it stamps with it are taken over at once when it dies (process-liveness.ts). Undefined otherwise.
   */
  processId?: string;
  close(): Promise<void>;
}

export interface OpenOptions {
  url?: string;
  dataDir: string;
  poolSize?: number;
  migrate?: boolean;
  /**
   * PostgreSQL: run prepared reads as named (server-side) prepared statements. Default true; off for a
   * connection pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
  /** Errors of idle pooled connections (e.g. the server restarted); queries reconnect on their own. */
  onConnectionError?: (err: Error) => void;
  /**
   * PostgreSQL: this process's id (unique per start), held as a liveness lock on a connection of its own
   * for as long as the handle is open (process-liveness.ts). Ignored on SQLite.
   */
  processId?: string;
  /** The liveness lock was lost (`regained` false) or is held again (`regained` true). */
  onLiveness?: (regained: boolean, err?: Error) => void;
}

export async function openDatabase(opts: OpenOptions): Promise<DatabaseHandle> {
  const url = opts.url ?? `sqlite:${join(opts.dataDir, 'wharf.db')}`;
  let handle: DatabaseHandle;
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.poolSize ?? 10,
      // int8 (bigint) columns hold sizes and times well inside 2^53: read them as numbers.
      types: { getTypeParser: ((oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as never))) as never },
    });
    // Without a listener, an idle connection dropped by the server would crash the process.
    pool.on('error', (err) => opts.onConnectionError?.(err));
    const u = new URL(url);
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    if (opts.preparedStatements !== false) {
      // Prepared reads (the manifest GET and the access checks in front of it) run as named statements:
      // each pooled connection parses and plans one once and then only binds values.
      const names = new Map<string, string>();
      registerDirectReader(db, (text, parameters) => {
        let name = names.get(text);
        if (!name) names.set(text, (name = `wharf_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`));
        return pool.query({ name, text, values: parameters as unknown[] }).then((r) => r.rows as unknown[]);
      });
    }
    handle = {
      db,
      dialect: postgresAdapter,
      description: `postgres://${u.host}${u.pathname}`,
      close: async () => {},
    };
    handle.close = () => handle.db.destroy();
    if (opts.processId !== undefined) {
      const liveness = new ProcessLiveness({
        connect: async () => {
          // Keepalives: a connection to a database host that vanished is noticed, not left hanging.
          const client = new pg.Client({ connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: 10_000, connectionTimeoutMillis: 10_000, application_name: 'wharf liveness' });
          try {
            await client.connect();
          } catch (err) {
            client.on('error', () => undefined);
            throw err;
          }
          return client;
        },
        lock: postgresAdapter.processLock(opts.processId)!.compile(db),
        onLost: (err) => opts.onLiveness?.(false, err),
        onRegained: () => opts.onLiveness?.(true),
      });
      try {
        await liveness.start();
      } catch (err) {
        await db.destroy().catch(() => undefined);
        throw err;
      }
      handle.processId = opts.processId;
      handle.close = async () => {
        await liveness.close();
        await db.destroy();
      };
    }
  } else if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    const file = path === ':memory:' ? ':memory:' : resolve(path);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const { default: Sqlite } = await import('better-sqlite3');
    const sqlite = new Sqlite(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    const cached = withStatementCache(sqlite);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cached }) });
    // Every SQLite statement runs synchronously, so outside a transaction nothing can be half-way
    // through the connection: a prepared read may run at once instead of queueing for Kysely's lock.
    // Inside one (a Kysely transaction holds the connection across awaits) it must wait its turn.
    registerDirectReader(db, (text, parameters) => {
      if (sqlite.inTransaction) return undefined;
      const stmt = cached.prepare(text) as unknown as SqliteDatabase.Statement;
      return stmt.reader ? (stmt.all(parameters as unknown[]) as unknown[]) : undefined;
    });
    handle = { db, dialect: sqliteAdapter, description: `sqlite:${file}`, close: () => db.destroy() };
  } else {
    throw new Error(`db.url must start with postgres:// or sqlite: (got "${url.replace(/\/\/[^@]*@/, '//***@')}")`);
  }
  if (opts.migrate !== false) {
    try {
      await migrateToLatest(handle.db, handle.dialect);
    } catch (err) {
      // Pooled connections would keep the process alive after the failure is reported.
      await handle.close().catch(() => undefined);
      throw err;
    }
  }
  return handle;
}

/**
 * Kysely prepares every SQLite query anew; preparing is a large share of a small query's cost. Queries
 * run synchronously behind Kysely's single-connection lock, so a prepared statement can be reused.
 */
function withStatementCache(db: SqliteDatabase.Database, max = 256): SqliteDialectDatabase {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (stmt) {
        cache.delete(sql);
      } else {
        stmt = db.prepare(sql);
        if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, stmt);
      return stmt as never;
    },
    close() {
      cache.clear();
      db.close();
    },
  };
}
