/**
 * Everything that differs between SQLite and PostgreSQL lives here: column types, case-exact
 * collation, unique-violation detection and row locks.
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
}

export const sqliteAdapter: DialectAdapter = {
  name: 'sqlite',
  idType: 'integer',
  bigintType: 'integer',
  bytesType: 'blob',
  exactText: 'text',
  isUniqueViolation: (err) => typeof (err as { code?: unknown })?.code === 'string' && (err as { code: string }).code.startsWith('SQLITE_CONSTRAINT'),
  supportsRowLocks: false,
};

export const postgresAdapter: DialectAdapter = {
  name: 'postgres',
  idType: 'bigserial',
  bigintType: 'bigint',
  bytesType: 'bytea',
  exactText: sql`text collate "C"`,
  isUniqueViolation: (err) => (err as { code?: unknown })?.code === '23505',
  supportsRowLocks: true,
};
