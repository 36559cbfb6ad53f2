/**
 * One blob copied between two storage locations: the bytes are read from the source and written through
 * the target driver's verified writer (verified-write.ts), which commits under the blob key only when
 * digest and size match; a failed or aborted copy leaves nothing visible in the target.
 */
import type { Digest } from '../../oci/digest.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import { storeVerified } from '../verified-write.js';

/**
 * Copies the bytes of `digest` (`size` bytes) from `source` to `target`; rejects (with nothing committed
 * in `target`) when the source fails, the bytes do not match, the target fails, or `signal` aborts.
 */
export async function copyBlob(source: BlobDriver, target: BlobDriver, blob: { digest: Digest; size: number }, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const body = await source.reader(blobKey(blob.digest));
  const abort = () => body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('copy aborted'));
  signal?.addEventListener('abort', abort, { once: true });
  try {
    await storeVerified(target, body, blob);
  } finally {
    signal?.removeEventListener('abort', abort);
    body.destroy();
  }
}
