/**
 * Where Wharf puts bytes in a storage driver's key space:
 *
 *   blobs/
 *     sha256/ab/abcdef0123…          one object per verified blob, named by its digest
 *     sha512/0f/0fa1…
 *   uploads/
 *     <upload-id>                    bytes of an upload in progress; never served
 *   _wharf/
 *     location.json                  the location's identity marker (location-marker.ts); outside the
 *                                    blob and upload key spaces, so listings of those never see it
 *
 * A blob key is written only by a move from uploads/ after the digest was verified, or by a writer
 * committed after verification (drivers stage uncommitted writes outside the key space, e.g. the
 * filesystem driver's `.tmp/`).
 */
import { digestAlgorithm, digestHex, parseDigest, type Digest } from '../oci/digest.js';

/** The prefix of every blob key (a `list` of it yields them all). */
export const BLOBS_PREFIX = 'blobs/';

export function blobKey(digest: Digest): string {
  const hex = digestHex(digest);
  return `blobs/${digestAlgorithm(digest)}/${hex.slice(0, 2)}/${hex}`;
}

/** The digest whose blob key `key` is; undefined for any other key. */
export function blobKeyDigest(key: string): Digest | undefined {
  const m = /^blobs\/([a-z0-9]+)\/[0-9a-f]{2}\/([0-9a-f]+)$/.exec(key);
  const parsed = m ? parseDigest(`${m[1]}:${m[2]}`) : undefined;
  return parsed?.ok && blobKey(parsed.digest) === key ? parsed.digest : undefined;
}

/** The key of a location's identity marker (location-marker.ts). */
export const LOCATION_MARKER_KEY = '_wharf/location.json';

export function uploadKey(uploadId: string): string {
  return `uploads/${uploadId}`;
}
