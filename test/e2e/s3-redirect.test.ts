/**
 * End to end on S3 storage, pulls streamed through Wharf and pulls redirected to the store: a real
 * `wharf serve` on the test run's RADOS Gateway in each mode; skopeo pushes, skopeo, podman and ctr
 * pull (podman pushes what it pulled, skopeo pulls that back), every digest checked. With redirects on,
 * Wharf's metrics show that every blob GET was a 307 and that no blob byte went through Wharf.
 *
 * Redirect URLs name the store through `storage.s3.redirect_endpoint`, by another host name
 * (`localhost`) than the one Wharf uses for it and the clients use for Wharf (`127.0.0.1`). S3 refuses
 * a presigned URL that comes with a second credential (RGW: 400 InvalidArgument), so these pulls also
 * prove that none of the three clients sends the registry's `Authorization` along the redirect.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ctrPull, startContainerd, type ContainerdProcess } from '../helpers/containerd.js';
import { buildImage, expectedDigestTree, largeLayer, layoutDigestTree, MiB, verifyLayoutBlobs, type BuiltImage } from '../helpers/oci-layout.js';
import { createPodmanStore, podmanPull, runPodman, type PodmanStore } from '../helpers/podman.js';
import { openTestS3Driver, testS3Options } from '../helpers/s3.js';
import { dockerRef, ociRef, registerCredentials, skopeoCopy } from '../helpers/skopeo.js';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';

type Mode = 'streamed' | 'redirected';

/** `wharf_http_requests_total` of blob GETs by status, and the blob bytes Wharf sent. */
async function blobTraffic(wharf: WharfProcess): Promise<{ statuses: Record<string, number>; bytes: number }> {
  const text = await (await fetch(`${wharf.url}/metrics`)).text();
  const statuses: Record<string, number> = {};
  for (const m of text.matchAll(/^wharf_http_requests_total\{method="GET",route="blob_get",status="(\d+)"\} (\d+)$/gm)) statuses[m[1]!] = Number(m[2]);
  const bytes = Number(/^wharf_http_response_bytes_total\{route="blob"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  return { statuses, bytes };
}

function s3Env(prefix: string, extra: Record<string, string>): Record<string, string | undefined> {
  const o = testS3Options();
  return {
    WHARF_STORAGE_DRIVER: 's3',
    WHARF_STORAGE_S3_ENDPOINT: o.endpoint,
    WHARF_STORAGE_S3_BUCKET: o.bucket,
    WHARF_STORAGE_S3_REGION: o.region,
    WHARF_STORAGE_S3_ACCESS_KEY_ID: o.accessKeyId,
    WHARF_STORAGE_S3_SECRET_ACCESS_KEY: o.secretAccessKey,
    WHARF_STORAGE_S3_PREFIX: prefix,
    WHARF_STORAGE_S3_PART_SIZE: '5 MiB',
    ...extra,
  };
}

/** The store's endpoint with `localhost` for its host: a host name clients do not use for Wharf. */
const otherHostEndpoint = (): string => {
  const u = new URL(testS3Options().endpoint!);
  u.hostname = 'localhost';
  return u.origin;
};

describe('skopeo, podman and ctr ⇄ Wharf on S3: streamed and redirected pulls', () => {
  let work: string;
  let image: BuiltImage;
  let containerd: ContainerdProcess | undefined;
  const wharfs: Partial<Record<Mode, WharfProcess>> = {};
  const buckets: Array<Awaited<ReturnType<typeof openTestS3Driver>>> = [];
  const stores: PodmanStore[] = [];

  const start = async (mode: Mode): Promise<WharfProcess> => {
    const bucket = await openTestS3Driver();
    buckets.push(bucket);
    const w = await startWharf({
      env: s3Env(bucket.prefix, mode === 'redirected' ? { WHARF_STORAGE_S3_REDIRECT: 'true', WHARF_STORAGE_S3_REDIRECT_EXPIRY: '2m', WHARF_STORAGE_S3_REDIRECT_ENDPOINT: otherHostEndpoint() } : {}),
    });
    registerCredentials(w.host, w.admin);
    wharfs[mode] = w;
    return w;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-s3-redirect-'));
    image = await buildImage(join(work, 'src'), {
      tag: 'v1',
      seed: 'e2e-s3-redirect',
      layers: [largeLayer(7 * MiB), { files: [{ path: 'etc/mode', content: 'streamed or redirected\n' }] }],
    });
    await Promise.all([start('streamed'), start('redirected'), startContainerd().then((c) => (containerd = c))]);
  });

  after(async () => {
    await containerd?.stop();
    for (const w of Object.values(wharfs)) await w?.stop();
    for (const b of buckets) await b.cleanup();
    for (const s of stores) await s.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const withOutput = (mode: Mode, name: string, fn: (w: WharfProcess, t: TestContext) => Promise<void>) =>
    it(`${mode}: ${name}`, async (t) => {
      const w = wharfs[mode];
      if (!w) throw new Error(`the ${mode} wharf did not start`);
      try {
        await fn(w, t);
      } catch (err) {
        t.diagnostic(`wharf output (tail):\n${w.output().slice(-3000)}`);
        throw err;
      }
    });

  for (const mode of ['streamed', 'redirected'] as const) {
    withOutput(mode, 'skopeo pushes; skopeo, podman and ctr pull the same image; podman pushes it back and skopeo pulls that', async (w) => {
      const before = await blobTraffic(w);
      const ref = dockerRef(w.host, 'e2e/s3-pulls', 'v1');
      assert.equal((await skopeoCopy(ociRef(join(work, 'src'), 'v1'), ref, { preserveDigests: true })).digest, image.manifestDigest);

      const out = join(work, `out-${mode}`);
      assert.equal((await skopeoCopy(ref, ociRef(out, 'pulled'), { preserveDigests: true })).digest, image.manifestDigest);
      assert.deepEqual(await layoutDigestTree(out, 'pulled'), expectedDigestTree(image));
      await verifyLayoutBlobs(out);

      const store = await createPodmanStore();
      stores.push(store);
      const pulled = await podmanPull(`${w.host}/e2e/s3-pulls:v1`, { store, creds: w.admin });
      assert.equal(pulled.digest, image.manifestDigest);
      assert.equal(`sha256:${pulled.imageId}`, image.configDigest);

      assert.equal((await ctrPull(containerd!, `${w.host}/e2e/s3-pulls:v1`, { user: w.admin, namespace: `s3-${mode}` })).digest, image.manifestDigest);

      await runPodman(store, ['push', '--tls-verify=false', '--creds', `${w.admin.username}:${w.admin.password}`, `${w.host}/e2e/s3-pulls:v1`, `docker://${w.host}/e2e/s3-podman:v1`]);
      const back = join(work, `back-${mode}`);
      await skopeoCopy(dockerRef(w.host, 'e2e/s3-podman', 'v1'), ociRef(back, 'pulled'));
      await verifyLayoutBlobs(back);

      const traffic = await blobTraffic(w);
      const delta = (s: string) => (traffic.statuses[s] ?? 0) - (before.statuses[s] ?? 0);
      if (mode === 'redirected') {
        assert.ok(delta('307') >= 3 * 2, `every client's blob GETs were redirected (${JSON.stringify(traffic.statuses)})`);
        assert.equal(delta('200') + delta('206'), 0, `no blob GET was answered with bytes (${JSON.stringify(traffic.statuses)})`);
        assert.equal(traffic.bytes - before.bytes, 0, 'no blob byte went through Wharf');
      } else {
        assert.equal(delta('307'), 0);
        assert.ok(delta('200') >= 3 * 2, JSON.stringify(traffic.statuses));
        assert.ok(traffic.bytes - before.bytes >= 3 * image.layers[0]!.size, 'the blob bytes went through Wharf');
      }
    });
  }
});
