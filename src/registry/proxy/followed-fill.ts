/**
 * A blob fill another process owns, as this process's requests read it (cluster-fills.ts). Each read
 * streams from the owner's internal endpoint (`/internal/fills/<digest>`) while the owner's fill runs;
 * the owner sends a blob's last bytes only once it is committed, so a stream that ends cleanly means
 * the blob is in storage, and one that breaks means it is not complete.
 *
 *   source: peer (the lease's owner) ──breaks──► recover ─┬─► storage holds the blob: read it there
 *                                                         ├─► the lease is ours (taken over): our own fill
 *                                                         └─► another process took it over: follow it
 *
 * Joining costs one request to the owner: the GET of the whole blob is sent at once, its answer's head
 * tells the blob's size (the owner knows it once its upstream answered), and the first read from byte 0
 * takes that answer's body rather than asking again. A read that already sent N bytes goes on from byte
 * N of the new source: its client sees one response, no byte twice. A watcher looks at the lease while
 * nobody reads, so `done` settles (and a dead owner is replaced, at once on PostgreSQL) without a reader too.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BlobFillLease, BlobFillLeaseStore } from '../../db/blob-fill-lease-store.js';
import type { Digest } from '../../oci/digest.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import type { FillHandle, FillRange, FillSource } from './blob-fills.js';
import { holdLastChunk } from './fill-peers.js';
import type { PeerSecret } from './peer-secret.js';

/** Peer failures one followed fill tolerates before it gives up (each is followed by a new look at the lease). */
const MAX_PEER_FAILURES = 8;

/** What a follower needs of the peer client (upstream/peer-client.ts). */
export interface PeerFills {
  get(ownerUrl: string, digest: string, secret: string, offset: number): Promise<{ size: number | undefined; body: Readable }>;
  close?(): Promise<void>;
}

/** What the follower asks of the process (cluster-fills.ts). */
export interface FollowContext {
  storage: BlobDriver;
  leases: BlobFillLeaseStore;
  peers: PeerFills;
  secret: PeerSecret;
  self: { id: string; url: string };
  leaseMs: number;
  now: () => number;
  /** Fills `digest` in this process; `leased` when the caller took the lease (renewed, then released). */
  fillHere(digest: Digest, start: () => Promise<FillSource>, leased: boolean): Promise<FillHandle>;
  tookOver(): void;
  log?: { warn(obj: object, msg: string): void };
}

type Source =
  | { kind: 'peer'; lease: BlobFillLease; size: number | undefined }
  | { kind: 'local'; handle: FillHandle }
  | { kind: 'stored'; size: number }
  | { kind: 'failed'; error: unknown };

export class FollowedFill {
  /** Resolves once the blob is committed in storage (by whichever process); rejects when the fill failed. */
  readonly done: Promise<{ size: number }>;
  private source: Source;
  private recovering: Promise<void> | undefined;
  private failures = 0;
  private settled = false;
  private resolveDone!: (v: { size: number }) => void;
  private rejectDone!: (err: unknown) => void;
  private readonly ready: Promise<void>;
  /** The owner's answer to the GET sent on joining, while no read took it (only a read from byte 0 of that source may). */
  private spare: { source: Source; res: { size: number | undefined; body: Readable } } | undefined;

  constructor(
    private readonly ctx: FollowContext,
    readonly digest: Digest,
    lease: BlobFillLease,
    private readonly start: () => Promise<FillSource>,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {});
    this.source = { kind: 'peer', lease, size: undefined };
    this.ready = this.connect();
    this.ready.catch(() => {});
    void this.ready.then(() => this.watch()).catch((err: unknown) => this.fail(err));
  }

  /** A handle on the fill for one request; rejects when neither the owner, storage nor a fill of our own can give the blob. */
  async handle(): Promise<FillHandle> {
    await this.ready;
    const src = this.source;
    if (src.kind === 'failed') throw src.error;
    if (src.kind === 'local') return src.handle;
    const size = src.size;
    return {
      size,
      joined: true,
      done: this.done,
      open: (range) => this.open(size, range),
      body: async (range) => ({ kind: 'stream', stream: this.open(size, range) }),
    };
  }

  /**
   * Sends the GET of the whole blob to the owner and learns the blob's size from its answer, kept for the
   * first read; an owner that does not answer with the fill is replaced at once.
   */
  private async connect(): Promise<void> {
    const src = this.source as Extract<Source, { kind: 'peer' }>;
    try {
      const res = await this.ctx.peers.get(src.lease.owner_url, this.digest, await this.ctx.secret.get(), 0);
      // Unread, it may still break (the owner dies): the read that takes it sees that, nobody else.
      res.body.on('error', () => {});
      if (this.source !== src) return void res.body.destroy();
      this.source = { ...src, size: res.size };
      this.spare = { source: this.source, res };
    } catch (err) {
      await this.recover(src, err);
    }
  }

  /** The answer kept by `connect` when `src` is still its source and the read starts at byte 0. */
  private takeSpare(src: Source, pos: number): { size: number | undefined; body: Readable } | undefined {
    const spare = this.spare;
    if (!spare || spare.source !== src || pos !== 0) return undefined;
    this.spare = undefined;
    return spare.res;
  }

  private dropSpare(): void {
    this.spare?.res.body.destroy();
    this.spare = undefined;
  }

  /**
   * The blob (or `range` of it) as one stream, whatever the sources it comes from. A whole blob is hashed
   * on the way and its last bytes held until the hash matches the digest: bytes one source sent before it
   * broke are never completed into a clean response by another. A range cannot be checked that way: it
   * breaks when its source does after sending bytes, and holds its last bytes until the fill is committed.
   */
  private open(size: number | undefined, range?: FillRange): Readable {
    const from = range?.start ?? 0;
    const end = range ? range.end + 1 : size;
    const whole = from === 0 && (range === undefined || range.end + 1 === size);
    const bytes = this.read(from, end, size, !whole);
    return Readable.from(whole ? verified(bytes, this.digest) : holdLastChunk(bytes, this.done), { objectMode: false });
  }

  /**
   * The bytes `[from, end)` (`end` undefined: to the blob's end, of a size not known yet), across
   * sources; with `noResume`, a source that breaks after bytes went out ends the read with its error.
   */
  private async *read(from: number, end: number | undefined, size: number | undefined, noResume: boolean): AsyncGenerator<Uint8Array> {
    let pos = from;
    for (;;) {
      const src = this.source;
      if (src.kind === 'failed') throw src.error;
      if (end !== undefined && pos >= end) return;
      if (src.kind === 'stored') {
        const stop = end ?? src.size;
        if (pos < stop) yield* await this.ctx.storage.reader(blobKey(this.digest), { offset: pos, length: stop - pos });
        return;
      }
      if (src.kind === 'local') {
        if (end === undefined && pos > 0) throw new Error(`blob ${this.digest}: a fill of unannounced size cannot go on from byte ${pos}`);
        yield* src.handle.open(end === undefined ? undefined : { start: pos, end: end - 1 });
        return;
      }
      let failure: unknown;
      try {
        const res = this.takeSpare(src, pos) ?? (await this.ctx.peers.get(src.lease.owner_url, this.digest, await this.ctx.secret.get(), pos));
        try {
          for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
            const part = end !== undefined && pos + chunk.byteLength > end ? chunk.subarray(0, end - pos) : chunk;
            pos += part.byteLength;
            if (part.byteLength) yield part;
            if (end !== undefined && pos >= end && end !== size) return; // a range short of the end: the rest is not ours
          }
        } finally {
          res.body.destroy();
        }
        // The owner ended its stream cleanly: the blob is committed.
        if (end === undefined || pos >= end) {
          this.finish(pos);
          return;
        }
        failure = new Error(`the owner's stream ended at byte ${pos} of ${end}`);
      } catch (err) {
        failure = err;
      }
      await this.recover(src, failure);
      if (noResume && pos > from) throw failure instanceof Error ? failure : new Error(String(failure));
    }
  }

  /**
   * Looks at the lease while the owner's fill runs: its end, or its owner's death, is noticed without a
   * reader, the death as soon as the owner's process is gone where the database tells it (PostgreSQL),
   * otherwise once its lease expires.
   */
  private async watch(): Promise<void> {
    const interval = Math.max(50, Math.floor(this.ctx.leaseMs / 3));
    while (!this.settled) {
      await sleep(interval, undefined, { ref: false });
      const src = this.source;
      if (this.settled || src.kind !== 'peer') return;
      const seen = await this.ctx.leases.look(this.digest).catch(() => ({ lease: src.lease, ownerGone: false }));
      const row = seen?.lease;
      const same = row !== undefined && row.owner === src.lease.owner && row.started_at === src.lease.started_at;
      if (same && row.expires_at > this.ctx.now() && !seen?.ownerGone) continue;
      await this.recover(src, new Error(!row ? 'the fill ended' : seen?.ownerGone ? "the process of the fill's owner died" : 'the lease of the fill expired'));
    }
  }

  /** Finds where the bytes are now that `failed` broke; one search at a time, and none once a newer source is known. */
  private recover(failed: Source, err: unknown): Promise<void> {
    if (this.source !== failed) return Promise.resolve();
    if (this.spare?.source === failed) this.dropSpare();
    if (!this.recovering) {
      this.recovering = this.search(failed as Extract<Source, { kind: 'peer' }>, err)
        .catch((e: unknown) => this.fail(e))
        .finally(() => {
          this.recovering = undefined;
        });
    }
    return this.recovering;
  }

  private async search(failed: Extract<Source, { kind: 'peer' }>, err: unknown): Promise<void> {
    const { ctx, digest } = this;
    if (++this.failures > MAX_PEER_FAILURES) throw new Error(`blob ${digest}: gave up following the fill after ${MAX_PEER_FAILURES} failures: ${(err as Error)?.message ?? err}`);
    ctx.log?.warn({ digest, owner: failed.lease.owner_url, err: (err as Error)?.message ?? String(err) }, 'following a blob fill of another process failed; looking again');
    let seen: BlobFillLease = failed.lease;
    for (;;) {
      const stat = await ctx.storage.stat(blobKey(digest));
      if (stat) return this.finish(stat.size);
      const { taken, lease } = await ctx.leases.take(digest, { owner: ctx.self.id, ownerUrl: ctx.self.url }, ctx.now(), ctx.leaseMs, seen);
      if (taken || lease?.owner === ctx.self.id) {
        const handle = await ctx.fillHere(digest, this.start, taken);
        if (taken) ctx.tookOver();
        this.source = { kind: 'local', handle };
        handle.done.then(
          (v) => this.finish(v.size),
          (e: unknown) => this.fail(e),
        );
        return;
      }
      if (!lease) continue; // released meanwhile: committed (storage has it now) or failed (free to take)
      if (lease.owner !== seen.owner || lease.started_at !== seen.started_at) {
        this.source = { kind: 'peer', lease, size: failed.size }; // another process took it over
        return;
      }
      // The same owner renewed its lease since we looked: it lives. Ask it again, a moment later.
      await sleep(100);
      this.source = { kind: 'peer', lease, size: failed.size };
      return;
    }
  }

  private finish(size: number): void {
    if (this.settled) return;
    this.settled = true;
    this.dropSpare();
    this.source = { kind: 'stored', size };
    this.resolveDone({ size });
  }

  private fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.dropSpare();
    this.source = { kind: 'failed', error };
    this.rejectDone(error);
  }
}

/** The bytes, hashed on the way; the last chunk goes out only when they match `digest`, else an error does. */
async function* verified(bytes: AsyncIterable<Uint8Array>, digest: Digest): AsyncGenerator<Uint8Array> {
  const at = digest.indexOf(':');
  const hash = createHash(digest.slice(0, at));
  let held: Uint8Array | undefined;
  for await (const chunk of bytes) {
    if (held) yield held;
    hash.update(chunk);
    held = chunk;
  }
  if (hash.digest('hex') !== digest.slice(at + 1)) throw new Error(`blob ${digest}: the bytes passed on do not match the digest`);
  if (held) yield held;
}
