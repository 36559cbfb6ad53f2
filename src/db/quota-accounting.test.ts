import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { digestOf, type Digest } from '../oci/digest.js';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import { BlobStore } from './blob-store.js';
import type { DatabaseHandle } from './connect.js';
import { GcStore } from './gc-store.js';
import { ManifestStore, QuotaExceeded } from './manifest-store.js';
import { QuotaAccounting } from './quota-accounting.js';
import { QuotaStore } from './quota-store.js';
import { RepositoryStore } from './repository-store.js';

for (const dialect of DIALECTS) {
  describe(`quota accounting (${dialect})`, () => {
    let h: DatabaseHandle;
    let repos: RepositoryStore;
    let blobs: BlobStore;
    let manifests: ManifestStore;
    let quotas: QuotaStore;
    let accounting: QuotaAccounting;
    before(async () => {
      h = await openTestDatabase(dialect);
      repos = new RepositoryStore(h.db, h.dialect);
      blobs = new BlobStore(h.db);
      manifests = new ManifestStore(h.db, h.dialect);
      quotas = new QuotaStore(h.db, h.dialect);
      accounting = new QuotaAccounting(h.db, h.dialect);
    });
    after(async () => h.close());

    let seq = 0;
    /** A blob of `size` bytes linked into the repository. */
    const blob = async (repositoryId: number, size: number, digest = digestOf(Buffer.from(`blob-${seq++}`))) => {
      await blobs.link(repositoryId, digest, size);
      return digest;
    };
    const image = async (repositoryId: number, layers: Digest[], tag?: string) => {
      const content = Buffer.from(JSON.stringify({ layers, n: seq++ }));
      const digest = digestOf(content);
      const res = await manifests.put({ repositoryId, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobDigests: layers, childDigests: [], tag });
      assert.ok(res.ok);
      return { digest, res };
    };
    const index = async (repositoryId: number, children: Digest[], tag?: string) => {
      const content = Buffer.from(JSON.stringify({ children, n: seq++ }));
      const digest = digestOf(content);
      const res = await manifests.put({ repositoryId, digest, mediaType: 'application/vnd.oci.image.index.v1+json', content, blobDigests: [], childDigests: children, tag });
      assert.ok(res.ok);
      return digest;
    };
    const nsId = async (name: string) => Number((await h.db.selectFrom('namespaces').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id);
    const repoSize = async (id: number) => (await quotas.repositorySizes([id])).get(id) ?? 0;
    const nsSize = async (name: string) => quotas.namespaceSize(await nsId(name));

    it('counts a blob once per repository and once per namespace, and releases it with its last manifest', async () => {
      const r1 = await repos.ensure('acme', 'one');
      const r2 = await repos.ensure('acme', 'two');
      const a = await blob(r1.id, 100);
      const b = await blob(r1.id, 20);
      const c = await blob(r1.id, 3);
      await blobs.link(r2.id, a, 100);
      const m1 = await image(r1.id, [a, b], 'v1');
      assert.deepEqual(m1.res.ok && m1.res.charge, { namespaceId: await nsId('acme'), added: 120, after: 120 });
      const m2 = await image(r1.id, [b, c], 'v2');
      assert.equal(m2.res.ok && m2.res.charge?.added, 3);
      assert.equal(await repoSize(r1.id), 123);
      const m3 = await image(r2.id, [a], 'v1');
      assert.equal(m3.res.ok && m3.res.charge?.added, 0, 'a is in the namespace already');
      assert.equal(await repoSize(r2.id), 100);
      assert.equal(await nsSize('acme'), 123);

      // The same manifest pushed again, or tagged again, adds nothing.
      await manifests.put({ repositoryId: r1.id, digest: m1.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', content: Buffer.from('x'), blobDigests: [a, b], childDigests: [], tag: 'again' });
      assert.equal(await repoSize(r1.id), 123);

      assert.equal((await manifests.deleteByDigest(r1.id, m1.digest)).deleted, true);
      assert.equal(await repoSize(r1.id), 23, 'a left repository one; b is still used by m2');
      assert.equal(await nsSize('acme'), 123, 'a is still used in repository two');
      await repos.delete(r2.id);
      assert.equal(await nsSize('acme'), 23);
      const report = await accounting.recount({ dryRun: true });
      assert.deepEqual(report.drift, { repositories: [], namespaces: [], blobCounts: 0 });
    });

    it('counts an index through its children', async () => {
      const r = await repos.ensure('multi', 'app');
      const shared = await blob(r.id, 1000);
      const amd = await image(r.id, [shared, await blob(r.id, 10)]);
      const arm = await image(r.id, [shared, await blob(r.id, 20)]);
      const idx = await index(r.id, [amd.digest, arm.digest], 'latest');
      assert.equal(await nsSize('multi'), 1030);
      assert.equal((await manifests.deleteByDigest(r.id, idx)).deleted, true);
      assert.equal(await nsSize('multi'), 1030, 'the children stay');
      await manifests.deleteByDigest(r.id, amd.digest);
      await manifests.deleteByDigest(r.id, arm.digest);
      assert.equal(await nsSize('multi'), 0);
    });

    it('drops sizes when garbage collection deletes manifests', async () => {
      const r = await repos.ensure('gcns', 'app');
      const a = await blob(r.id, 500);
      await image(r.id, [a], 'v1');
      await manifests.deleteTag(r.id, 'v1');
      assert.equal(await nsSize('gcns'), 500, 'a deleted tag is in the time machine: its content still counts');
      await h.db.deleteFrom('tags').where('repository_id', '=', r.id).execute();
      const gc = new GcStore(h.db, h.dialect);
      const clock = { now: Date.now() + 10_000, graceCutoff: Date.now() + 10_000, defaultWindowMs: 0 };
      const ids = await gc.manifestCandidates(clock, 0, 100);
      await gc.deleteManifests(ids, clock);
      assert.equal(await nsSize('gcns'), 0);
      assert.equal(await repoSize(r.id), 0);
    });

    it('refuses a manifest that would cross a Reject limit, storing nothing of it', async () => {
      const r = await repos.ensure('capped', 'app');
      const ns = await nsId('capped');
      const q = await quotas.create(ns, 1000);
      assert.ok(q);
      await quotas.addLimit(q.id, 'Warning', 50);
      await quotas.addLimit(q.id, 'Reject', 90);
      const a = await blob(r.id, 600);
      const b = await blob(r.id, 300);
      const c = await blob(r.id, 301);
      await image(r.id, [a], 'a');
      await image(r.id, [a, b], 'ab'); // 900 = 90 %: at the limit, not over it
      assert.equal(await nsSize('capped'), 900);
      const content = Buffer.from('{"over":1}');
      await assert.rejects(
        manifests.put({ repositoryId: r.id, digest: digestOf(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobDigests: [c], childDigests: [], tag: 'c' }),
        (err: unknown) => err instanceof QuotaExceeded && err.namespaceId === ns && err.limitBytes === 900 && err.wouldUse === 1201,
      );
      assert.equal(await manifests.findByDigest(r.id, digestOf(content)), undefined);
      assert.equal(await manifests.findByName('capped', 'app', { tag: 'c' }), undefined);
      assert.equal(await nsSize('capped'), 900);
      assert.equal(await repoSize(r.id), 900);
      // Nothing new: passes even at the limit.
      await image(r.id, [b], 'b-only');
      // Over the limit after the quota shrinks: content already counted can still be re-tagged.
      await quotas.setLimitBytes(q.id, 500);
      await image(r.id, [a, b], 'retag');
      assert.deepEqual((await accounting.recount({ dryRun: true })).drift, { repositories: [], namespaces: [], blobCounts: 0 });
    });

    it('lets concurrent pushes fill a Reject limit but never cross it', async () => {
      const r = await repos.ensure('race', 'app');
      const q = await quotas.create(await nsId('race'), 10_000);
      await quotas.addLimit(q!.id, 'Reject', 100);
      const layers = await Promise.all(Array.from({ length: 12 }, () => blob(r.id, 2_000)));
      const results = await Promise.allSettled(layers.map((l, i) => image(r.id, [l], `t${i}`)));
      const ok = results.filter((x) => x.status === 'fulfilled').length;
      const refused = results.filter((x) => x.status === 'rejected');
      assert.equal(ok, 5, 'exactly five 2000-byte images fit in 10000 bytes');
      for (const x of refused) assert.ok(x.status === 'rejected' && x.reason instanceof QuotaExceeded, String(x.status === 'rejected' && x.reason));
      assert.equal(await nsSize('race'), 10_000);
    });

    it('recount reports drift, fixes it, and finds none afterwards', async () => {
      const r = await repos.ensure('drift', 'app');
      await image(r.id, [await blob(r.id, 77)], 'v1');
      const ns = await nsId('drift');
      await h.db.updateTable('namespace_sizes').set({ size_bytes: 5 }).where('namespace_id', '=', ns).execute();
      await h.db.deleteFrom('repository_sizes').where('repository_id', '=', r.id).execute();
      await sql`update quota_repository_blobs set refs = refs + 3 where repository_id = ${r.id}`.execute(h.db);
      const dry = await accounting.recount({ dryRun: true });
      assert.deepEqual(dry.drift.namespaces, [{ id: ns, name: 'drift', stored: 5, actual: 77 }]);
      assert.deepEqual(dry.drift.repositories, [{ id: r.id, name: 'drift/app', stored: 0, actual: 77 }]);
      assert.equal(dry.drift.blobCounts, 2, 'one stored row differs from one actual row');
      assert.equal(dry.fixed, false);
      assert.equal(await nsSize('drift'), 5, 'a dry run changes nothing');
      const fixed = await accounting.recount();
      assert.equal(fixed.fixed, true);
      assert.equal(await nsSize('drift'), 77);
      assert.equal(await repoSize(r.id), 77);
      const again = await accounting.recount();
      assert.deepEqual(again.drift, { repositories: [], namespaces: [], blobCounts: 0 });
      assert.equal(again.fixed, false);
    });

    it('counts cached (placeholder) blobs from the moment a lazy manifest is stored', async () => {
      const r = await repos.ensure('cache', 'lib');
      const layer = digestOf(Buffer.from('not yet fetched'));
      const content = Buffer.from('{"lazy":1}');
      const res = await manifests.put({
        repositoryId: r.id,
        digest: digestOf(content),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        content,
        blobDigests: [layer],
        blobSizes: new Map([[layer, 4096]]),
        childDigests: [],
        tag: 'latest',
        lazy: true,
      });
      assert.ok(res.ok && res.charge?.added === 4096);
      assert.equal(await nsSize('cache'), 4096);
    });
  });
}
