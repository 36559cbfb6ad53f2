/**
 * Blob fills across the processes of one deployment: a cache miss is fetched from the upstream once,
 * whichever process gets it, and every process's requests read it while it runs.
 *
 *   join(d) ─► a fill of d runs here? ─► join it (BlobFills: one fill per digest in this process)
 *          └─► take the lease of d (blob_fills) ─┬─► taken: fill here, renew the lease, release it at the end
 *                                                └─► another process holds it: follow its fill
 *                                                    (followed-fill.ts: stream from its internal endpoint,
 *                                                     take over when it dies, storage once committed)
 *
 * A process that is not reachable yet (no advertised URL) fills on its own, as a single process does.
 */
import { Readable } from 'node:stream';
import type { BlobFillLeaseStore } from '../../db/blob-fill-lease-store.js';
import type { Digest } from '../../oci/digest.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import type { FillPool } from '../upstream-import/upstream-import.js';
import type { BlobFills, FillHandle, FillSource } from './blob-fills.js';
import { FollowedFill, type FollowContext, type PeerFills } from './followed-fill.js';
import type { PeerSecret } from './peer-secret.js';

export interface ClusterFillsOptions {
  /** The fills of this process. */
  local: BlobFills;
  leases: BlobFillLeaseStore;
  storage: BlobDriver;
  peers: PeerFills;
  secret: PeerSecret;
  /** This process's id (unique per start) and the URL the others reach it at (undefined until it listens). */
  self: { id: string; url(): string | undefined };
  /** How long a lease holds without renewal; the owner renews it every third of that. */
  leaseMs: number;
  now?: () => number;
  log?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

/** What happens across processes, for metrics. */
export interface ClusterFillEvents {
  /** A process started following a fill another process owns. */
  followed?(): void;
  /** A follower took over a fill whose owner died or failed. */
  takenOver?(): void;
}

export class ClusterFills implements FillPool {
  private readonly followed = new Map<Digest, FollowedFill>();
  private events: ClusterFillEvents = {};
  private readonly now: () => number;

  constructor(private readonly opts: ClusterFillsOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Reports followed and taken-over fills to `events`. */
  observe(events: ClusterFillEvents): void {
    this.events = events;
  }

  /** Closes the connections to the other processes. */
  async close(): Promise<void> {
    await this.opts.peers.close?.();
  }

  /**
   * Removes this process's spool leftovers, and the leases of fills whose owners died (expired for a
   * whole lease period: an expired lease is taken over by the next request for its digest anyway).
   */
  async sweepSpool(): Promise<number> {
    const spooled = await this.opts.local.sweepSpool();
    const leases = await this.opts.leases.sweepExpired(this.now() - this.opts.leaseMs);
    if (leases > 0) this.opts.log?.info?.({ leases }, 'removed the leases of blob fills whose processes died');
    return spooled + leases;
  }

  /**
   * The fill of `digest`: this process's, or another's followed from here, or a new one (started with
   * `start`) when no process fills it. A blob that another process committed meanwhile is read from
   * storage.
   */
  async join(digest: Digest, start: () => Promise<FillSource>): Promise<FillHandle> {
    const { local, leases, storage } = this.opts;
    const url = this.opts.self.url();
    if (url === undefined || local.inFlight(digest)) return local.join(digest, start);
    const self = { id: this.opts.self.id, url };
    for (let look = 0; ; look++) {
      const following = this.followed.get(digest);
      if (following) return following.handle();
      if (look > 0) {
        const stat = await storage.stat(blobKey(digest));
        if (stat) return committed(storage, digest, stat.size);
      }
      const { taken, lease } = await leases.take(digest, { owner: self.id, ownerUrl: self.url }, this.now(), this.opts.leaseMs);
      if (taken || lease?.owner === self.id) return this.fillHere(digest, start, taken);
      if (!lease) continue; // its owner just released it: committed, or free to take
      let follow = this.followed.get(digest);
      if (!follow) {
        follow = new FollowedFill(this.context(self), digest, lease, start);
        const mine = follow;
        this.followed.set(digest, mine);
        const forget = () => {
          if (this.followed.get(digest) === mine) this.followed.delete(digest);
        };
        mine.done.then(forget, forget);
        this.events.followed?.();
      }
      return follow.handle();
    }
  }

  /** Fills `digest` in this process; a lease taken for it is renewed while the fill runs and released at its end. */
  private async fillHere(digest: Digest, start: () => Promise<FillSource>, leased: boolean): Promise<FillHandle> {
    const { leases, leaseMs } = this.opts;
    const owner = this.opts.self.id;
    const release = () => leases.release(digest, owner).catch((err: unknown) => this.opts.log?.warn({ digest, err }, 'could not release a blob fill lease'));
    let handle: FillHandle;
    try {
      handle = await this.opts.local.join(digest, start);
    } catch (err) {
      if (leased) await release();
      throw err;
    }
    if (!leased) return handle;
    const renew = setInterval(() => {
      leases.renew(digest, owner, this.now(), leaseMs).then(
        (held) => held || this.opts.log?.warn({ digest }, 'lost the lease of a blob fill; another process may fetch it too'),
        (err: unknown) => this.opts.log?.warn({ digest, err }, 'could not renew a blob fill lease'),
      );
    }, Math.max(50, Math.floor(leaseMs / 3)));
    renew.unref();
    const end = () => {
      clearInterval(renew);
      void release();
    };
    handle.done.then(end, end);
    return handle;
  }

  private context(self: { id: string; url: string }): FollowContext {
    const o = this.opts;
    return {
      storage: o.storage,
      leases: o.leases,
      peers: o.peers,
      secret: o.secret,
      self,
      leaseMs: o.leaseMs,
      now: this.now,
      fillHere: (digest, start, leased) => this.fillHere(digest, start, leased),
      tookOver: () => this.events.takenOver?.(),
      log: o.log,
    };
  }
}

/** A handle on a blob already committed in storage (another process finished its fill meanwhile). */
function committed(storage: BlobDriver, digest: Digest, size: number): FillHandle {
  const key = blobKey(digest);
  const open = (range?: { start: number; end: number }) => {
    const window = range ? { offset: range.start, length: range.end - range.start + 1 } : undefined;
    return Readable.from(
      (async function* () {
        yield* await storage.reader(key, window);
      })(),
      { objectMode: false },
    );
  };
  return { size, joined: true, done: Promise.resolve({ size }), open, body: async (range) => ({ kind: 'stream', stream: open(range) }) };
}
