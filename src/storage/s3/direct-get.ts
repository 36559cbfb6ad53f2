/**
 * A streamed pull's GET of an S3 object, read from the socket straight into the caller's buffers.
 *
 * Node's HTTP clients (node:http, undici, and the AWS SDK above them) read a response in fresh 64 KiB
 * chunks and pass each through a stream: at a few hundred MiB/s that costs about four times the CPU of
 * the same copy in Go (CNCF Distribution), most of it per-chunk work and garbage collection. Here the
 * socket's `onread` reads into one buffer per transfer (up to 1 MiB per read: as many bytes as the
 * kernel holds), copied out into the buffers the blob sender recycles; nothing is allocated per chunk
 * (only when bytes still unread fill it does a read go to a fresh buffer).
 *
 * Deliberately small: one GET (a presigned URL, so signing stays the SDK's), `Connection: close`, a body
 * framed by Content-Length. An `https:` URL goes over TLS (`tls.connect`, which reads the same way),
 * trusting what the SDK trusts: Node's certificate authorities (its own list and NODE_EXTRA_CA_CERTS), or
 * only `ca` when the driver is given one; a certificate that does not verify fails the connection. Anything else the store answers — an error status, a chunked body, a
 * missing length — is reported as `unsupported` before any byte is read, and the driver asks again
 * through the SDK, which owns the error handling.
 */
import { connect, isIP, type NetConnectOpts, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import type { PositionalReader } from '../blob-driver.js';

const MAX_HEADER = 64 * 1024;
/** The most one socket read takes in (as much as the kernel holds, up to this). */
const READ_BUFFER = 1024 * 1024;
/** Less room than this left after unread bytes, and the next read goes to a fresh buffer. */
const MIN_SPARE = 64 * 1024;

export interface DirectGetOptions {
  /** A connection not open within this long fails. */
  connectTimeoutMs: number;
  /** A connection silent this long (no answer, a body that stopped arriving) fails. */
  idleTimeoutMs: number;
  /** `https:` only: the certificate authorities (PEM) trusted instead of Node's own ones. */
  ca?: string | Buffer;
}

/** A failure of the connection or of the store's answer (to be reported as the store being unavailable). */
export class DirectGetError extends Error {
  override name = 'DirectGetError';
}

export type DirectGetResult =
  /** The bytes asked for (or the whole object), readable in order from `start`. */
  | { kind: 'body'; reader: PositionalReader }
  /** An answer this reader does not handle (status, framing); nothing was consumed that matters. */
  | { kind: 'unsupported'; status: number };

/**
 * GETs `url` (`http:` or `https:`), bytes `offset` to `offset + length - 1` (to the end when `length` is
 * undefined). Resolves once the response's head has arrived.
 */
export function directGet(url: URL, range: { offset: number; length?: number } | undefined, opts: DirectGetOptions): Promise<DirectGetResult> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`directGet handles http: and https: URLs only (got ${url.protocol})`);
  return new DirectGet(url, range, opts).started;
}

interface PendingRead {
  buffer: Uint8Array;
  length: number;
  resolve: (n: number) => void;
  reject: (err: Error) => void;
}

class DirectGet implements PositionalReader {
  readonly started: Promise<DirectGetResult>;
  size = 0;
  private readonly socket: Socket;
  private head: Buffer | undefined = Buffer.allocUnsafe(MAX_HEADER);
  private headLength = 0;
  /** Position in the object of the next byte the socket delivers. */
  private position = 0;
  /** Body bytes still to come from the socket. */
  private remaining = 0;
  private pending: PendingRead | undefined;
  private failure: Error | undefined;
  private settleStart!: { resolve: (r: DirectGetResult) => void; reject: (err: Error) => void };

  constructor(
    url: URL,
    range: { offset: number; length?: number } | undefined,
    private readonly opts: DirectGetOptions,
  ) {
    this.started = new Promise((resolve, reject) => (this.settleStart = { resolve, reject }));
    const rangeHeader = range && (range.offset > 0 || range.length !== undefined) ? `Range: bytes=${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}\r\n` : '';
    const request = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n${rangeHeader}User-Agent: wharf\r\nConnection: close\r\n\r\n`;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const onread = { buffer: () => this.nextBuffer(), callback: (n: number) => this.received(n) };
    const tls = url.protocol === 'https:';
    this.socket = tls
      ? connectTls({ host, port: Number(url.port || 443), servername: isIP(host) ? undefined : host, ca: opts.ca, onread } as ConnectionOptions)
      : connect({ host, port: Number(url.port || 80), onread } as NetConnectOpts);
    this.socket.setNoDelay(true);
    let connected = false;
    this.socket.setTimeout(opts.connectTimeoutMs, () =>
      this.fail(new DirectGetError(connected ? `the connection stayed silent for ${opts.idleTimeoutMs} ms` : `no connection within ${opts.connectTimeoutMs} ms`)),
    );
    this.socket.once(tls ? 'secureConnect' : 'connect', () => {
      connected = true;
      this.socket.setTimeout(opts.idleTimeoutMs);
      this.socket.write(request);
    });
    this.socket.once('error', (err) => this.fail(new DirectGetError(describe(err as NodeJS.ErrnoException))));
    const ended = () => {
      if (this.head) this.fail(new DirectGetError('the connection closed before an answer'));
      else if (this.remaining > 0) this.fail(new DirectGetError(`the connection closed ${this.remaining} bytes before the end of the object`));
    };
    this.socket.once('end', ended);
    this.socket.once('close', ended);
  }

  /** Where body bytes land: reused from its start whenever every byte in it has been read out. */
  private landing: Buffer | undefined;
  /** How much of `landing` holds bytes not read out yet (they sit in `unread`). */
  private landingUsed = 0;
  /** The buffer the socket's next read fills (the last one `nextBuffer` gave). */
  private handed: Buffer | undefined;
  /** Body bytes that arrived and are not read yet, in order. */
  private readonly unread: Buffer[] = [];
  private unreadBytes = 0;

  /**
   * Where the socket's next read lands: the head buffer, then the landing buffer after any bytes not
   * read out yet. A plain socket stops reading when asked to; a TLS socket still hands over every record
   * it has already decrypted, one call per record, so a read may land while earlier ones wait.
   */
  private nextBuffer(): Uint8Array {
    if (this.head) return this.head.subarray(this.headLength);
    if (this.unreadBytes === 0) this.landingUsed = 0;
    if (!this.landing || this.landing.length - this.landingUsed < MIN_SPARE) {
      // Bytes still unread fill this one: the next read goes to a fresh buffer (they keep the old one).
      this.landing = Buffer.allocUnsafe(Math.max(1, Math.min(READ_BUFFER, this.remaining)));
      this.landingUsed = 0;
    }
    return (this.handed = this.landing.subarray(this.landingUsed));
  }

  private received(n: number): boolean {
    if (this.head) return this.receivedHead(n);
    if (n <= 0) return true;
    if (n > this.remaining) {
      this.fail(new DirectGetError('the store sent more bytes than the object has'));
      return false;
    }
    this.position += n;
    this.remaining -= n;
    this.landingUsed += n;
    this.queue(this.handed!.subarray(0, n));
    const pending = this.pending;
    this.pending = undefined;
    pending?.resolve(this.copyOut(pending.buffer, pending.length));
    // Paused until every byte landed is read out.
    return false;
  }

  private queue(bytes: Buffer): void {
    this.unread.push(bytes);
    this.unreadBytes += bytes.length;
  }

  private copyOut(buffer: Uint8Array, length: number): number {
    let n = 0;
    while (n < length && this.unread.length > 0) {
      const first = this.unread[0]!;
      const take = Math.min(length - n, first.length);
      buffer.set(first.subarray(0, take), n);
      n += take;
      if (take === first.length) this.unread.shift();
      else this.unread[0] = first.subarray(take);
    }
    this.unreadBytes -= n;
    return n;
  }

  private receivedHead(n: number): boolean {
    this.headLength += n;
    const head = this.head!;
    const end = head.subarray(0, this.headLength).indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headLength === head.length) this.fail(new DirectGetError(`an answer head longer than ${MAX_HEADER} bytes`));
      return true;
    }
    this.head = undefined;
    const lines = head.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length'));
    const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headers.get('content-range') ?? '');
    const framed = !headers.has('transfer-encoding') && Number.isSafeInteger(length) && length >= 0;
    if ((status !== 200 && !(status === 206 && contentRange)) || !framed) {
      this.socket.destroy();
      this.settleStart.resolve({ kind: 'unsupported', status: Number.isFinite(status) ? status : 0 });
      return false;
    }
    this.position = contentRange ? Number(contentRange[1]) : 0;
    this.size = contentRange ? Number(contentRange[3]) : length;
    this.remaining = length;
    const body = head.subarray(end + 4, this.headLength);
    if (body.length > 0) {
      const first = Buffer.from(body.subarray(0, Math.min(body.length, this.remaining)));
      this.queue(first);
      this.remaining -= first.length;
      this.position += first.length;
    }
    this.settleStart.resolve({ kind: 'body', reader: this });
    return false;
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.socket.destroy();
    if (this.head) this.settleStart.reject(err);
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }

  /** Reads the next bytes into `buffer`. Reads must come in order: `position` is where the last one ended. */
  read(buffer: Uint8Array, position: number, length: number): Promise<number> {
    const expected = this.position - this.unreadBytes;
    if (position !== expected) return Promise.reject(new Error(`reads of an S3 object must follow each other (asked for byte ${position}, at ${expected})`));
    if (length === 0) return Promise.resolve(0);
    if (this.unreadBytes > 0) return Promise.resolve(this.copyOut(buffer, length));
    if (this.remaining === 0) return Promise.resolve(0);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { buffer, length, resolve, reject };
      this.socket.resume();
    });
  }

  async close(): Promise<void> {
    this.socket.destroy();
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(new Error('the reader was closed'));
  }
}

/** A connection's failure in one line, with its code (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT…). */
function describe(err: NodeJS.ErrnoException): string {
  if (!err.code) return err.message;
  return err.message.includes(err.code) ? err.message : `${err.message} (${err.code})`;
}
