/** `values (…), (…)` of integer pairs, typed for PostgreSQL, for `(a, b) in (…)` over two id columns. */
import { sql } from 'kysely';

export function pairValues(pairs: ReadonlyArray<readonly [number, number]>) {
  return sql`values ${sql.join(pairs.map(([a, b]) => sql`(cast(${a} as bigint), cast(${b} as bigint))`))}`;
}
