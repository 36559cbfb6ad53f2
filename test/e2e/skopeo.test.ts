/**
 * End to end: skopeo pushes images into a real Wharf process and pulls them back out, and every
 * digest (index, manifests, configs, layers) must survive the round trip byte for byte.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { RepositoryName } from '../../src/oci/reference.js';
import {
  buildImage,
  buildMultiArchImage,
  expectedDigestTree,
  KiB,
  largeLayer,
  layoutDigestTree,
  MEDIA_TYPE_OCI_INDEX,
  MiB,
  verifyLayoutBlobs,
  type BuiltImage,
  type BuiltMultiArchImage,
} from '../helpers/oci-layout.js';
import {
  digestOf,
  dockerRef,
  dockerRepo,
  ociRef,
  registryDigestTree,
  skopeoCopy,
  skopeoDelete,
  skopeoInspect,
  skopeoInspectConfigRaw,
  skopeoInspectRaw,
  skopeoListTags,
  SkopeoError,
  registerCredentials,
  type Credentials,
} from '../helpers/skopeo.js';
import { createRobot, withAccounts } from '../helpers/wharf-accounts.js';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';

describe('skopeo ⇄ Wharf', () => {
  let wharf: WharfProcess | undefined;
  let work: string;
  let srcDir: string;
  let largeDir: string;
  let single: BuiltImage;
  let other: BuiltImage;
  let multi: BuiltMultiArchImage;
  let large: BuiltImage;
  let outCounter = 0;

  /** A fresh directory for a pulled `oci:` layout. */
  const outDir = (name: string): string => join(work, `out-${outCounter++}-${name}`);

  const host = (): string => {
    if (!wharf) throw new Error('wharf did not start');
    return wharf.host;
  };

  /** Like `it`, but a failure also prints the tail of Wharf's output. */
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        if (wharf) t.diagnostic(`wharf output (tail):\n${wharf.output().slice(-4000)}`);
        throw err;
      }
    });
  };

  /** Pulls `ref` into a fresh oci: layout and checks it holds exactly `built`, all blobs intact. */
  async function pullAndCompare(ref: string, built: BuiltImage | BuiltMultiArchImage, opts: { all?: boolean; multiArch?: 'all'; creds?: Credentials | null } = {}): Promise<void> {
    const out = outDir('pull');
    const expected = expectedDigestTree(built);
    const res = await skopeoCopy(ref, ociRef(out, 'pulled'), { ...opts, preserveDigests: true });
    assert.equal(res.digest, expected.digest, 'digest skopeo wrote to the layout');
    assert.deepEqual(await layoutDigestTree(out, 'pulled'), expected);
    await verifyLayoutBlobs(out);
    await rm(out, { recursive: true, force: true });
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-skopeo-'));
    srcDir = join(work, 'src');
    largeDir = join(work, 'src-large');
    // The layout is written sequentially (index.json is read-modify-write); the large one separately.
    const largeBuilt = buildImage(largeDir, {
      tag: 'large',
      seed: 'e2e-large',
      layers: [largeLayer(120 * MiB), { files: [{ path: 'etc/large', content: 'large image\n' }] }],
    });
    single = await buildImage(srcDir, {
      tag: 'single',
      seed: 'e2e-single',
      layers: [
        { files: [{ path: 'etc/os-release', content: 'NAME=wharf-e2e\n' }, { path: 'usr/lib/libbase.so', size: 256 * KiB }] },
        { files: [{ path: 'usr/bin/app', size: 96 * KiB, mode: 0o755 }] },
      ],
    });
    other = await buildImage(srcDir, {
      tag: 'other',
      seed: 'e2e-other',
      platform: { os: 'linux', architecture: 'arm64' },
      layers: [{ files: [{ path: 'other.bin', size: 32 * KiB }] }],
    });
    multi = await buildMultiArchImage(srcDir, {
      tag: 'multi',
      seed: 'e2e-multi',
      platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'linux/s390x'],
    });
    large = await largeBuilt;
    wharf = await startWharf();
    registerCredentials(wharf.host, wharf.admin);
  });

  after(async () => {
    await wharf?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('single-arch image: push by tag, inspect, pull back unchanged', async () => {
    const repo = 'e2e/single';
    const pushed = await skopeoCopy(ociRef(srcDir, 'single'), dockerRef(host(), repo, 'v1'), { preserveDigests: true });
    assert.equal(pushed.digest, single.manifestDigest);

    const raw = await skopeoInspectRaw(dockerRef(host(), repo, 'v1'));
    assert.equal(digestOf(raw), single.manifestDigest);
    assert.deepEqual(raw, single.manifestBytes, 'manifest served byte for byte');
    assert.equal(digestOf(await skopeoInspectConfigRaw(dockerRef(host(), repo, 'v1'))), single.configDigest);

    const info = await skopeoInspect(dockerRef(host(), repo, 'v1'));
    assert.equal(info.Name, `${host()}/${repo}`);
    assert.equal(info.Digest, single.manifestDigest);
    assert.deepEqual(info.Layers, single.layers.map((l) => l.digest));
    assert.equal(info.Architecture, 'amd64');
    assert.equal(info.Os, 'linux');
    assert.equal(info.Labels?.['org.wharf.test.seed'], 'e2e-single');
    assert.deepEqual(info.RepoTags, ['v1']);

    assert.deepEqual(await registryDigestTree(host(), repo, 'v1'), expectedDigestTree(single));
    await pullAndCompare(dockerRef(host(), repo, 'v1'), single);
  });

  test('by digest: pull by digest, push by digest, copy by digest to another repository', async () => {
    const repo = 'e2e/bydigest';
    await skopeoCopy(ociRef(srcDir, 'single'), dockerRef(host(), repo, 'v1'), { preserveDigests: true });
    await pullAndCompare(dockerRef(host(), repo, single.manifestDigest), single);

    // Push to a digest reference: no tag involved.
    const pushedByDigest = await skopeoCopy(ociRef(srcDir, 'other'), dockerRef(host(), repo, other.manifestDigest), { preserveDigests: true });
    assert.equal(pushedByDigest.digest, other.manifestDigest);
    assert.deepEqual(await skopeoInspectRaw(dockerRef(host(), repo, other.manifestDigest)), other.manifestBytes);
    assert.deepEqual(await skopeoListTags(dockerRepo(host(), repo)), ['v1'], 'a push by digest creates no tag');

    // Registry to registry (same Wharf), by digest, into a new repository: blobs are mounted or re-uploaded.
    const copied = await skopeoCopy(dockerRef(host(), repo, other.manifestDigest), dockerRef(host(), 'e2e/bydigest-copy', other.manifestDigest), {
      preserveDigests: true,
    });
    assert.equal(copied.digest, other.manifestDigest);
    assert.deepEqual(await registryDigestTree(host(), 'e2e/bydigest-copy', other.manifestDigest), expectedDigestTree(other));
    await pullAndCompare(dockerRef(host(), 'e2e/bydigest-copy', other.manifestDigest), other);
  });

  test('repositories with several path components', async () => {
    for (const repo of ['org/team/app', 'org/team/app/sub-component', 'deep/b/c/d/e/f']) {
      const pushed = await skopeoCopy(ociRef(srcDir, 'single'), dockerRef(host(), repo, 'v1'), { preserveDigests: true });
      assert.equal(pushed.digest, single.manifestDigest, repo);
      assert.deepEqual(await skopeoListTags(dockerRepo(host(), repo)), ['v1'], repo);
      const info = await skopeoInspect(dockerRef(host(), repo, 'v1'));
      assert.equal(info.Name, `${host()}/${repo}`);
      assert.equal(info.Digest, single.manifestDigest);
      await pullAndCompare(dockerRef(host(), repo, 'v1'), single);
    }
    // 'org/team/app' and 'org/team/app/sub-component' are distinct repositories.
    await skopeoCopy(ociRef(srcDir, 'other'), dockerRef(host(), 'org/team/app/sub-component', 'v2'), { preserveDigests: true });
    assert.deepEqual(await skopeoListTags(dockerRepo(host(), 'org/team/app')), ['v1']);
    assert.deepEqual((await skopeoListTags(dockerRepo(host(), 'org/team/app/sub-component'))).sort(), ['v1', 'v2']);
  });

  test('multi-arch index: push with --all, index and every child byte for byte, pull back', async () => {
    const repo = 'e2e/multi';
    const pushed = await skopeoCopy(ociRef(srcDir, 'multi'), dockerRef(host(), repo, 'v1'), { all: true, preserveDigests: true });
    assert.equal(pushed.digest, multi.indexDigest);

    const rawIndex = await skopeoInspectRaw(dockerRef(host(), repo, 'v1'));
    assert.deepEqual(rawIndex, multi.indexBytes, 'index served byte for byte');
    assert.equal((JSON.parse(rawIndex.toString('utf8')) as { mediaType: string }).mediaType, MEDIA_TYPE_OCI_INDEX);
    assert.deepEqual(await skopeoInspectRaw(dockerRef(host(), repo, multi.indexDigest)), multi.indexBytes);
    for (const img of multi.images) {
      const raw = await skopeoInspectRaw(dockerRef(host(), repo, img.manifestDigest));
      assert.deepEqual(raw, img.manifestBytes, `${img.platform.architecture} manifest byte for byte`);
    }
    assert.deepEqual(await registryDigestTree(host(), repo, 'v1'), expectedDigestTree(multi));

    // skopeo inspect resolves the index to the requested platform.
    const arm = multi.images.find((i) => i.platform.architecture === 'arm64')!;
    const info = await skopeoInspect(dockerRef(host(), repo, 'v1'), { globalArgs: ['--override-arch', 'arm64'] });
    assert.equal(info.Architecture, 'arm64');
    assert.deepEqual(info.Layers, arm.layers.map((l) => l.digest));
    assert.equal(info.Labels?.['org.wharf.test.platform'], 'linux/arm64');

    // Back out: the whole index with --multi-arch all, and a single platform without it.
    await pullAndCompare(dockerRef(host(), repo, 'v1'), multi, { multiArch: 'all' });
    const s390x = multi.images.find((i) => i.platform.architecture === 's390x')!;
    const out = outDir('one-platform');
    const one = await skopeoCopy(dockerRef(host(), repo, 'v1'), ociRef(out, 's390x'), {
      globalArgs: ['--override-arch', 's390x'],
      preserveDigests: true,
    });
    assert.equal(one.digest, s390x.manifestDigest);
    assert.deepEqual(await layoutDigestTree(out, 's390x'), expectedDigestTree(s390x));
  });

  test('image with a 120 MiB layer: push and pull back', async (t) => {
    const repo = 'e2e/large';
    let started = performance.now();
    const pushed = await skopeoCopy(ociRef(largeDir, 'large'), dockerRef(host(), repo, 'v1'), { preserveDigests: true });
    t.diagnostic(`push of ${(large.layers[0]!.size / MiB).toFixed(1)} MiB layer: ${Math.round(performance.now() - started)} ms`);
    assert.equal(pushed.digest, large.manifestDigest);
    const raw = await skopeoInspectRaw(dockerRef(host(), repo, 'v1'));
    assert.deepEqual(raw, large.manifestBytes);
    const manifest = JSON.parse(raw.toString('utf8')) as { layers: { digest: string; size: number }[] };
    assert.deepEqual(manifest.layers.map((l) => [l.digest, l.size]), large.layers.map((l) => [l.digest, l.size]));
    started = performance.now();
    await pullAndCompare(dockerRef(host(), repo, 'v1'), large);
    t.diagnostic(`pull and verify: ${Math.round(performance.now() - started)} ms`);
  });

  test('list-tags and inspect report every tag', async () => {
    const repo = 'e2e/tags';
    for (const tag of ['v1', 'v2', 'latest']) {
      const res = await skopeoCopy(ociRef(srcDir, 'single'), dockerRef(host(), repo, tag), { preserveDigests: true });
      assert.equal(res.digest, single.manifestDigest);
    }
    await skopeoCopy(ociRef(srcDir, 'other'), dockerRef(host(), repo, 'arm'), { preserveDigests: true });
    await skopeoCopy(ociRef(srcDir, 'multi'), dockerRef(host(), repo, '1.0.0-multi'), { all: true, preserveDigests: true });

    const expectedTags = ['1.0.0-multi', 'arm', 'latest', 'v1', 'v2'];
    assert.deepEqual((await skopeoListTags(dockerRepo(host(), repo))).sort(), expectedTags);

    const v2 = await skopeoInspect(dockerRef(host(), repo, 'v2'));
    assert.equal(v2.Digest, single.manifestDigest);
    assert.deepEqual([...v2.RepoTags].sort(), expectedTags);
    const arm = await skopeoInspect(dockerRef(host(), repo, 'arm'), { noTags: true });
    assert.equal(arm.Digest, other.manifestDigest);
    assert.equal(arm.Architecture, 'arm64');
    assert.deepEqual(arm.Layers, other.layers.map((l) => l.digest));
    assert.equal(digestOf(await skopeoInspectRaw(dockerRef(host(), repo, '1.0.0-multi'))), multi.indexDigest);

    // Retagging moves the tag.
    await skopeoCopy(ociRef(srcDir, 'other'), dockerRef(host(), repo, 'v1'), { preserveDigests: true });
    assert.equal(digestOf(await skopeoInspectRaw(dockerRef(host(), repo, 'v1'))), other.manifestDigest);
    assert.equal(digestOf(await skopeoInspectRaw(dockerRef(host(), repo, 'v2'))), single.manifestDigest);
    assert.deepEqual((await skopeoListTags(dockerRepo(host(), repo))).sort(), expectedTags);

    // Unknown tags and repositories are errors, with the OCI error codes skopeo reports.
    await assert.rejects(skopeoInspectRaw(dockerRef(host(), repo, 'no-such-tag')), (err: unknown) => {
      assert.ok(err instanceof SkopeoError);
      assert.match(err.stderr, /manifest unknown/i);
      return true;
    });
    await assert.rejects(skopeoListTags(dockerRepo(host(), 'e2e/no-such-repo')), SkopeoError);
  });

  test('delete a manifest by digest, then it cannot be inspected', async () => {
    const repo = 'e2e/delete';
    await skopeoCopy(ociRef(srcDir, 'single'), dockerRef(host(), repo, 'doomed'), { preserveDigests: true });
    await skopeoCopy(ociRef(srcDir, 'other'), dockerRef(host(), repo, 'kept'), { preserveDigests: true });
    await skopeoCopy(ociRef(srcDir, 'single'), dockerRef(host(), 'e2e/delete-neighbour', 'v1'), { preserveDigests: true });
    assert.equal(digestOf(await skopeoInspectRaw(dockerRef(host(), repo, single.manifestDigest))), single.manifestDigest);

    await skopeoDelete(dockerRef(host(), repo, single.manifestDigest));

    await assert.rejects(skopeoInspectRaw(dockerRef(host(), repo, single.manifestDigest)), (err: unknown) => {
      assert.ok(err instanceof SkopeoError);
      assert.match(err.stderr, /manifest unknown/i);
      return true;
    });
    await assert.rejects(skopeoInspect(dockerRef(host(), repo, single.manifestDigest), { noTags: true }), SkopeoError);
    // The other manifest of the repository is untouched.
    assert.deepEqual(await registryDigestTree(host(), repo, 'kept'), expectedDigestTree(other));
    // The same image in another repository is untouched, blobs included.
    await pullAndCompare(dockerRef(host(), 'e2e/delete-neighbour', 'v1'), single);
    // The deleted image can be pushed again.
    const again = await skopeoCopy(ociRef(srcDir, 'single'), dockerRef(host(), repo, 'again'), { preserveDigests: true });
    assert.equal(again.digest, single.manifestDigest);
    await pullAndCompare(dockerRef(host(), repo, 'again'), single);

    // Deleting an index by digest.
    await skopeoCopy(ociRef(srcDir, 'multi'), dockerRef(host(), repo, 'multi'), { all: true, preserveDigests: true });
    assert.equal(digestOf(await skopeoInspectRaw(dockerRef(host(), repo, multi.indexDigest))), multi.indexDigest);
    await skopeoDelete(dockerRef(host(), repo, multi.indexDigest));
    await assert.rejects(skopeoInspectRaw(dockerRef(host(), repo, multi.indexDigest)), (err: unknown) => {
      assert.ok(err instanceof SkopeoError);
      assert.match(err.stderr, /manifest unknown/i);
      return true;
    });
  });

  test('a robot pushes and pulls with its own credentials, and cannot push where it has no write access', async () => {
    const robot = await createRobot(wharf!, 'robots+ci', ['robots/app'], 'write');
    const ref = dockerRef(host(), 'robots/app', 'v1');
    const pushed = await skopeoCopy(ociRef(srcDir, 'single'), ref, { preserveDigests: true, creds: robot });
    assert.equal(pushed.digest, single.manifestDigest);
    await pullAndCompare(ref, single, { creds: robot });
    assert.deepEqual(await skopeoListTags(dockerRepo(host(), 'robots/app'), { creds: robot }), ['v1']);
    await assert.rejects(skopeoCopy(ociRef(srcDir, 'single'), dockerRef(host(), 'robots/elsewhere', 'v1'), { creds: robot }), SkopeoError);
    await assert.rejects(skopeoInspectRaw(ref, { creds: null }), SkopeoError, 'a private repository cannot be pulled anonymously');
  });

  test('anonymous: a push is refused with an authentication error; a public repository can be pulled', async () => {
    const ref = dockerRef(host(), 'public/app', 'v1');
    await assert.rejects(skopeoCopy(ociRef(srcDir, 'single'), ref, { creds: null }), (err: unknown) => {
      assert.ok(err instanceof SkopeoError);
      // skopeo reports the 401 on its first blob check (a HEAD, so without a body) as "denied … HTTP 401".
      assert.match(err.stderr, /401|unauthorized|authentication required/i);
      return true;
    });
    await skopeoCopy(ociRef(srcDir, 'single'), ref, { preserveDigests: true });
    await withAccounts(wharf!, async (a) => {
      const repo = await a.repositories.details('public/app' as RepositoryName);
      assert.ok(repo);
      await a.repositories.setVisibility(repo, 'public');
    });
    await pullAndCompare(ref, single, { creds: null });
    assert.deepEqual(await skopeoListTags(dockerRepo(host(), 'public/app'), { creds: null }), ['v1']);
  });
});
