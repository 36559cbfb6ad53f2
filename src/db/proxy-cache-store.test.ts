/** ProxyCacheStore and migration 0003 on SQLite and PostgreSQL. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import type { DatabaseHandle } from './connect.js';
import { NamespaceStore } from './namespace-store.js';
import { OrganizationStore } from './organization-store.js';
import { ProxyCacheStore, type ProxyCacheFields } from './proxy-cache-store.js';
import { RepositoryStore } from './repository-store.js';
import { UserStore } from './user-store.js';

const fields = (over: Partial<ProxyCacheFields> = {}): ProxyCacheFields => ({
  upstreamRegistry: 'docker.io',
  insecure: false,
  expirationS: 86_400,
  anonymousPull: false,
  revalidateIntervalS: 0,
  prefetchLayers: false,
  answersFor: ['docker.io'],
  usernameEnc: null,
  passwordEnc: null,
  ...over,
});

for (const dialect of DIALECTS) {
  describe(`ProxyCacheStore (${dialect})`, () => {
    let h: DatabaseHandle;
    let store: ProxyCacheStore;
    let orgs: OrganizationStore;
    let namespaces: NamespaceStore;
    let creatorId: number;
    before(async () => {
      h = await openTestDatabase(dialect);
      store = new ProxyCacheStore(h.db, h.dialect);
      orgs = new OrganizationStore(h.db, h.dialect);
      namespaces = new NamespaceStore(h.db, h.dialect);
      creatorId = (await new UserStore(h.db, h.dialect).create({ name: 'olga', email: null, passwordHash: null, superuser: false }))!.id;
    });
    after(async () => h.close());

    const org = async (name: string) => (await orgs.create({ name, email: null, creatorUserId: creatorId }))!.id;

    it('creates, finds by id and by organization, lists, updates and deletes', async () => {
      const hub = await org('hub');
      const quay = await org('quay-cache');
      assert.equal(await store.findByNamespaceId(hub), undefined);
      const created = await store.create(hub, fields({ usernameEnc: 'v1:a', passwordEnc: 'v1:b', anonymousPull: true }), 1_000);
      assert.deepEqual(created, {
        namespaceId: hub,
        organization: 'hub',
        ...fields({ usernameEnc: 'v1:a', passwordEnc: 'v1:b', anonymousPull: true }),
        createdAt: 1_000,
        updatedAt: 1_000,
      });
      assert.equal(await store.create(hub, fields(), 1_001), undefined, 'one configuration per organization');
      assert.deepEqual(await store.findByOrganization('hub'), created);
      assert.equal(await store.findByOrganization('nosuch'), undefined);

      await store.create(quay, fields({ upstreamRegistry: '10.0.0.5:5000/team', insecure: true, expirationS: 0, answersFor: ['10.0.0.5:5000', 'ghcr.io'] }), 2_000);
      assert.deepEqual((await store.list()).map((r) => [r.organization, r.upstreamRegistry, r.insecure, r.expirationS, r.answersFor]), [
        ['hub', 'docker.io', false, 86_400, ['docker.io']],
        ['quay-cache', '10.0.0.5:5000/team', true, 0, ['10.0.0.5:5000', 'ghcr.io']],
      ]);

      const updated = await store.update(hub, { expirationS: 315_360_000, prefetchLayers: true, revalidateIntervalS: 30, usernameEnc: null, passwordEnc: null }, 3_000);
      assert.deepEqual(
        [updated?.expirationS, updated?.prefetchLayers, updated?.revalidateIntervalS, updated?.usernameEnc, updated?.passwordEnc, updated?.anonymousPull, updated?.createdAt, updated?.updatedAt],
        [315_360_000, true, 30, null, null, true, 1_000, 3_000],
      );
      assert.equal(await store.update(99_999, { insecure: true }), undefined);

      assert.equal(await store.delete(hub), true);
      assert.equal(await store.delete(hub), false);
      assert.equal(await store.findByNamespaceId(hub), undefined);
      assert.equal((await namespaces.findByName('hub'))?.kind, 'org', 'the organization stays');
    });

    it('goes with its organization (cascade) and leaves repositories alone when deleted', async () => {
      const id = await org('gone');
      await store.create(id, fields({ answersFor: [] }));
      const repos = new RepositoryStore(h.db, h.dialect);
      await repos.create('gone', 'library/nginx', { visibility: 'private' });
      assert.equal(await store.delete(id), true);
      assert.ok(await repos.find('gone', 'library/nginx'), 'cached repositories stay as ordinary repositories');
      await store.create(id, fields({ answersFor: [] }));
      assert.equal(await namespaces.delete(id), true);
      assert.equal(await store.findByNamespaceId(id), undefined);
    });

    it('gives tags a nullable expires_at', async () => {
      const cols = await h.db.selectFrom('tags').select(['expires_at']).limit(1).execute();
      assert.deepEqual(cols, []);
    });
  });
}
