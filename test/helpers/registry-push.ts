/**
 * Pushes small images to any registry over HTTP (monolithic uploads), for tests that need content in
 * an upstream: Distribution, or a listening Wharf with open auth or Basic credentials.
 */
import { randomBytes } from 'node:crypto';
import { fetchBody, sha256 } from './e2e-utils.js';
import { MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST } from './oci-layout.js';

export interface PushedImage {
  digest: string;
  manifest: Buffer;
  config: { digest: string; bytes: Buffer };
  layers: Array<{ digest: string; bytes: Buffer }>;
}

export interface PushOptions {
  /** `user:password` for Basic auth. */
  basic?: string;
}

function headers(opts: PushOptions, extra: Record<string, string> = {}): Record<string, string> {
  return opts.basic ? { authorization: `Basic ${Buffer.from(opts.basic).toString('base64')}`, ...extra } : extra;
}

export async function pushBlobTo(baseUrl: string, name: string, bytes: Buffer, opts: PushOptions = {}): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${baseUrl}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: headers(opts) });
  if (start.status !== 202) throw new Error(`upload start ${name}: ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location')!, baseUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: fetchBody(bytes), headers: headers(opts, { 'content-type': 'application/octet-stream' }) });
  if (put.status !== 201) throw new Error(`upload ${name} ${digest}: ${put.status} ${await put.text()}`);
  return digest;
}

export async function putManifestTo(baseUrl: string, name: string, ref: string, bytes: Buffer, mediaType: string, opts: PushOptions = {}): Promise<string> {
  const res = await fetch(`${baseUrl}/v2/${name}/manifests/${ref}`, { method: 'PUT', body: fetchBody(bytes), headers: headers(opts, { 'content-type': mediaType }) });
  if (res.status !== 201) throw new Error(`manifest ${name}:${ref}: ${res.status} ${await res.text()}`);
  return sha256(bytes);
}

/** An image of `layerSizes` random layers (default one of 64 KiB), tagged `tag`. */
export async function pushRandomImage(baseUrl: string, name: string, tag: string, opts: PushOptions & { layerSizes?: number[]; platform?: { os: string; architecture: string } } = {}): Promise<PushedImage> {
  const layers = (opts.layerSizes ?? [64 * 1024]).map((n) => {
    const bytes = randomBytes(n);
    return { digest: sha256(bytes), bytes };
  });
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const configBytes = Buffer.from(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, nonce: randomBytes(8).toString('hex') }));
  const config = { digest: sha256(configBytes), bytes: configBytes };
  for (const l of layers) await pushBlobTo(baseUrl, name, l.bytes, opts);
  await pushBlobTo(baseUrl, name, configBytes, opts);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: config.digest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, digest: l.digest, size: l.bytes.length })),
    }),
  );
  const digest = await putManifestTo(baseUrl, name, tag, manifest, MEDIA_TYPE_OCI_MANIFEST, opts);
  return { digest, manifest, config, layers };
}

/** A multi-arch index over one random image per platform, tagged `tag`. */
export async function pushRandomIndex(
  baseUrl: string,
  name: string,
  tag: string,
  platforms: Array<{ os: string; architecture: string }>,
  opts: PushOptions & { layerSizes?: number[] } = {},
): Promise<{ digest: string; index: Buffer; images: PushedImage[] }> {
  const images: PushedImage[] = [];
  for (const p of platforms) {
    const img = await pushRandomImage(baseUrl, name, `${tag}-${p.architecture}`, { ...opts, platform: p });
    images.push(img);
  }
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_INDEX,
      manifests: images.map((img, i) => ({ mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: img.digest, size: img.manifest.length, platform: platforms[i] })),
    }),
  );
  const digest = await putManifestTo(baseUrl, name, tag, index, MEDIA_TYPE_OCI_INDEX, opts);
  return { digest, index, images };
}
