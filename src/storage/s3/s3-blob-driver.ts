/**
 * S3 driver: each key is an object in one bucket, under an optional key prefix. Writes are multipart
 * uploads onto the final key, visible only once completed (see `s3-writer.ts`); `move` is a server-side
 * copy followed by a delete of the source, so a reader of the target sees the old object or the new
 * one, never a partial one. Reads are ranged GETs streamed straight from the response; a pull's GET
 * reads the socket (or the TLS connection of an `https:` endpoint) straight into the sender's buffers
 * (`openPositional`, direct-get.ts), at a quarter of the CPU per byte of a stream through the SDK.
 *
 * Works with AWS S3 and with S3-compatible servers that need path-style addressing and do not accept
 * streamed checksums (Ceph RADOS Gateway 16.2): checksums are sent only when an operation requires
 * them. Crash leftovers are multipart uploads never completed; `sweepStaging` aborts the old ones.
 *
 * Failures of the store itself (no connection, a timeout, a 5xx, refused credentials) surface as
 * StorageUnavailableError, from every request and from a read stream that breaks off; a connection
 * that does not open within `connectTimeoutMs`, or stays silent for `requestTimeoutMs`, fails rather
 * than holding a request. Nothing is remembered between requests: once the store answers again, the
 * next request works.
 */
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, AbortMultipartUploadCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Agent as HttpsAgent } from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import { assertValidKey, BlobNotFoundError, StorageUnavailableError, type BlobDriver, type BlobStat, type BlobWriter, type PositionalReader, type WriterOptions, heldToSize } from '../blob-driver.js';
import { DirectGetError, directGet, type DirectGetOptions } from './direct-get.js';
import { serverSideCopy } from './s3-copy.js';
import { copySource, MAX_SINGLE_COPY, MAX_SINGLE_PUT, MIN_PART_SIZE, S3StreamWriter, S3Writer, type S3Target } from './s3-writer.js';
import { isS3NotFound, s3Status } from './s3-errors.js';

/** The SDK's logger: nothing (see the S3Client's construction). */
const SILENT_SDK_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export interface S3DriverOptions {
  /** e.g. `http://127.0.0.1:7480`; undefined for AWS's own endpoints. */
  endpoint?: string;
  bucket: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
  /** Keys live under `<prefix>/` in the bucket; '' for the bucket's root. */
  prefix?: string;
  /** Bytes buffered per writer before they go up as one part (at least 5 MiB). */
  partSize?: number;
  /** Seconds a presigned redirect URL is valid; undefined: no redirects (`redirectUrl` gives undefined). */
  redirectExpirySeconds?: number;
  /** The endpoint as clients reach it, written into redirect URLs; default `endpoint`. */
  redirectEndpoint?: string;
  /** A connection to the store not open within this long fails (default 5 s). */
  connectTimeoutMs?: number;
  /** A connection silent this long (no answer, or a body that stopped) fails (default 60 s). */
  requestTimeoutMs?: number;
  /** An `https:` endpoint's certificate authorities (PEM), trusted instead of Node's own; default Node's. */
  ca?: string;
  /**
   * Server-side copies of objects up to this size take one CopyObject, larger ones a multipart copy
   * (default and largest: S3's limit, 5 GiB; lower for a store with a smaller limit).
   */
  maxSingleCopy?: number;
}

export class S3BlobDriver implements BlobDriver {
  readonly name = 's3';
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly redirectExpirySeconds?: number;
  /** Signs redirect URLs (never sends): the same credentials, with the endpoint clients use. */
  private readonly presigner: S3Client;
  /** The store as an operator knows it, for error messages. */
  readonly where: string;
  private readonly direct: DirectGetOptions;
  /** Endpoint, region and credentials: drivers that agree on all four copy between each other server side. */
  private readonly store: string;
  private readonly maxSingleCopy: number;

  constructor(opts: S3DriverOptions) {
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.accessKeyId && opts.secretAccessKey ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } : undefined,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      // Given no logger, the SDK writes some warnings straight to the console (a streamed PUT that failed
      // or was cancelled is "non-retryable"), which would break the log's one JSON object per line; what
      // goes wrong reaches the driver as an error anyway.
      logger: SILENT_SDK_LOGGER,
      // An endpoint that does not answer fails within seconds rather than hanging a start or a request.
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? 5000,
        socketTimeout: opts.requestTimeoutMs ?? 60_000,
        // An agent of our own, not agent options: for a request that sends `Expect: 100-continue` (a body
        // over 1 MiB) the SDK makes a fresh agent without the options it was given, `ca` included.
        ...(opts.ca === undefined ? {} : { httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 50, ca: opts.ca }) }),
      },
    });
    // Outermost, around the SDK's retries: the error of the last attempt is the one relabelled.
    this.client.middlewareStack.add(
      (next) => async (args) => {
        try {
          return await next(args);
        } catch (err) {
          throw this.unavailable(err);
        }
      },
      { step: 'initialize', name: 'wharfStorageUnavailable' },
    );
    this.where = `S3 bucket "${opts.bucket}" at ${opts.endpoint ?? `AWS S3 (${opts.region})`}`;
    this.redirectExpirySeconds = opts.redirectExpirySeconds;
    this.presigner =
      opts.redirectEndpoint === undefined || opts.redirectEndpoint === opts.endpoint
        ? this.client
        : new S3Client({ endpoint: opts.redirectEndpoint, region: opts.region, forcePathStyle: opts.forcePathStyle, credentials: this.client.config.credentials });
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ? `${opts.prefix.replace(/\/+$/, '')}/` : '';
    this.partSize = Math.max(MIN_PART_SIZE, opts.partSize ?? 8 * 1024 * 1024);
    this.direct = { connectTimeoutMs: opts.connectTimeoutMs ?? 5000, idleTimeoutMs: opts.requestTimeoutMs ?? 60_000, ca: opts.ca };
    this.maxSingleCopy = Math.min(MAX_SINGLE_COPY, opts.maxSingleCopy ?? MAX_SINGLE_COPY);
    this.store = JSON.stringify([opts.endpoint ?? null, opts.region, opts.accessKeyId ?? null, opts.secretAccessKey ?? null]);
  }

  /**
   * A server-side copy (s3-copy.ts) when `source` is an S3 driver on the same endpoint with the same
   * credentials (its bucket and prefix may differ); 'unsupported' otherwise, or when the store refuses it.
   */
  async copyFrom(source: BlobDriver, key: string, expected: { size: number }, signal?: AbortSignal): Promise<'copied' | 'unsupported'> {
    if (!this.canCopyFrom(source)) return 'unsupported';
    return serverSideCopy(this.client, { bucket: source.bucket, key: source.key(key) }, this.target(key), { blobKey: key, expected, maxSingleCopy: this.maxSingleCopy, signal });
  }

  /** `source` is an S3 driver on the same endpoint with the same credentials (bucket and prefix may differ). */
  canCopyFrom(source: BlobDriver): source is S3BlobDriver {
    return source instanceof S3BlobDriver && source.store === this.store;
  }

  /**
   * One GET of the bytes a pull asks for, read from the socket into the caller's buffers (direct-get.ts).
   * An answer that path does not handle (an error status, an unframed body) is asked again through the
   * SDK, whose errors are the driver's: not found, the store unavailable. A connection that fails (refused,
   * a certificate that does not verify, broken off or silent mid-body) is StorageUnavailableError.
   */
  async openPositional(key: string, range?: { offset: number; length: number }): Promise<PositionalReader> {
    if (range?.length === 0) {
      const st = await this.stat(key);
      if (!st) throw new BlobNotFoundError(key);
      return { size: st.size, read: async () => 0, close: async () => {} };
    }
    let current = await this.directOpen(key, range);
    let position = range?.offset ?? 0;
    const size = current.size;
    return {
      size,
      read: async (buffer, at, length) => {
        if (at >= size || length === 0) return 0;
        if (at !== position) {
          // A jump (not what a pull does): a new GET from there to the end.
          await current.close();
          current = await this.directOpen(key, { offset: at });
          position = at;
        }
        let n;
        try {
          n = await current.read(buffer, at, length);
        } catch (err) {
          // The connection broke off or went silent mid-body: the store's failure, as for a stream.
          throw err instanceof DirectGetError ? new StorageUnavailableError(this.where, err.message, err) : err;
        }
        position += n;
        return n;
      },
      close: () => current.close(),
    };
  }

  /** A reader of the bytes from `range.offset` (to the end, or `range.length` of them), read in order. */
  private async directOpen(key: string, range?: { offset: number; length?: number }): Promise<PositionalReader> {
    const url = new URL(await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }), { expiresIn: 60 }));
    let answer;
    try {
      answer = await directGet(url, range, this.direct);
    } catch (err) {
      throw new StorageUnavailableError(this.where, (err as Error).message, err);
    }
    if (answer.kind === 'body') return answer.reader;
    const stat = await this.stat(key);
    if (!stat) throw new BlobNotFoundError(key);
    return sequentialReader(await this.reader(key, range), range?.offset ?? 0, stat.size);
  }

  /** Checks that the bucket exists and the credentials may use it; throws the S3 error otherwise. */
  async probe(signal?: AbortSignal): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
  }

  async check(signal?: AbortSignal): Promise<void> {
    try {
      await this.probe(signal);
    } catch (err) {
      if (err instanceof StorageUnavailableError) throw err;
      throw new StorageUnavailableError(this.where, `HTTP ${s3Status(err) ?? '?'} ${(err as Error).name}`, err);
    }
  }

  /** A presigned GET of the object, valid for the configured time; undefined when redirects are off. */
  async redirectUrl(key: string): Promise<string | undefined> {
    if (this.redirectExpirySeconds === undefined) return undefined;
    return getSignedUrl(this.presigner, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }), { expiresIn: this.redirectExpirySeconds });
  }

  /** The store's own failures as StorageUnavailableError; answers about the request (404, 416…) unchanged. */
  private unavailable(err: unknown): unknown {
    if (err instanceof StorageUnavailableError) return err;
    const status = s3Status(err);
    if (status !== undefined && status < 500 && status !== 401 && status !== 403) return err;
    const e = err as { code?: string; name?: string; message?: string };
    const reason = status !== undefined ? `HTTP ${status} ${e.name ?? ''}`.trim() : (e.code ?? e.name ?? e.message ?? String(err));
    return new StorageUnavailableError(this.where, reason, err);
  }

  private key(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  private target(key: string): S3Target {
    return { client: this.client, bucket: this.bucket, key: this.key(key), partSize: this.partSize };
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return { size: res.ContentLength ?? 0, modifiedAt: res.LastModified?.getTime() ?? Date.now() };
    } catch (err) {
      if (isS3NotFound(err)) return undefined;
      throw err;
    }
  }

  async reader(key: string, range?: { offset: number; length?: number }): Promise<Readable> {
    const offset = range?.offset ?? 0;
    const length = range?.length;
    const k = this.key(key);
    if (length === 0) {
      if (!(await this.stat(key))) throw new BlobNotFoundError(key);
      return Readable.from([]);
    }
    const Range = offset === 0 && length === undefined ? undefined : `bytes=${offset}-${length === undefined ? '' : offset + length - 1}`;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: k, Range }));
      return this.relabelled(res.Body as Readable);
    } catch (err) {
      if (isS3NotFound(err)) throw new BlobNotFoundError(key);
      // S3 refuses a range that starts at or past the end (416), where the contract wants no bytes.
      if (s3Status(err) === 416 && (await this.stat(key))) return Readable.from([]);
      throw err;
    }
  }

  /**
   * The response body with its errors (the connection broke off, went silent) as StorageUnavailableError,
   * so a failure before the first byte is a 503 and one after it ends the transfer as a failure.
   */
  private relabelled(body: Readable): Readable {
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    body.once('error', (err) => out.destroy(this.unavailable(err) as Error));
    out.once('close', () => body.destroy());
    return body.pipe(out);
  }

  async writer(key: string, opts: WriterOptions = {}): Promise<BlobWriter> {
    const t = this.target(key);
    if (!opts.append) {
      // Known and larger than one part: one streamed PUT (up to S3's 5 GiB single-request limit).
      if (opts.size !== undefined && opts.size > this.partSize && opts.size <= MAX_SINGLE_PUT) return new S3StreamWriter(t, opts.size);
      return heldToSize(S3Writer.create(t), opts.size);
    }
    const existing = await this.stat(key);
    return S3Writer.append(t, existing?.size ?? 0, async () => {
      const chunks: Buffer[] = [];
      for await (const c of await this.reader(key)) chunks.push(Buffer.from(c as Uint8Array));
      return Buffer.concat(chunks);
    });
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
  }

  async *list(prefix: string): AsyncIterable<string> {
    const trimmed = prefix.replace(/\/+$/, '');
    const Prefix = trimmed === '' ? this.prefix : `${this.key(trimmed)}/`;
    let ContinuationToken: string | undefined;
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken }));
      for (const o of res.Contents ?? []) if (o.Key) yield o.Key.slice(this.prefix.length);
      ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async move(from: string, to: string): Promise<void> {
    const src = this.key(from);
    const dst = this.key(to);
    const s = await this.stat(from);
    if (!s) throw new BlobNotFoundError(from);
    if (s.size <= MAX_SINGLE_COPY) {
      try {
        await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: dst, CopySource: copySource(this.bucket, src) }));
      } catch (err) {
        if (isS3NotFound(err)) throw new BlobNotFoundError(from);
        throw err;
      }
    } else {
      // A multipart upload whose parts are all copied from the source.
      const w = await S3Writer.append({ ...this.target(to), key: dst }, 0, async () => Buffer.alloc(0));
      await w.copyFrom(src, s.size);
      await w.commit();
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: src }));
  }

  async sweepStaging(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const res = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix || undefined, KeyMarker, UploadIdMarker }));
      for (const u of res.Uploads ?? []) {
        if (!u.Key || !u.UploadId || (u.Initiated?.getTime() ?? 0) >= cutoff) continue;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId })).catch((err) => {
          if (!isS3NotFound(err)) throw err;
        });
        removed++;
      }
      KeyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
      UploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return removed;
  }

  /** Closes the client's connections. */
  close(): void {
    this.client.destroy();
    if (this.presigner !== this.client) this.presigner.destroy();
  }
}

/** A stream read in order through `PositionalReader` calls (copying), for answers the direct path leaves to the SDK. */
function sequentialReader(stream: Readable, start: number, size: number): PositionalReader {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let held: Buffer | undefined;
  let position = start;
  return {
    size,
    async read(buffer, at, length) {
      if (at !== position) throw new Error(`reads of an S3 object must follow each other (asked for byte ${at}, at ${position})`);
      if (!held || held.length === 0) {
        const next = await chunks.next();
        if (next.done) return 0;
        held = Buffer.from(next.value);
      }
      const n = Math.min(length, held.length);
      buffer.set(held.subarray(0, n));
      held = held.subarray(n);
      position += n;
      return n;
    },
    async close() {
      stream.destroy();
    },
  };
}
