/**
 * Sends blob bytes. Streams go through Fastify. Positional readers are pumped straight into the
 * socket through a few recycled buffers: a buffer is refilled only after the socket has taken its
 * bytes, so a large pull allocates nothing per chunk (per-chunk buffers drive V8 into constant
 * garbage collection at gigabytes per second) and memory stays flat whatever the blob size. A pull
 * takes a buffer only when the socket still holds all its others (a blob that fits in one uses one),
 * the 1 MiB buffers from a few kept between pulls (blob-buffers.ts); a blob below 1 MiB gets its own
 * of its size.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { BlobBody } from '../../registry/blobs.js';
import { BlobBuffers } from './blob-buffers.js';

const BUFFER_SIZE = 1024 * 1024;
/** Buffers per pull: one being filled while the socket holds the others. */
const BUFFERS = 3;
/** As many kept between pulls as one pull uses. */
const shared = new BlobBuffers(BUFFER_SIZE, BUFFERS);

export async function sendBlobBody(reply: FastifyReply, body: BlobBody): Promise<void> {
  if (body.kind === 'stream') return reply.send(body.stream);
  reply.hijack();
  const res = reply.raw;
  const headers: Record<string, string | number | string[]> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v as string | number | string[];
  res.writeHead(reply.statusCode, headers);
  try {
    await pump(res, body.reader, body.offset, body.length);
    res.end();
  } catch (err) {
    reply.log.warn({ err: (err as Error).message }, 'blob transfer aborted');
    res.destroy();
  } finally {
    await body.reader.close().catch(() => {});
  }
}

async function pump(res: ServerResponse, reader: { read(b: Uint8Array, p: number, l: number): Promise<number> }, offset: number, length: number): Promise<void> {
  const size = Math.min(BUFFER_SIZE, Math.max(length, 1));
  const take = () => (size === BUFFER_SIZE ? shared.take() : Buffer.allocUnsafe(size));
  const free: Buffer[] = [];
  let allocated = 0;
  let done = false;
  let wake: (() => void) | undefined;
  // A buffer the socket failed to take may still be referenced: it is left to the collector.
  const release = (buf: Buffer, err?: Error | null) => {
    if (err) return;
    if (done) return shared.give(buf);
    free.push(buf);
    wake?.();
    wake = undefined;
  };
  const closed = once(res, 'close').then(
    () => {
      wake?.();
      wake = undefined;
    },
    () => undefined,
  );
  let pos = offset;
  const end = offset + length;
  try {
    while (pos < end) {
      if (res.destroyed) throw new Error('client disconnected');
      let buf = free.pop();
      if (!buf && allocated < BUFFERS) {
        buf = take();
        allocated++;
      }
      if (!buf) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      const n = await reader.read(buf, pos, Math.min(buf.length, end - pos));
      if (n === 0) throw new Error(`blob ended at byte ${pos - offset} of ${length}`);
      pos += n;
      const chunk = buf;
      const ok = res.write(n === buf.length ? buf : buf.subarray(0, n), (err) => release(chunk, err));
      buf = undefined;
      if (!ok) await Promise.race([once(res, 'drain'), closed]);
    }
  } finally {
    // The buffers back from the socket go to the next pull; those still out follow in their callbacks.
    done = true;
    for (const buf of free.splice(0)) shared.give(buf);
  }
}
