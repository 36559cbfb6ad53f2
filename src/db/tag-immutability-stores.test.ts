/**
 * The stores keep immutable tags as registry/tag-immutability.ts says, on SQLite and PostgreSQL: what
 * the API and `/v2` tests do not reach — a proxy-cache write onto an immutable tag, the cache's expiry
 * refresh, quota eviction — and the refusals that roll a write back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { digestOf, type Digest } from '../oci/digest.js';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import type { DatabaseHandle } from './connect.js';
import { EvictionStore } from './eviction-store.js';
import { ManifestStore } from './manifest-store.js';
import { RepositoryStore } from './repository-store.js';
import { TagHistoryStore } from './tag-history-store.js';
import { TagImmutable } from './tag-immutable.js';

for (const dialect of DIALECTS) {
  describe(`stores and immutable tags (${dialect})`, () => {
    let h: DatabaseHandle;
    let manifests: ManifestStore;
    let history: TagHistoryStore;
    let repo: { id: number };
    let namespaceId: number;
    before(async () => {
      h = await openTestDatabase(dialect);
      manifests = new ManifestStore(h.db, h.dialect);
      history = new TagHistoryStore(h.db, h.dialect);
      repo = await new RepositoryStore(h.db, h.dialect).ensure('cache', 'app');
      namespaceId = Number((await h.db.selectFrom('repositories').select('namespace_id').where('id', '=', repo.id).executeTakeFirstOrThrow()).namespace_id);
    });
    after(async () => h.close());

    const put = async (seed: string, tag: string, opts: { lazy?: boolean; expiresAt?: number | null } = {}) => {
      const content = Buffer.from(`{"seed":"${seed}"}`);
      const digest = digestOf(content);
      const res = await manifests.put({ repositoryId: repo.id, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobDigests: [], childDigests: [], tag, lazy: opts.lazy, tagExpiresAt: opts.expiresAt });
      assert.ok(res.ok);
      return digest;
    };
    const live = async (tag: string) => (await history.list(repo.id, { onlyActive: true, name: tag, offset: 0, limit: 5 }))[0];

    it('a cache write onto an immutable tag stores the manifest and leaves the tag; a push is refused and rolled back', async () => {
      const first = await put('one', 'v1', { lazy: true, expiresAt: Date.now() + 60_000 });
      assert.deepEqual(await history.setImmutable(repo.id, 'v1', true), { digest: first, previous: false });
      assert.equal((await live('v1'))?.expiresAt, undefined, 'marking clears the expiry');
      const second = await put('two', 'v1', { lazy: true, expiresAt: Date.now() + 60_000 });
      assert.equal((await live('v1'))?.digest, first);
      assert.ok(await manifests.findByDigest(repo.id, second as Digest), 'the cached manifest is stored');
      const content = Buffer.from('{"seed":"three"}');
      await assert.rejects(
        manifests.put({ repositoryId: repo.id, digest: digestOf(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobDigests: [], childDigests: [], tag: 'v1' }),
        (err: unknown) => err instanceof TagImmutable && err.tag === 'v1',
      );
      assert.equal(await manifests.findByDigest(repo.id, digestOf(content)), undefined, 'nothing of the refused push is kept');
    });

    it('the cache never gives an immutable tag an expiry, and eviction passes it over', async () => {
      assert.equal(await manifests.setTagExpiry(repo.id, 'v1', Date.now() + 1000), false);
      assert.equal((await live('v1'))?.expiresAt, undefined);
      await put('four', 'other', { lazy: true, expiresAt: Date.now() + 120_000 });
      const eviction = new EvictionStore(h.db);
      const victim = await eviction.leastRecentlyPulled(namespaceId, Date.now());
      assert.equal(victim?.tag, 'other');
      assert.deepEqual(await eviction.evict({ ...victim!, tag: 'v1' }), [], 'an immutable tag is not evicted even when named');
      assert.ok(await live('v1'));
    });

    it('refuses to end, expire, purge or delete by digest an immutable tag, changing nothing', async () => {
      const target = (await live('v1'))!.digest;
      await assert.rejects(history.end(repo.id, 'v1'), TagImmutable);
      await assert.rejects(history.setExpiry(repo.id, 'v1', Date.now() + 1000), TagImmutable);
      assert.deepEqual(await history.setExpiry(repo.id, 'v1', null), { digest: target, previous: null }, 'clearing an expiry is allowed');
      await assert.rejects(history.purge(repo.id, 'v1'), TagImmutable);
      await assert.rejects(manifests.deleteTag(repo.id, 'v1'), TagImmutable);
      await assert.rejects(manifests.deleteByDigest(repo.id, target), TagImmutable);
      assert.equal((await live('v1'))?.digest, target);
      assert.equal(await manifests.deleteTag(repo.id, 'nope'), false);
      assert.deepEqual(await history.setImmutable(repo.id, 'v1', false), { digest: target, previous: true });
      assert.equal(await manifests.deleteTag(repo.id, 'v1'), true);
    });
  });
}
