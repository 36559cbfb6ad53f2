/**
 * Interoperability with the reference implementation: images travel
 * OCI layout → Distribution (docker-registry 2.8) → Wharf → Distribution → OCI layout
 * with skopeo, and every digest (index, manifests, configs, layers) is compared at every hop.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { startDistribution, type DistributionProcess } from '../helpers/distribution-process.js';
import {
  buildImage,
  buildMultiArchImage,
  expectedDigestTree,
  KiB,
  layoutDigestTree,
  verifyLayoutBlobs,
  type BuiltImage,
  type BuiltMultiArchImage,
  type DigestTree,
} from '../helpers/oci-layout.js';
import {
  digestOf,
  dockerRef,
  dockerRepo,
  ociRef,
  registryDigestTree,
  skopeoCopy,
  skopeoInspect,
  skopeoInspectConfigRaw,
  skopeoInspectRaw,
  skopeoListTags,
  registerCredentials,
} from '../helpers/skopeo.js';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const DOCKER_MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

describe('interop: Distribution ⇄ Wharf via skopeo', () => {
  let wharf: WharfProcess | undefined;
  let dist: DistributionProcess | undefined;
  let work: string;
  let srcDir: string;
  let single: BuiltImage;
  let multi: BuiltMultiArchImage;
  let outCounter = 0;

  const W = (): string => {
    if (!wharf) throw new Error('wharf did not start');
    return wharf.host;
  };
  const D = (): string => {
    if (!dist) throw new Error('docker-registry did not start');
    return dist.host;
  };

  /** Like `it`, but a failure also prints the tail of both registries' output. */
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        if (wharf) t.diagnostic(`wharf output (tail):\n${wharf.output().slice(-4000)}`);
        if (dist) t.diagnostic(`docker-registry output (tail):\n${dist.output().slice(-2000)}`);
        throw err;
      }
    });
  };

  /** One skopeo hop; asserts the digest written and the digest tree now held by the destination. */
  async function hop(
    from: string,
    to: { host: string; repo: string; reference: string },
    expected: DigestTree,
    opts: { all?: boolean } = {},
  ): Promise<void> {
    const res = await skopeoCopy(from, dockerRef(to.host, to.repo, to.reference), { ...opts, preserveDigests: true });
    assert.equal(res.digest, expected.digest, `digest written to ${to.host}/${to.repo}`);
    assert.deepEqual(await registryDigestTree(to.host, to.repo, to.reference), expected, `digest tree at ${to.host}/${to.repo}`);
  }

  async function pullAndCompare(ref: string, expected: DigestTree, opts: { all?: boolean } = {}): Promise<void> {
    const out = join(work, `out-${outCounter++}`);
    const res = await skopeoCopy(ref, ociRef(out, 'pulled'), { ...opts, preserveDigests: true });
    assert.equal(res.digest, expected.digest);
    assert.deepEqual(await layoutDigestTree(out, 'pulled'), expected);
    await verifyLayoutBlobs(out);
    await rm(out, { recursive: true, force: true });
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-interop-'));
    srcDir = join(work, 'src');
    single = await buildImage(srcDir, {
      tag: 'single',
      seed: 'interop-single',
      layers: [
        { files: [{ path: 'etc/os-release', content: 'NAME=wharf-interop\n' }, { path: 'usr/lib/libbase.so', size: 200 * KiB }] },
        { files: [{ path: 'usr/bin/app', size: 64 * KiB, mode: 0o755 }] },
      ],
    });
    multi = await buildMultiArchImage(srcDir, {
      tag: 'multi',
      seed: 'interop-multi',
      platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'linux/ppc64le'],
    });
    [dist, wharf] = await Promise.all([startDistribution(), startWharf()]);
    registerCredentials(wharf.host, wharf.admin);
  });

  after(async () => {
    await Promise.all([wharf?.stop(), dist?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('single-arch image: layout → Distribution → Wharf → Distribution → layout', async () => {
    const expected = expectedDigestTree(single);
    await hop(ociRef(srcDir, 'single'), { host: D(), repo: 'interop/single', reference: 'v1' }, expected);
    await hop(dockerRef(D(), 'interop/single', 'v1'), { host: W(), repo: 'mirror/interop/single', reference: 'v1' }, expected);

    // Wharf serves what Distribution served, byte for byte.
    const fromDist = await skopeoInspectRaw(dockerRef(D(), 'interop/single', 'v1'));
    const fromWharf = await skopeoInspectRaw(dockerRef(W(), 'mirror/interop/single', 'v1'));
    assert.deepEqual(fromWharf, fromDist);
    assert.deepEqual(fromWharf, single.manifestBytes);
    assert.equal(digestOf(await skopeoInspectConfigRaw(dockerRef(W(), 'mirror/interop/single', 'v1'))), single.configDigest);
    const info = await skopeoInspect(dockerRef(W(), 'mirror/interop/single', 'v1'));
    assert.equal(info.Digest, single.manifestDigest);
    assert.deepEqual(info.Layers, single.layers.map((l) => l.digest));
    assert.deepEqual(info.RepoTags, ['v1']);

    await hop(dockerRef(W(), 'mirror/interop/single', 'v1'), { host: D(), repo: 'back/single', reference: 'v1' }, expected);
    await pullAndCompare(dockerRef(D(), 'back/single', 'v1'), expected);
  });

  test('multi-arch index: layout → Distribution → Wharf → Distribution → layout, index and children byte for byte', async () => {
    const expected = expectedDigestTree(multi);
    await hop(ociRef(srcDir, 'multi'), { host: D(), repo: 'interop/multi', reference: 'v1' }, expected, { all: true });
    await hop(dockerRef(D(), 'interop/multi', 'v1'), { host: W(), repo: 'mirror/interop/multi', reference: 'v1' }, expected, { all: true });

    assert.deepEqual(await skopeoInspectRaw(dockerRef(W(), 'mirror/interop/multi', 'v1')), multi.indexBytes);
    for (const img of multi.images) {
      const fromDist = await skopeoInspectRaw(dockerRef(D(), 'interop/multi', img.manifestDigest));
      const fromWharf = await skopeoInspectRaw(dockerRef(W(), 'mirror/interop/multi', img.manifestDigest));
      assert.deepEqual(fromWharf, fromDist, `${img.platform.architecture} manifest`);
      assert.deepEqual(fromWharf, img.manifestBytes);
    }

    await hop(dockerRef(W(), 'mirror/interop/multi', 'v1'), { host: D(), repo: 'back/multi', reference: 'v1' }, expected, { all: true });
    assert.deepEqual(await skopeoInspectRaw(dockerRef(D(), 'back/multi', 'v1')), multi.indexBytes);
    await pullAndCompare(dockerRef(D(), 'back/multi', 'v1'), expected, { all: true });
  });

  test('by digest across registries', async () => {
    const expected = expectedDigestTree(single);
    await hop(ociRef(srcDir, 'single'), { host: D(), repo: 'interop/bydigest', reference: single.manifestDigest }, expected);
    await hop(
      dockerRef(D(), 'interop/bydigest', single.manifestDigest),
      { host: W(), repo: 'mirror/bydigest', reference: single.manifestDigest },
      expected,
    );
    await hop(dockerRef(W(), 'mirror/bydigest', single.manifestDigest), { host: D(), repo: 'back/bydigest', reference: 'from-wharf' }, expected);

    const arm = multi.images.find((i) => i.platform.architecture === 'arm64')!;
    await skopeoCopy(ociRef(srcDir, 'multi'), dockerRef(D(), 'interop/multi-bydigest', 'v1'), { all: true, preserveDigests: true });
    // One child of an index, by digest, on its own.
    await hop(
      dockerRef(D(), 'interop/multi-bydigest', arm.manifestDigest),
      { host: W(), repo: 'mirror/multi-child', reference: 'arm64' },
      expectedDigestTree(arm),
    );
    // The whole index, by digest.
    await hop(
      dockerRef(D(), 'interop/multi-bydigest', multi.indexDigest),
      { host: W(), repo: 'mirror/multi-bydigest', reference: multi.indexDigest },
      expectedDigestTree(multi),
      { all: true },
    );
    await pullAndCompare(dockerRef(W(), 'mirror/multi-bydigest', multi.indexDigest), expectedDigestTree(multi), { all: true });
  });

  test('Docker schema 2 manifest (converted by skopeo) travels unchanged through Wharf', async () => {
    // skopeo rewrites the OCI manifest as Docker schema 2: new manifest digest, same config and layer blobs.
    const toDist = await skopeoCopy(ociRef(srcDir, 'single'), dockerRef(D(), 'interop/docker-v2', 'v1'), { format: 'v2s2' });
    const distRaw = await skopeoInspectRaw(dockerRef(D(), 'interop/docker-v2', 'v1'));
    assert.equal(digestOf(distRaw), toDist.digest);
    assert.notEqual(toDist.digest, single.manifestDigest);
    const distManifest = JSON.parse(distRaw.toString('utf8')) as { mediaType: string };
    assert.equal(distManifest.mediaType, DOCKER_MANIFEST_V2);
    const expected: DigestTree = {
      digest: toDist.digest,
      mediaType: DOCKER_MANIFEST_V2,
      config: single.configDigest,
      layers: single.layers.map((l) => l.digest),
    };
    assert.deepEqual(await registryDigestTree(D(), 'interop/docker-v2', 'v1'), expected);

    await hop(dockerRef(D(), 'interop/docker-v2', 'v1'), { host: W(), repo: 'mirror/docker-v2', reference: 'v1' }, expected);
    assert.deepEqual(await skopeoInspectRaw(dockerRef(W(), 'mirror/docker-v2', 'v1')), distRaw);
    const info = await skopeoInspect(dockerRef(W(), 'mirror/docker-v2', 'v1'));
    assert.equal(info.Digest, toDist.digest);
    assert.deepEqual(info.Layers, single.layers.map((l) => l.digest));

    await hop(dockerRef(W(), 'mirror/docker-v2', 'v1'), { host: D(), repo: 'back/docker-v2', reference: 'v1' }, expected);
    assert.deepEqual(await skopeoInspectRaw(dockerRef(D(), 'back/docker-v2', 'v1')), distRaw);
  });

  test('tags listed by Wharf match those listed by Distribution after mirroring', async () => {
    const tags = ['1.0', '1.0.1', 'latest', 'stable'];
    for (const tag of tags) {
      await skopeoCopy(ociRef(srcDir, tag === 'stable' ? 'multi' : 'single'), dockerRef(D(), 'interop/tags', tag), { all: true, preserveDigests: true });
    }
    const distTags = (await skopeoListTags(dockerRepo(D(), 'interop/tags'))).sort();
    assert.deepEqual(distTags, tags);
    for (const tag of distTags) {
      await skopeoCopy(dockerRef(D(), 'interop/tags', tag), dockerRef(W(), 'mirror/tags', tag), { all: true, preserveDigests: true });
    }
    assert.deepEqual((await skopeoListTags(dockerRepo(W(), 'mirror/tags'))).sort(), distTags);
    for (const tag of distTags) {
      const d = digestOf(await skopeoInspectRaw(dockerRef(D(), 'interop/tags', tag)));
      const w = digestOf(await skopeoInspectRaw(dockerRef(W(), 'mirror/tags', tag)));
      assert.equal(w, d, tag);
      assert.equal(w, tag === 'stable' ? multi.indexDigest : single.manifestDigest, tag);
    }
  });
});
