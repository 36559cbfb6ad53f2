import { blobDriverSuite } from '../driver-test-suite.js';
import { MemoryBlobDriver } from './memory-blob-driver.js';

blobDriverSuite('memory', async () => ({ driver: new MemoryBlobDriver() }));
