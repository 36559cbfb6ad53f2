/**
 * End to end on S3 storage: a real `wharf serve` with `storage.driver: s3` on the test run's RADOS
 * Gateway; skopeo pushes an image with a layer of several multipart parts and a small one, pulls it back
 * byte for byte, and the bucket then holds each blob under its blob key and nothing else: no upload
 * objects, no multipart upload left open.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseDigest } from '../../src/oci/digest.js';
import { blobKey, LOCATION_MARKER_KEY } from '../../src/storage/keys.js';
import { buildImage, expectedDigestTree, largeLayer, layoutDigestTree, MiB, verifyLayoutBlobs, type BuiltImage } from '../helpers/oci-layout.js';
import { openTestS3Driver, testS3Options } from '../helpers/s3.js';
import { dockerRef, ociRef, registerCredentials, skopeoCopy } from '../helpers/skopeo.js';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';

describe('skopeo ⇄ Wharf on S3 storage', () => {
  let work: string;
  let image: BuiltImage;
  let wharf: WharfProcess | undefined;
  let bucket: Awaited<ReturnType<typeof openTestS3Driver>>;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-s3-'));
    image = await buildImage(join(work, 'src'), {
      tag: 's3',
      seed: 'e2e-s3',
      layers: [largeLayer(13 * MiB), { files: [{ path: 'etc/s3', content: 'on S3\n' }] }],
    });
    // The test's view of the bucket: the same prefix the server writes under.
    bucket = await openTestS3Driver();
    const o = testS3Options();
    wharf = await startWharf({
      env: {
        WHARF_STORAGE_DRIVER: 's3',
        WHARF_STORAGE_S3_ENDPOINT: o.endpoint,
        WHARF_STORAGE_S3_BUCKET: o.bucket,
        WHARF_STORAGE_S3_REGION: o.region,
        WHARF_STORAGE_S3_ACCESS_KEY_ID: o.accessKeyId,
        WHARF_STORAGE_S3_SECRET_ACCESS_KEY: o.secretAccessKey,
        WHARF_STORAGE_S3_PREFIX: bucket.prefix,
        WHARF_STORAGE_S3_PART_SIZE: '5 MiB',
      },
    });
    registerCredentials(wharf.host, wharf.admin);
  });

  after(async () => {
    await wharf?.stop();
    await bucket?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes and pulls back unchanged; the bucket holds the verified blobs and no upload leftovers', async (t) => {
    try {
      const ref = dockerRef(wharf!.host, 'e2e/s3', 'v1');
      const pushed = await skopeoCopy(ociRef(join(work, 'src'), 's3'), ref, { preserveDigests: true });
      assert.equal(pushed.digest, image.manifestDigest);

      const out = join(work, 'out');
      const pulled = await skopeoCopy(ref, ociRef(out, 'pulled'), { preserveDigests: true });
      assert.equal(pulled.digest, image.manifestDigest);
      assert.deepEqual(await layoutDigestTree(out, 'pulled'), expectedDigestTree(image));
      await verifyLayoutBlobs(out);

      const keys: string[] = [];
      for await (const k of bucket.driver.list('')) keys.push(k);
      const expected = [image.configDigest, ...image.layers.map((l) => l.digest)].map((d) => {
        const parsed = parseDigest(d);
        assert.ok(parsed.ok);
        return blobKey(parsed.digest);
      });
      for (const k of expected) assert.ok(keys.includes(k), `${k} is in the bucket (keys: ${keys.join(', ')})`);
      assert.deepEqual(
        keys.filter((k) => !k.startsWith('blobs/')),
        [LOCATION_MARKER_KEY],
        "nothing but blobs and the location's identity marker",
      );
      const large = image.layers[0]!;
      assert.ok(((await bucket.driver.stat(expected[1]!))?.size ?? 0) > 10 * MiB, `the large layer ${large.digest} went up whole`);
      assert.equal(await bucket.driver.sweepStaging(-60_000), 0, 'no multipart upload left open');
    } catch (err) {
      if (wharf) t.diagnostic(`wharf output (tail):\n${wharf.output().slice(-4000)}`);
      throw err;
    }
  });
});
