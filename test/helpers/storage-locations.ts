/**
 * Named storage locations over real drivers, for tests of what runs on top of StorageLocations
 * (storage/locations.ts) without the located driver: holders are found by a stat in each location, a
 * location can be marked down (its stats fail), and `commit` writes a blob through the verified write
 * path and tells the listeners, as a push through the located driver would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import { storeVerified } from '../../src/registry/verified-write.js';
import type { BlobDriver } from '../../src/storage/blob-driver.js';
import { FsBlobDriver } from '../../src/storage/fs/fs-blob-driver.js';
import type { LocationHolders, StorageLocation, StorageLocations } from '../../src/storage/locations.js';

export class TestLocations implements StorageLocations {
  /** Locations whose stats fail (as when a bucket does not answer). */
  readonly down = new Set<string>();
  private readonly listeners: Array<(digest: Digest, location: string) => void> = [];

  constructor(readonly preferred: readonly StorageLocation[]) {}

  get(name: string): StorageLocation | undefined {
    return this.preferred.find((l) => l.name === name);
  }

  driver(name: string): BlobDriver {
    return this.get(name)!.driver;
  }

  async holders(key: string): Promise<LocationHolders> {
    const out: LocationHolders = { holders: [], failed: [] };
    for (const l of this.preferred) {
      if (this.down.has(l.name)) out.failed.push(l.name);
      else if (await l.driver.stat(key)) out.holders.push(l.name);
    }
    return out;
  }

  onCommitted(listener: (digest: Digest, location: string) => void): void {
    this.listeners.push(listener);
  }

  /** Stores `bytes` as a blob in `location` (verified) and tells the listeners; returns its digest. */
  async commit(location: string, bytes: Uint8Array): Promise<Digest> {
    const digest = digestOf(bytes);
    await storeVerified(this.driver(location), Readable.from([bytes]), { digest, size: bytes.byteLength });
    for (const l of this.listeners) l(digest, location);
    return digest;
  }
}

/** Filesystem locations named `names`, each in its own temporary directory. */
export async function fsLocations(names: readonly string[]): Promise<{ locations: TestLocations; roots: Record<string, string>; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), 'wharf-locations-'));
  const roots = Object.fromEntries(names.map((n) => [n, join(base, n)]));
  const locations = new TestLocations(names.map((name) => ({ name, driver: new FsBlobDriver(roots[name]!) })));
  return { locations, roots, cleanup: () => rm(base, { recursive: true, force: true }) };
}
