/**
 * A push load: `pushers` clients in this process (fetch) push images at the same time, each its own
 * list one image after the other, as a client pushes: for every blob a HEAD (absent), then the upload,
 * monolithic (POST, PUT ?digest= with the bytes) or chunked (POST, PATCH per chunk with Content-Range,
 * PUT ?digest=), then the manifest PUT. Every layer is new random bytes, so nothing is deduplicated;
 * the images are built before the run and the same shape (sizes, upload kinds) goes to every server.
 */
import { randomFillSync } from 'node:crypto';
import { blobExists, pushBlobBytes, pushBlobChunked, putManifest, sha256 } from './content.js';
import type { LoadOptions, LoadTarget } from './load.js';
import { MiB, Probe, run, waitForQuiet, type PhaseCpu } from './measure.js';

export interface PushBlob {
  bytes: Buffer;
  digest: string;
  chunked: boolean;
}

export interface PushImage {
  repo: string;
  tag: string;
  /** The config first, then the layers. */
  blobs: PushBlob[];
  manifest: Buffer;
  manifestDigest: string;
  /** Bytes sent: blobs and manifest. */
  bytes: number;
}

export interface PushShape {
  pushers: number;
  imagesPerPusher: number;
  layersPerImage: number;
  /** Layer sizes cycle through minMiB..maxMiB whole MiB over pushers, images and layers. */
  minMiB: number;
  maxMiB: number;
}

/** The random bytes layers are cut from; every layer gets its own random head, hence its own digest. */
const POOL_BYTES = 16 * MiB;
let pool: Buffer | undefined;

function layer(size: number): Buffer {
  pool ??= randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
  const head = 64;
  const b = Buffer.allocUnsafe(size);
  randomFillSync(b, 0, head);
  const from = Math.floor(Math.random() * (POOL_BYTES - size));
  pool.copy(b, head, from, from + size - head);
  return b;
}

/**
 * `shape.pushers` lists of `shape.imagesPerPusher` new images, pusher i's into `repo(i)`, tagged
 * `<tagPrefix>-<n>`. Layer k of image j is chunked when j + k is odd (half the layers); configs go
 * monolithic.
 */
export function makePushSet(shape: PushShape, repo: (pusher: number) => string, tagPrefix: string): PushImage[][] {
  const sizes = shape.maxMiB - shape.minMiB + 1;
  return Array.from({ length: shape.pushers }, (_, i) =>
    Array.from({ length: shape.imagesPerPusher }, (_, j) => {
      const layers = Array.from({ length: shape.layersPerImage }, (_, k) => {
        const bytes = layer((shape.minMiB + ((i + j + k) % sizes)) * MiB);
        return { bytes, digest: sha256(bytes), chunked: (j + k) % 2 === 1 };
      });
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
      const configDigest = sha256(config);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
          layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.bytes.byteLength })),
        }),
      );
      const blobs = [{ bytes: config, digest: configDigest, chunked: false }, ...layers];
      return {
        repo: repo(i),
        tag: `${tagPrefix}-${j}`,
        blobs,
        manifest,
        manifestDigest: sha256(manifest),
        bytes: blobs.reduce((a, b) => a + b.bytes.byteLength, manifest.byteLength),
      };
    }),
  );
}

/** Pushes one image: per blob HEAD then upload, then the manifest. */
export async function pushOne(base: string, auth: string | undefined, img: PushImage, chunkBytes: number): Promise<void> {
  for (const b of img.blobs) {
    if (await blobExists(base, img.repo, auth, b.digest)) throw new Error(`${base}: ${img.repo} has ${b.digest} before it was pushed`);
    if (b.chunked) await pushBlobChunked(base, img.repo, auth, b.bytes, b.digest, chunkBytes);
    else await pushBlobBytes(base, img.repo, auth, b.bytes, b.digest);
  }
  await putManifest(base, img.repo, img.tag, auth, img.manifest, img.manifestDigest);
}

export interface PushRun {
  pushesPerSec: number;
  mibPerSec: number;
  pushes: number;
  bytes: number;
  seconds: number;
  /** Server CPU seconds per GiB received: robust against other load, unlike throughput. */
  serverCpuPerGiB: number;
  /** Per image, from its first HEAD to the manifest's 201. */
  p50ms: number;
  p99ms: number;
  peakRssMiB: number;
  cpu: PhaseCpu;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)] ?? NaN;
};

/**
 * Pushes `set` into `t.url`, all lists at once; throughput = images (bytes) / wall time until the last
 * manifest PUT. Dirty pages of earlier runs are flushed first (`sync`) so that their writeback does not
 * land in this run. Any failed request fails the run.
 */
export async function pushRun(t: LoadTarget, set: PushImage[][], chunkBytes: number, opts: LoadOptions): Promise<PushRun> {
  await run('sync', []);
  await waitForQuiet(opts.quietWaitMs);
  const latencies: number[] = [];
  const probe = new Probe(t.pid, opts.rssSampleMs, opts.extraPids);
  probe.start();
  const results = await Promise.allSettled(
    set.map(async (images) => {
      for (const img of images) {
        const t0 = performance.now();
        await pushOne(t.url, t.auth, img, chunkBytes);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  // The clients are this process: the probe counts its CPU itself.
  const { seconds, peakRssMiB, cpu } = probe.stop(0);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw new Error(`push to ${t.label} failed`, { cause: failed.reason });
  const images = set.flat();
  const bytes = images.reduce((a, i) => a + i.bytes, 0);
  return {
    pushesPerSec: images.length / seconds,
    mibPerSec: bytes / MiB / seconds,
    pushes: images.length,
    bytes,
    seconds,
    serverCpuPerGiB: (cpu.serverCores * seconds) / (bytes / 1024 ** 3),
    p50ms: percentile(latencies, 0.5),
    p99ms: percentile(latencies, 0.99),
    peakRssMiB,
    cpu,
  };
}
