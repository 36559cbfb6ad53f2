/**
 * /health/instance and /health/endtoend over two storage locations (a preferred `a`, then `b`), each a
 * memory driver behind a fault double, on both dialects: Quay's body and status, `storage` failing only
 * with the preferred location, per-location detail for superusers only.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../../test/helpers/app.js';
import { DIALECTS } from '../../test/helpers/databases.js';
import { FaultyDriver } from '../../test/helpers/faulty-driver.js';
import { LocatedBlobDriver } from '../storage/located-driver.js';
import { MemoryBlobDriver } from '../storage/memory/memory-blob-driver.js';

const ROOT = `Basic ${Buffer.from('root:root-password-1').toString('base64')}`;
const USER = `Basic ${Buffer.from('uma:uma-password-1').toString('base64')}`;

for (const dialect of DIALECTS) {
  describe(`health endpoints with two storage locations (${dialect})`, () => {
    const apps: TestApp[] = [];
    after(async () => {
      for (const t of apps) await t.close();
    });

    /** A fresh app (fresh cached verdicts) whose locations are down as `down` says. */
    async function app(down: { a?: boolean; b?: boolean }) {
      const a = new FaultyDriver(new MemoryBlobDriver(), 'location a');
      const b = new FaultyDriver(new MemoryBlobDriver(), 'location b');
      a.down = down.a ?? false;
      b.down = down.b ?? false;
      const storage = new LocatedBlobDriver([
        { name: 'a', driver: a },
        { name: 'b', driver: b },
      ]);
      const t = await buildTestApp(dialect, { storage });
      apps.push(t);
      await t.accounts!.accounts.createUser({ name: 'root', password: 'root-password-1', superuser: true });
      await t.accounts!.accounts.createUser({ name: 'uma', password: 'uma-password-1' });
      const get = async (url: string, authorization?: string) => {
        const res = await t.app.inject({ method: 'GET', url, headers: authorization ? { authorization } : {} });
        return { status: res.statusCode, body: res.json() as { data: Record<string, unknown>; status_code: number } };
      };
      return { get };
    }

    it('all up: both answer 200 in Quay\'s shape; the detail is for superusers only', async () => {
      const { get } = await app({});
      assert.deepEqual(await get('/health/instance'), { status: 200, body: { data: { services: { database: true, registry_storage: true } }, status_code: 200 } });
      assert.deepEqual(await get('/health/endtoend'), { status: 200, body: { data: { services: { database: true, storage: true } }, status_code: 200 } });
      assert.deepEqual(await get('/health/endtoend', USER), { status: 200, body: { data: { services: { database: true, storage: true } }, status_code: 200 } });
      const root = await get('/health/endtoend', ROOT);
      assert.equal(root.status, 200);
      assert.deepEqual(root.body.data.services_expanded, { database: { status: true }, 'storage:a': { status: true }, 'storage:b': { status: true } });
    });

    it('a non-preferred location down: reported in the detail, healthy', async () => {
      const { get } = await app({ b: true });
      assert.deepEqual(await get('/health/endtoend'), { status: 200, body: { data: { services: { database: true, storage: true } }, status_code: 200 } });
      const root = await get('/health/endtoend', ROOT);
      const expanded = root.body.data.services_expanded as Record<string, { status: boolean; failure?: string }>;
      assert.deepEqual(expanded['storage:a'], { status: true });
      assert.equal(expanded['storage:b']!.status, false);
      assert.match(expanded['storage:b']!.failure!, /location b: switched down/);
      assert.equal((await get('/health/instance')).status, 200);
    });

    it('the preferred location down: endtoend 503; the instance still takes writes (200)', async () => {
      const { get } = await app({ a: true });
      assert.deepEqual(await get('/health/endtoend'), { status: 503, body: { data: { services: { database: true, storage: false } }, status_code: 503 } });
      assert.deepEqual(await get('/health/instance'), { status: 200, body: { data: { services: { database: true, registry_storage: true } }, status_code: 200 } });
    });

    it('every location down: both 503', async () => {
      const { get } = await app({ a: true, b: true });
      assert.equal((await get('/health/endtoend')).status, 503);
      assert.deepEqual(await get('/health/instance'), { status: 503, body: { data: { services: { database: true, registry_storage: false } }, status_code: 503 } });
    });
  });
}
