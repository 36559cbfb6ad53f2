/**
 * End to end, replication through the real located driver: one `wharf serve` with a filesystem
 * directory (`fs`) and a prefix of the test run's RADOS Gateway bucket (`s3`), preference [fs, s3],
 * replication on (every location a target). skopeo pushes into `fs`; the worker copies every blob to
 * `s3` (the bytes appear there, the status API shows both locations holding them and nothing queued);
 * with `fs` down, pulls are served from the copies in `s3`; deleting the image and collecting garbage
 * removes its bytes from both locations.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/e2e-utils.js';
import { blobsOf, openGeoLocations, replicationStatus, type GeoLocations } from '../helpers/geo-e2e.js';
import { buildImage, expectedDigestTree, largeLayer, layoutDigestTree, MiB, verifyLayoutBlobs, type BuiltImage } from '../helpers/oci-layout.js';
import { dockerRef, ociRef, registerCredentials, skopeoCopy } from '../helpers/skopeo.js';
import { adminFetch, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

const REPO = 'e2e/geo/replicated/app';
describe('replication between a filesystem and an S3 location, through wharf serve', () => {
  let work: string;
  let fsDir: string;
  let image: BuiltImage;
  let geo: GeoLocations;
  let wharf: WharfProcess | undefined;
  const blobs = () => blobsOf(image);
  const held = (location: 'fs' | 's3') => geo.held(location, blobs());

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-geo-repl-'));
    image = await buildImage(join(work, 'src'), { tag: 'v1', seed: 'geo-replication', layers: [largeLayer(8 * MiB), { files: [{ path: 'etc/geo', content: 'geo\n' }] }] });
    geo = await openGeoLocations(work);
    fsDir = geo.fsDir;
    wharf = await startWharf({
      env: {
        WHARF_STORAGE_LOCATIONS: geo.locationsEnv(),
        WHARF_STORAGE_PREFERENCE: 'fs s3',
        WHARF_REPLICATION_POLL_INTERVAL: '200ms',
        WHARF_GC_INTERVAL: '1s',
        // Long enough that a blob pushed before its manifest is not collected meanwhile.
        WHARF_GC_GRACE_PERIOD: '5s',
        WHARF_GC_TIME_MACHINE_DEFAULT: '0s',
      },
    });
    registerCredentials(wharf.host, wharf.admin);
  });

  after(async () => {
    await wharf?.stop();
    if (wharf) await rm(wharf.dataDir, { recursive: true, force: true });
    await geo?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const status = () => replicationStatus(wharf!.url, REPO);

  it('a push lands in the preferred location and is copied to the other in the background', async () => {
    assert.equal((await skopeoCopy(ociRef(join(work, 'src'), 'v1'), dockerRef(wharf!.host, REPO, 'v1'), { preserveDigests: true })).digest, image.manifestDigest);
    assert.deepEqual(await held('fs'), [true, true, true]);
    await waitFor('every blob copied to the S3 location', async () => (await held('s3')).every(Boolean), 60_000, 250);
    await waitFor('the status to show both locations holding the repository, nothing queued', async () => {
      const s = await status();
      return s.length === 2 && s.every((l) => l.blobs === blobs().length && l.backlog === 0 && l.failing === 0);
    });
  });

  it('with the preferred location down, pulls are served from the copies', async () => {
    await rename(fsDir, `${fsDir}.away`);
    await writeFile(fsDir, 'the location is down');
    try {
      const out = join(work, 'pulled');
      const pulled = await skopeoCopy(dockerRef(wharf!.host, REPO, 'v1'), ociRef(out, 'pulled'), { preserveDigests: true });
      assert.equal(pulled.digest, image.manifestDigest);
      assert.deepEqual(await layoutDigestTree(out, 'pulled'), expectedDigestTree(image));
      await verifyLayoutBlobs(out);
    } finally {
      await rm(fsDir, { force: true });
      await rename(`${fsDir}.away`, fsDir);
    }
  });

  it('garbage collection removes the bytes from every location that holds them', async () => {
    const del = await adminFetch(`${wharf!.url}/v2/${REPO}/manifests/${image.manifestDigest}`, { method: 'DELETE' });
    assert.equal(del.status, 202, await del.text());
    await waitFor(
      "the image's bytes gone from both locations",
      async () => (await held('fs')).every((h) => !h) && (await held('s3')).every((h) => !h),
      60_000,
      250,
    );
    const s = await status();
    assert.deepEqual(
      s.map((l) => [l.location, l.blobs, l.backlog]),
      [
        ['fs', 0, 0],
        ['s3', 0, 0],
      ],
    );
  });
});
