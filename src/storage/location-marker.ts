/**
 * A storage location's identity marker: one small JSON object under LOCATION_MARKER_KEY (keys.ts)
 * holding a random id. The database records the id each location name should hold
 * (registry/location-identity.ts), so that a process whose location of that name is other storage —
 * another directory on another host, another bucket or prefix — is found out before it serves from it.
 *
 *   {"id": "7d0c…", "location": "fs", "created_at": "2026-12-07T22:00:00.000Z"}
 *
 * Only `id` identifies; the name and the time are for an operator who looks at the object.
 */
import { BlobNotFoundError, type BlobDriver } from './blob-driver.js';
import { LOCATION_MARKER_KEY } from './keys.js';

export interface LocationMarker {
  id: string;
  /** The location's name when the marker was written. */
  location: string;
  created_at: string;
}

/** A marker is a few dozen bytes; anything much larger under its key is not one. */
const MAX_MARKER_BYTES = 4096;

/** The object under the marker key is not a marker Wharf wrote. */
export class MalformedMarkerError extends Error {
  constructor(readonly reason: string) {
    super(`${LOCATION_MARKER_KEY} is not a location marker (${reason})`);
    this.name = 'MalformedMarkerError';
  }
}

/**
 * The location's marker, or undefined when it has none. Throws MalformedMarkerError for an object that
 * is not a marker, and the driver's error when the storage fails (StorageUnavailableError, an errno).
 */
export async function readLocationMarker(driver: BlobDriver): Promise<LocationMarker | undefined> {
  const stat = await driver.stat(LOCATION_MARKER_KEY);
  if (!stat) return undefined;
  if (stat.size > MAX_MARKER_BYTES) throw new MalformedMarkerError(`${stat.size} bytes`);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of await driver.reader(LOCATION_MARKER_KEY)) chunks.push(chunk as Buffer);
  } catch (err) {
    // Deleted between the stat and the read.
    if (err instanceof BlobNotFoundError) return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new MalformedMarkerError('not JSON');
  }
  const m = parsed as Partial<LocationMarker> | null;
  if (typeof m !== 'object' || m === null || typeof m.id !== 'string' || m.id === '') throw new MalformedMarkerError('no id');
  return { id: m.id, location: typeof m.location === 'string' ? m.location : '', created_at: typeof m.created_at === 'string' ? m.created_at : '' };
}

/** Writes (or replaces) the location's marker; visible complete once this resolves. */
export async function writeLocationMarker(driver: BlobDriver, marker: LocationMarker): Promise<void> {
  const bytes = Buffer.from(`${JSON.stringify(marker)}\n`);
  const w = await driver.writer(LOCATION_MARKER_KEY, { size: bytes.byteLength });
  try {
    await w.write(bytes);
    await w.commit();
  } catch (err) {
    await w.cancel().catch(() => undefined);
    throw err;
  }
}
