/**
 * The full name `namespace/repository` of a repository row, as SQL over the aliases `n` (namespaces)
 * and `r` (repositories), ordered and compared byte-wise on both dialects.
 */
import { sql, type RawBuilder } from 'kysely';
import type { DialectAdapter } from './dialect.js';

export function fullRepositoryName(dialect: DialectAdapter): RawBuilder<string> {
  return dialect.name === 'postgres' ? sql<string>`(n.name || '/' || r.name) collate "C"` : sql<string>`(n.name || '/' || r.name)`;
}
