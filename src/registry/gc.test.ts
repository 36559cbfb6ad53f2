/**
 * Garbage collection on SQLite and PostgreSQL with the filesystem driver: what a pass removes and what
 * it keeps, time-machine windows, grace periods, the dry run, and the per-digest guard against pushes.
 * The collector's clock is moved forward instead of waiting.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobGuardStore } from '../db/blob-guard-store.js';
import { GcPreviewStore } from '../db/gc-preview-store.js';
import { GcStore } from '../db/gc-store.js';
import { ManifestStore } from '../db/manifest-store.js';
import type { Digest } from '../oci/digest.js';
import { FsBlobDriver } from '../storage/fs/fs-blob-driver.js';
import { blobKey } from '../storage/keys.js';
import { buildTestApp, type TestApp } from '../../test/helpers/app.js';
import { DIALECTS } from '../../test/helpers/databases.js';
import { assertLiveContentReadable, unreferencedContent } from '../../test/helpers/gc-invariants.js';
import { pushBlob, pushImage, sha256 } from '../../test/helpers/inject-client.js';
import { GarbageCollector } from './gc.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

for (const dialect of DIALECTS) {
  describe(`garbage collection (${dialect})`, () => {
    let t: TestApp;
    let dir: string;
    let storage: FsBlobDriver;
    let clock = Date.now();
    let gc: GarbageCollector;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'wharf-gc-'));
      storage = new FsBlobDriver(dir, { fsync: false });
      t = await buildTestApp(dialect, { storage, config: { 'auth.enabled': false } });
      // Batches of two rows, so that every step pages.
      gc = new GarbageCollector(
        { store: new GcStore(t.db.db, t.db.dialect), preview: new GcPreviewStore(t.db.db), guards: new BlobGuardStore(t.db.db, t.db.dialect), storage },
        { gracePeriodMs: HOUR, timeMachineDefaultMs: 14 * DAY, batchSize: 2, now: () => clock },
      );
    });
    after(async () => {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    });

    const at = async (offsetMs: number, dryRun = false) => {
      clock = Date.now() + offsetMs;
      return gc.run({ dryRun });
    };
    const inject = (method: 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'POST', url: string, payload?: Buffer | string, headers: Record<string, string> = {}) =>
      t.app.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers });
    const manifestStatus = async (name: string, ref: string) => (await inject('GET', `/v2/${name}/manifests/${ref}`, undefined, { accept: '*/*' })).statusCode;
    const stored = async (digest: string) => (await storage.stat(blobKey(digest as Digest))) !== undefined;
    const pushIndex = async (name: string, ref: string, children: Array<{ digest: string; size: number }>, extra: Record<string, unknown> = {}) => {
      const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c) => ({ mediaType: OCI_MANIFEST, ...c })), ...extra }));
      const res = await inject('PUT', `/v2/${name}/manifests/${ref}`, body, { 'content-type': OCI_INDEX });
      assert.equal(res.statusCode, 201, res.body);
      return sha256(body);
    };
    const leftovers = (offsetMs: number, graceMs = HOUR) => unreferencedContent(t.db, storage, { now: Date.now() + offsetMs, graceMs, defaultWindowMs: 14 * DAY });

    it('keeps everything referenced and recent; removes history past the window with what only it kept', async () => {
      const live = await pushImage(t.app, 'gc/app', 'live', 'live');
      const old = await pushImage(t.app, 'gc/app', 'old', 'old');
      assert.equal((await inject('DELETE', `/v2/gc/app/manifests/old`)).statusCode, 202);
      // A blob shared by the deleted image and a live one survives it.
      const shared = await pushImage(t.app, 'gc/app', 'shared', 'old', { annotations: { again: 'yes' } });
      assert.equal(shared.layerDigest, old.layerDigest);
      assert.notEqual(shared.digest, old.digest);
      // An index (tagged) whose children were pushed by digest; then its tag is deleted too.
      const amd = await pushImage(t.app, 'gc/multi', 'sha256-placeholder', 'amd64');
      const arm = await pushImage(t.app, 'gc/multi', 'arm-tmp', 'arm64');
      const indexDigest = await pushIndex('gc/multi', 'v1', [
        { digest: amd.digest, size: amd.body.length },
        { digest: arm.digest, size: arm.body.length },
      ]);
      for (const tag of ['sha256-placeholder', 'arm-tmp']) assert.equal((await inject('DELETE', `/v2/gc/multi/manifests/${tag}`)).statusCode, 202);
      // A referrer (untagged) of a live image, and one of the index.
      const sbom = await pushImage(t.app, 'gc/app', 'sbom-tmp', 'sbom', { subject: { mediaType: OCI_MANIFEST, digest: live.digest, size: live.body.length }, artifactType: 'application/spdx+json' });
      assert.equal((await inject('DELETE', `/v2/gc/app/manifests/sbom-tmp`)).statusCode, 202);
      const sig = await pushImage(t.app, 'gc/multi', 'sig-tmp', 'sig', { subject: { mediaType: OCI_INDEX, digest: indexDigest, size: 1 }, artifactType: 'application/vnd.dev.cosign' });
      assert.equal((await inject('DELETE', `/v2/gc/multi/manifests/sig-tmp`)).statusCode, 202);
      // A subject is not kept by its (tagged) referrer.
      const subject = await pushImage(t.app, 'gc/app', 'subject-tmp', 'subject');
      const att = await pushImage(t.app, 'gc/app', 'attestation', 'att', { subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.body.length } });
      assert.equal((await inject('DELETE', `/v2/gc/app/manifests/subject-tmp`)).statusCode, 202);
      assert.equal((await inject('DELETE', `/v2/gc/multi/manifests/v1`)).statusCode, 202);
      // An uploaded blob no manifest uses.
      const orphan = await pushBlob(t.app, 'gc/app', 'orphan bytes');

      // Within the grace period and the window: nothing goes.
      let r = await at(0);
      assert.deepEqual([r.tags, r.manifests.count, r.links, r.blobs.count], [0, 0, 0, 0]);
      // A day later: grace is over for the orphan blob; history is still in the window.
      const preview = await at(DAY, true);
      r = await at(DAY);
      assert.deepEqual([r.tags, r.manifests.count, r.links, r.blobs.count], [0, 0, 1, 1]);
      assert.deepEqual([preview.manifests.count, preview.links, preview.blobs.count], [0, 1, 1]);
      assert.deepEqual(r.blobs.sample, [orphan]);
      assert.equal(await stored(orphan), false);
      assert.equal((await inject('HEAD', `/v2/gc/app/blobs/${orphan}`)).statusCode, 404);
      for (const d of [old.digest, amd.digest, indexDigest, sbom.digest, sig.digest, subject.digest]) assert.equal(await manifestStatus(d === amd.digest || d === indexDigest || d === sig.digest ? 'gc/multi' : 'gc/app', d), 200, d);

      // Past the two-week window: the history goes, then what only it kept.
      const dry = await at(15 * DAY, true);
      r = await at(15 * DAY);
      assert.equal(r.dryRun, false);
      const gone = [old.digest, amd.digest, arm.digest, indexDigest, sig.digest, subject.digest].sort();
      assert.deepEqual([...r.manifests.sample].sort(), gone);
      assert.deepEqual([dry.tags, dry.manifests.count, dry.links, dry.blobs.count, dry.manifests.bytes, dry.blobs.bytes], [r.tags, r.manifests.count, r.links, r.blobs.count, r.manifests.bytes, r.blobs.bytes]);
      assert.deepEqual([...dry.manifests.sample].sort(), gone);
      assert.deepEqual([...dry.blobs.sample].sort(), [...r.blobs.sample].sort());
      for (const d of gone) assert.equal(await manifestStatus(d === old.digest || d === subject.digest ? 'gc/app' : 'gc/multi', d), 404, d);
      // Kept: live tags, a referrer of a live subject, a tagged referrer whose subject went, shared blobs.
      for (const ref of ['live', 'shared', 'attestation', sbom.digest]) assert.equal(await manifestStatus('gc/app', ref), 200, ref);
      assert.equal(await stored(old.layerDigest), true);
      assert.equal(await stored(old.configDigest), true);
      for (const d of [amd.layerDigest, arm.configDigest, sig.layerDigest, subject.layerDigest]) assert.equal(await stored(d), false, d);
      assert.equal(await stored(att.layerDigest), true);
      assert.equal(await assertLiveContentReadable(t.app, t.db), 3);
      assert.deepEqual(await leftovers(15 * DAY), { manifests: [], links: 0, blobs: [], strayBytes: [], missingBytes: [] });
      // Nothing left for a second pass.
      r = await at(15 * DAY);
      assert.deepEqual([r.tags, r.manifests.count, r.links, r.blobs.count], [0, 0, 0, 0]);
    });

    it('treats an expired tag as history from its expiry, and honours a namespace window of its own', async () => {
      const img = await pushImage(t.app, 'short/app', 'v1', 'short');
      const repo = await t.registry.repositories.get('short/app' as never);
      await t.registry.tags.setExpiration(repo, 'v1' as never, Date.now() + 1000);
      await t.registry.timeMachine.setWindow('short', 86_400);
      assert.equal((await at(12 * HOUR)).manifests.count, 0, 'expired half a day ago: within the one-day window');
      const r = await at(2 * DAY);
      assert.deepEqual([r.tags, r.manifests.count], [1, 1]);
      assert.equal(await stored(img.layerDigest), false);
    });

    it('spares manifests pushed within the grace period (index children pushed by digest) and renews it on a re-push', async () => {
      const child = await pushImage(t.app, 'grace/app', 'tmp', 'child');
      assert.equal((await inject('DELETE', `/v2/grace/app/manifests/tmp`)).statusCode, 202);
      await t.db.db.updateTable('tags').set({ lifetime_end: Date.now() - 20 * DAY }).where('manifest_id', 'in', t.db.db.selectFrom('manifests').select('id').where('digest', '=', child.digest)).execute();
      await t.db.db.updateTable('manifests').set({ created_at: Date.now() - 2 * HOUR }).where('digest', '=', child.digest).execute();
      // Pushed again by digest just now: spared although its creation and its history are old.
      const again = await inject('PUT', `/v2/grace/app/manifests/${child.digest}`, child.body, { 'content-type': OCI_MANIFEST });
      assert.equal(again.statusCode, 201);
      assert.equal((await at(0)).manifests.count, 0);
      assert.equal((await at(2 * HOUR)).manifests.count, 1);
    });

    it('deletes an expired hidden proxy tag at once, with its manifest', async () => {
      const repo = await t.registry.repositories.ensure('cache/lib/app' as never);
      const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], annotations: { cached: 'yes' } }));
      const digest = sha256(content) as Digest;
      const store = new ManifestStore(t.db.db, t.db.dialect);
      const res = await store.put({ repositoryId: repo.id, digest, mediaType: OCI_INDEX, content, blobDigests: [], childDigests: [], tag: `$proxy-${digest}`, hiddenTag: true, tagExpiresAt: Date.now() + HOUR, lazy: true });
      assert.ok(res.ok);
      assert.deepEqual([(await at(HOUR / 2)).tags, (await at(HOUR / 2)).manifests.count], [0, 0], 'not expired yet');
      const r = await at(2 * HOUR);
      assert.deepEqual([r.tags, r.manifests.sample], [1, [digest]]);
    });

    it('never deletes the bytes of a blob an upload completes while GC deletes it', async () => {
      const data = Buffer.from('re-uploaded while collected');
      const digest = await pushBlob(t.app, 'race/app', data);
      // An upload of the same bytes is open (in progress, under uploads/) while GC removes the orphan.
      const start = await inject('POST', '/v2/race/other/blobs/uploads/');
      assert.equal(start.statusCode, 202);
      const location = String(start.headers.location);
      assert.equal((await inject('PATCH', location, data, { 'content-type': 'application/octet-stream' })).statusCode, 202);
      const r = await at(2 * HOUR);
      assert.ok(r.blobs.sample.includes(digest as Digest));
      assert.equal(await stored(digest), false);
      const done = await inject('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`);
      assert.equal(done.statusCode, 201, done.body);
      assert.equal((await inject('GET', `/v2/race/other/blobs/${digest}`)).body, data.toString());

      // A writer registered while GC looks at the digest: GC leaves the blob alone.
      const guards = new BlobGuardStore(t.db.db, t.db.dialect);
      await t.db.db.updateTable('repository_blobs').set({ created_at: Date.now() - 2 * HOUR }).execute();
      const guard = await guards.beginWrite(digest, Date.now(), Date.now() + 10 * HOUR);
      assert.notEqual(guard, undefined);
      const held = await at(2 * HOUR);
      assert.equal(held.blobs.sample.includes(digest as Digest), false);
      assert.equal(await stored(digest), true);
      await guards.release([guard!]);
      // And GC's own guard holds writers off while it deletes the bytes.
      const gcGuard = await t.db.db.insertInto('blob_guards').values({ digest, kind: 'delete', expires_at: Date.now() + 60_000 }).returning('id').executeTakeFirstOrThrow();
      assert.equal(await guards.beginWrite(digest, Date.now(), Date.now() + HOUR), undefined);
      await guards.release([Number(gcGuard.id)]);
      assert.notEqual(await guards.beginWrite(digest, Date.now(), Date.now() + HOUR), undefined);
    });

    it('leaves nothing collectable after two passes', async () => {
      await at(30 * DAY);
      await at(30 * DAY);
      const left = await leftovers(30 * DAY);
      assert.deepEqual({ ...left, strayBytes: [] }, { manifests: [], links: 0, blobs: [], strayBytes: [], missingBytes: [] });
      assert.deepEqual(left.strayBytes, []);
    });
  });
}
