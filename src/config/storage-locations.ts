/**
 * The storage locations a configuration describes, in this process's order of preference: the names of
 * `storage.preference` first, then the other locations in configuration order. Without
 * `storage.locations` there is one, named `default`, made of `storage.driver`, `storage.path`,
 * `storage.fsync`, `storage.direct_io` and `storage.s3`.
 */
import { join } from 'node:path';
import { DEFAULT_LOCATION, type Config } from './schema.js';

type StorageConfig = Config['storage'];

export interface LocationConfig {
  name: string;
  driver: StorageConfig['driver'];
  /** Root directory of a filesystem location (absolute). */
  path?: string;
  fsync: boolean;
  /** Filesystem: large writes of new blobs around the page cache. */
  directIo: boolean;
  s3?: StorageConfig['s3'];
}

export function storageLocations(config: Readonly<Config>): LocationConfig[] {
  const { storage } = config;
  const all: LocationConfig[] = storage.locations
    ? Object.entries(storage.locations).map(([name, l]) => ({
        name,
        driver: l.driver,
        path: l.driver === 'filesystem' ? (l.path ?? join(config.data_dir, 'locations', name)) : undefined,
        fsync: l.fsync,
        directIo: l.direct_io,
        s3: l.s3 as StorageConfig['s3'] | undefined,
      }))
    : [{ name: DEFAULT_LOCATION, driver: storage.driver, path: storage.driver === 'filesystem' ? (storage.path ?? join(config.data_dir, 'blobs')) : undefined, fsync: storage.fsync, directIo: storage.direct_io, s3: storage.s3 }];
  const rank = (name: string) => {
    const i = storage.preference.indexOf(name);
    return i < 0 ? storage.preference.length : i;
  };
  // A stable sort: the locations no preference names keep their configuration order.
  return all.map((l, i) => ({ l, i })).sort((a, b) => rank(a.l.name) - rank(b.l.name) || a.i - b.i).map(({ l }) => l);
}
