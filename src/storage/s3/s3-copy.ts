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
 * A copy up to the single-copy size is one request, the CopyObject, and nothing is asked beforehand.
 * The size comes from the registry's record of the blob, so a HEAD of the source would only compare
 * that record with the object Wharf verified and committed under the same content-addressed key: blob
 * objects are never rewritten (a write commits only verified bytes, and a key's bytes are fixed by its
 * digest), and the store copies the source object as it is, atomically, with no window in which another
 * object could be copied in part. What could make the source differ from its record is storage written
 * behind Wharf's back, which a size check catches only when the size changed, and which the copy
 * spreads no more than a pull serves it. A missing source fails the CopyObject itself (404: not found,
 * nothing written) and the caller copies from another holder. After the copy: an answer whose ETag is
 * the MD5 of the copy's bytes (an object put in one request) is the store's word that it holds a
 * complete object; an answer without one (a source assembled from parts keeps a multipart ETag) leaves
 * the check of the copy's size to a HEAD of it, as before this path was one request.
 *
 * Above the single-copy size the parts are copied in several requests, so the copy is pinned to one
 * source object: a HEAD reads its size (which must be the recorded one) and ETag, every part copy names
 * that ETag (x-amz-copy-source-if-match: a source replaced in between fails with 412 instead of being
 * mixed in), and a HEAD of the completed copy checks its size. A copy that fails a check is deleted
 * before the error is thrown.
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
  /** The blob's size as the registry recorded it (verified when the source was committed). */
  expected: { size: number };
  /** Objects up to this size take one CopyObject (at most S3's 5 GiB). */
  maxSingleCopy: number;
  signal?: AbortSignal;
}

/** Copies `from` onto `to` inside the store (see the file comment). */
export async function serverSideCopy(client: S3Client, from: S3Object, to: S3Target, opts: CopyOptions): Promise<'copied' | 'unsupported'> {
  const { blobKey, expected, signal } = opts;
  signal?.throwIfAborted();
  let copiedEtag: string | undefined;
  try {
    if (expected.size <= Math.min(opts.maxSingleCopy, MAX_SINGLE_COPY)) {
      const res = await client.send(new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: copySource(from.bucket, from.key) }), { abortSignal: signal });
      copiedEtag = res.CopyObjectResult?.ETag;
    } else {
      await multipartCopy(client, from, to, opts);
    }
  } catch (err) {
    if (isUnsupported(err)) return 'unsupported';
    if (isS3NotFound(err)) throw new BlobNotFoundError(blobKey);
    throw err;
  }
  // The answer names the MD5 of a complete object: nothing more to ask (see the file comment).
  if (isContentMd5(copiedEtag)) return 'copied';
  const copy = await client.send(new HeadObjectCommand({ Bucket: to.bucket, Key: to.key }));
  if (copy.ContentLength !== expected.size) {
    await client.send(new DeleteObjectCommand({ Bucket: to.bucket, Key: to.key }));
    throw new Error(`server-side copy of ${blobKey}: the copy is ${copy.ContentLength} bytes, expected ${expected.size}; the copy was deleted`);
  }
  return 'copied';
}

/** A multipart upload of parts copied from one source object, pinned by its ETag (see the file comment). */
async function multipartCopy(client: S3Client, from: S3Object, to: S3Target, opts: CopyOptions): Promise<void> {
  const { blobKey, expected, signal } = opts;
  const head = await client.send(new HeadObjectCommand({ Bucket: from.bucket, Key: from.key }), { abortSignal: signal });
  const size = head.ContentLength ?? 0;
  if (size !== expected.size) throw new Error(`server-side copy of ${blobKey}: the source object is ${size} bytes, expected ${expected.size}`);
  const w = await S3Writer.append(to, 0, async () => Buffer.alloc(0));
  try {
    await w.copyFrom(from.key, size, { bucket: from.bucket, ifMatch: head.ETag, signal });
    signal?.throwIfAborted();
  } catch (err) {
    await w.cancel();
    throw err;
  }
  await w.commit();
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
