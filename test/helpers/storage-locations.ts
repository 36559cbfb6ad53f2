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
import { BlobNotFoundError, StorageUnavailableError, type BlobDriver, type BlobStat, type BlobWriter } from '../../src/storage/blob-driver.js';
import { blobKeyDigest } from '../../src/storage/keys.js';
import { FsBlobDriver } from '../../src/storage/fs/fs-blob-driver.js';
import type { LocationHolders, StorageLocation, StorageLocations } from '../../src/storage/locations.js';

export class TestLocations implements StorageLocations {
  /** Locations whose stats and reads fail (as when a bucket does not answer). */
  readonly down = new Set<string>();
  readonly preferred: readonly StorageLocation[];
  private readonly listeners: Array<(digest: Digest, location: string) => void> = [];

  constructor(locations: readonly StorageLocation[]) {
    this.preferred = locations.map((l) => ({ name: l.name, driver: this.failingWhileDown(l.name, l.driver) }));
  }

  /** `driver` whose stats and reads throw StorageUnavailableError while `name` is down. */
  private failingWhileDown(name: string, driver: BlobDriver): BlobDriver {
    const up = () => {
      if (this.down.has(name)) throw new StorageUnavailableError(`test location ${name}`, 'the location is down');
    };
    const wrap = <A extends unknown[], R>(f: (...args: A) => Promise<R>) => ({ value: async (...args: A) => (up(), f.apply(driver, args)) });
    return Object.create(driver, {
      stat: wrap(driver.stat),
      reader: wrap(driver.reader),
      ...(driver.openPositional ? { openPositional: wrap(driver.openPositional) } : {}),
    }) as BlobDriver;
  }

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

  async unusable(name: string): Promise<Error | undefined> {
    return this.down.has(name) ? new StorageUnavailableError(`test location ${name}`, 'the location is down') : undefined;
  }

  onCommitted(listener: (digest: Digest, location: string) => void): void {
    this.listeners.push(listener);
  }

  /** Stores `bytes` as a blob in `location` (verified) and tells the listeners; returns its digest. */
  async commit(location: string, bytes: Uint8Array): Promise<Digest> {
    const digest = digestOf(bytes);
    await storeVerified(this.driver(location), Readable.from([bytes]), { digest, size: bytes.byteLength });
    this.announce(digest, location);
    return digest;
  }

  protected announce(digest: Digest, location: string): void {
    for (const l of this.listeners) l(digest, location);
  }
}

/**
 * The locations as one BlobDriver, for a whole registry in a test: writes go to the most preferred
 * location that is up (a committed blob key is announced to the listeners), reads and stats to the first
 * holder, deletes to every location.
 */
export class LocatedTestStorage extends TestLocations implements BlobDriver {
  readonly name = 'test locations';

  private async first(key: string): Promise<BlobDriver | undefined> {
    const { holders } = await this.holders(key);
    return holders.length ? this.driver(holders[0]!) : undefined;
  }

  private writable(): StorageLocation {
    return this.preferred.find((l) => !this.down.has(l.name)) ?? this.preferred[0]!;
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    return (await this.first(key))?.stat(key);
  }

  async reader(key: string, range?: { offset: number; length?: number }) {
    const d = await this.first(key);
    if (!d) throw new BlobNotFoundError(key);
    return d.reader(key, range);
  }

  async writer(key: string, opts?: { append?: boolean }): Promise<BlobWriter> {
    const location = this.writable();
    const w = await location.driver.writer(key, opts);
    const announce = (digest = blobKeyDigest(key)) => digest && this.announce(digest, location.name);
    return {
      get size() {
        return w.size;
      },
      write: (chunk) => w.write(chunk),
      cancel: () => w.cancel(),
      commit: async () => {
        await w.commit();
        announce();
      },
    };
  }

  async delete(key: string): Promise<void> {
    for (const l of this.preferred) await l.driver.delete(key);
  }

  async *list(prefix: string): AsyncIterable<string> {
    const seen = new Set<string>();
    for (const l of this.preferred) for await (const k of l.driver.list(prefix)) if (!seen.has(k)) seen.add(k) && (yield k);
  }

  async move(from: string, to: string): Promise<void> {
    const location = this.writable();
    await location.driver.move(from, to);
    const digest = blobKeyDigest(to);
    if (digest) this.announce(digest, location.name);
  }

  async check(): Promise<void> {
    for (const l of this.preferred) await l.driver.check();
  }
}

/** Filesystem locations named `names`, each in its own temporary directory. */
export async function fsLocations(names: readonly string[]): Promise<{ locations: LocatedTestStorage; roots: Record<string, string>; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), 'wharf-locations-'));
  const roots = Object.fromEntries(names.map((n) => [n, join(base, n)]));
  const locations = new LocatedTestStorage(names.map((name) => ({ name, driver: new FsBlobDriver(roots[name]!) })));
  return { locations, roots, cleanup: () => rm(base, { recursive: true, force: true }) };
}
