/** Runs the migrations in order; the same list for both dialects. */
import { Migrator, type Kysely, type Migration } from 'kysely';
import type { DialectAdapter } from './dialect.js';
import { registryCore } from './migrations/0001-registry-core.js';
import { accounts } from './migrations/0002-accounts.js';
import { proxyCache } from './migrations/0003-proxy-cache.js';
import { gc } from './migrations/0004-gc.js';
import { autoprune } from './migrations/0005-autoprune.js';
import { quotas } from './migrations/0006-quotas.js';
import { serverSettings } from './migrations/0007-server-settings.js';
import { signIn } from './migrations/0008-sign-in.js';
import { collectionLookups } from './migrations/0009-collection-lookups.js';
import { tagImmutabilityAndLabels } from './migrations/0010-tag-immutability-and-labels.js';
import { repositoryMirrors } from './migrations/0011-repository-mirrors.js';
import { organizationMirrors } from './migrations/0012-organization-mirrors.js';
import { blobFills } from './migrations/0013-blob-fills.js';
import { loginFailures } from './migrations/0014-login-failures.js';
import { replication } from './migrations/0015-replication.js';
import { uploadChunkClaims } from './migrations/0017-upload-chunk-claims.js';
import { storageLocations } from './migrations/0019-storage-locations.js';
import { claimProcesses } from './migrations/0020-claim-processes.js';
import { leaseProcesses } from './migrations/0021-lease-processes.js';

function migrations(d: DialectAdapter): Record<string, Migration> {
  return {
    '0001-registry-core': registryCore(d),
    '0002-accounts': accounts(d),
    '0003-proxy-cache': proxyCache(d),
    '0004-gc': gc(d),
    '0005-autoprune': autoprune(d),
    '0006-quotas': quotas(d),
    '0007-server-settings': serverSettings(d),
    '0008-sign-in': signIn(d),
    '0009-collection-lookups': collectionLookups(d),
    '0010-tag-immutability-and-labels': tagImmutabilityAndLabels(d),
    '0011-repository-mirrors': repositoryMirrors(d),
    '0012-organization-mirrors': organizationMirrors(d),
    '0013-blob-fills': blobFills(d),
    '0014-login-failures': loginFailures(d),
    '0015-replication': replication(d),
    '0017-upload-chunk-claims': uploadChunkClaims(d),
    '0019-storage-locations': storageLocations(d),
    '0020-claim-processes': claimProcesses(),
    '0021-lease-processes': leaseProcesses(),
  };
}

export async function migrateToLatest(db: Kysely<any>, dialect: DialectAdapter): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(dialect) },
    migrationTableName: 'wharf_migrations',
    migrationLockTableName: 'wharf_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
}
