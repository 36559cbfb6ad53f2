/** Builds the quota service (registry/quota/quota-service.ts) over the database. */
import type { Kysely } from 'kysely';
import type { DialectAdapter } from '../db/dialect.js';
import { NamespaceStore } from '../db/namespace-store.js';
import { QuotaAccounting } from '../db/quota-accounting.js';
import { QuotaStore } from '../db/quota-store.js';
import type { Database } from '../db/tables.js';
import { QuotaService, type QuotaServiceDeps } from '../registry/quota/quota-service.js';

/** The quota service over one database (its own stores and accounting). */
export function createQuotaService(db: Kysely<Database>, dialect: DialectAdapter, opts: Pick<QuotaServiceDeps, 'audit' | 'now'> = {}): QuotaService {
  return new QuotaService({ store: new QuotaStore(db, dialect), namespaces: new NamespaceStore(db, dialect), accounting: new QuotaAccounting(db, dialect), ...opts });
}
