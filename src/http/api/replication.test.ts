/**
 * The replication API on both dialects, over a registry whose storage is two filesystem locations: an
 * organization's targets (who may read and change them, unknown locations refused with the stable JSON
 * error), the status of the registry, a namespace and a nested repository as blobs pushed through the
 * registry are replicated, and 404 on a registry with one location.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { buildApiWorld, type ApiWorld } from '../../../test/helpers/api-world.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { fsLocations } from '../../../test/helpers/storage-locations.js';
import { digestOf } from '../../oci/digest.js';
import type { RepositoryName } from '../../oci/reference.js';

/** The queued replication jobs of the world's database. */
async function queued(world: ApiWorld): Promise<Array<{ digest: string; location: string }>> {
  return world.t.db.db.selectFrom('replication_jobs').select(['digest', 'location']).orderBy('id').execute();
}

for (const dialect of DIALECTS) {
  describe(`replication API (${dialect})`, () => {
    let w: ApiWorld;
    let plain: ApiWorld;
    let cleanup: () => Promise<void>;
    before(async () => {
      const fs = await fsLocations(['eu', 'us']);
      cleanup = fs.cleanup;
      w = await buildApiWorld(dialect, { storage: fs.locations });
      plain = await buildApiWorld(dialect);
    });
    after(async () => {
      await w?.t.close();
      await plain?.t.close();
      await cleanup?.();
    });
    const call = (method: 'GET' | 'PUT' | 'DELETE', url: string, who: keyof ApiWorld['auth'], payload?: unknown, world = w) =>
      world.t.app.inject({ method, url: `/api/v1${url}`, headers: world.auth[who], ...(payload === undefined ? {} : { payload: payload as object }) });

    it('shows an organization its targets, the registry-wide ones and the locations', async () => {
      const res = await call('GET', '/organization/orga/replication', 'member');
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { locations: [], registry_targets: ['eu', 'us'], available: ['eu', 'us'] });
      assert.equal((await call('GET', '/organization/orga/replication', 'anonymous')).statusCode, 401);
      assert.equal((await call('GET', '/organization/orga/replication', 'user')).statusCode, 404, 'not a member: the organization does not exist for them');
      assert.equal((await call('GET', '/organization/nosuchorg/replication', 'superuser')).statusCode, 404);
    });

    it('lets admins replace and remove the targets; members may not; unknown locations are a 400', async () => {
      assert.equal((await call('PUT', '/organization/orga/replication', 'member', { locations: ['us'] })).statusCode, 403);
      const put = await call('PUT', '/organization/orga/replication', 'orgadmin', { locations: ['us', 'eu', 'us'] });
      assert.equal(put.statusCode, 200, put.body);
      assert.deepEqual(put.json().locations, ['eu', 'us']);
      const bad = await call('PUT', '/organization/orga/replication', 'orgadmin', { locations: ['eu', 'mars'] });
      assert.equal(bad.statusCode, 400);
      const body = bad.json();
      assert.equal(body.error_type, 'invalid_request');
      assert.equal(body.status, 400);
      assert.match(body.detail, /not a configured storage location: "mars" \(locations: eu, us\)/);
      assert.equal(body.type, '/api/v1/error/invalid_request');
      assert.deepEqual((await call('GET', '/organization/orga/replication', 'member')).json().locations, ['eu', 'us'], 'unchanged by the refused PUT');
      for (const payload of [{ locations: 'eu' }, {}, { locations: [1] }, { locations: ['eu'], extra: true }]) {
        const res = await call('PUT', '/organization/orga/replication', 'orgadmin', payload);
        assert.equal(res.statusCode, 400, JSON.stringify(payload));
        assert.equal(res.json().error_type, 'invalid_request');
      }
      assert.equal((await call('DELETE', '/organization/orga/replication', 'member')).statusCode, 403);
      assert.equal((await call('DELETE', '/organization/orga/replication', 'orgadmin')).statusCode, 204);
      assert.deepEqual((await call('GET', '/organization/orga/replication', 'superuser')).json().locations, []);
    });

    it('reports the replication status of the registry, a namespace and a nested repository (superusers)', async () => {
      const { t } = w;
      const repo = await t.registry.repositories.ensure('orga/team/app' as RepositoryName);
      const bytes = randomBytes(3000);
      const digest = digestOf(bytes);
      await t.registry.uploads.monolithic(repo, digest, Readable.from([bytes]), bytes.length);
      const status = async (scope?: string) => {
        const res = await call('GET', `/replication/status${scope ? `?scope=${encodeURIComponent(scope)}` : ''}`, 'superuser');
        assert.equal(res.statusCode, 200, res.body);
        return res.json();
      };
      // The push was announced by the storage: eu holds it, a copy to us is queued.
      for (let i = 0; i < 500 && (await status('orga/team/app')).locations[1].backlog === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(await status('orga/team/app'), {
        scope: 'orga/team/app',
        blobs: 1,
        bytes: 3000,
        locations: [
          { location: 'eu', blobs: 1, bytes: 3000, backlog: 0, failing: 0, last_error: null },
          { location: 'us', blobs: 0, bytes: 0, backlog: 1, failing: 0, last_error: null },
        ],
      });
      const replication = t.registry.replication!.service;
      for (const job of await replication.claim('test', 10)) await replication.runJob(job);
      const after = await status('orga');
      assert.equal(after.scope, 'orga');
      assert.deepEqual(after.locations[1], { location: 'us', blobs: 1, bytes: 3000, backlog: 0, failing: 0, last_error: null });
      assert.ok((await status()).blobs >= 1);
      assert.equal((await call('GET', '/replication/status?scope=orga/nosuch', 'superuser')).statusCode, 404);
      assert.equal((await call('GET', '/replication/status?scope=nosuchns', 'superuser')).statusCode, 404);
      assert.equal((await call('GET', '/replication/status', 'orgadmin')).statusCode, 403);
    });

    it("queues copies to an organization's targets when a blob the registry holds is linked into it, and when its targets change", async () => {
      const fs = await fsLocations(['eu', 'us']);
      const n = await buildApiWorld(dialect, { storage: fs.locations, config: { replication: { targets: ['eu'] } } });
      try {
        const { registry } = n.t;
        const replication = registry.replication!.service;
        const drain = async (committed = false) => {
          // A commit's listener queues (a job for eu, the only registry-wide target) in the background: let it land first.
          for (let i = 0; committed && i < 500 && !(await queued(n)).some((j) => j.location === 'eu'); i++) await new Promise((r) => setTimeout(r, 10));
          for (let jobs = await replication.claim('test', 10); jobs.length; jobs = await replication.claim('test', 10)) for (const job of jobs) await replication.runJob(job);
        };
        const inUs = (digest: string) => fs.locations.driver('us').stat(`blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`);
        const put = async (repo: string) => {
          const bytes = randomBytes(2000);
          const digest = digestOf(bytes);
          await registry.uploads.monolithic(await registry.repositories.get(repo as RepositoryName), digest, Readable.from([bytes]), bytes.length);
          await drain(true);
          return digest;
        };
        // Pushed into orgb (registry-wide targets only: eu): nothing goes to us.
        const shared = await put('orgb/pub');
        assert.equal(await inUs(shared), undefined);
        const own = await call('PUT', '/organization/orga/replication', 'orgadmin', { locations: ['us'] }, n);
        assert.equal(own.statusCode, 200, own.body);
        assert.deepEqual(own.json(), { locations: ['us'], registry_targets: ['eu'], available: ['eu', 'us'], copies_queued: 0, backfilling: false });
        // Mounted into orga, whose own target is us: queued as it is linked, copied by the worker.
        assert.equal(await registry.blobs.mount(await registry.repositories.get('orga/pub' as RepositoryName), shared, await registry.repositories.get('orgb/pub' as RepositoryName)), true);
        assert.deepEqual((await queued(n)).map((j) => [j.digest, j.location]), [[shared, 'us']]);
        await drain();
        assert.equal((await inUs(shared))?.size, 2000);
        // A link into an organization without targets of its own queues nothing.
        const other = await put('orgb/priv');
        assert.equal(await registry.blobs.mount(await registry.repositories.get('orgb/pub' as RepositoryName), other, await registry.repositories.get('orgb/priv' as RepositoryName)), true);
        assert.deepEqual(await queued(n), []);
        // orgb gains us as a target: the blobs it links already are queued, then copied.
        const gained = await call('PUT', '/organization/orgb/replication', 'superuser', { locations: ['us'] }, n);
        assert.equal(gained.statusCode, 200, gained.body);
        assert.equal(gained.json().copies_queued, 1, 'shared is in us already; other is not');
        assert.equal(gained.json().backfilling, false);
        assert.deepEqual((await queued(n)).map((j) => [j.digest, j.location]), [[other, 'us']]);
        await drain();
        assert.equal((await inUs(other))?.size, 2000);
        assert.equal((await call('PUT', '/organization/orgb/replication', 'superuser', { locations: ['us'] }, n)).json().copies_queued, 0, 'nothing gained');
      } finally {
        await n.t.close();
        await fs.cleanup();
      }
    });

    it('reports the status of a repository of 3 to 5 components exactly, never of a sibling or a repository under it', async () => {
      const { t } = w;
      const counts: Record<string, number> = { 'orgb/x/y': 1, 'orgb/x/y/z': 2, 'orgb/x/y/z/w': 3, 'orgb/x/yz': 4 };
      for (const [name, n] of Object.entries(counts)) {
        const repo = await t.registry.repositories.ensure(name as RepositoryName);
        for (let i = 0; i < n; i++) {
          const bytes = randomBytes(100);
          await t.registry.uploads.monolithic(repo, digestOf(bytes), Readable.from([bytes]), bytes.length);
        }
      }
      for (const [name, n] of Object.entries(counts)) {
        const res = await call('GET', `/replication/status?scope=${encodeURIComponent(name)}`, 'superuser');
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual([res.json().scope, res.json().blobs, res.json().bytes], [name, n, n * 100]);
      }
      for (const missing of ['orgb/x', 'orgb/x/y/z/w/v', 'orgb/x/y/', 'orgb/x//y']) {
        const res = await call('GET', `/replication/status?scope=${encodeURIComponent(missing)}`, 'superuser');
        assert.equal(res.statusCode, 404, missing);
        assert.equal(res.json().error_type, 'not_found');
      }
    });

    it('answers 404 when fewer than two storage locations are configured', async () => {
      for (const [method, url] of [['GET', '/organization/orga/replication'], ['PUT', '/organization/orga/replication'], ['GET', '/replication/status']] as const) {
        const res = await call(method, url, 'superuser', method === 'PUT' ? { locations: ['eu'] } : undefined, plain);
        assert.equal(res.statusCode, 404, `${method} ${url}`);
        assert.match(res.json().detail, /fewer than two storage locations/);
      }
    });
  });
}
