/**
 * Two storage locations for end-to-end tests of geo-replication through `wharf serve`: a filesystem
 * directory (`fs`) and a fresh prefix of the test run's RADOS Gateway bucket (`s3`, test/helpers/s3.ts).
 *
 *   const geo = await openGeoLocations(work);
 *   env.WHARF_STORAGE_LOCATIONS = geo.locationsEnv()          both locations, as every process gets them
 *   geo.locationsEnv({ s3Endpoint: proxy.url })               the same, reaching RGW through a fault proxy
 *   await geo.held('fs', digests)                             [true, false, …]: a stat per blob key, in
 *                                                             the location itself (not through Wharf)
 *   await geo.bytesOf('s3', digest)                           the bytes under the blob key, or undefined
 *   await replicationStatus(url, 'e2e/app')                   the status API's locations
 *   await geo.cleanup()                                       empties the prefix (the directory is the caller's)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseDigest } from '../../src/oci/digest.js';
import type { BlobDriver } from '../../src/storage/blob-driver.js';
import { FsBlobDriver } from '../../src/storage/fs/fs-blob-driver.js';
import { blobKey } from '../../src/storage/keys.js';
import type { BuiltImage } from './oci-layout.js';
import { openTestS3Driver, testS3Options } from './s3.js';
import { adminFetch } from './wharf-process.js';

export type GeoLocation = 'fs' | 's3';

/** The storage key of a blob. */
export function keyOf(digest: string): string {
  const parsed = parseDigest(digest);
  assert.ok(parsed.ok, digest);
  return blobKey(parsed.digest);
}

/** Whether `driver` holds each digest's blob key (a stat per key). */
export const heldIn = (driver: Pick<BlobDriver, 'stat'>, digests: readonly string[]): Promise<boolean[]> => Promise.all(digests.map(async (d) => (await driver.stat(keyOf(d))) !== undefined));

/** The blobs of an image: its config, then its layers. */
export const blobsOf = (image: BuiltImage): string[] => [image.configDigest, ...image.layers.map((l) => l.digest)];

/** One location in the replication status API (`GET /api/v1/replication/status`). */
export interface LocationView {
  location: string;
  blobs: number;
  bytes: number;
  backlog: number;
  failing: number;
  last_error: string | null;
}

/** The status API's view of each location for `scope` (the whole registry without it), through `url`. */
export async function replicationStatus(url: string, scope?: string): Promise<LocationView[]> {
  const res = await adminFetch(`${url}/api/v1/replication/status${scope ? `?scope=${encodeURIComponent(scope)}` : ''}`);
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { locations: LocationView[] }).locations;
}

export interface GeoLocations {
  /** The `fs` location's directory (`<work>/fs-location`, created by Wharf). */
  fsDir: string;
  /** The `s3` location's key prefix in the test bucket. */
  prefix: string;
  /** Each location's own driver, straight to the directory and to RGW. */
  driver(location: GeoLocation): BlobDriver;
  /** WHARF_STORAGE_LOCATIONS for both locations; `s3Endpoint` replaces RGW's address (a proxy in front of it). */
  locationsEnv(opts?: { s3Endpoint?: string; partSize?: string }): string;
  /** Whether `location` holds each digest's blob key. */
  held(location: GeoLocation, digests: readonly string[]): Promise<boolean[]>;
  /** The bytes `location` holds under the digest's blob key, or undefined. */
  bytesOf(location: GeoLocation, digest: string): Promise<Buffer | undefined>;
  /** Empties the prefix and closes the S3 client. */
  cleanup(): Promise<void>;
}

/** The two locations, with `fs` under `work` and `s3` on a fresh prefix of the test bucket. */
export async function openGeoLocations(work: string): Promise<GeoLocations> {
  const fsDir = join(work, 'fs-location');
  const bucket = await openTestS3Driver();
  const fs = new FsBlobDriver(fsDir);
  const driver = (location: GeoLocation): BlobDriver => (location === 'fs' ? fs : bucket.driver);
  return {
    fsDir,
    prefix: bucket.prefix,
    driver,
    locationsEnv(opts = {}) {
      const o = testS3Options();
      const s3 = { endpoint: opts.s3Endpoint ?? o.endpoint, bucket: o.bucket, region: o.region, access_key_id: o.accessKeyId, secret_access_key: o.secretAccessKey, prefix: bucket.prefix, ...(opts.partSize ? { part_size: opts.partSize } : {}) };
      return JSON.stringify({ fs: { driver: 'filesystem', path: fsDir }, s3: { driver: 's3', s3 } });
    },
    held: (location, digests) => heldIn(driver(location), digests),
    async bytesOf(location, digest) {
      const d = driver(location);
      if (!(await d.stat(keyOf(digest)))) return undefined;
      const chunks: Buffer[] = [];
      for await (const c of await d.reader(keyOf(digest))) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    },
    cleanup: () => bucket.cleanup(),
  };
}
