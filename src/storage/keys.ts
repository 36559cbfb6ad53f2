/**
 * Where Wharf puts bytes in a storage driver's key space:
 *
 *   blobs/
 *     sha256/ab/abcdef0123…          one object per verified blob, named by its digest
 *     sha512/0f/0fa1…
 *   uploads/
 *     <upload-id>                    bytes of an upload in progress; never served
 *   tmp/
 *     <random>                       single-request writes before they are verified
 *
 * A blob key is written only by a move from uploads/ or tmp/ after digest and size were verified.
 */
import { digestAlgorithm, digestHex, type Digest } from '../oci/digest.js';

export function blobKey(digest: Digest): string {
  const hex = digestHex(digest);
  return `blobs/${digestAlgorithm(digest)}/${hex.slice(0, 2)}/${hex}`;
}

export function uploadKey(uploadId: string): string {
  return `uploads/${uploadId}`;
}
