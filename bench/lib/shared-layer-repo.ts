/**
 * A repository of many tags that share layers, pushed straight through the OCI API (no client, no
 * build): `baseLayers` random layers shared by every tag, plus one small random layer of its own per
 * tag, a config and an OCI image manifest per tag.
 *
 * Layers are gzip streams of random bytes written at level 0 (stored blocks): valid gzip, so a client
 * such as skopeo takes them as already compressed and copies them unchanged, yet as cheap to make as
 * the random bytes themselves. The config's diff_ids are the digests of the uncompressed bytes, as a
 * real image's are (the bytes are not a tar archive; no registry or copier here looks inside).
 */
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pushBlobBytes, putManifest, sha256 } from './content.js';
import { MiB } from './measure.js';

export interface SharedLayerRepoShape {
  tags: number;
  baseLayers: number;
  /** Size of each shared layer (uncompressed, about the same compressed). */
  baseMiB: number;
  /** Size of each tag's own layer. */
  uniqueKiB: number;
  /** Tags pushed at the same time. */
  concurrency?: number;
}

export interface SharedLayerRepo {
  repo: string;
  /** tag → manifest digest, in push order (`t000`, `t001`, …). */
  manifests: Map<string, string>;
  /** Distinct blobs (layers and configs) and their total size. */
  blobs: number;
  bytes: number;
  /** The shared layers' total size. */
  sharedBytes: number;
}

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

function gzipLayer(raw: Buffer): { bytes: Buffer; digest: string; diffId: string } {
  const bytes = gzipSync(raw, { level: 0 });
  return { bytes, digest: sha256(bytes), diffId: `sha256:${createHash('sha256').update(raw).digest('hex')}` };
}

/** The tag names, `t000` … (zero-padded so that they sort in push order). */
export const tagName = (i: number) => `t${String(i).padStart(3, '0')}`;

/** Pushes the repository `repo` of `shape` to the registry at `base` (open, or with `auth`). */
export async function pushSharedLayerRepo(base: string, repo: string, shape: SharedLayerRepoShape, auth?: string): Promise<SharedLayerRepo> {
  const shared = Array.from({ length: shape.baseLayers }, () => gzipLayer(randomBytes(shape.baseMiB * MiB)));
  for (const layer of shared) await pushBlobBytes(base, repo, auth, layer.bytes, layer.digest);
  const sharedBytes = shared.reduce((s, l) => s + l.bytes.byteLength, 0);
  const manifests = new Map<string, string>();
  let bytes = sharedBytes;
  let next = 0;
  const pushTag = async (i: number) => {
    const tag = tagName(i);
    const own = gzipLayer(randomBytes(shape.uniqueKiB * 1024));
    const layers = [...shared, own];
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Labels: { 'org.opencontainers.image.version': tag } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      }),
    );
    const configDigest = sha256(config);
    await pushBlobBytes(base, repo, auth, own.bytes, own.digest);
    await pushBlobBytes(base, repo, auth, config, configDigest);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
        layers: layers.map((l) => ({ mediaType: LAYER, digest: l.digest, size: l.bytes.byteLength })),
      }),
    );
    const digest = sha256(manifest);
    await putManifest(base, repo, tag, auth, manifest, digest);
    bytes += own.bytes.byteLength + config.byteLength;
    return [tag, digest] as const;
  };
  const results: Array<readonly [string, string]> = [];
  const worker = async () => {
    for (let i = next++; i < shape.tags; i = next++) results[i] = await pushTag(i);
  };
  await Promise.all(Array.from({ length: Math.max(1, shape.concurrency ?? 4) }, worker));
  for (const [tag, digest] of results) manifests.set(tag, digest);
  return { repo, manifests, blobs: shape.baseLayers + 2 * shape.tags, bytes, sharedBytes };
}
