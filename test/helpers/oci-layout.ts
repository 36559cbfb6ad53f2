/**
 * Generator (and small reader) of OCI image layouts on disk — the layout the `oci:` transport of
 * skopeo and `umoci` read: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
 *
 * Layers are ustar archives written by hand (512-byte header blocks with checksum, content padded
 * to 512 bytes, two zero blocks at the end), streamed through gzip and hashed on the way: the
 * uncompressed stream gives the config's diff_id, the compressed stream the blob digest. File
 * content given by `size` is pseudo-random (AES-256-CTR keystream keyed by the seed, the layer
 * index and the path), so it is incompressible, deterministic for a given seed, and never held in
 * memory as a whole: a 120 MiB layer takes a couple of seconds and a few MiB of memory.
 *
 * Everything is deterministic: the same options give the same digests.
 */
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export const KiB = 1024;
export const MiB = 1024 * 1024;

export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** A regular file in a layer: either literal `content` or `size` bytes of seeded pseudo-random data. */
export interface FileSpec {
  /** Path inside the image, e.g. `etc/hello.txt` (a leading `/` is ignored). */
  path: string;
  content?: string | Uint8Array;
  size?: number;
  /** Permission bits, default 0o644. */
  mode?: number;
}

export interface LayerSpec {
  files: FileSpec[];
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface BuildImageOptions {
  /** Written as `org.opencontainers.image.ref.name` in index.json. */
  tag: string;
  layers: LayerSpec[];
  /** Default linux/amd64. */
  platform?: Platform;
  /** Makes the pseudo-random content (and a config label) differ between images; default "wharf". */
  seed?: string;
  /** Extra config labels. */
  labels?: Record<string, string>;
  /** gzip level of the layers, default 1. */
  gzipLevel?: number;
}

export interface LayerInfo {
  /** Digest of the compressed blob, as in the manifest. */
  digest: string;
  /** Digest of the uncompressed tar, as in the config's rootfs.diff_ids. */
  diffId: string;
  /** Size of the compressed blob. */
  size: number;
  /** Size of the uncompressed tar. */
  uncompressedSize: number;
  mediaType: string;
}

export interface BuiltImage {
  tag: string | undefined;
  platform: Platform;
  manifestDigest: string;
  manifestSize: number;
  manifestMediaType: string;
  /** The exact manifest bytes written to the blob store. */
  manifestBytes: Buffer;
  configDigest: string;
  configSize: number;
  layers: LayerInfo[];
  /** Descriptor of the manifest (with platform), as an index would list it. */
  descriptor: Descriptor;
}

export interface BuildMultiArchOptions {
  tag: string;
  /** e.g. ['linux/amd64', 'linux/arm64', 'linux/arm/v7'] */
  platforms: string[];
  seed?: string;
  /**
   * Layers of each platform's image. By default every image gets a base layer shared by all platforms
   * (identical bytes, so one blob) and a small platform-specific layer.
   */
  layersFor?: (platform: Platform, index: number) => LayerSpec[];
  gzipLevel?: number;
}

export interface BuiltMultiArchImage {
  tag: string;
  indexDigest: string;
  indexSize: number;
  indexMediaType: string;
  /** The exact index bytes written to the blob store. */
  indexBytes: Buffer;
  images: BuiltImage[];
}

// ---------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------

/** Builds a single-platform image into the layout at `dir` (created or extended) and tags it. */
export async function buildImage(dir: string, opts: BuildImageOptions): Promise<BuiltImage> {
  await initLayout(dir);
  const image = await writeImage(dir, opts, opts.tag);
  await addToIndex(dir, { ...image.descriptor, platform: image.platform }, opts.tag);
  return image;
}

/** Builds one image per platform plus an OCI image index referencing them; only the index is tagged. */
export async function buildMultiArchImage(dir: string, opts: BuildMultiArchOptions): Promise<BuiltMultiArchImage> {
  if (opts.platforms.length === 0) throw new Error('buildMultiArchImage: no platforms');
  await initLayout(dir);
  const seed = opts.seed ?? 'wharf';
  const layersFor =
    opts.layersFor ??
    ((p: Platform, i: number): LayerSpec[] => [
      { files: [{ path: 'usr/share/wharf/base.bin', size: 64 * KiB }, { path: 'etc/os-release', content: 'NAME=wharf-test\n' }] },
      {
        files: [
          { path: 'etc/wharf-platform', content: `${formatPlatform(p)}\n` },
          { path: 'usr/bin/app', size: 16 * KiB + i * 512, mode: 0o755 },
        ],
      },
    ]);
  const images: BuiltImage[] = [];
  for (const [i, spec] of opts.platforms.entries()) {
    const platform = parsePlatform(spec);
    const layers = layersFor(platform, i);
    // The layer seed must not depend on the platform, so that identical layer specs give one shared
    // blob; the platform-specific layer differs by its content. The config label keeps configs apart.
    images.push(
      await writeImage(dir, { tag: opts.tag, layers, platform, seed, gzipLevel: opts.gzipLevel }, undefined),
    );
  }
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_INDEX,
    manifests: images.map((img) => img.descriptor),
    annotations: { 'org.wharf.test.seed': seed },
  };
  const indexBytes = Buffer.from(JSON.stringify(index));
  const indexDigest = await writeBlob(dir, indexBytes);
  await addToIndex(dir, { mediaType: MEDIA_TYPE_OCI_INDEX, digest: indexDigest, size: indexBytes.length }, opts.tag);
  return {
    tag: opts.tag,
    indexDigest,
    indexSize: indexBytes.length,
    indexMediaType: MEDIA_TYPE_OCI_INDEX,
    indexBytes,
    images,
  };
}

/** One layer holding a single `sizeBytes` file of incompressible pseudo-random data. */
export function largeLayer(sizeBytes: number, path = 'data/large.bin'): LayerSpec {
  return { files: [{ path, size: sizeBytes }] };
}

/** "linux/arm/v7" → { os: 'linux', architecture: 'arm', variant: 'v7' } */
export function parsePlatform(spec: string): Platform {
  const [os, architecture, variant, ...rest] = spec.split('/');
  if (!os || !architecture || rest.length > 0) throw new Error(`bad platform ${JSON.stringify(spec)}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  try {
    await stat(join(dir, 'index.json'));
  } catch {
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] }));
  }
}

/** Adds `desc` to index.json under `tag`, replacing an older entry with the same tag. */
async function addToIndex(dir: string, desc: Descriptor, tag: string): Promise<void> {
  const index = await readIndexJson(dir);
  const manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
  manifests.push({ ...desc, annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: tag } });
  await writeFile(join(dir, 'index.json'), JSON.stringify({ ...index, manifests }));
}

async function writeImage(dir: string, opts: BuildImageOptions, tag: string | undefined): Promise<BuiltImage> {
  const seed = opts.seed ?? 'wharf';
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const gzipLevel = opts.gzipLevel ?? 1;
  const layers: LayerInfo[] = [];
  for (const [i, layer] of opts.layers.entries()) {
    layers.push(await writeLayer(dir, layer, `${seed}\0layer${i}`, gzipLevel));
  }
  const created = '2024-01-01T00:00:00Z';
  const config = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      Labels: { 'org.wharf.test.seed': seed, 'org.wharf.test.platform': formatPlatform(platform), ...opts.labels },
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created, created_by: `wharf test layer ${i}` })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await writeBlob(dir, configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await writeBlob(dir, manifestBytes);
  return {
    tag,
    platform,
    manifestDigest,
    manifestSize: manifestBytes.length,
    manifestMediaType: MEDIA_TYPE_OCI_MANIFEST,
    manifestBytes,
    configDigest,
    configSize: configBytes.length,
    layers,
    descriptor: { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: manifestDigest, size: manifestBytes.length, platform },
  };
}

async function writeBlob(dir: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  await writeFile(blobPath(dir, digest), data);
  return digest;
}

export function blobPath(dir: string, digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`unsupported digest ${digest}`);
  return join(dir, 'blobs', 'sha256', m[1]!);
}

let tmpCounter = 0;

async function writeLayer(dir: string, layer: LayerSpec, seed: string, gzipLevel: number): Promise<LayerInfo> {
  const tmp = join(dir, 'blobs', 'sha256', `.tmp-${process.pid}-${tmpCounter++}`);
  const diffHash = new HashingPassThrough();
  const blobHash = new HashingPassThrough();
  // Create the file before the pipeline starts, so that the cleanup below cannot run before a lazily
  // opened write stream creates it.
  const out = await open(tmp, 'w');
  try {
    await pipeline(
      tarStream(layer.files, seed),
      diffHash,
      createGzip({ level: gzipLevel, chunkSize: MiB }),
      blobHash,
      out.createWriteStream(),
    );
    const digest = `sha256:${blobHash.hex()}`;
    await rename(tmp, blobPath(dir, digest));
    return {
      digest,
      diffId: `sha256:${diffHash.hex()}`,
      size: blobHash.bytes,
      uncompressedSize: diffHash.bytes,
      mediaType: MEDIA_TYPE_OCI_LAYER_GZIP,
    };
  } catch (err) {
    await out.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}

class HashingPassThrough extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}

// ---------------------------------------------------------------------------------------------
// tar (ustar) writer
// ---------------------------------------------------------------------------------------------

const BLOCK = 512;
const RANDOM_CHUNK = MiB;
const MAX_USTAR_SIZE = 0o77777777777; // 11 octal digits

async function* tarStream(files: FileSpec[], seed: string): AsyncGenerator<Buffer> {
  const seenDirs = new Set<string>();
  const seenFiles = new Set<string>();
  for (const file of files) {
    const path = normalisePath(file.path);
    if (seenFiles.has(path)) throw new Error(`duplicate path ${path} in layer`);
    seenFiles.add(path);
    // Parent directories first, each once, as tar tools write them.
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!seenDirs.has(d)) {
        seenDirs.add(d);
        yield tarHeader({ name: `${d}/`, size: 0, mode: 0o755, type: '5' });
      }
    }
    if (file.content !== undefined) {
      const content = typeof file.content === 'string' ? Buffer.from(file.content) : Buffer.from(file.content);
      if (file.size !== undefined && file.size !== content.length) throw new Error(`${path}: size does not match content`);
      yield tarHeader({ name: path, size: content.length, mode: file.mode ?? 0o644, type: '0' });
      if (content.length > 0) yield content;
      yield padding(content.length);
    } else if (file.size !== undefined) {
      if (!Number.isSafeInteger(file.size) || file.size < 0) throw new Error(`${path}: bad size ${file.size}`);
      yield tarHeader({ name: path, size: file.size, mode: file.mode ?? 0o644, type: '0' });
      yield* pseudoRandom(file.size, `${seed}\0${path}`);
      yield padding(file.size);
    } else {
      throw new Error(`${path}: give content or size`);
    }
  }
  yield Buffer.alloc(2 * BLOCK);
}

/** `size` bytes of AES-256-CTR keystream keyed by sha256(key): incompressible and reproducible. */
function* pseudoRandom(size: number, key: string): Generator<Buffer> {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(key).digest(), Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(size, RANDOM_CHUNK));
  for (let left = size; left > 0; left -= RANDOM_CHUNK) {
    const n = Math.min(left, RANDOM_CHUNK);
    yield cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
  }
}

/** The bytes `pseudoRandom` generates for a `size` file at `path` of layer `layerIndex` built with `seed`. */
export function pseudoRandomContent(seed: string, layerIndex: number, path: string, size: number): Buffer {
  return Buffer.concat([...pseudoRandom(size, `${seed}\0layer${layerIndex}\0${normalisePath(path)}`)]);
}

function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return Buffer.alloc(rem === 0 ? 0 : BLOCK - rem);
}

function normalisePath(p: string): string {
  const n = posix.normalize(p.replace(/^\/+/, ''));
  if (n === '.' || n === '' || n.startsWith('..') || n.endsWith('/')) throw new Error(`bad file path ${JSON.stringify(p)}`);
  return n;
}

interface HeaderFields {
  name: string;
  size: number;
  mode: number;
  type: '0' | '5';
}

function tarHeader(h: HeaderFields): Buffer {
  if (h.size > MAX_USTAR_SIZE) throw new Error(`${h.name}: too large for a ustar header`);
  const block = Buffer.alloc(BLOCK);
  const [prefix, name] = splitName(h.name);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, h.mode);
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  writeOctal(block, 124, 12, h.size);
  writeOctal(block, 136, 12, 0); // mtime
  block.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  block.write(h.type, 156, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  writeString(block, 265, 32, 'root');
  writeString(block, 297, 32, 'root');
  writeOctal(block, 329, 8, 0); // devmajor
  writeOctal(block, 337, 8, 0); // devminor
  writeString(block, 345, 155, prefix);
  let sum = 0;
  for (const b of block) sum += b;
  // Six octal digits, NUL, space — the classic layout.
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

/** Splits a path into ustar prefix (≤155 bytes) and name (≤100 bytes) at a slash. */
function splitName(path: string): [string, string] {
  if (Buffer.byteLength(path) <= 100) return ['', path];
  const trailing = path.endsWith('/') ? '/' : '';
  const bare = trailing ? path.slice(0, -1) : path;
  for (let i = bare.indexOf('/'); i !== -1; i = bare.indexOf('/', i + 1)) {
    const prefix = bare.slice(0, i);
    const name = bare.slice(i + 1) + trailing;
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return [prefix, name];
  }
  throw new Error(`path too long for ustar: ${path}`);
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value);
  if (bytes.length > length) throw new Error(`tar field too long: ${value}`);
  bytes.copy(block, offset);
}

/** Zero-padded octal with a terminating NUL, filling the field. */
function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, 'ascii');
}

// ---------------------------------------------------------------------------------------------
// Reading layouts (to check what skopeo wrote)
// ---------------------------------------------------------------------------------------------

export interface LayoutIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

export async function readIndexJson(dir: string): Promise<LayoutIndex> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as LayoutIndex;
}

/** The descriptor index.json lists for `tag`; throws if there is none. */
export async function resolveTag(dir: string, tag: string): Promise<Descriptor> {
  const index = await readIndexJson(dir);
  const found = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag);
  if (found.length !== 1) throw new Error(`${dir}: ${found.length} index.json entries for tag ${tag}`);
  return found[0]!;
}

export function readBlob(dir: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(dir, digest));
}

/** Digests of everything an image (or index) references, recursively, as read from a layout. */
export interface DigestTree {
  digest: string;
  mediaType: string;
  /** Set for image manifests. */
  config?: string;
  /** Set for image manifests: layer blob digests in order. */
  layers?: string[];
  /** Set for indexes: children in order. */
  manifests?: (DigestTree & { platform?: Platform })[];
}

interface ManifestJson {
  mediaType?: string;
  config?: { digest: string };
  layers?: { digest: string }[];
  manifests?: Descriptor[];
}

/** Reads the digest tree of `tag` from the layout, checking every manifest's bytes against its digest. */
export async function layoutDigestTree(dir: string, tag: string): Promise<DigestTree> {
  const desc = await resolveTag(dir, tag);
  return digestTreeOf(dir, desc.digest, desc.mediaType);
}

async function digestTreeOf(dir: string, digest: string, mediaType: string): Promise<DigestTree> {
  const bytes = await readBlob(dir, digest);
  if (sha256Digest(bytes) !== digest) throw new Error(`${dir}: blob ${digest} does not match its digest`);
  const m = JSON.parse(bytes.toString('utf8')) as ManifestJson;
  if (m.manifests) {
    const children: (DigestTree & { platform?: Platform })[] = [];
    for (const child of m.manifests) {
      const tree = await digestTreeOf(dir, child.digest, child.mediaType);
      children.push(child.platform ? { ...tree, platform: child.platform } : tree);
    }
    return { digest, mediaType, manifests: children };
  }
  if (!m.config || !m.layers) throw new Error(`${dir}: ${digest} is neither a manifest nor an index`);
  return { digest, mediaType, config: m.config.digest, layers: m.layers.map((l) => l.digest) };
}

/** The digest tree a built image should have in any layout or registry it is copied to. */
export function expectedDigestTree(built: BuiltImage | BuiltMultiArchImage): DigestTree {
  if ('indexDigest' in built) {
    return {
      digest: built.indexDigest,
      mediaType: built.indexMediaType,
      manifests: built.images.map((img) => ({ ...expectedDigestTree(img), platform: img.platform })),
    };
  }
  return {
    digest: built.manifestDigest,
    mediaType: built.manifestMediaType,
    config: built.configDigest,
    layers: built.layers.map((l) => l.digest),
  };
}

/** Hashes every blob of the layout (streaming) and returns how many there are; throws on a mismatch. */
export async function verifyLayoutBlobs(dir: string): Promise<number> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  const names = (await readdir(blobsDir)).filter((n) => !n.startsWith('.'));
  for (const name of names) {
    const hash = createHash('sha256');
    await pipeline(createReadStream(join(blobsDir, name), { highWaterMark: MiB }), async function (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) hash.update(chunk);
    });
    const actual = hash.digest('hex');
    if (actual !== name) throw new Error(`${blobsDir}/${name}: content hashes to ${actual}`);
  }
  return names.length;
}
