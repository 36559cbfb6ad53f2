/**
 * What the benchmarks push and pull: large random (incompressible) blobs on disk, an OCI image manifest
 * listing one as a layer, pushes through the OCI API (POST, then PUT ?digest=, the monolithic upload
 * every registry implements; curl streams big blobs from disk; or POST, PATCH per chunk with
 * Content-Range, PUT ?digest=), manifest PUTs, and a verified full pull.
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { MiB, run } from './measure.js';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface BlobFile {
  path: string;
  digest: string;
  size: number;
}

/** Writes `mib` MiB of random bytes to `path`; returns their digest. */
export function makeRandomBlob(path: string, mib: number): BlobFile {
  const fd = openSync(path, 'w');
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(4 * MiB);
  let left = mib * MiB;
  while (left > 0) {
    const part = chunk.subarray(0, Math.min(left, chunk.byteLength));
    randomFillSync(part);
    hash.update(part);
    let off = 0;
    while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    left -= part.byteLength;
  }
  closeSync(fd);
  return { path, digest: `sha256:${hash.digest('hex')}`, size: mib * MiB };
}

export interface Content {
  blobPath: string;
  blobDigest: string;
  blobSize: number;
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
}

/** A random blob of `mib` MiB at `blobPath`, and an OCI image manifest that lists it as a layer. */
export function makeContent(blobPath: string, mib: number): Content {
  const blob = makeRandomBlob(blobPath, mib);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [blob.digest] } }));
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: blob.digest, size: blob.size }],
      annotations: { 'org.opencontainers.image.title': 'wharf benchmark' },
    }),
  );
  return { blobPath, blobDigest: blob.digest, blobSize: blob.size, config, configDigest, manifest, manifestDigest: sha256(manifest) };
}

/** A Uint8Array view of a Buffer's bytes (no copy), as fetch wants a body. */
export const bodyOf = (b: Buffer) => new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);

export const authHeader = (auth: string | undefined): Record<string, string> => (auth ? { Authorization: auth } : {});

async function startUploadLocation(base: string, repo: string, auth: string | undefined): Promise<URL> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'Content-Length': '0', ...authHeader(auth) } });
  await res.arrayBuffer();
  const location = res.headers.get('location');
  if (res.status !== 202 || !location) throw new Error(`POST upload on ${base}: status ${res.status}, Location ${location}`);
  return new URL(location, base);
}

function withDigest(u: URL, digest: string): string {
  const copy = new URL(u);
  copy.searchParams.set('digest', digest);
  return copy.toString();
}

export async function pushBlobBytes(base: string, repo: string, auth: string | undefined, bytes: Buffer, digest: string): Promise<void> {
  const loc = await startUploadLocation(base, repo, auth);
  const res = await fetch(withDigest(loc, digest), { method: 'PUT', body: bodyOf(bytes), headers: { 'Content-Type': 'application/octet-stream', ...authHeader(auth) } });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT blob ${digest} on ${base}: status ${res.status}: ${text.slice(0, 500)}`);
}

/**
 * A chunked upload as the OCI spec describes it: POST, then one `PATCH` per `chunkBytes` with
 * `Content-Range: <start>-<end>`, following the Location of every answer (Distribution puts its upload
 * state there), then `PUT ?digest=` without a body.
 */
export async function pushBlobChunked(base: string, repo: string, auth: string | undefined, bytes: Buffer, digest: string, chunkBytes: number): Promise<void> {
  let loc = await startUploadLocation(base, repo, auth);
  for (let start = 0; start < bytes.byteLength; start += chunkBytes) {
    const chunk = bytes.subarray(start, Math.min(bytes.byteLength, start + chunkBytes));
    const res = await fetch(loc, {
      method: 'PATCH',
      body: bodyOf(chunk),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${start + chunk.byteLength - 1}`, ...authHeader(auth) },
    });
    const text = await res.text();
    const location = res.headers.get('location');
    if (res.status !== 202 || !location) throw new Error(`PATCH blob ${digest} bytes ${start}- on ${base}: status ${res.status}, Location ${location}: ${text.slice(0, 500)}`);
    loc = new URL(location, base);
  }
  const res = await fetch(withDigest(loc, digest), { method: 'PUT', headers: { 'Content-Length': '0', ...authHeader(auth) } });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT blob ${digest} (chunked) on ${base}: status ${res.status}: ${text.slice(0, 500)}`);
}

/**
 * A chunked upload of a blob file, as pushBlobChunked, reading one chunk at a time from the file (one
 * `chunkBytes` buffer per call), so that many large pushes at once cost the client little memory.
 */
export async function pushBlobFileChunked(base: string, repo: string, auth: string | undefined, blob: BlobFile, chunkBytes: number): Promise<void> {
  let loc = await startUploadLocation(base, repo, auth);
  const file = await open(blob.path, 'r');
  const buf = Buffer.allocUnsafe(Math.min(chunkBytes, blob.size));
  try {
    for (let start = 0; start < blob.size; start += chunkBytes) {
      const { bytesRead } = await file.read(buf, 0, Math.min(chunkBytes, blob.size - start), start);
      const res = await fetch(loc, {
        method: 'PATCH',
        body: bodyOf(buf.subarray(0, bytesRead)),
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${start + bytesRead - 1}`, ...authHeader(auth) },
      });
      const text = await res.text();
      const location = res.headers.get('location');
      if (res.status !== 202 || !location) throw new Error(`PATCH blob ${blob.digest} bytes ${start}- on ${base}: status ${res.status}, Location ${location}: ${text.slice(0, 500)}`);
      loc = new URL(location, base);
    }
  } finally {
    await file.close();
  }
  const res = await fetch(withDigest(loc, blob.digest), { method: 'PUT', headers: { 'Content-Length': '0', ...authHeader(auth) } });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT blob ${blob.digest} (chunked) on ${base}: status ${res.status}: ${text.slice(0, 500)}`);
}

/** `HEAD /v2/<repo>/blobs/<digest>`, as a client does before pushing a layer: true when the registry has it. */
export async function blobExists(base: string, repo: string, auth: string | undefined, digest: string): Promise<boolean> {
  const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: authHeader(auth) });
  await res.arrayBuffer();
  if (res.status !== 200 && res.status !== 404) throw new Error(`HEAD blob ${digest} on ${base}: status ${res.status}`);
  return res.status === 200;
}

/** `PUT /v2/<repo>/manifests/<tag>` of an OCI image manifest; checks the Docker-Content-Digest. */
export async function putManifest(base: string, repo: string, tag: string, auth: string | undefined, manifest: Buffer, digest: string): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: bodyOf(manifest),
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', ...authHeader(auth) },
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT manifest ${repo}:${tag} on ${base}: status ${res.status}: ${text.slice(0, 500)}`);
  const got = res.headers.get('docker-content-digest');
  if (got !== digest) throw new Error(`PUT manifest ${repo}:${tag} on ${base}: Docker-Content-Digest ${got}, expected ${digest}`);
}

/** Streams a blob file with curl (`-T` sends Content-Length and never buffers the file). */
export async function pushBlobFile(base: string, repo: string, auth: string | undefined, blob: BlobFile): Promise<void> {
  const loc = await startUploadLocation(base, repo, auth);
  const authArgs = auth ? ['-H', `Authorization: ${auth}`] : [];
  const r = await run('curl', ['-sS', '-X', 'PUT', '-T', blob.path, '-H', 'Content-Type: application/octet-stream', ...authArgs, '-o', '/dev/null', '-w', '%{http_code}', withDigest(loc, blob.digest)]);
  if (r.code !== 0 || r.stdout.trim() !== '201') throw new Error(`PUT big blob on ${base}: curl exit ${r.code}, status ${r.stdout.trim()}: ${r.stderr}`);
}

/** Pushes config, blob and manifest as `repo:tag`; checks the Docker-Content-Digest of the manifest. */
export async function pushImage(base: string, repo: string, tag: string, auth: string | undefined, c: Content): Promise<void> {
  await pushBlobBytes(base, repo, auth, c.config, c.configDigest);
  await pushBlobFile(base, repo, auth, { path: c.blobPath, digest: c.blobDigest, size: c.blobSize });
  await putManifest(base, repo, tag, auth, c.manifest, c.manifestDigest);
}

/** Pulls the manifest `<base>/v2/<repo>/manifests/<ref>` and checks its digest. */
export async function verifyManifest(base: string, repo: string, ref: string, auth: string | undefined, digest: string): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { headers: { Accept: MANIFEST_ACCEPT, ...authHeader(auth) } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200 || sha256(body) !== digest) throw new Error(`GET manifest ${base}/v2/${repo}/manifests/${ref}: status ${res.status}, digest ${sha256(body)}, expected ${digest}`);
}

/**
 * Pulls a whole blob with curl and checks size and sha256 (curl's output hashed here). With `follow`, the
 * server's redirect (to a presigned URL of the object store) is followed, and there must be one.
 */
export async function verifyBlob(url: string, auth: string | undefined, digest: string, size: number, follow = false): Promise<void> {
  const hash = createHash('sha256');
  let got = 0;
  const args = follow ? ['-sS', '--fail', '-L', '-w', '%{stderr}%{num_redirects}'] : ['-sS', '--fail', ...(auth ? ['-H', `Authorization: ${auth}`] : [])];
  const child = spawn('curl', [...args, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    hash.update(d);
    got += d.byteLength;
  });
  const code = await new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const actual = `sha256:${hash.digest('hex')}`;
  if (follow && stderr.trim() !== '1') throw new Error(`full pull of ${url}: ${stderr.trim()} redirects followed, expected 1`);
  if (code !== 0 || got !== size || actual !== digest) {
    throw new Error(`full pull of ${url}: curl exit ${code}, ${got} bytes, digest ${actual}; expected ${size} bytes, ${digest}. ${stderr}`);
  }
}
