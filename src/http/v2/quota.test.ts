import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QuotaStore } from '../../db/quota-store.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';
import { assertError, imageManifest, pushBlob, sha256 } from '../../../test/helpers/inject-client.js';

for (const dialect of DIALECTS) {
  describe(`quota enforcement on /v2 (${dialect})`, () => {
    let t: TestApp;
    let quotas: QuotaStore;
    before(async () => {
      t = await buildTestApp(dialect, { config: { 'auth.enabled': false } });
      quotas = new QuotaStore(t.db.db, t.db.dialect);
    });
    after(async () => t.close());

    /** Gives the namespace (created by a first push) a quota with limits. */
    const setQuota = async (namespace: string, limitBytes: number, limits: Array<['Warning' | 'Reject', number]>) => {
      const ns = await t.db.db.selectFrom('namespaces').select('id').where('name', '=', namespace).executeTakeFirstOrThrow();
      const q = await quotas.create(Number(ns.id), limitBytes);
      assert.ok(q);
      for (const [kind, percent] of limits) await quotas.addLimit(q.id, kind, percent);
      return { namespaceId: Number(ns.id), quota: q };
    };
    const usage = async (namespaceId: number) => quotas.namespaceSize(namespaceId);
    const putManifest = (name: string, ref: string, layers: Array<{ digest: string; size: number }>, config: { digest: string; size: number }) =>
      t.app.inject({
        method: 'PUT',
        url: `/v2/${name}/manifests/${ref}`,
        payload: Buffer.from(JSON.stringify(imageManifest(config, layers))),
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      });
    const image = async (name: string, ref: string, layerBytes: Buffer) => {
      const config = Buffer.from(JSON.stringify({ os: 'linux', ref, n: Math.random() }));
      const c = { digest: await pushBlob(t.app, name, config), size: config.length };
      const l = { digest: await pushBlob(t.app, name, layerBytes), size: layerBytes.length };
      return { res: await putManifest(name, ref, [l], c), size: config.length + layerBytes.length, layer: l, config: c };
    };
    const denied = (res: { statusCode: number; body: string }, namespace: string) => {
      assertError(res as never, 403, 'DENIED');
      assert.equal(JSON.parse(res.body).errors[0].message, `Quota has been exceeded on namespace ${namespace}`);
    };

    it('refuses a manifest that would cross the Reject limit and keeps nothing of it', async () => {
      const first = await image('qm/app', 'v1', Buffer.alloc(1000, 1));
      assert.equal(first.res.statusCode, 201, first.res.body);
      // Blobs uploaded before the quota: only the manifest that would use them is left to refuse.
      const config = Buffer.from('{"os":"linux","big":true}');
      const c = { digest: await pushBlob(t.app, 'qm/app', config), size: config.length };
      const big = Buffer.alloc(2500, 2);
      const l = { digest: await pushBlob(t.app, 'qm/app', big), size: big.length };
      const { namespaceId } = await setQuota('qm', 3000, [['Reject', 100]]);
      const before = await usage(namespaceId);
      assert.equal(before, first.size);
      const res = await putManifest('qm/app', 'big', [l], c);
      denied(res, 'qm');
      assertError(await t.app.inject({ url: '/v2/qm/app/manifests/big' }), 404, 'MANIFEST_UNKNOWN');
      assert.equal(await usage(namespaceId), before, 'the refused manifest does not count');
      // Re-using counted blobs under a new tag adds nothing and passes.
      assert.equal((await putManifest('qm/app', 'again', [first.layer], first.config)).statusCode, 201);
      // A blob shared by two repositories counts once in the namespace.
      await pushBlob(t.app, 'qm/other', Buffer.alloc(1000, 1));
      const cfg2 = Buffer.from(JSON.stringify({ os: 'linux', other: 1 }));
      const c2 = { digest: await pushBlob(t.app, 'qm/other', cfg2), size: cfg2.length };
      assert.equal((await putManifest('qm/other', 'v1', [first.layer], c2)).statusCode, 201);
      assert.equal(await usage(namespaceId), before + cfg2.length);
    });

    it('refuses an upload at start once the namespace is at its limit, and a chunk that takes it over', async () => {
      const first = await image('qu/app', 'v1', Buffer.alloc(900, 3));
      assert.equal(first.res.statusCode, 201);
      const { namespaceId, quota } = await setQuota('qu', 2000, [['Reject', 100]]);
      // A chunk announcing more than the room left is refused, and the upload is cancelled.
      const start = await t.app.inject({ method: 'POST', url: '/v2/qu/app/blobs/uploads/' });
      assert.equal(start.statusCode, 202);
      const loc = String(start.headers.location);
      const big = Buffer.alloc(1500, 4);
      denied(await t.app.inject({ method: 'PATCH', url: loc, payload: big, headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${big.length - 1}` } }), 'qu');
      assertError(await t.app.inject({ url: loc }), 404, 'BLOB_UPLOAD_UNKNOWN');
      // A streamed chunk (no range) is checked after it arrived: the upload is cancelled.
      const start2 = await t.app.inject({ method: 'POST', url: '/v2/qu/app/blobs/uploads/' });
      const loc2 = String(start2.headers.location);
      denied(await t.app.inject({ method: 'PATCH', url: loc2, payload: big, headers: { 'content-type': 'application/octet-stream' } }), 'qu');
      assertError(await t.app.inject({ url: loc2 }), 404, 'BLOB_UPLOAD_UNKNOWN');
      // A monolithic blob over the limit is refused and not stored.
      const mono = await t.app.inject({ method: 'POST', url: `/v2/qu/app/blobs/uploads/?digest=${sha256(big)}`, payload: big, headers: { 'content-type': 'application/octet-stream' } });
      denied(mono, 'qu');
      assert.equal((await t.app.inject({ method: 'HEAD', url: `/v2/qu/app/blobs/${sha256(big)}` })).statusCode, 404);
      // Refused uploads freed their bytes: a small one still fits.
      const small = Buffer.alloc(100, 5);
      await pushBlob(t.app, 'qu/app', small);
      // At the limit, even starting an upload is refused.
      await quotas.setLimitBytes(quota.id, await usage(namespaceId));
      denied(await t.app.inject({ method: 'POST', url: '/v2/qu/app/blobs/uploads/' }), 'qu');
      // Uploads in progress count: two uploads cannot together take the namespace over.
      await quotas.setLimitBytes(quota.id, (await usage(namespaceId)) + 1000);
      const a = String((await t.app.inject({ method: 'POST', url: '/v2/qu/app/blobs/uploads/' })).headers.location);
      const b = String((await t.app.inject({ method: 'POST', url: '/v2/qu/app/blobs/uploads/' })).headers.location);
      const part = Buffer.alloc(600, 6);
      assert.equal((await t.app.inject({ method: 'PATCH', url: a, payload: part, headers: { 'content-type': 'application/octet-stream', 'content-range': '0-599' } })).statusCode, 202);
      denied(await t.app.inject({ method: 'PATCH', url: b, payload: part, headers: { 'content-type': 'application/octet-stream', 'content-range': '0-599' } }), 'qu');
    });

    it('logs a Warning limit without blocking, once per crossing', async () => {
      const first = await image('qw/app', 'v1', Buffer.alloc(100, 7));
      assert.equal(first.res.statusCode, 201);
      await setQuota('qw', 1000, [['Warning', 50], ['Reject', 100]]);
      const warnings: Array<{ namespace: string; thresholdPercent: number }> = [];
      t.registry.quotaGate.observe({ warning: (e) => warnings.push(e) });
      const crossing = await image('qw/app', 'v2', Buffer.alloc(500, 8));
      assert.equal(crossing.res.statusCode, 201, 'a Warning never blocks');
      const after = await image('qw/app', 'v3', Buffer.alloc(100, 9));
      assert.equal(after.res.statusCode, 201);
      assert.deepEqual(warnings, [{ namespace: 'qw', thresholdPercent: 50 }], 'one warning, for the push that crossed');
    });
  });
}
