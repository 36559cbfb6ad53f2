/**
 * The owner's side of a fill followed from another process (cluster-fills.ts): what the internal
 * endpoint `GET /internal/fills/<digest>` serves. A fill running in this process is read through its
 * fill readers while it grows, so the follower's client gets bytes as the upstream sends them; a blob
 * this process already committed is read from storage; anything else is "gone" (404) and the follower
 * looks again.
 *
 * The last bytes are held back until the blob is committed, not only verified: a follower whose stream
 * ends cleanly knows the blob is in storage, and a follower whose stream breaks knows it is not
 * complete, whatever the reason (this process died, the fill failed).
 */
import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { BlobDriver, PositionalReader } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import type { BlobBody } from '../blobs.js';
import type { BlobFills, FillHandle } from './blob-fills.js';
import type { PeerSecret } from './peer-secret.js';

export interface FillPeersOptions {
  fills: BlobFills;
  storage: BlobDriver;
  secret: PeerSecret;
}

/** A fill as served to a peer: its size when known, and the bytes from the asked offset (absent for HEAD). */
export interface PeerServedFill {
  size: number | undefined;
  /** Offset of the first byte of `body` (0 unless the peer asked for the rest from an offset). */
  offset: number;
  body: BlobBody | undefined;
}

export class FillPeers {
  constructor(private readonly opts: FillPeersOptions) {}

  /** Whether `presented` (a request header) is the deployment's shared secret. */
  authorize(presented: unknown): Promise<boolean> {
    return this.opts.secret.matches(presented);
  }

  /**
   * The fill of `digest` from byte `offset` on (no body when `head`): the one running here, or the blob
   * committed here; undefined when neither. RANGE_INVALID for an offset past the blob's end.
   */
  async open(digest: Digest, offset: number, head: boolean): Promise<PeerServedFill | undefined> {
    const handle = await this.opts.fills.follow(digest);
    if (handle) return { size: handle.size, offset, body: head ? undefined : await heldUntilCommitted(handle, offset) };
    const stat = await this.opts.storage.stat(blobKey(digest));
    if (!stat) return undefined;
    checkOffset(offset, stat.size);
    if (head) return { size: stat.size, offset, body: undefined };
    const key = blobKey(digest);
    const length = stat.size - offset;
    const storage = this.opts.storage;
    const body: BlobBody = storage.openPositional
      ? { kind: 'positional', reader: await storage.openPositional(key, { offset, length }), offset, length }
      : { kind: 'stream', stream: Readable.from(await storage.reader(key, { offset, length }), { objectMode: false }) };
    return { size: stat.size, offset, body };
  }
}

function checkOffset(offset: number, size: number | undefined): void {
  if (offset < 0 || (size !== undefined && offset > 0 && offset >= size)) {
    throw new RegistryError('RANGE_INVALID', `offset ${offset} is outside the blob's ${size ?? 'unknown'} bytes`);
  }
}

/** The fill's bytes from `offset`, whose end waits for the commit (`done`) and errors when it fails. */
async function heldUntilCommitted(handle: FillHandle, offset: number): Promise<BlobBody> {
  const size = handle.size;
  checkOffset(offset, size);
  if (size === undefined) {
    if (offset > 0) throw new RegistryError('RANGE_INVALID', 'a fill of unannounced size is only served from its start');
    return { kind: 'stream', stream: Readable.from(holdLastChunk(handle.open(), handle.done), { objectMode: false }) };
  }
  if (size === 0) return { kind: 'stream', stream: Readable.from(holdLastChunk(handle.open(), handle.done), { objectMode: false }) };
  const body = await handle.body({ start: offset, end: size - 1 });
  if (body.kind === 'stream') return { kind: 'stream', stream: Readable.from(holdLastChunk(body.stream, handle.done), { objectMode: false }) };
  const inner = body.reader;
  const end = body.offset + body.length;
  const reader: PositionalReader = {
    size: inner.size,
    async read(buffer, position, length) {
      const n = await inner.read(buffer, position, length);
      if (position + n >= end) await handle.done;
      return n;
    },
    close: () => inner.close(),
  };
  return { kind: 'positional', reader, offset: body.offset, length: body.length };
}

/** Passes `stream` on, holding its last chunk back until `done` resolves (a rejection errors the stream instead). */
export async function* holdLastChunk(stream: AsyncIterable<Uint8Array>, done: Promise<unknown>): AsyncGenerator<Uint8Array> {
  let held: Uint8Array | undefined;
  for await (const chunk of stream) {
    if (held) yield held;
    held = chunk;
  }
  await done;
  if (held) yield held;
}
