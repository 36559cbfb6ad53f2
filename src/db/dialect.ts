/**
 * Everything that differs between SQLite and PostgreSQL lives here: column types, case-exact
 * collation, unique-violation detection, row locks and locks on keys that have no row.
 */
import { sql, type ColumnDataType, type Expression, type RawBuilder } from 'kysely';

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
}

/** The advisory-lock class of `keyLock` (two-integer form), apart from any other use of advisory locks. */
const KEY_LOCK_CLASS = 0x57686172; // "Whar"

export const sqliteAdapter: DialectAdapter = {
  name: 'sqlite',
  idType: 'integer',
  bigintType: 'integer',
  bytesType: 'blob',
  exactText: 'text',
  isUniqueViolation: (err) => typeof (err as { code?: unknown })?.code === 'string' && (err as { code: string }).code.startsWith('SQLITE_CONSTRAINT'),
  supportsRowLocks: false,
  keyLock: () => undefined,
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
};
