import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { digestOf, type Digest } from '../oci/digest.js';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import { BlobStore } from './blob-store.js';
import type { DatabaseHandle } from './connect.js';
import { ManifestStore } from './manifest-store.js';
import { RepositoryStore } from './repository-store.js';
import { UploadStore } from './upload-store.js';

for (const dialect of DIALECTS) {
  describe(`SQL stores (${dialect})`, () => {
    let h: DatabaseHandle;
    let repos: RepositoryStore;
    let blobs: BlobStore;
    let manifests: ManifestStore;
    before(async () => {
      h = await openTestDatabase(dialect);
      repos = new RepositoryStore(h.db, h.dialect);
      blobs = new BlobStore(h.db);
      manifests = new ManifestStore(h.db, h.dialect);
    });
    after(async () => h.close());

    const manifest = async (repositoryId: number, seed: string, tag?: string) => {
      const content = Buffer.from(`{"seed":"${seed}"}`);
      const digest = digestOf(content);
      const res = await manifests.put({ repositoryId, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobDigests: [], childDigests: [], tag });
      assert.ok(res.ok);
      return digest;
    };

    it('creates repositories idempotently under concurrency', async () => {
      const made = await Promise.all(Array.from({ length: 10 }, () => repos.ensure('conc', 'repo')));
      assert.equal(new Set(made.map((r) => r.id)).size, 1);
      assert.deepEqual(await repos.find('conc', 'repo'), made[0]);
      assert.equal(await repos.find('conc', 'other'), undefined);
    });

    it('never shows a precompiled read the uncommitted rows of an open transaction', async () => {
      let inserted!: () => void;
      let release!: () => void;
      const insertedP = new Promise<void>((r) => (inserted = r));
      const gate = new Promise<void>((r) => (release = r));
      const tx = h.db.transaction().execute(async (trx) => {
        const ns = await trx.insertInto('namespaces').values({ name: 'uncommitted', created_at: 1 }).returning('id').executeTakeFirstOrThrow();
        await trx.insertInto('repositories').values({ namespace_id: ns.id, name: 'app', created_at: 1 }).execute();
        inserted();
        await gate;
        throw new Error('roll back');
      });
      await insertedP;
      const read = repos.findDetails('uncommitted', 'app');
      release();
      await assert.rejects(tx, /roll back/);
      assert.equal(await read, undefined);
      assert.equal(await repos.find('uncommitted', 'app'), undefined);
    });

    it('orders catalog names byte-wise, across namespaces', async () => {
      for (const [ns, name] of [['a-x', 'c'], ['a', 'b'], ['a', 'B'], ['Z', 'z']] as const) await repos.ensure(ns, name);
      const names = await repos.listNames({ limit: 100 });
      const ours = names.filter((n) => /^(a|a-x|Z)\//.test(n));
      assert.deepEqual(ours, ['Z/z', 'a-x/c', 'a/B', 'a/b']);
      assert.deepEqual((await repos.listNames({ last: 'a-x/c', limit: 1 })), ['a/B']);
    });

    it('keeps tag history when a tag moves or is deleted', async () => {
      const repo = await repos.ensure('hist', 'app');
      const one = await manifest(repo.id, 'one', 'latest');
      const two = await manifest(repo.id, 'two', 'latest');
      await manifest(repo.id, 'two', 'latest');
      assert.equal((await manifests.findByName('hist', 'app', { tag: 'latest' }))?.digest, two);
      assert.equal(await manifests.deleteTag(repo.id, 'latest'), true);
      assert.equal(await manifests.deleteTag(repo.id, 'latest'), false);
      const rows = await h.db
        .selectFrom('tags as t')
        .innerJoin('manifests as m', 'm.id', 't.manifest_id')
        .select(['m.digest', 't.lifetime_start', 't.lifetime_end'])
        .where('t.repository_id', '=', repo.id)
        .orderBy('t.id')
        .execute();
      assert.deepEqual(rows.map((r) => r.digest), [one, two]);
      assert.ok(rows.every((r) => r.lifetime_end !== null && r.lifetime_end >= r.lifetime_start));
      assert.deepEqual(await manifests.listTags(repo.id, { limit: 10 }), []);
    });

    it('keeps exactly one live row per tag when pushes race', async () => {
      const repo = await repos.ensure('race', 'app');
      const digests = await Promise.all(Array.from({ length: 12 }, (_, i) => manifest(repo.id, `r${i}`)));
      const results = await Promise.allSettled(
        digests.map((digest) =>
          manifests.put({ repositoryId: repo.id, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', content: Buffer.from('unused'), blobDigests: [], childDigests: [], tag: 'hot' }),
        ),
      );
      const live = await h.db.selectFrom('tags').select('manifest_id').where('repository_id', '=', repo.id).where('name', '=', 'hot').where('lifetime_end', 'is', null).execute();
      assert.equal(live.length, 1);
      for (const r of results) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
    });

    it('refuses manifests naming blobs that are not linked, and records links when they are', async () => {
      const repo = await repos.ensure('links', 'app');
      const blob = digestOf(Buffer.from('layer')) as Digest;
      const content = Buffer.from('{"m":1}');
      const w = { repositoryId: repo.id, digest: digestOf(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobDigests: [blob], childDigests: [] };
      assert.deepEqual(await manifests.put(w), { ok: false, missingBlobs: [blob], missingChildren: [] });
      await blobs.link(repo.id, blob, 5);
      await blobs.link(repo.id, blob, 5);
      const res = await manifests.put(w);
      assert.ok(res.ok && res.created);
      const again = await manifests.put(w);
      assert.ok(again.ok && !again.created);
      const links = await h.db.selectFrom('manifest_blobs').selectAll().where('manifest_id', '=', res.manifestId).execute();
      assert.equal(links.length, 1);
      assert.deepEqual((await blobs.repositoriesLinking(blob)).map((r) => r.name), ['links/app']);
    });

    it('tracks uploads and their activity', async () => {
      const uploads = new UploadStore(h.db);
      const repo = await repos.ensure('up', 'app');
      await uploads.create('00000000-0000-4000-8000-000000000001', repo.id);
      assert.equal(await uploads.touch('00000000-0000-4000-8000-000000000001', 10), true);
      assert.equal(await uploads.touch('00000000-0000-4000-8000-000000000002', 10), false);
      assert.equal((await uploads.find('00000000-0000-4000-8000-000000000001', repo.id))?.size, 10);
      assert.equal((await uploads.stale(Date.now() + 1000)).length >= 1, true);
      assert.equal(await uploads.delete('00000000-0000-4000-8000-000000000001'), true);
    });
  });
}
