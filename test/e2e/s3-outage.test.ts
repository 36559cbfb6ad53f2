/**
 * End to end: `wharf serve` on S3 storage loses its store while it runs. A fault proxy between Wharf
 * and the test run's RADOS Gateway goes down and comes back: meanwhile blob pulls answer 503 with the
 * OCI error body naming the storage, skopeo's pull fails, and /health/instance reports the storage down;
 * once the store is back, the next pull works at once and the health check recovers.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/e2e-utils.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { buildImage, expectedDigestTree, layoutDigestTree, type BuiltImage } from '../helpers/oci-layout.js';
import { openTestS3Driver, testS3Options } from '../helpers/s3.js';
import { dockerRef, ociRef, registerCredentials, skopeoCopy, SkopeoError } from '../helpers/skopeo.js';
import { basicAuth, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

describe('wharf serve on S3 through a storage outage', () => {
  let work: string;
  let image: BuiltImage;
  let proxy: FaultProxy | undefined;
  let wharf: WharfProcess | undefined;
  let bucket: Awaited<ReturnType<typeof openTestS3Driver>> | undefined;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-s3-outage-'));
    image = await buildImage(join(work, 'src'), { tag: 'v1', seed: 'e2e-s3-outage', layers: [{ files: [{ path: 'etc/outage', content: 'still here\n' }] }] });
    const o = testS3Options();
    proxy = await startFaultProxy(o.endpoint!);
    bucket = await openTestS3Driver();
    wharf = await startWharf({
      env: {
        WHARF_STORAGE_DRIVER: 's3',
        WHARF_STORAGE_S3_ENDPOINT: proxy.url,
        WHARF_STORAGE_S3_BUCKET: o.bucket,
        WHARF_STORAGE_S3_REGION: o.region,
        WHARF_STORAGE_S3_ACCESS_KEY_ID: o.accessKeyId,
        WHARF_STORAGE_S3_SECRET_ACCESS_KEY: o.secretAccessKey,
        WHARF_STORAGE_S3_PREFIX: bucket.prefix,
        WHARF_STORAGE_S3_CONNECT_TIMEOUT: '2s',
      },
    });
    registerCredentials(wharf.host, wharf.admin);
  });

  after(async () => {
    proxy?.setUpstreamDown(false);
    await wharf?.stop();
    await bucket?.cleanup();
    await proxy?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('answers 503 while the store is down, reports it in /health/instance, and serves again at once when it is back', async (t) => {
    const w = wharf!;
    try {
      const ref = dockerRef(w.host, 'e2e/s3-outage', 'v1');
      await skopeoCopy(ociRef(join(work, 'src'), 'v1'), ref, { preserveDigests: true });
      const layer = image.layers[0]!.digest;
      const health = async () => {
        const res = await fetch(`${w.url}/health/instance`);
        return { status: res.status, storage: ((await res.json()) as { data: { services: { registry_storage: boolean } } }).data.services.registry_storage };
      };
      assert.deepEqual(await health(), { status: 200, storage: true });

      proxy!.setUpstreamDown(true);
      const res = await fetch(`${w.url}/v2/e2e/s3-outage/blobs/${layer}`, { headers: { authorization: basicAuth(w.admin) } });
      assert.equal(res.status, 503);
      const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
      assert.equal(body.errors[0]!.code, 'UNAVAILABLE');
      assert.match(body.errors[0]!.message, /storage unavailable: S3 bucket "[^"]+" at http:\/\/127\.0\.0\.1:\d+/);
      await assert.rejects(skopeoCopy(ref, ociRef(join(work, 'down'), 'pulled')), (err: SkopeoError) => /503|unavailable/i.test(err.message));
      await waitFor('storage reported down', async () => (await health()).status === 503);
      assert.deepEqual(await health(), { status: 503, storage: false });

      proxy!.setUpstreamDown(false);
      const out = join(work, 'back');
      assert.equal((await skopeoCopy(ref, ociRef(out, 'pulled'), { preserveDigests: true })).digest, image.manifestDigest);
      assert.deepEqual(await layoutDigestTree(out, 'pulled'), expectedDigestTree(image));
      await waitFor('storage reported up again', async () => (await health()).status === 200);
      assert.ok(!/"level":50|internal error/.test(w.stdout()), 'no internal error was logged');
    } catch (err) {
      t.diagnostic(`wharf output (tail):\n${w.output().slice(-3000)}`);
      throw err;
    }
  });
});
