/**
 * End to end with two storage locations: one `wharf serve` with a filesystem directory (`fs`) and a
 * prefix of the test run's RADOS Gateway bucket (`s3`), preference [fs, s3]. skopeo pushes into `fs`
 * and pulls back; then the fs location fails (a file where its directory was, so every access is
 * ENOTDIR, whatever the user): pushes go to S3 and pull back from it, a blob only in `fs` is a 503
 * (not a 500, not a 404), /health/endtoend reports the preferred location down while /health/instance
 * still takes writes; once the directory is back, new pushes land in `fs` again. A restart while `fs`
 * is down starts, with one warning line for it; an empty directory appearing in its place afterwards is
 * other storage (no identity marker) and stays unused until the right directory is back.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FsBlobDriver } from '../../src/storage/fs/fs-blob-driver.js';
import { waitFor } from '../helpers/e2e-utils.js';
import { blobsOf, heldIn, openGeoLocations, type GeoLocations } from '../helpers/geo-e2e.js';
import { buildImage, expectedDigestTree, largeLayer, layoutDigestTree, MiB, verifyLayoutBlobs, type BuiltImage } from '../helpers/oci-layout.js';
import { dockerRef, ociRef, registerCredentials, skopeoCopy } from '../helpers/skopeo.js';
import { adminFetch, startWharf, type WharfProcess } from '../helpers/wharf-process.js';

interface Health {
  status: number;
  services: Record<string, boolean>;
  expanded?: Record<string, { status: boolean; failure?: string }>;
}

describe('two storage locations (filesystem and S3), preference [fs, s3]', () => {
  let work: string;
  let fsDir: string;
  let images: Record<'before' | 'during' | 'after', BuiltImage>;
  let geo: GeoLocations;
  let env: Record<string, string>;
  let wharf: WharfProcess | undefined;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-e2e-geo-'));
    const build = (name: string) => buildImage(join(work, name), { tag: name, seed: `geo-${name}`, layers: [largeLayer(6 * MiB), { files: [{ path: `etc/${name}`, content: `${name}\n` }] }] });
    images = { before: await build('before'), during: await build('during'), after: await build('after') };
    geo = await openGeoLocations(work);
    fsDir = geo.fsDir;
    env = {
      WHARF_STORAGE_LOCATIONS: geo.locationsEnv(),
      WHARF_STORAGE_PREFERENCE: 'fs,s3',
      // Where each push lands is the point here: no copies between the locations (geo-replication.test.ts).
      WHARF_REPLICATION_ENABLED: 'false',
    };
    wharf = await startWharf({ env });
    registerCredentials(wharf.host, wharf.admin);
  });

  after(async () => {
    await wharf?.stop();
    if (wharf) await rm(wharf.dataDir, { recursive: true, force: true });
    await geo?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const health = async (path: 'instance' | 'endtoend'): Promise<Health> => {
    const res = await adminFetch(`${wharf!.url}/health/${path}`);
    const body = (await res.json()) as { data: { services: Record<string, boolean>; services_expanded?: Health['expanded'] }; status_code: number };
    assert.equal(body.status_code, res.status);
    return { status: res.status, services: body.data.services, expanded: body.data.services_expanded };
  };
  const push = (name: keyof typeof images) => skopeoCopy(ociRef(join(work, name), name), dockerRef(wharf!.host, `e2e/geo-${name}`, 'v1'), { preserveDigests: true });
  const pullAndVerify = async (name: keyof typeof images) => {
    const out = join(work, `pulled-${name}-${Date.now()}`);
    const pulled = await skopeoCopy(dockerRef(wharf!.host, `e2e/geo-${name}`, 'v1'), ociRef(out, 'pulled'), { preserveDigests: true });
    assert.equal(pulled.digest, images[name].manifestDigest);
    assert.deepEqual(await layoutDigestTree(out, 'pulled'), expectedDigestTree(images[name]));
    await verifyLayoutBlobs(out);
  };

  it('pushes into the preferred filesystem location and pulls back; both locations healthy', async () => {
    assert.equal((await push('before')).digest, images.before.manifestDigest);
    await pullAndVerify('before');
    assert.deepEqual(await geo.held('fs', blobsOf(images.before)), [true, true, true]);
    assert.deepEqual(await geo.held('s3', blobsOf(images.before)), [false, false, false]);
    const e2e = await health('endtoend');
    assert.deepEqual([e2e.status, e2e.services], [200, { database: true, storage: true }]);
    assert.deepEqual(e2e.expanded, { database: { status: true }, 'storage:fs': { status: true }, 'storage:s3': { status: true } });
  });

  it('with the filesystem location down: pushes go to S3 and pull back, its own blobs answer 503, /health/endtoend says so', async () => {
    await rename(fsDir, `${fsDir}.away`);
    await writeFile(fsDir, 'the location is down');
    try {
      assert.equal((await push('during')).digest, images.during.manifestDigest);
      await pullAndVerify('during');
      assert.deepEqual(await geo.held('s3', blobsOf(images.during)), [true, true, true]);
      assert.deepEqual(await heldIn(new FsBlobDriver(`${fsDir}.away`), blobsOf(images.during)), [false, false, false]);

      const onlyInFs = await adminFetch(`${wharf!.url}/v2/e2e/geo-before/blobs/${images.before.layers[0]!.digest}`);
      assert.equal(onlyInFs.status, 503, await onlyInFs.clone().text());
      const error = ((await onlyInFs.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
      assert.equal(error.code, 'UNAVAILABLE');
      assert.match(error.message, /^storage unavailable: storage location "fs": (ENOTDIR|directory \S+: EEXIST)/);

      await waitFor('the preferred location reported down', async () => (await health('endtoend')).status === 503);
      const e2e = await health('endtoend');
      assert.deepEqual(e2e.services, { database: true, storage: false });
      assert.equal(e2e.expanded!['storage:fs']!.status, false);
      assert.match(e2e.expanded!['storage:fs']!.failure!, /ENOTDIR|EEXIST/);
      assert.deepEqual(e2e.expanded!['storage:s3'], { status: true });
      assert.deepEqual([(await health('instance')).status, (await health('instance')).services], [200, { database: true, registry_storage: true }]);
    } finally {
      await rm(fsDir, { force: true });
      await rename(`${fsDir}.away`, fsDir);
    }
  });

  it('once the directory is back, pushes land in the filesystem location again, and everything pulls', async () => {
    await waitFor('the preferred location reported up', async () => (await health('endtoend')).status === 200);
    // Writes are placed by a verdict of their own (renewed every few seconds): a probe blob shows when it is renewed.
    let probes = 0;
    await waitFor(
      'a new blob placed in the filesystem location',
      async () => {
        const body = `probe ${probes++}`;
        const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(body).digest('hex')}`;
        const res = await adminFetch(`${wharf!.url}/v2/e2e/geo-probe/blobs/uploads/?digest=${digest}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
        assert.equal(res.status, 201, await res.text());
        return (await geo.held('fs', [digest]))[0]!;
      },
      30_000,
      500,
    );
    assert.equal((await push('after')).digest, images.after.manifestDigest);
    assert.deepEqual(await geo.held('fs', blobsOf(images.after)), [true, true, true]);
    for (const name of ['before', 'during', 'after'] as const) await pullAndVerify(name);
  });

  it('starts while the filesystem location is down, with one warning line naming it, and serves from S3', async () => {
    await wharf!.stop({ keepData: true });
    const dataDir = wharf!.dataDir;
    await rename(fsDir, `${fsDir}.away`);
    await writeFile(fsDir, 'the location is down');
    try {
      wharf = await startWharf({ env, dataDir, organizations: [] });
      registerCredentials(wharf.host, wharf.admin);
      const warnings = wharf
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"location":"fs"'));
      assert.equal(warnings.length, 1, wharf.stdout());
      assert.match(warnings[0]!, /"level":40.*storage location is down at start/);
      await pullAndVerify('during');
    } finally {
      await rm(fsDir, { force: true });
      await rename(`${fsDir}.away`, fsDir);
    }
  });

  it('a location down at start that comes back as other storage (an empty directory) stays unused, and is used once the right one is back', async () => {
    await wharf!.stop({ keepData: true });
    const dataDir = wharf!.dataDir;
    await rename(fsDir, `${fsDir}.away`);
    await writeFile(fsDir, 'the location is down');
    const probe = async (n: number) => {
      const body = `identity probe ${n}`;
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      const res = await adminFetch(`${wharf!.url}/v2/e2e/geo-probe/blobs/uploads/?digest=${digest}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(res.status, 201, await res.text());
      return digest;
    };
    try {
      wharf = await startWharf({ env, dataDir, organizations: [] });
      registerCredentials(wharf.host, wharf.admin);
      // Another directory appears where the location was: it holds no identity marker.
      await rm(fsDir, { force: true });
      await mkdir(fsDir);
      let n = 0;
      await waitFor('the location refused once it answers', async () => (await probe(n++), wharf!.stdout().includes('storage location is back but is not the storage the database knows')), 30_000, 500);
      const refusals = wharf.stdout().split('\n').filter((l) => l.includes('is not the storage the database knows'));
      assert.equal(refusals.length, 1, 'one error line, not one per check');
      assert.match(refusals[0]!, /"level":50.*"location":"fs".*the storage holds no marker/);
      const late = await probe(n++);
      assert.deepEqual(await geo.held('s3', [late]), [true]);
      assert.deepEqual(await readdir(fsDir), [], 'nothing written into the other directory');
    } finally {
      await rm(fsDir, { recursive: true, force: true });
      await rename(`${fsDir}.away`, fsDir);
    }
    let n = 100;
    await waitFor('a new blob placed in the filesystem location again', async () => (await geo.held('fs', [await probe(n++)]))[0]!, 30_000, 500);
    await pullAndVerify('before');
  });
});
