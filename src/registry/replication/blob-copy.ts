/**
 * One blob copied between two storage locations. When the target driver can copy from the source inside
 * the store (BlobDriver.copyFrom: two S3 locations on one endpoint) no byte passes through Wharf; the
 * source was verified when it was committed, and the driver checks what the store's answers tell it. Otherwise — another kind of store, another endpoint, or a store that says it does not
 * support the copy — the bytes are read from the source and written through the target driver's
 * verified writer (verified-write.ts), which commits under the blob key only when digest and size match.
 * Either way a failed or aborted copy leaves nothing visible in the target.
 */
import type { Digest } from '../../oci/digest.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import type { StorageLocation } from '../../storage/locations.js';
import { storeVerified } from '../verified-write.js';

/** How the bytes went: copied inside the store, or read and written through this process. */
export type CopyMethod = 'server_side' | 'streamed';

/**
 * Copies the bytes of `digest` (`size` bytes) from `source` to `target`; resolves how, or rejects (with
 * nothing committed in `target`) when the source fails, the bytes do not match, the target fails, or
 * `signal` aborts.
 */
export async function copyBlob(source: BlobDriver, target: BlobDriver, blob: { digest: Digest; size: number }, signal?: AbortSignal): Promise<CopyMethod> {
  signal?.throwIfAborted();
  const key = blobKey(blob.digest);
  if (target.copyFrom && (await target.copyFrom(source, key, { size: blob.size }, signal)) === 'copied') return 'server_side';
  const body = await source.reader(key);
  const abort = () => body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('copy aborted'));
  signal?.addEventListener('abort', abort, { once: true });
  try {
    await storeVerified(target, body, blob);
  } finally {
    signal?.removeEventListener('abort', abort);
    body.destroy();
  }
  return 'streamed';
}

/**
 * `sources` split by how `target` would copy from them: inside the store (BlobDriver.canCopyFrom, no
 * request needed to tell) or streamed; each group keeps the order of `sources`. A copy prefers the first
 * group: no byte passes through this process.
 */
export function copyOrder(target: StorageLocation, sources: readonly StorageLocation[]): { inStore: StorageLocation[]; streamed: StorageLocation[] } {
  const inStore = sources.filter((s) => target.driver.canCopyFrom?.(s.driver) === true);
  return { inStore, streamed: sources.filter((s) => !inStore.includes(s)) };
}
