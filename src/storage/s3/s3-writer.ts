/**
 * A writer onto one S3 key. Bytes gather in one part-sized buffer; each full buffer goes up as a part
 * of a multipart upload on the final key, so memory stays at one part per writer whatever the blob
 * size, and nothing is spooled to local disk. The object appears only when `commit` completes the
 * upload (or, for an object smaller than one part, puts it in one request); `cancel` aborts the upload,
 * and S3 keeps no trace of an aborted one.
 *
 * Appending (`prefix`): S3 objects cannot grow, so the new upload starts with the existing object's
 * bytes, copied server side as the first parts (or read into the buffer when smaller than the 5 MiB
 * part minimum), and completing it replaces the object with the longer one. Cancelling leaves the
 * previous object untouched, which is "drops only what this writer wrote".
 */
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, UploadPartCopyCommand, type CompletedPart, type S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import type { BlobWriter } from '../blob-driver.js';

/** S3's smallest part (all but the last) and largest copied range. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_COPY_PART = 5 * 1024 * 1024 * 1024;
/** Objects up to this size copy with one CopyObject (S3's and RGW's limit); larger ones through a multipart copy. */
export const MAX_SINGLE_COPY = 5 * 1024 * 1024 * 1024;
/** The largest object one PutObject may carry. */
export const MAX_SINGLE_PUT = 5 * 1024 * 1024 * 1024;
const INITIAL_BUFFER = 256 * 1024;

export interface S3Target {
  client: S3Client;
  bucket: string;
  /** The object key in the bucket (the driver's prefix included). */
  key: string;
  partSize: number;
}

export class S3Writer implements BlobWriter {
  private buffer: Buffer;
  private filled = 0;
  private uploadId: string | undefined;
  private readonly parts: CompletedPart[] = [];
  private done = false;
  private failed = false;
  size: number;

  private constructor(private readonly t: S3Target, startSize: number) {
    // Grown on demand up to one part: a manifest or a small chunk does not cost a whole part.
    this.buffer = Buffer.allocUnsafe(Math.min(t.partSize, INITIAL_BUFFER));
    this.size = startSize;
  }

  /** A writer for a new object. */
  static create(t: S3Target): S3Writer {
    return new S3Writer(t, 0);
  }

  /**
   * A writer continuing the object of `size` bytes now at `t.key`: small objects are read into the
   * buffer by `readSmall`, larger ones copied server side into the new upload's first parts.
   */
  static async append(t: S3Target, size: number, readSmall: () => Promise<Buffer>): Promise<S3Writer> {
    const w = new S3Writer(t, size);
    if (size === 0) return w;
    if (size < MIN_PART_SIZE) {
      const existing = await readSmall();
      if (existing.byteLength !== size) throw new Error(`object ${t.key} changed while it was being appended to`);
      w.grow(size);
      existing.copy(w.buffer, 0);
      w.filled = size;
      return w;
    }
    try {
      await w.copyFrom(t.key, size);
    } catch (err) {
      await w.cancel();
      throw err;
    }
    return w;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new Error('write after commit or cancel');
    try {
      let offset = 0;
      while (offset < chunk.byteLength) {
        const n = Math.min(this.t.partSize - this.filled, chunk.byteLength - offset);
        this.grow(this.filled + n);
        this.buffer.set(chunk.subarray(offset, offset + n), this.filled);
        this.filled += n;
        offset += n;
        if (this.filled === this.t.partSize) await this.flushPart();
      }
      this.size += chunk.byteLength;
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  async commit(): Promise<void> {
    if (this.done) throw new Error('commit after commit or cancel');
    if (this.failed) throw new Error('commit after a failed write');
    this.done = true;
    const { client, bucket, key } = this.t;
    try {
      if (this.uploadId === undefined) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: this.buffer.subarray(0, this.filled), ContentLength: this.filled }));
        return;
      }
      if (this.filled > 0 || this.parts.length === 0) await this.flushPart();
      await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: this.uploadId, MultipartUpload: { Parts: this.parts } }));
      this.uploadId = undefined;
    } catch (err) {
      await this.abort();
      throw err;
    } finally {
      this.release();
    }
  }

  async cancel(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.release();
    await this.abort();
  }

  private async abort(): Promise<void> {
    const uploadId = this.uploadId;
    if (uploadId === undefined) return;
    this.uploadId = undefined;
    await this.t.client.send(new AbortMultipartUploadCommand({ Bucket: this.t.bucket, Key: this.t.key, UploadId: uploadId })).catch(() => {});
  }

  private release(): void {
    this.buffer = Buffer.alloc(0);
    this.filled = 0;
  }

  /** Room for `n` bytes (at most one part), keeping what the buffer holds. */
  private grow(n: number): void {
    if (n <= this.buffer.byteLength) return;
    const bigger = Buffer.allocUnsafe(Math.min(this.t.partSize, Math.max(n, this.buffer.byteLength * 2)));
    this.buffer.copy(bigger, 0, 0, this.filled);
    this.buffer = bigger;
  }

  private async start(): Promise<string> {
    if (this.uploadId === undefined) {
      const res = await this.t.client.send(new CreateMultipartUploadCommand({ Bucket: this.t.bucket, Key: this.t.key }));
      if (!res.UploadId) throw new Error(`S3 gave no upload id for ${this.t.key}`);
      this.uploadId = res.UploadId;
    }
    return this.uploadId;
  }

  private async flushPart(): Promise<void> {
    const uploadId = await this.start();
    const PartNumber = this.parts.length + 1;
    const body = this.buffer.subarray(0, this.filled);
    const res = await this.t.client.send(new UploadPartCommand({ Bucket: this.t.bucket, Key: this.t.key, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.byteLength }));
    this.parts.push({ PartNumber, ETag: res.ETag });
    this.filled = 0;
  }

  /**
   * Copies `size` bytes of the object at `sourceKey` (in `source.bucket`, default this writer's bucket)
   * into the next parts, each between 5 MiB and 5 GiB (before any write); with `source.ifMatch`, every
   * part copy is refused (412) unless the source still has that ETag.
   */
  async copyFrom(sourceKey: string, size: number, source: { bucket?: string; ifMatch?: string; signal?: AbortSignal } = {}): Promise<void> {
    const uploadId = await this.start();
    const count = Math.ceil(size / MAX_COPY_PART);
    const step = Math.ceil(size / count);
    for (let start = 0; start < size; start += step) {
      const end = Math.min(size, start + step) - 1;
      const PartNumber = this.parts.length + 1;
      const res = await this.t.client.send(
        new UploadPartCopyCommand({
          Bucket: this.t.bucket,
          Key: this.t.key,
          UploadId: uploadId,
          PartNumber,
          CopySource: copySource(source.bucket ?? this.t.bucket, sourceKey),
          CopySourceRange: `bytes=${start}-${end}`,
          CopySourceIfMatch: source.ifMatch,
        }),
        { abortSignal: source.signal },
      );
      this.parts.push({ PartNumber, ETag: res.CopyPartResult?.ETag });
    }
  }
}

/** How much a streamed PUT's body may hold that the connection has not taken yet. */
const STREAM_HIGH_WATER = 1024 * 1024;

/**
 * A writer onto one S3 key whose final size is known: one PutObject whose body streams as the bytes
 * come, so nothing is gathered into parts and the object goes up at the connection's pace (a multipart
 * upload sends one part after another, each only once it is full). The object must still appear only
 * at `commit`, and S3 stores an object once its body is complete: so the last chunk written is held
 * back until `commit` (which the verified writer calls only after checking digest and size), and
 * `cancel` aborts the request short of its announced length, which S3 discards.
 */
export class S3StreamWriter implements BlobWriter {
  size = 0;
  private readonly body: Readable;
  private readonly sent: Promise<void>;
  private readonly abort = new AbortController();
  /** A copy of the latest chunk: sent at the next write, or at commit. */
  private held: Buffer | undefined;
  /** Resolved when the body wants more (after a push that filled it), or when the request ended. */
  private wanted: (() => void) | undefined;
  private failure: Error | undefined;
  private done = false;

  constructor(t: S3Target, private readonly expected: number) {
    this.body = new Readable({ highWaterMark: STREAM_HIGH_WATER, read: () => this.resume() });
    this.sent = t.client
      .send(new PutObjectCommand({ Bucket: t.bucket, Key: t.key, Body: this.body, ContentLength: expected }), { abortSignal: this.abort.signal })
      .then(
        () => undefined,
        (err: Error) => {
          this.failure ??= err;
          this.resume();
          throw err;
        },
      );
    // Observed through `failure` while writing; `commit` and `cancel` await it.
    this.sent.catch(() => {});
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new Error('write after commit or cancel');
    if (this.failure) throw this.failure;
    if (this.size + chunk.byteLength > this.expected) throw new Error(`more bytes than the ${this.expected} announced`);
    if (chunk.byteLength === 0) return;
    // A copy: the caller may reuse the chunk's memory once this resolves, and the body keeps it longer.
    const copy = Buffer.from(chunk);
    this.size += copy.byteLength;
    const previous = this.held;
    this.held = copy;
    if (previous) await this.push(previous);
  }

  async commit(): Promise<void> {
    if (this.done) throw new Error('commit after commit or cancel');
    if (this.size !== this.expected) {
      await this.cancel();
      throw new Error(`${this.size} bytes written of the ${this.expected} announced`);
    }
    this.done = true;
    if (this.held) await this.push(this.held);
    this.held = undefined;
    this.body.push(null);
    await this.sent;
  }

  async cancel(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.held = undefined;
    this.abort.abort(new Error('the write was cancelled'));
    this.body.destroy();
    await this.sent.catch(() => {});
  }

  private async push(bytes: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.body.push(bytes)) return;
    await new Promise<void>((resolve) => (this.wanted = resolve));
    if (this.failure) throw this.failure;
  }

  private resume(): void {
    const wanted = this.wanted;
    this.wanted = undefined;
    wanted?.();
  }
}

/** The `x-amz-copy-source` value of an object: bucket and key, each segment URL-encoded. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
