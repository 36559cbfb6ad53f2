import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobDriverSuite } from '../driver-test-suite.js';
import { FsBlobDriver } from './fs-blob-driver.js';

blobDriverSuite('filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-fs-driver-'));
  return { driver: new FsBlobDriver(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});
