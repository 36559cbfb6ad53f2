/**
 * Before `wharf serve` listens, the S3 bucket must be reachable with the configured credentials: an
 * unknown bucket, refused keys or an endpoint that does not answer become one StartupError line
 * naming the setting to fix, rather than a 503 on every pull later.
 */
import type { Config } from '../config/schema.js';
import { StorageUnavailableError, type BlobDriver } from '../storage/blob-driver.js';
import type { S3BlobDriver } from '../storage/s3/s3-blob-driver.js';
import { s3Status } from '../storage/s3/s3-errors.js';
import { StartupError } from './startup-error.js';

export async function checkStorage(storage: BlobDriver, config: Readonly<Config>): Promise<void> {
  // By the configuration, not `instanceof`: the S3 driver's module is loaded only when it is configured.
  if (config.storage.driver !== 's3') return;
  const s3 = config.storage.s3;
  const where = `bucket "${s3.bucket}" at ${s3.endpoint ?? `AWS S3 (${s3.region})`}`;
  try {
    await (storage as S3BlobDriver).probe();
  } catch (err) {
    throw s3StartupError(err instanceof StorageUnavailableError ? err.cause : err, where);
  }
}

function s3StartupError(err: unknown, where: string): StartupError {
  const status = s3Status(err);
  if (status === 404) return new StartupError(`S3 storage: no ${where}; create it or fix storage.s3.bucket (WHARF_STORAGE_S3_BUCKET)`);
  if (status === 403 || status === 401) {
    return new StartupError(`S3 storage: ${where} refused the credentials (HTTP ${status}); check storage.s3.access_key_id and storage.s3.secret_access_key (WHARF_STORAGE_S3_ACCESS_KEY_ID, WHARF_STORAGE_S3_SECRET_ACCESS_KEY)`);
  }
  if (status !== undefined) return new StartupError(`S3 storage: ${where} answered HTTP ${status}; check storage.s3 (endpoint, region, bucket)`);
  const cause = err as { code?: string; message?: string; name?: string };
  const reason = cause.code ?? cause.message ?? cause.name ?? String(err);
  return new StartupError(`S3 storage: cannot reach ${where}: ${reason}; check storage.s3.endpoint (WHARF_STORAGE_S3_ENDPOINT) and that the server runs`);
}
