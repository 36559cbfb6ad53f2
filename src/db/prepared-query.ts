/**
 * A Kysely query compiled once. Hot paths (manifest GET, the access checks in front of it) would
 * otherwise rebuild and recompile the same SQL on every request; here the query is built with sentinel
 * parameter values, compiled, and each call substitutes real values by position.
 *
 * A read also skips Kysely's driver when the connection registered a direct reader for it (see
 * `registerDirectReader`): on SQLite the statement runs synchronously, without the connection lock's
 * chain of promises; on PostgreSQL it runs as a named prepared statement, so the server plans it once
 * per connection instead of on every call (a join over four tables costs far more to plan than to run).
 */
import { CompiledQuery, type Compilable, type Kysely } from 'kysely';

const SENTINEL = '\u0000wharf-param:';

/** Runs a read statement and returns its rows (or a promise of them), or undefined when it must go through Kysely. */
export type DirectReader = (sql: string, parameters: readonly unknown[]) => unknown[] | Promise<unknown[]> | undefined;

const directReaders = new WeakMap<Kysely<any>, DirectReader>();

/**
 * Lets prepared reads on `db` run through `reader` (connect.ts registers one per database). The reader
 * must return undefined whenever running the statement now could differ from running it through Kysely,
 * e.g. while a transaction holds the connection. A transaction's own Kysely instance has no reader: reads
 * inside a transaction always go through it.
 */
export function registerDirectReader(db: Kysely<any>, reader: DirectReader): void {
  directReaders.set(db, reader);
}

export class PreparedQuery<Row, Params extends Record<string, unknown>> {
  private readonly compiled: CompiledQuery<Row>;
  /** For each compiled parameter: the name of the call parameter, or a constant of the query. */
  private readonly slots: Array<{ name: keyof Params } | { constant: unknown }>;

  constructor(build: (p: { [K in keyof Params]: Params[K] }) => Compilable<Row>, names: ReadonlyArray<keyof Params>) {
    const sentinels = Object.fromEntries(names.map((n) => [n, `${SENTINEL}${String(n)}`])) as { [K in keyof Params]: Params[K] };
    this.compiled = build(sentinels).compile();
    this.slots = this.compiled.parameters.map((value) =>
      typeof value === 'string' && value.startsWith(SENTINEL) ? { name: value.slice(SENTINEL.length) as keyof Params } : { constant: value },
    );
  }

  /** The rows of the query with `params` (a select; writes must not be prepared this way). */
  async execute(db: Kysely<any>, params: Params): Promise<Row[]> {
    const parameters = this.slots.map((s) => ('name' in s ? params[s.name] : s.constant));
    const direct = directReaders.get(db)?.(this.compiled.sql, parameters);
    if (direct) return (await direct) as Row[];
    const result = await db.executeQuery<Row>(CompiledQuery.raw(this.compiled.sql, parameters) as CompiledQuery<Row>);
    return result.rows;
  }

  /** The first row, or undefined. */
  async first(db: Kysely<any>, params: Params): Promise<Row | undefined> {
    return (await this.execute(db, params))[0];
  }
}
