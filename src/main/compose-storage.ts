/**
 * The configured blob storage: one driver, or with `storage.locations` a LocatedBlobDriver over one
 * driver per location in this process's order of preference. The S3 driver (and with it the AWS SDK,
 * some 30 MiB of a process's memory) is loaded only when a location uses it.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { storageLocations, type LocationConfig } from '../config/storage-locations.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { FsBlobDriver } from '../storage/fs/fs-blob-driver.js';
import { LocatedBlobDriver } from '../storage/located-driver.js';
import type { StorageLocation } from '../storage/locations.js';
import { MemoryBlobDriver } from '../storage/memory/memory-blob-driver.js';
import { StartupError } from './startup-error.js';

export async function createStorage(config: Readonly<Config>): Promise<BlobDriver> {
  const locations = storageLocations(config);
  if (!config.storage.locations) return createLocationDriver(locations[0]!);
  return new LocatedBlobDriver(await Promise.all(locations.map(async (l) => ({ name: l.name, driver: await createLocationDriver(l, `storage.locations.${l.name}`) }))));
}

/** The locations behind `storage`, most preferred first: those of a located driver, or the one named `default`. */
export function locationsOf(storage: BlobDriver, config: Readonly<Config>): readonly StorageLocation[] {
  return storage instanceof LocatedBlobDriver ? storage.preferred : [{ name: storageLocations(config)[0]!.name, driver: storage }];
}

/** The driver of one location; `setting` is where its configuration lives, for error messages. */
export async function createLocationDriver(location: LocationConfig, setting = 'storage'): Promise<BlobDriver> {
  if (location.driver === 'memory') return new MemoryBlobDriver();
  if (location.driver === 's3') {
    const { S3BlobDriver } = await import('../storage/s3/s3-blob-driver.js');
    // The SDK warns on Node 20 that its releases after January 2027 will need Node 22; the locked
    // version runs on Node 20, and the notice is for whoever upgrades the package, not the operator.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const s3 = location.s3!;
    return new S3BlobDriver({
      endpoint: s3.endpoint,
      bucket: s3.bucket!,
      region: s3.region,
      accessKeyId: s3.access_key_id,
      secretAccessKey: s3.secret_access_key,
      forcePathStyle: s3.force_path_style,
      prefix: s3.prefix,
      partSize: s3.part_size,
      redirectExpirySeconds: s3.redirect ? Math.max(1, Math.floor(s3.redirect_expiry / 1000)) : undefined,
      redirectEndpoint: s3.redirect_endpoint,
      connectTimeoutMs: s3.connect_timeout,
      requestTimeoutMs: s3.request_timeout,
      ca: s3.ca_file === undefined ? undefined : await readCaFile(s3.ca_file, `${setting}.s3.ca_file`),
    });
  }
  return new FsBlobDriver(location.path!, { fsync: location.fsync, directIo: location.directIo });
}

/** The PEM text of `storage.s3.ca_file`; a file that cannot be read stops the start with one line. */
async function readCaFile(path: string, setting: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new StartupError(`${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new StartupError(`${setting}: ${path} holds no PEM certificate`);
  return pem;
}
