/**
 * The one verified write path for blob bytes. Pushes, proxy-cache fills and mirror syncs all store a
 * blob through `storeVerified`: bytes stream into a writer while being hashed, and the writer commits
 * under `blobKey(digest)` only if digest (and size, when known) match. Otherwise nothing is visible.
 */
import { Digester, digestAlgorithm, type Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobDriver } from '../storage/blob-driver.js';
import { blobKey } from '../storage/keys.js';

export async function storeVerified(
  storage: BlobDriver,
  body: AsyncIterable<Uint8Array>,
  expected: { digest: Digest; size?: number },
): Promise<{ size: number }> {
  const key = blobKey(expected.digest);
  const writer = await storage.writer(key);
  const digester = new Digester(digestAlgorithm(expected.digest));
  let size = 0;
  try {
    for await (const chunk of body) {
      digester.update(chunk);
      size += chunk.byteLength;
      if (expected.size !== undefined && size > expected.size) {
        throw new RegistryError('SIZE_INVALID', `content is longer than the expected ${expected.size} bytes`);
      }
      await writer.write(chunk);
    }
  } catch (err) {
    await writer.cancel();
    throw err;
  }
  if (expected.size !== undefined && size !== expected.size) {
    await writer.cancel();
    throw new RegistryError('SIZE_INVALID', `content is ${size} bytes, expected ${expected.size}`);
  }
  const actual = digester.digest();
  if (actual !== expected.digest) {
    await writer.cancel();
    throw new RegistryError('DIGEST_INVALID', `content digest ${actual} does not match ${expected.digest}`);
  }
  await writer.commit();
  return { size };
}
