import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createGunzip, gunzipSync } from 'node:zlib';
import {
  blobPath,
  buildImage,
  buildMultiArchImage,
  expectedDigestTree,
  KiB,
  largeLayer,
  layoutDigestTree,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  MiB,
  pseudoRandomContent,
  readBlob,
  readIndexJson,
  REF_NAME_ANNOTATION,
  sha256Digest,
  verifyLayoutBlobs,
  type BuildImageOptions,
} from './oci-layout.js';
import { ociRef, skopeoCopy, skopeoInspect, skopeoInspectConfigRaw, skopeoInspectRaw } from './skopeo.js';

const exec = promisify(execFile);

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { maxBuffer: 64 * MiB });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** sha256 and length of the gunzipped blob, streaming. */
async function gunzipDigest(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(createReadStream(path, { highWaterMark: MiB }), createGunzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.length;
    }
  });
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

const deepPath = `${'deeply/nested/'.repeat(9)}file-with-a-long-name.txt`; // > 100 bytes: needs the ustar prefix field

const singleSpec: BuildImageOptions = {
  tag: 'v1',
  seed: 'unit-single',
  layers: [
    {
      files: [
        { path: 'etc/hello.txt', content: 'hello from wharf\n' },
        { path: deepPath, content: 'deep\n' },
        { path: '/usr/bin/app', size: 5000, mode: 0o755 },
      ],
    },
    { files: [{ path: 'data/blob.bin', size: 3 * MiB + 7 }, { path: 'data/empty', content: '' }] },
  ],
};

describe('oci-layout generator', () => {
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'wharf-oci-layout-test-'));
  });

  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes a single-arch layout that skopeo and umoci read, with correct digests and diff_ids', async () => {
    const dir = join(tmp, 'single');
    const img = await buildImage(dir, singleSpec);

    // Blob store: manifest + config + 2 layers, every file named by its sha256.
    assert.equal(await verifyLayoutBlobs(dir), 4);
    assert.equal(img.layers.length, 2);
    assert.equal(sha256Digest(img.manifestBytes), img.manifestDigest);
    assert.deepEqual(await readBlob(dir, img.manifestDigest), img.manifestBytes);
    assert.equal(img.manifestSize, img.manifestBytes.length);

    // index.json and oci-layout.
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const index = await readIndexJson(dir);
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0]!.digest, img.manifestDigest);
    assert.equal(index.manifests[0]!.mediaType, MEDIA_TYPE_OCI_MANIFEST);
    assert.equal(index.manifests[0]!.annotations?.[REF_NAME_ANNOTATION], 'v1');
    assert.deepEqual(await layoutDigestTree(dir, 'v1'), expectedDigestTree(img));

    // Layers: the gunzipped blob hashes to the diff_id given in the config.
    for (const layer of img.layers) {
      const blob = await readFile(blobPath(dir, layer.digest));
      assert.equal(blob.length, layer.size);
      const tar = gunzipSync(blob);
      assert.equal(tar.length, layer.uncompressedSize);
      assert.equal(tar.length % 512, 0);
      assert.equal(sha256Digest(tar), layer.diffId);
      assert.ok(tar.subarray(tar.length - 1024).every((b) => b === 0), 'tar ends with two zero blocks');
    }

    // GNU tar reads the archives: entries, sizes, modes, the long path.
    const listing0 = await run('tar', ['--numeric-owner', '-tvzf', blobPath(dir, img.layers[0]!.digest)]);
    assert.match(listing0, /^-rw-r--r-- 0\/0 +17 .* etc\/hello\.txt$/m);
    assert.match(listing0, /^-rwxr-xr-x 0\/0 +5000 .* usr\/bin\/app$/m);
    assert.match(listing0, /^drwxr-xr-x 0\/0 +0 .* etc\/$/m);
    assert.ok(listing0.split('\n').some((l) => l.endsWith(` ${deepPath}`)), `long path listed:\n${listing0}`);
    const listing1 = await run('tar', ['--numeric-owner', '-tvzf', blobPath(dir, img.layers[1]!.digest)]);
    assert.match(listing1, new RegExp(`^-rw-r--r-- 0/0 +${3 * MiB + 7} .* data/blob\\.bin$`, 'm'));
    assert.match(listing1, /^-rw-r--r-- 0\/0 +0 .* data\/empty$/m);

    // skopeo: inspect, raw manifest, raw config.
    const inspected = await skopeoInspect(ociRef(dir, 'v1'));
    assert.equal(inspected.Digest, img.manifestDigest);
    assert.deepEqual(inspected.Layers, img.layers.map((l) => l.digest));
    assert.equal(inspected.Architecture, 'amd64');
    assert.equal(inspected.Os, 'linux');
    assert.equal(inspected.Labels?.['org.wharf.test.seed'], 'unit-single');
    assert.equal(sha256Digest(await skopeoInspectRaw(ociRef(dir, 'v1'))), img.manifestDigest);
    const configBytes = await skopeoInspectConfigRaw(ociRef(dir, 'v1'));
    assert.equal(sha256Digest(configBytes), img.configDigest);
    const config = JSON.parse(configBytes.toString('utf8')) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(config.rootfs.diff_ids, img.layers.map((l) => l.diffId));

    // umoci accepts the layout and lists the tag.
    assert.deepEqual((await run('umoci', ['ls', '--layout', dir])).trim().split('\n'), ['v1']);

    // skopeo copy to dir: keeps every digest.
    const out = join(tmp, 'single-dir');
    const copied = await skopeoCopy(ociRef(dir, 'v1'), `dir:${out}`, { preserveDigests: true });
    assert.equal(copied.digest, img.manifestDigest);
    assert.equal(sha256Digest(await readFile(join(out, 'manifest.json'))), img.manifestDigest);
    const dirFiles = await readdir(out);
    for (const d of [img.configDigest, ...img.layers.map((l) => l.digest)]) {
      assert.ok(dirFiles.includes(d.slice('sha256:'.length)), `dir: copy holds ${d}`);
    }

    // umoci unpack: the files come out with the generated content.
    const bundle = join(tmp, 'single-bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${dir}:v1`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    assert.equal(await readFile(join(rootfs, 'etc/hello.txt'), 'utf8'), 'hello from wharf\n');
    assert.equal(await readFile(join(rootfs, deepPath), 'utf8'), 'deep\n');
    assert.deepEqual(await readFile(join(rootfs, 'usr/bin/app')), pseudoRandomContent('unit-single', 0, 'usr/bin/app', 5000));
    assert.equal((await stat(join(rootfs, 'usr/bin/app'))).mode & 0o777, 0o755);
    assert.deepEqual(await readFile(join(rootfs, 'data/blob.bin')), pseudoRandomContent('unit-single', 1, 'data/blob.bin', 3 * MiB + 7));
    assert.equal((await stat(join(rootfs, 'data/empty'))).size, 0);
  });

  it('is deterministic for a seed and changes with the seed', async () => {
    const a = await buildImage(join(tmp, 'det-a'), singleSpec);
    const b = await buildImage(join(tmp, 'det-b'), singleSpec);
    assert.deepEqual(expectedDigestTree(a), expectedDigestTree(b));
    assert.deepEqual(a.layers, b.layers);

    const c = await buildImage(join(tmp, 'det-c'), { ...singleSpec, seed: 'another-seed' });
    assert.notEqual(c.manifestDigest, a.manifestDigest);
    assert.notEqual(c.configDigest, a.configDigest);
    // Both layers hold `size` files, whose pseudo-random content depends on the seed.
    assert.notEqual(c.layers[0]!.digest, a.layers[0]!.digest);
    assert.notEqual(c.layers[1]!.digest, a.layers[1]!.digest);
  });

  it('keeps several tags in one layout and replaces a re-built tag', async () => {
    const dir = join(tmp, 'tags');
    const one = await buildImage(dir, { tag: 'one', seed: 's1', layers: [{ files: [{ path: 'a', content: '1' }] }] });
    const two = await buildImage(dir, { tag: 'two', seed: 's2', layers: [{ files: [{ path: 'a', content: '2' }] }] });
    const twoAgain = await buildImage(dir, { tag: 'two', seed: 's3', layers: [{ files: [{ path: 'a', content: '3' }] }] });
    assert.notEqual(two.manifestDigest, twoAgain.manifestDigest);
    const refs = (await readIndexJson(dir)).manifests.map((d) => [d.annotations?.[REF_NAME_ANNOTATION], d.digest]);
    assert.deepEqual(refs, [
      ['one', one.manifestDigest],
      ['two', twoAgain.manifestDigest],
    ]);
    assert.deepEqual((await run('umoci', ['ls', '--layout', dir])).trim().split('\n').sort(), ['one', 'two']);
    assert.equal((await skopeoInspect(ociRef(dir, 'one'))).Digest, one.manifestDigest);
    assert.equal((await skopeoInspect(ociRef(dir, 'two'))).Digest, twoAgain.manifestDigest);
  });

  it('writes a multi-arch index whose children skopeo resolves and copies unchanged', async () => {
    const dir = join(tmp, 'multi');
    const platforms = ['linux/amd64', 'linux/arm64', 'linux/arm/v7'];
    const multi = await buildMultiArchImage(dir, { tag: 'multi', platforms, seed: 'unit-multi' });

    assert.equal(multi.images.length, 3);
    assert.equal(sha256Digest(multi.indexBytes), multi.indexDigest);
    // One shared base layer + one config, one manifest and one own layer per platform + the index.
    assert.equal(await verifyLayoutBlobs(dir), 1 + 3 * 3 + 1);
    const baseLayers = new Set(multi.images.map((i) => i.layers[0]!.digest));
    assert.equal(baseLayers.size, 1, 'base layer is shared');
    assert.equal(new Set(multi.images.map((i) => i.layers[1]!.digest)).size, 3, 'platform layers differ');

    const index = await readIndexJson(dir);
    assert.equal(index.manifests.length, 1, 'only the index is tagged');
    assert.equal(index.manifests[0]!.mediaType, MEDIA_TYPE_OCI_INDEX);
    assert.equal(index.manifests[0]!.digest, multi.indexDigest);

    const raw = await skopeoInspectRaw(ociRef(dir, 'multi'));
    assert.equal(sha256Digest(raw), multi.indexDigest);
    const parsed = JSON.parse(raw.toString('utf8')) as {
      mediaType: string;
      manifests: { digest: string; platform: { architecture: string; variant?: string } }[];
    };
    assert.equal(parsed.mediaType, MEDIA_TYPE_OCI_INDEX);
    assert.deepEqual(
      parsed.manifests.map((m) => [m.digest, m.platform.architecture, m.platform.variant]),
      multi.images.map((i) => [i.manifestDigest, i.platform.architecture, i.platform.variant]),
    );

    for (const img of multi.images) {
      const globalArgs = ['--override-arch', img.platform.architecture, ...(img.platform.variant ? ['--override-variant', img.platform.variant] : [])];
      const info = await skopeoInspect(ociRef(dir, 'multi'), { globalArgs });
      assert.equal(info.Architecture, img.platform.architecture);
      assert.deepEqual(info.Layers, img.layers.map((l) => l.digest));
      assert.equal(info.Labels?.['org.wharf.test.platform'], platforms[multi.images.indexOf(img)]);
    }

    assert.deepEqual((await run('umoci', ['ls', '--layout', dir])).trim().split('\n'), ['multi']);

    const out = join(tmp, 'multi-copy');
    const copied = await skopeoCopy(ociRef(dir, 'multi'), ociRef(out, 'copied'), { all: true, preserveDigests: true });
    assert.equal(copied.digest, multi.indexDigest);
    assert.deepEqual(await layoutDigestTree(out, 'copied'), expectedDigestTree(multi));
    assert.equal(await verifyLayoutBlobs(out), 1 + 3 * 3 + 1);
  });

  it('streams a 120 MiB incompressible layer (time and memory reported as diagnostics)', async (t) => {
    const dir = join(tmp, 'large');
    const size = 120 * MiB;
    const rssBefore = process.memoryUsage.rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 10);
    const started = performance.now();
    let img;
    try {
      img = await buildImage(dir, { tag: 'large', seed: 'unit-large', layers: [largeLayer(size), { files: [{ path: 'etc/x', content: 'x' }] }] });
    } finally {
      clearInterval(sampler);
    }
    const ms = performance.now() - started;
    const growthMiB = (rssPeak - rssBefore) / MiB;
    t.diagnostic(`120 MiB layer generated in ${Math.round(ms)} ms, peak RSS growth ${growthMiB.toFixed(1)} MiB`);

    const big = img.layers[0]!;
    assert.ok(big.size >= size, `compressed size ${big.size}: content must be incompressible`);
    assert.ok(big.size > 100 * MiB);
    // header blocks for data/ and data/large.bin, the content, two zero blocks
    assert.equal(big.uncompressedSize, 512 + 512 + size + 1024);
    assert.equal((await stat(blobPath(dir, big.digest))).size, big.size);
    assert.deepEqual(await gunzipDigest(blobPath(dir, big.digest)), { digest: big.diffId, size: big.uncompressedSize });
    assert.equal(await verifyLayoutBlobs(dir), 4);

    const info = await skopeoInspect(ociRef(dir, 'large'));
    assert.equal(info.Digest, img.manifestDigest);
    assert.deepEqual(info.Layers, img.layers.map((l) => l.digest));
    const raw = await skopeoInspectRaw(ociRef(dir, 'large'));
    assert.equal(sha256Digest(raw), img.manifestDigest);
    const manifest = JSON.parse(raw.toString('utf8')) as { layers: { digest: string; size: number }[] };
    assert.deepEqual(manifest.layers.map((l) => [l.digest, l.size]), img.layers.map((l) => [l.digest, l.size]));
  });

  it('rejects bad specs', async () => {
    const dir = join(tmp, 'bad');
    await assert.rejects(buildImage(dir, { tag: 't', layers: [{ files: [{ path: 'a' }] }] }), /give content or size/);
    await assert.rejects(buildImage(dir, { tag: 't', layers: [{ files: [{ path: '../x', content: '' }] }] }), /bad file path/);
    await assert.rejects(
      buildImage(dir, { tag: 't', layers: [{ files: [{ path: 'a', content: '' }, { path: '/a', size: 1 * KiB }] }] }),
      /duplicate path/,
    );
    await assert.rejects(buildMultiArchImage(dir, { tag: 't', platforms: ['linux'] }), /bad platform/);
    // A failed layer leaves no temp files behind.
    assert.deepEqual((await readdir(join(dir, 'blobs', 'sha256'))).filter((n) => n.startsWith('.')), []);
  });
});
