/**
 * Whether a storage location is the storage the database knows under its name. Each location holds a
 * marker with a random id (storage/location-marker.ts) and the database records, per location name,
 * the id it should hold (`storage_locations`). Processes that share a database must share their
 * locations; one whose `fs` is an empty directory on another host, or whose `s3` points at another
 * bucket or prefix, would otherwise record placements that lie, serve 404s, and collect garbage in one
 * copy only. `verify` decides, for one location:
 *
 *   recorded id   marker in the storage   outcome
 *   none          none                    first sight: a new id is recorded, then written ('created')
 *   none          id M                    M is recorded ('recorded'; an upgrade, or an adopted copy)
 *   R             id R                    'matched'
 *   R             none, or id M ≠ R       LocationIdentityError: other storage than the database's
 *   (storage down)                        the driver's error (StorageUnavailableError, an errno):
 *                                         the location is verified when it is back
 *
 * On first sight the database decides which process writes the marker: the one whose claim recorded
 * its id. A process that lost the claim waits a little for the winner's marker (the same storage) and
 * otherwise refuses (other storage, or the winner stopped between recording and writing: adopt).
 * `adopt` is the operator's way out after really moving a location: the database takes the marker the
 * storage holds (a new one if it holds none).
 */
import { randomUUID } from 'node:crypto';
import type { StorageLocationStore } from '../db/storage-location-store.js';
import { LOCATION_MARKER_KEY } from '../storage/keys.js';
import { MalformedMarkerError, readLocationMarker, writeLocationMarker } from '../storage/location-marker.js';
import type { StorageLocation } from '../storage/locations.js';

export type IdentityOutcome = 'created' | 'recorded' | 'matched';

/** The location holds no marker or another one than the database records: it is other storage. */
export class LocationIdentityError extends Error {
  constructor(
    readonly location: string,
    /** The id the database records (undefined: none yet). */
    readonly expected: string | undefined,
    /** What the storage holds: a marker's id, undefined for none, or why the object is not a marker. */
    readonly found: { id: string } | { malformed: string } | undefined,
  ) {
    const what = found === undefined ? `no marker (${LOCATION_MARKER_KEY})` : 'id' in found ? `marker ${found.id}` : `an unreadable ${LOCATION_MARKER_KEY} (${found.malformed})`;
    const wanted = expected === undefined ? 'records no marker yet' : `expects marker ${expected}`;
    super(`storage location "${location}" is not the storage the database knows: the database ${wanted}, the storage holds ${what}`);
    this.name = 'LocationIdentityError';
  }
}

export interface LocationIdentityOptions {
  /** How long a process that lost the first claim waits for the winner's marker (default 10 s). */
  markerWaitMs?: number;
  now?: () => number;
}

export class LocationIdentity {
  constructor(
    private readonly store: Pick<StorageLocationStore, 'get' | 'claim' | 'release' | 'set'>,
    private readonly opts: LocationIdentityOptions = {},
  ) {}

  /** The decision of the file comment for `l`; throws LocationIdentityError, or the storage's failure. */
  async verify(l: StorageLocation): Promise<IdentityOutcome> {
    const recorded = await this.store.get(l.name);
    const found = await this.marker(l);
    if (recorded !== undefined) {
      if (found !== undefined && 'id' in found && found.id === recorded) return 'matched';
      throw new LocationIdentityError(l.name, recorded, found);
    }
    if (found !== undefined) {
      if (!('id' in found)) throw new LocationIdentityError(l.name, undefined, found);
      const claimed = await this.store.claim(l.name, found.id, this.now());
      if (claimed === found.id) return 'recorded';
      throw new LocationIdentityError(l.name, claimed, found);
    }
    const id = randomUUID();
    const claimed = await this.store.claim(l.name, id, this.now());
    if (claimed === id) {
      try {
        await writeLocationMarker(l.driver, { id, location: l.name, created_at: new Date(this.now()).toISOString() });
      } catch (err) {
        // No marker, so no row either: the next start (or check) begins again from first sight.
        await this.store.release(l.name, id).catch(() => undefined);
        throw err;
      }
      return 'created';
    }
    // Another process recorded the location first; on the same storage its marker appears right after.
    const until = Date.now() + (this.opts.markerWaitMs ?? 10_000);
    for (;;) {
      const now = await this.marker(l);
      if (now !== undefined && 'id' in now && now.id === claimed) return 'matched';
      if (now !== undefined || Date.now() >= until) throw new LocationIdentityError(l.name, claimed, now);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Makes the database record the marker `l` holds (writing a new one when it holds none, or replaces
   * an object that is not a marker): after an operator moved the location's data, or pointed the
   * location at other storage on purpose. Returns the id now recorded and the one it replaced.
   */
  async adopt(l: StorageLocation): Promise<{ id: string; previous?: string; written: boolean }> {
    const found = await this.marker(l);
    let id: string;
    let written = false;
    if (found !== undefined && 'id' in found) id = found.id;
    else {
      id = randomUUID();
      await writeLocationMarker(l.driver, { id, location: l.name, created_at: new Date(this.now()).toISOString() });
      written = true;
    }
    const previous = await this.store.set(l.name, id, this.now());
    return { id, ...(previous !== undefined && previous !== id ? { previous } : {}), written };
  }

  private async marker(l: StorageLocation): Promise<{ id: string } | { malformed: string } | undefined> {
    try {
      const m = await readLocationMarker(l.driver);
      return m && { id: m.id };
    } catch (err) {
      if (err instanceof MalformedMarkerError) return { malformed: err.reason };
      throw err;
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}
