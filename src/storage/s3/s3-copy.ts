/**
 * A server-side copy of a blob object from one S3 location to another on the same endpoint (buckets or
 * key prefixes may differ): CopyObject up to 5 GiB, a multipart upload of UploadPartCopy parts above.
 * No byte passes through Wharf.
 *
 * Why the copy goes straight onto the final key rather than to a staging key and a verified commit:
 * the key is content addressed, and the source object was verified (digest and size) when it was
 * committed there, so the bytes being copied are the blob's bytes; and a CopyObject, like the
 * completion of a multipart upload, is atomic in S3: a reader of the target key sees no object (or the
 * identical one a concurrent push wrote) until the whole copy is there. A staging key would add a
 * second copy and a delete and check nothing more.
 *
 * What is still checked, without reading the bytes (ETags are not sha256 digests):
 *   - before: the source object has the size the registry recorded for the blob (a HEAD), and the copy
 *     is pinned to that very object by its ETag (x-amz-copy-source-if-match), so a source replaced in
 *     between fails with 412 instead of being copied;
 *   - after: when the source's ETag is the MD5 of its bytes (an object put in one request, as every
 *     blob smaller than a part is), the copy's ETag, as the CopyObject answer gives it, is that same
 *     MD5: the store's own content check, which makes a HEAD of the copy needless; otherwise (a
 *     multipart object's ETag is not a hash of its bytes, or an answer without one) a HEAD of the copy
 *     checks its size. A copy that fails a check is deleted before the error is thrown.
 *
 * A store that answers the copy with 501 / NotImplemented, or refuses it (403: these credentials may
 * not read the source bucket), resolves 'unsupported' with nothing written, so the caller can stream.
 */
import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BlobNotFoundError, StorageUnavailableError } from '../blob-driver.js';
import { isS3NotFound, s3Status } from './s3-errors.js';
import { copySource, MAX_SINGLE_COPY, S3Writer, type S3Target } from './s3-writer.js';

export interface S3Object {
  bucket: string;
  /** The object key in the bucket (the driver's prefix included). */
  key: string;
}

export interface CopyOptions {
  /** The key as the driver knows it, for errors. */
  blobKey: string;
  expected: { size: number };
  /** Objects up to this size take one CopyObject (at most S3's 5 GiB). */
  maxSingleCopy: number;
  signal?: AbortSignal;
}

/** Copies `from` onto `to` inside the store (see the file comment). */
export async function serverSideCopy(client: S3Client, from: S3Object, to: S3Target, opts: CopyOptions): Promise<'copied' | 'unsupported'> {
  const { blobKey, expected, signal } = opts;
  signal?.throwIfAborted();
  let head;
  try {
    head = await client.send(new HeadObjectCommand({ Bucket: from.bucket, Key: from.key }), { abortSignal: signal });
  } catch (err) {
    if (isS3NotFound(err)) throw new BlobNotFoundError(blobKey);
    throw err;
  }
  const size = head.ContentLength ?? 0;
  if (size !== expected.size) throw new Error(`server-side copy of ${blobKey}: the source object is ${size} bytes, expected ${expected.size}`);
  const etag = head.ETag;
  /** The copy's ETag as the CopyObject answer gives it (a multipart copy's is not compared). */
  let copiedEtag: string | undefined;
  try {
    if (size <= Math.min(opts.maxSingleCopy, MAX_SINGLE_COPY)) {
      const res = await client.send(new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: copySource(from.bucket, from.key), CopySourceIfMatch: etag }), { abortSignal: signal });
      copiedEtag = res.CopyObjectResult?.ETag;
    } else {
      const w = await S3Writer.append(to, 0, async () => Buffer.alloc(0));
      try {
        await w.copyFrom(from.key, size, { bucket: from.bucket, ifMatch: etag, signal });
        signal?.throwIfAborted();
      } catch (err) {
        await w.cancel();
        throw err;
      }
      await w.commit();
    }
  } catch (err) {
    if (isUnsupported(err)) return 'unsupported';
    if (isS3NotFound(err)) throw new BlobNotFoundError(blobKey);
    throw err;
  }
  let mismatch: string | undefined;
  if (isContentMd5(etag) && isContentMd5(copiedEtag)) {
    // The answer names the copy's MD5: equal to the source's, the bytes (and so the size) are the same,
    // and a HEAD of the copy would tell nothing more.
    if (unquoted(copiedEtag) !== unquoted(etag)) mismatch = `the copy's ETag ${copiedEtag} differs from the source's ${etag}`;
  } else {
    const copy = await client.send(new HeadObjectCommand({ Bucket: to.bucket, Key: to.key }));
    mismatch =
      copy.ContentLength !== expected.size
        ? `the copy is ${copy.ContentLength} bytes, expected ${expected.size}`
        : isContentMd5(etag) && unquoted(copy.ETag) !== unquoted(etag)
          ? `the copy's ETag ${copy.ETag} differs from the source's ${etag}`
          : undefined;
  }
  if (mismatch) {
    await client.send(new DeleteObjectCommand({ Bucket: to.bucket, Key: to.key }));
    throw new Error(`server-side copy of ${blobKey}: ${mismatch}; the copy was deleted`);
  }
  return 'copied';
}

/** An ETag without the quotes S3 puts around it (headers and XML answers differ in that). */
function unquoted(etag: string | undefined): string | undefined {
  return etag?.replace(/^"|"$/g, '');
}

/** An ETag that is the MD5 of the object's bytes (one request's upload), not a multipart one's `"…-N"`. */
function isContentMd5(etag: string | undefined): boolean {
  return etag !== undefined && /^"?[0-9a-f]{32}"?$/i.test(etag);
}

/** The store does not do this copy: 501 / NotImplemented, or 403 (these credentials may not read the source). */
function isUnsupported(err: unknown): boolean {
  const e = err instanceof StorageUnavailableError && err.cause !== undefined ? err.cause : err;
  const status = s3Status(e);
  const name = (e as { name?: string; Code?: string } | undefined)?.Code ?? (e as { name?: string } | undefined)?.name;
  return status === 501 || status === 403 || name === 'NotImplemented' || name === 'AccessDenied';
}
