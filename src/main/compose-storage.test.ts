import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../config/load.js';
import { FsBlobDriver } from '../storage/fs/fs-blob-driver.js';
import { LocatedBlobDriver } from '../storage/located-driver.js';
import { MemoryBlobDriver } from '../storage/memory/memory-blob-driver.js';
import { createStorage, locationsOf } from './compose-storage.js';

describe('createStorage', () => {
  it('without storage.locations: the one configured driver, seen as the location "default"', async () => {
    const config = loadConfig({ env: { WHARF_DATA_DIR: '/srv/wharf' } });
    const storage = await createStorage(config);
    assert.ok(storage instanceof FsBlobDriver);
    assert.deepEqual(locationsOf(storage, config), [{ name: 'default', driver: storage }]);
  });

  it('with storage.locations: a located driver over one driver per location, in this process\'s order', async () => {
    const locations = { disk: { driver: 'filesystem', path: '/srv/disk' }, ram: { driver: 'memory' }, bucket: { driver: 's3', s3: { bucket: 'wharf-blobs', endpoint: 'http://127.0.0.1:1' } } };
    const config = loadConfig({ env: { WHARF_STORAGE_LOCATIONS: JSON.stringify(locations), WHARF_STORAGE_PREFERENCE: 'ram' } });
    const storage = await createStorage(config);
    assert.ok(storage instanceof LocatedBlobDriver);
    const preferred = locationsOf(storage, config);
    assert.deepEqual(
      preferred.map((l) => [l.name, l.driver.name]),
      [
        ['ram', 'memory'],
        ['disk', 'filesystem'],
        ['bucket', 's3'],
      ],
    );
    assert.ok(preferred[0]!.driver instanceof MemoryBlobDriver);
    assert.equal(storage.openPositional, undefined, 'a memory location offers no positional reads');
  });
});
