/**
 * The health of each location of a located driver (located-driver.ts), by name: a cached verdict per
 * location (location-health.ts), the identity check a location must pass before it counts as up again
 * (`requireIdentity`), and the relabelling of a location's failure as StorageUnavailableError naming it,
 * which marks it down until its next check.
 *
 * A location "fails" when its driver throws StorageUnavailableError or a system error (an errno code:
 * EACCES, ENOTDIR, EIO...); other errors (a missing object, a bug) are not the location's.
 */
import { StorageUnavailableError } from './blob-driver.js';
import { LocationHealth, type LocationHealthOptions, type LocationVerdict } from './location-health.js';
import type { StorageLocation } from './locations.js';

export class LocationsHealth {
  private readonly health = new Map<string, LocationHealth>();

  constructor(
    private readonly locations: readonly StorageLocation[],
    opts: LocationHealthOptions = {},
  ) {
    for (const l of locations) this.health.set(l.name, new LocationHealth(l.driver, opts));
  }

  /** See LocatedBlobDriver.requireIdentity. */
  requireIdentity(verify: (l: StorageLocation, signal: AbortSignal) => Promise<void>, verified: readonly string[]): void {
    for (const l of this.locations) this.of(l).requireConfirmation((signal) => verify(l, signal), verified.includes(l.name));
  }

  /** The location's verdict: cached, or a fresh check (and identity check) when it is older than its cache time. */
  verdict(l: StorageLocation): Promise<LocationVerdict> {
    return this.of(l).verdict();
  }

  /**
   * The location's failure when a fresh verdict says it is down: it is not asked again until the next
   * check. A location awaiting its identity check (`requireIdentity`) gets that check first.
   */
  async knownDown(l: StorageLocation): Promise<StorageUnavailableError | undefined> {
    const health = this.of(l);
    const err = health.knownDown() ?? (health.unconfirmed ? await this.verdictError(health) : undefined);
    return err === undefined ? undefined : labelled(l, err);
  }

  /** Whether the location awaits its identity check and did not pass it (a check now, when due). */
  async unconfirmed(l: StorageLocation): Promise<boolean> {
    const health = this.of(l);
    return health.unconfirmed && (await this.verdictError(health)) !== undefined;
  }

  /** Resolves while at least one location can take writes; otherwise throws, naming each one's failure. */
  async check(): Promise<void> {
    const verdicts = await Promise.all(this.locations.map((l) => this.of(l).verdict()));
    if (verdicts.some((v) => v.up)) return;
    throw new StorageUnavailableError('every storage location', verdicts.map((v, i) => `${this.locations[i]!.name}: ${v.failure}`).join('; '));
  }

  /**
   * The location's failure as StorageUnavailableError naming it; the location counts as down until its
   * next check. Rethrows `err` when it is not a failure of the location.
   */
  failure(l: StorageLocation, err: unknown): StorageUnavailableError {
    if (!isLocationFailure(err)) throw err;
    const unavailable = labelled(l, err);
    this.of(l).markDown(unavailable);
    return unavailable;
  }

  private of(l: StorageLocation): LocationHealth {
    return this.health.get(l.name)!;
  }

  private async verdictError(health: LocationHealth): Promise<unknown> {
    const v = await health.verdict();
    return v.up ? undefined : (v.error ?? new Error(v.failure));
  }
}

/** `err` as StorageUnavailableError naming the location (and the store, when the driver named it). */
export function labelled(l: StorageLocation, err: unknown): StorageUnavailableError {
  const storage = `storage location "${l.name}"`;
  if (err instanceof StorageUnavailableError) return err.storage === storage ? err : new StorageUnavailableError(storage, `${err.storage}: ${err.reason}`, err);
  return new StorageUnavailableError(storage, (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err), err);
}

/** The storage failed (unavailable, or a system error such as EACCES), as opposed to a missing object or a bug. */
export function isLocationFailure(err: unknown): boolean {
  return err instanceof StorageUnavailableError || (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code!));
}

export function combined(failed: StorageUnavailableError[], note?: string): StorageUnavailableError {
  if (failed.length === 1) return note === undefined ? failed[0]! : new StorageUnavailableError(failed[0]!.storage, `${failed[0]!.reason} (${note})`, failed[0]);
  const reasons = failed.map((e) => `${e.storage}: ${e.reason}`).join('; ');
  return new StorageUnavailableError('storage locations', note ? `${reasons} (${note})` : reasons, failed[0]);
}
