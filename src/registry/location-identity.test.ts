/**
 * The location identity decision table on both dialects, with memory drivers as the locations' storage:
 * first sight (no row, no marker) records and writes; a marker without a row is recorded (an upgrade);
 * a matching marker passes; a missing or different marker (or an object that is not a marker) is refused
 * with the location, the id expected and what was found; a storage failure is the storage's error and
 * records nothing; two processes seeing the location at once agree when they share its storage and one
 * refuses when they do not; a claim whose marker cannot be written is released; adopt.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import type { DatabaseHandle } from '../db/connect.js';
import { StorageLocationStore } from '../db/storage-location-store.js';
import { StorageUnavailableError, type BlobDriver, type WriterOptions } from '../storage/blob-driver.js';
import { LOCATION_MARKER_KEY } from '../storage/keys.js';
import { readLocationMarker, writeLocationMarker } from '../storage/location-marker.js';
import { MemoryBlobDriver } from '../storage/memory/memory-blob-driver.js';
import { LocationIdentity, LocationIdentityError } from './location-identity.js';

/** A memory driver whose every call fails as an unreachable store does, while `down`. */
class DownableDriver extends MemoryBlobDriver {
  down = false;
  failWrites = false;
  override async stat(key: string) {
    if (this.down) throw new StorageUnavailableError('test store', 'connection refused');
    return super.stat(key);
  }
  override async writer(key: string, opts?: WriterOptions) {
    if (this.down || this.failWrites) throw new StorageUnavailableError('test store', 'connection refused');
    return super.writer(key, opts);
  }
}

async function putObject(driver: BlobDriver, key: string, text: string): Promise<void> {
  const w = await driver.writer(key);
  await w.write(Buffer.from(text));
  await w.commit();
}

for (const dialect of DIALECTS) {
  describe(`storage location identity (${dialect})`, () => {
    let h: DatabaseHandle;
    let store: StorageLocationStore;
    let identity: LocationIdentity;
    before(async () => {
      h = await openTestDatabase(dialect);
      store = new StorageLocationStore(h.db);
      identity = new LocationIdentity(store, { markerWaitMs: 300 });
    });
    after(async () => h.close());
    beforeEach(() => h.db.deleteFrom('storage_locations').execute());

    it('first sight: records a new id and writes it as the marker; the next check matches', async () => {
      const driver = new MemoryBlobDriver();
      assert.equal(await identity.verify({ name: 'fs', driver }), 'created');
      const marker = await readLocationMarker(driver);
      assert.ok(marker);
      assert.equal(marker.location, 'fs');
      assert.equal(await store.get('fs'), marker.id);
      assert.equal(await identity.verify({ name: 'fs', driver }), 'matched');
      // The marker is outside the blob and upload key spaces.
      const listed: string[] = [];
      for await (const k of driver.list('blobs/')) listed.push(k);
      for await (const k of driver.list('uploads/')) listed.push(k);
      assert.deepEqual(listed, []);
    });

    it('a marker the database does not know yet is recorded (an existing location after the upgrade)', async () => {
      const driver = new MemoryBlobDriver();
      await writeLocationMarker(driver, { id: 'kept-id', location: 'default', created_at: '' });
      assert.equal(await identity.verify({ name: 'default', driver }), 'recorded');
      assert.equal(await store.get('default'), 'kept-id');
      assert.equal(await identity.verify({ name: 'default', driver }), 'matched');
    });

    it('refuses a location with no marker where the database records one, naming both', async () => {
      await identity.verify({ name: 'fs', driver: new MemoryBlobDriver() });
      const expected = (await store.get('fs'))!;
      const empty = new MemoryBlobDriver();
      await assert.rejects(identity.verify({ name: 'fs', driver: empty }), (err: unknown) => {
        assert.ok(err instanceof LocationIdentityError);
        assert.equal(err.location, 'fs');
        assert.equal(err.expected, expected);
        assert.equal(err.found, undefined);
        assert.equal(err.message, `storage location "fs" is not the storage the database knows: the database expects marker ${expected}, the storage holds no marker (${LOCATION_MARKER_KEY})`);
        return true;
      });
      assert.equal(await readLocationMarker(empty), undefined, 'nothing is written into the refused storage');
      assert.equal(await store.get('fs'), expected, 'the record is kept');
    });

    it('refuses a location holding another marker, and one holding an object that is not a marker', async () => {
      await identity.verify({ name: 's3', driver: new MemoryBlobDriver() });
      const expected = (await store.get('s3'))!;
      const other = new MemoryBlobDriver();
      await writeLocationMarker(other, { id: 'another-id', location: 's3', created_at: '' });
      await assert.rejects(identity.verify({ name: 's3', driver: other }), (err: unknown) => {
        assert.ok(err instanceof LocationIdentityError);
        assert.deepEqual(err.found, { id: 'another-id' });
        assert.match(err.message, new RegExp(`expects marker ${expected}, the storage holds marker another-id$`));
        return true;
      });
      const garbage = new MemoryBlobDriver();
      await putObject(garbage, LOCATION_MARKER_KEY, 'not json');
      await assert.rejects(identity.verify({ name: 's3', driver: garbage }), /the storage holds an unreadable _wharf\/location\.json \(not JSON\)/);
      // Without a row, an object that is not a marker is not taken for one either.
      await assert.rejects(identity.verify({ name: 'new', driver: garbage }), /the database records no marker yet, the storage holds an unreadable/);
      assert.equal(await store.get('new'), undefined);
    });

    it("a location that is down: the storage's error, and nothing recorded", async () => {
      const driver = new DownableDriver();
      driver.down = true;
      await assert.rejects(identity.verify({ name: 'fs', driver }), StorageUnavailableError);
      assert.equal(await store.get('fs'), undefined);
      driver.down = false;
      assert.equal(await identity.verify({ name: 'fs', driver }), 'created');
    });

    it('a first claim whose marker cannot be written is released: the next check starts afresh', async () => {
      const driver = new DownableDriver();
      driver.failWrites = true;
      await assert.rejects(identity.verify({ name: 'fs', driver }), StorageUnavailableError);
      assert.equal(await store.get('fs'), undefined);
      driver.failWrites = false;
      assert.equal(await identity.verify({ name: 'fs', driver }), 'created');
    });

    it('two processes seeing the location at once: same storage, both pass; other storage, one refuses', async () => {
      const shared = new MemoryBlobDriver();
      const outcomes = await Promise.all([identity.verify({ name: 'fs', driver: shared }), new LocationIdentity(store, { markerWaitMs: 2000 }).verify({ name: 'fs', driver: shared })]);
      assert.equal(outcomes.filter((o) => o === 'created').length, 1, outcomes.join());
      assert.ok(outcomes.every((o) => o === 'created' || o === 'matched'), outcomes.join());

      const [a, b] = [new MemoryBlobDriver(), new MemoryBlobDriver()];
      const settled = await Promise.allSettled([identity.verify({ name: 'geo', driver: a }), identity.verify({ name: 'geo', driver: b })]);
      assert.deepEqual(settled.map((s) => s.status).sort(), ['fulfilled', 'rejected']);
      const refused = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult;
      assert.ok(refused.reason instanceof LocationIdentityError, String(refused.reason));
      assert.equal(refused.reason.found, undefined);
    });

    it('adopt: the database takes the marker the storage holds, or a new one written into it', async () => {
      await identity.verify({ name: 'fs', driver: new MemoryBlobDriver() });
      const old = (await store.get('fs'))!;
      const moved = new MemoryBlobDriver();
      await assert.rejects(identity.verify({ name: 'fs', driver: moved }), LocationIdentityError);
      const adopted = await identity.adopt({ name: 'fs', driver: moved });
      assert.equal(adopted.previous, old);
      assert.equal(adopted.written, true);
      assert.equal((await readLocationMarker(moved))?.id, adopted.id);
      assert.equal(await identity.verify({ name: 'fs', driver: moved }), 'matched');

      const copied = new MemoryBlobDriver();
      await writeLocationMarker(copied, { id: 'copied-id', location: 'fs', created_at: '' });
      assert.deepEqual(await identity.adopt({ name: 'fs', driver: copied }), { id: 'copied-id', previous: adopted.id, written: false });
      assert.equal(await identity.verify({ name: 'fs', driver: copied }), 'matched');
      assert.deepEqual(await identity.adopt({ name: 'fs', driver: copied }), { id: 'copied-id', written: false });
    });
  });
}
