/**
 * Everything that differs between SQLite and PostgreSQL lives here: column types, case-exact
 * collation, unique-violation detection, row locks, locks on keys that have no row, and which
 * processes are alive.
 */
import { sql, type ColumnDataType, type Expression, type RawBuilder, type SqlBool } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

export interface DialectAdapter {
  readonly name: DialectName;
  /** Auto-incrementing 64-bit primary key column type. */
  readonly idType: ColumnDataType | Expression<unknown>;
  readonly bigintType: ColumnDataType;
  readonly bytesType: ColumnDataType;
  /** Text compared and ordered byte-wise, whatever the database's locale. */
  readonly exactText: ColumnDataType | RawBuilder<unknown>;
  isUniqueViolation(err: unknown): boolean;
  /** `FOR UPDATE` on PostgreSQL; nothing on SQLite, where a write transaction is already exclusive. */
  readonly supportsRowLocks: boolean;
  /**
   * A statement that holds a lock on `key` until the transaction ends, for things that may have no row
   * to lock (a PostgreSQL advisory lock; keys that hash alike share a lock); undefined on SQLite, where
   * write transactions already run one at a time.
   */
  keyLock(key: string): RawBuilder<unknown> | undefined;
  /**
   * The statement a process runs once on a connection of its own to say it lives (process-liveness.ts):
   * a session lock on its id, held until that connection closes, as it does when the process dies.
   * Undefined on SQLite, where one process is alone on its database.
   */
  processLock(processId: string): RawBuilder<unknown> | undefined;
  /**
   * True for a row whose `column` names a process that holds no `processLock` now (it died, or lost its
   * connection): a claim it stamped may be taken over before it expires. False when `column` is null (a
   * claim of a process without the lock lapses only by expiring). Undefined on SQLite.
   */
  processGone(column: string): RawBuilder<SqlBool> | undefined;
  /**
   * One statement holding the locks of several keys (as `keyLock` each) until the transaction ends,
   * taken in one fixed order (that of the lock numbers), so that two holders of overlapping sets never
   * wait for each other in a cycle; undefined on SQLite.
   */
  keyLocks(keys: readonly string[]): RawBuilder<unknown> | undefined;
}

/** The advisory-lock class of `keyLock` (two-integer form), apart from any other use of advisory locks. */
const KEY_LOCK_CLASS = 0x57686172; // "Whar"
/**
 * The advisory-lock class of `processLock`. Shared locks: two ids that hash alike never make a process
 * wait for its lock; such a dead process only looks alive, and its claims lapse when they expire.
 */
const PROCESS_LOCK_CLASS = 0x57686173; // "Whas"

export const sqliteAdapter: DialectAdapter = {
  name: 'sqlite',
  idType: 'integer',
  bigintType: 'integer',
  bytesType: 'blob',
  exactText: 'text',
  isUniqueViolation: (err) => typeof (err as { code?: unknown })?.code === 'string' && (err as { code: string }).code.startsWith('SQLITE_CONSTRAINT'),
  supportsRowLocks: false,
  keyLock: () => undefined,
  processLock: () => undefined,
  processGone: () => undefined,
  keyLocks: () => undefined,
};

export const postgresAdapter: DialectAdapter = {
  name: 'postgres',
  idType: 'bigserial',
  bigintType: 'bigint',
  bytesType: 'bytea',
  exactText: sql`text collate "C"`,
  isUniqueViolation: (err) => (err as { code?: unknown })?.code === '23505',
  supportsRowLocks: true,
  keyLock: (key) => sql`select pg_advisory_xact_lock(${KEY_LOCK_CLASS}, hashtext(${key}))`,
  // Keepalives on the server's side of that connection: the lock of a machine that vanished (no FIN,
  // no RST) goes within about 25 s, not after the system's default of two hours.
  processLock: (processId) =>
    sql`select set_config('tcp_keepalives_idle', '10', false), set_config('tcp_keepalives_interval', '5', false), set_config('tcp_keepalives_count', '3', false), pg_advisory_lock_shared(${sql.lit(PROCESS_LOCK_CLASS)}, hashtext(${processId}))`,
  // pg_locks shows a two-integer advisory key as (classid, objid) with objsubid 2, per database.
  processGone: (column) => {
    const c = sql.ref(column);
    return sql<SqlBool>`(${c} is not null and not exists (select 1 from pg_locks l where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_database where datname = current_database()) and l.classid = ${sql.lit(PROCESS_LOCK_CLASS)} and l.objid = hashtext(${c})::oid and l.objsubid = 2))`;
  },
  // The sorted subquery feeds the aggregate in order: the locks are taken one after another by number.
  keyLocks: (keys) =>
    sql`select count(pg_advisory_xact_lock(${KEY_LOCK_CLASS}, h)) from (select distinct hashtext(k) as h from unnest(cast(${[...keys]} as text[])) as k order by h) as locks`,
};
