/**
 * Before a process uses its storage (`wharf serve`, and the CLI commands that open it: gc, autoprune,
 * replicate), each location must be the storage the database knows under its name
 * (registry/location-identity.ts): a location holding no marker or another marker than the database
 * records stops the command with one StartupError line naming the location, what the database expects
 * and what was found (exit status 1). A location that cannot be reached does not stop it when there
 * are several: the located driver verifies it when it is back, before it is used (and again after
 * every time it was down). Memory locations are the process's own and are not checked.
 */
import type { Config } from '../config/schema.js';
import { storageLocations, type LocationConfig } from '../config/storage-locations.js';
import type { DatabaseHandle } from '../db/connect.js';
import { StorageLocationStore } from '../db/storage-location-store.js';
import type { Logger } from '../observability/logger.js';
import { LocationIdentity, LocationIdentityError, type IdentityOutcome } from '../registry/location-identity.js';
import { StorageUnavailableError, type BlobDriver } from '../storage/blob-driver.js';
import { LocatedBlobDriver } from '../storage/located-driver.js';
import type { StorageLocation } from '../storage/locations.js';
import { createStorage, locationsOf } from './compose-storage.js';
import { StartupError } from './startup-error.js';

export interface VerifyOptions {
  log?: Logger;
  /** Locations already found down (storage-check.ts): not asked now, verified when they are back. */
  down?: readonly string[];
}

export async function verifyLocations(db: DatabaseHandle, storage: BlobDriver, config: Readonly<Config>, opts: VerifyOptions = {}): Promise<void> {
  const { log } = opts;
  const identity = new LocationIdentity(new StorageLocationStore(db.db));
  const configs = storageLocations(config);
  const located = storage instanceof LocatedBlobDriver;
  const results = await Promise.all(
    locationsOf(storage, config).map(async (l, i): Promise<IdentityOutcome | 'skipped' | 'down'> => {
      const c = configs[i]!;
      if (c.driver === 'memory') return 'skipped';
      if (opts.down?.includes(l.name)) return 'down';
      try {
        return await identity.verify(l);
      } catch (err) {
        if (err instanceof LocationIdentityError) throw new StartupError(identityProblem(err, c, located));
        if (!isStorageFailure(err)) throw err;
        if (!located) throw new StartupError(`storage: cannot read its location marker: ${reason(err)}; fix ${where(c, located)} or its permissions`);
        log?.warn({ location: l.name, problem: reason(err) }, 'storage location is down at start; its identity is checked when it is back');
        return 'down';
      }
    }),
  );
  results.forEach((outcome, i) => {
    const location = configs[i]!.name;
    if (outcome === 'created') log?.info({ location }, 'storage location seen for the first time: wrote its identity marker and recorded it');
    if (outcome === 'recorded') log?.info({ location }, "recorded the storage location's identity marker");
  });
  if (located) {
    const verified = configs.filter((_, i) => results[i] !== 'down').map((c) => c.name);
    storage.requireIdentity(runtimeCheck(identity, log), verified);
  }
}

/** The located driver's check of a location that is back: logs a mismatch once (until it changes), rethrows it. */
function runtimeCheck(identity: LocationIdentity, log?: Logger): (l: StorageLocation) => Promise<void> {
  const reported = new Map<string, string>();
  return async (l) => {
    try {
      await identity.verify(l);
    } catch (err) {
      if (err instanceof LocationIdentityError && reported.get(l.name) !== err.message) {
        reported.set(l.name, err.message);
        log?.error({ location: l.name, problem: err.message }, `storage location is back but is not the storage the database knows; it stays unused (point it at the right storage, or run wharf storage adopt ${l.name})`);
      }
      throw err;
    }
    if (reported.delete(l.name)) log?.info({ location: l.name }, 'storage location is the storage the database knows again; it is used again');
  };
}

function identityProblem(err: LocationIdentityError, c: LocationConfig, located: boolean): string {
  return `${err.message} (${describe(c)}); every process on this database must use the same storage as location "${c.name}" (${where(c, located)}); if it really moved, run wharf storage adopt ${c.name}`;
}

/** The storage a location's configuration names. */
export function describe(c: LocationConfig): string {
  if (c.driver === 's3') return `bucket "${c.s3!.bucket}"${c.s3!.prefix ? ` prefix "${c.s3!.prefix}"` : ''} at ${c.s3!.endpoint ?? `AWS S3 (${c.s3!.region})`}`;
  return `directory ${c.path}`;
}

function where(c: LocationConfig, located: boolean): string {
  const setting = located ? `storage.locations.${c.name}` : 'storage';
  return c.driver === 's3' ? `${setting}.s3` : `${setting}.path`;
}

/** The storage failed (unavailable, or a system error such as EACCES), as opposed to a mismatch or a bug. */
function isStorageFailure(err: unknown): boolean {
  return err instanceof StorageUnavailableError || (err instanceof Error && /^E[A-Z]+$/.test(String((err as NodeJS.ErrnoException).code)));
}

function reason(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
}

/** The configured storage for a CLI command, its locations verified as for `wharf serve`. */
export async function openVerifiedStorage(db: DatabaseHandle, config: Readonly<Config>): Promise<BlobDriver> {
  const storage = await createStorage(config);
  await verifyLocations(db, storage, config);
  return storage;
}
