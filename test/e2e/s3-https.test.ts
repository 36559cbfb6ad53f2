/**
 * `wharf serve` on an `https://` S3 endpoint: the test bucket behind Debian's haproxy terminating TLS
 * with a throwaway certificate authority (test/helpers/tls.ts). skopeo pushes an image and pulls it back
 * (the pull's GETs read straight from the TLS connection), once with the authority given the way Node
 * takes one for every connection (NODE_EXTRA_CA_CERTS), once through `storage.s3.ca_file`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage, largeLayer, MiB, type BuiltImage } from '../helpers/oci-layout.js';
import { openTestS3Driver, testS3Options } from '../helpers/s3.js';
import { dockerRef, ociRef, skopeoCopy } from '../helpers/skopeo.js';
import { makeTestPki, startTlsFront, type TestPki, type TlsFront } from '../helpers/tls.js';
import { ADMIN, startWharf } from '../helpers/wharf-process.js';
import type { Digest } from '../../src/oci/digest.js';
import { blobKey } from '../../src/storage/keys.js';

describe('wharf serve on an https S3 endpoint', () => {
  let work: string;
  let pki: TestPki;
  let front: TlsFront;
  let image: BuiltImage;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-s3-https-'));
    image = await buildImage(join(work, 'src'), { tag: 'v1', seed: 'e2e-s3-https', layers: [largeLayer(12 * MiB)] });
    pki = await makeTestPki();
    front = await startTlsFront(pki, testS3Options().endpoint!);
  });
  after(async () => {
    await front?.stop();
    await pki?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const trust of ['NODE_EXTRA_CA_CERTS', 'storage.s3.ca_file'] as const) {
    it(`pushes and pulls with skopeo, the store's authority given by ${trust}`, async () => {
      const bucket = await openTestS3Driver();
      const o = testS3Options();
      const w = await startWharf({
        env: {
          WHARF_STORAGE_DRIVER: 's3',
          WHARF_STORAGE_S3_ENDPOINT: front.url,
          WHARF_STORAGE_S3_BUCKET: o.bucket,
          WHARF_STORAGE_S3_REGION: o.region,
          WHARF_STORAGE_S3_ACCESS_KEY_ID: o.accessKeyId,
          WHARF_STORAGE_S3_SECRET_ACCESS_KEY: o.secretAccessKey,
          WHARF_STORAGE_S3_PREFIX: bucket.prefix,
          ...(trust === 'NODE_EXTRA_CA_CERTS' ? { NODE_EXTRA_CA_CERTS: pki.caFile } : { NODE_EXTRA_CA_CERTS: undefined, WHARF_STORAGE_S3_CA_FILE: pki.caFile }),
        },
      });
      try {
        const repo = `library/https-${trust === 'NODE_EXTRA_CA_CERTS' ? 'env' : 'file'}`;
        const pushed = await skopeoCopy(ociRef(join(work, 'src'), 'v1'), dockerRef(w.host, repo, 'v1'), { creds: ADMIN, preserveDigests: true });
        assert.equal(pushed.digest, image.manifestDigest);
        const layer = image.layers[0]!;
        assert.equal((await bucket.driver.stat(blobKey(layer.digest as Digest)))?.size, layer.size, 'the layer is in the bucket');
        const pulled = await skopeoCopy(dockerRef(w.host, repo, 'v1'), ociRef(join(work, `out-${repo.split('-')[1]}`), 'v1'), { creds: ADMIN, preserveDigests: true });
        assert.equal(pulled.digest, image.manifestDigest);
      } finally {
        await w.stop();
        await bucket.cleanup();
      }
    });
  }
});
