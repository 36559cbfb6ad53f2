/**
 * `wharf storage adopt LOCATION [--forget-placements]`: the way out after an operator really moved a
 * storage location (copied a directory to another host, switched a location to another bucket or
 * prefix). Processes refuse storage whose identity marker is not the one the database records for the
 * location (registry/location-identity.ts); adopting makes the database record the marker the
 * configured storage holds (a new one is written when it holds none). Run it with the configuration of
 * a process that has the right storage; the other processes must then use that same storage.
 *
 * Placements (which blobs the location holds) are kept: right when the data was moved along. With
 * `--forget-placements` the location's placements are dropped (new, empty storage); `wharf replicate
 * backfill --location LOCATION` then queues copies of every blob to it.
 *
 * Exit codes: 0 done, 1 the storage cannot be reached, 2 usage (an unknown or memory location).
 */
import type { Config } from '../config/schema.js';
import { storageLocations } from '../config/storage-locations.js';
import { BlobPlacementStore } from '../db/blob-placement-store.js';
import { StorageLocationStore } from '../db/storage-location-store.js';
import { LocationIdentity } from '../registry/location-identity.js';
import { StorageUnavailableError } from '../storage/blob-driver.js';
import { UsageError, withDatabase } from './account-commands.js';
import { createStorage } from './compose.js';
import { locationsOf } from './compose-storage.js';
import { describe } from './location-identities.js';
import { StartupError } from './startup-error.js';

export const STORAGE_OPTIONS = { 'forget-placements': { type: 'boolean' } } as const;

export const STORAGE_COMMANDS = ['storage adopt'];

export async function runStorageCommand(command: string, args: string[], opts: Record<string, unknown>, config: Readonly<Config>, out: { write(s: string): unknown } = process.stderr): Promise<number> {
  if (command !== 'storage adopt') throw new UsageError(`unknown command ${command}`);
  const extra = Object.keys(opts).filter((k) => opts[k] !== undefined && !(k in STORAGE_OPTIONS));
  if (extra.length) throw new UsageError(`wharf storage adopt does not take --${extra.join(', --')}`);
  if (args.length !== 1) throw new UsageError('usage: wharf storage adopt LOCATION [--forget-placements]');
  const name = args[0]!;
  const configs = storageLocations(config);
  const index = configs.findIndex((c) => c.name === name);
  if (index < 0) throw new UsageError(`storage adopt: "${name}" is not a configured storage location (locations: ${configs.map((c) => c.name).join(', ')})`);
  const c = configs[index]!;
  if (c.driver === 'memory') throw new UsageError(`storage adopt: location "${name}" is in memory; it has no identity to adopt`);
  return withDatabase(config, async (db) => {
    const location = locationsOf(await createStorage(config), config)[index]!;
    let adopted;
    try {
      adopted = await new LocationIdentity(new StorageLocationStore(db.db)).adopt(location);
    } catch (err) {
      if (!(err instanceof StorageUnavailableError) && typeof (err as NodeJS.ErrnoException).code !== 'string') throw err;
      throw new StartupError(`storage location "${name}" (${describe(c)}) cannot be reached: ${(err as Error).message.replace(/^storage unavailable: /, '')}`);
    }
    const was = adopted.previous === undefined ? 'the database recorded none, or the same' : `it recorded ${adopted.previous} before`;
    out.write(`storage location "${name}" (${describe(c)}) adopted: the database records its marker ${adopted.id}${adopted.written ? ' (written now: the storage held none)' : ''}; ${was}\n`);
    if (opts['forget-placements']) {
      const forgotten = await new BlobPlacementStore(db.db).removeLocation(name);
      out.write(`forgot ${forgotten} ${forgotten === 1 ? 'placement' : 'placements'} in "${name}"; wharf replicate backfill --location ${name} queues copies of every blob to it\n`);
    }
    return 0;
  });
}
