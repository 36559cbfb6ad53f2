/**
 * The writer's side of the per-digest guard against garbage collection (db/blob-guard-store.ts):
 * `run(digest, fn)` registers a 'write' guard, runs `fn` (commit the bytes under `blobKey(digest)` and
 * link the blob, or mount it), then drops the guard. While GC is deleting that digest's bytes the
 * guard waits (they are gone within the GC's lease) and then lets the writer commit, so a push never
 * ends with a blob row whose bytes GC removed.
 */
import type { BlobGuardStore } from '../db/blob-guard-store.js';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';

/** How long a writer's guard protects its commit and link (then GC may consider the blob again). */
export const WRITE_GUARD_MS = 15 * 60_000;
/** How long a writer waits for a GC deletion of the same digest (longer than GC's delete lease). */
const MAX_WAIT_MS = 6 * 60_000;

export class BlobWriteGuard {
  private readonly now: () => number;

  constructor(
    private readonly store: BlobGuardStore,
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  async run<T>(digest: Digest, fn: () => Promise<T>): Promise<T> {
    const deadline = this.now() + MAX_WAIT_MS;
    let delay = 10;
    let id: number | undefined;
    for (;;) {
      const now = this.now();
      id = await this.store.beginWrite(digest, now, now + WRITE_GUARD_MS);
      if (id !== undefined) break;
      if (now > deadline) throw new RegistryError('UNAVAILABLE', `garbage collection is removing blob ${digest}; try again`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1000);
    }
    try {
      return await fn();
    } finally {
      await this.store.release([id]).catch(() => {});
    }
  }
}
