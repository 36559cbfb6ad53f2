/**
 * A Kysely query compiled once. Hot paths (manifest GET) would otherwise rebuild and recompile the
 * same SQL on every request; here the query is built with sentinel parameter values, compiled, and
 * each call substitutes real values by position.
 */
import { CompiledQuery, type Compilable, type Kysely } from 'kysely';

const SENTINEL = '\u0000wharf-param:';

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

  async execute(db: Kysely<any>, params: Params): Promise<Row[]> {
    const parameters = this.slots.map((s) => ('name' in s ? params[s.name] : s.constant));
    const result = await db.executeQuery<Row>(CompiledQuery.raw(this.compiled.sql, parameters) as CompiledQuery<Row>);
    return result.rows;
  }
}
