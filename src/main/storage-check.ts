/**
 * Before `wharf serve` listens, the storage must be usable: an S3 bucket reachable with the configured
 * credentials, a directory readable and writable. An unknown bucket, refused keys or an endpoint that
 * does not answer become one StartupError line naming the setting to fix, rather than a 503 on every
 * pull later. With several locations (`storage.locations`) a location that fails only warns (one log
 * line each) while at least one other works; when none works, the first one's problem stops the start.
 */
import type { Config } from '../config/schema.js';
import { storageLocations, type LocationConfig } from '../config/storage-locations.js';
import type { Logger } from '../observability/logger.js';
import { StorageUnavailableError, type BlobDriver } from '../storage/blob-driver.js';
import type { S3BlobDriver } from '../storage/s3/s3-blob-driver.js';
import { isCertificateError, s3Status } from '../storage/s3/s3-errors.js';
import { locationsOf } from './compose-storage.js';
import { StartupError } from './startup-error.js';

/** Returns the names of the locations that are down (only ever some of several). */
export async function checkStorage(storage: BlobDriver, config: Readonly<Config>, log?: Logger): Promise<string[]> {
  const configs = storageLocations(config);
  const located = config.storage.locations !== undefined;
  const drivers = locationsOf(storage, config);
  const problems = await Promise.all(configs.map((c, i) => checkLocation(drivers[i]!.driver, c, located)));
  if (problems.every((p) => p !== undefined)) throw problems[0]!;
  problems.forEach((p, i) => {
    if (p) log?.warn({ location: configs[i]!.name, problem: p.message }, 'storage location is down at start; writes go to the other locations until it is back');
  });
  return configs.filter((_, i) => problems[i] !== undefined).map((c) => c.name);
}

async function checkLocation(driver: BlobDriver, location: LocationConfig, located: boolean): Promise<StartupError | undefined> {
  const setting = located ? `storage.locations.${location.name}` : 'storage';
  const name = located ? ` location "${location.name}"` : '';
  if (location.driver === 's3') {
    // By the configuration, not `instanceof`: the S3 driver's module is loaded only when it is configured.
    const s3 = location.s3!;
    const where = `bucket "${s3.bucket}" at ${s3.endpoint ?? `AWS S3 (${s3.region})`}`;
    try {
      await (driver as S3BlobDriver).probe();
    } catch (err) {
      return s3StartupError(err instanceof StorageUnavailableError ? err.cause : err, `S3 storage${name}`, where, setting, located);
    }
    return undefined;
  }
  // Without locations the data directory check covers the default blob directory.
  if (!located) return undefined;
  try {
    await driver.check();
  } catch (err) {
    return new StartupError(`storage${name}: ${(err as Error).message.replace(/^storage unavailable: /, '')}; fix ${setting}.path or its permissions`);
  }
  return undefined;
}

function s3StartupError(err: unknown, what: string, where: string, setting: string, located: boolean): StartupError {
  const env = (key: string) => (located ? '' : ` (WHARF_STORAGE_S3_${key.toUpperCase()})`);
  const status = s3Status(err);
  if (status === 404) return new StartupError(`${what}: no ${where}; create it or fix ${setting}.s3.bucket${env('bucket')}`);
  if (status === 403 || status === 401) {
    const keys = located ? '' : ' (WHARF_STORAGE_S3_ACCESS_KEY_ID, WHARF_STORAGE_S3_SECRET_ACCESS_KEY)';
    return new StartupError(`${what}: ${where} refused the credentials (HTTP ${status}); check ${setting}.s3.access_key_id and ${setting}.s3.secret_access_key${keys}`);
  }
  if (status !== undefined) return new StartupError(`${what}: ${where} answered HTTP ${status}; check ${setting}.s3 (endpoint, region, bucket)`);
  const cause = err as { code?: string; message?: string; name?: string };
  if (isCertificateError(err)) {
    return new StartupError(`${what}: the certificate of ${where} does not verify (${cause.code}); give its certificate authority in ${setting}.s3.ca_file${env('ca_file')} or NODE_EXTRA_CA_CERTS`);
  }
  const reason = cause.code ?? cause.message ?? cause.name ?? String(err);
  return new StartupError(`${what}: cannot reach ${where}: ${reason}; check ${setting}.s3.endpoint${env('endpoint')} and that the server runs`);
}
