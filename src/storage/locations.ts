/**
 * Named storage locations (geo-replication): several blob drivers behind one registry, each process
 * preferring some over others. The located driver (located-driver.ts) is the BlobDriver the registry
 * uses; it implements this view of the locations for replication, health and status.
 *
 * Contract shared by the located driver and the replication service:
 *   - `preferred` lists every configured location, most preferred first (this process's order).
 *   - A blob is committed (verified bytes become visible under its blob key) in exactly one location,
 *     the first preferred one that is up; listeners of `onCommitted` hear of it after it is visible.
 *   - Replication copies a blob key from a location that holds it to one that does not; the located
 *     driver reads from the first preferred holder and falls back to the next when a holder fails.
 */
import type { Digest } from '../oci/digest.js';
import type { BlobDriver } from './blob-driver.js';

export interface StorageLocation {
  readonly name: string;
  readonly driver: BlobDriver;
}

export interface LocationHolders {
  /** Locations that hold the object, in preference order. */
  holders: string[];
  /** Locations that could not be asked (down), in preference order. */
  failed: string[];
}

export interface StorageLocations {
  /** Every configured location, most preferred first. */
  readonly preferred: readonly StorageLocation[];
  get(name: string): StorageLocation | undefined;
  /** Which locations hold `key` (a stat in each). */
  holders(key: string): Promise<LocationHolders>;
  /**
   * Why location `name` must not be used now (down, or awaiting its identity check: it may be other
   * storage than the database knows under that name); undefined when it may.
   */
  unusable(name: string): Promise<Error | undefined>;
  /** Called after a blob becomes visible in a location through this driver (a push, a fill, a sync). */
  onCommitted(listener: (digest: Digest, location: string) => void): void;
}
