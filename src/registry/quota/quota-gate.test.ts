import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BlobStore } from '../../db/blob-store.js';
import { QuotaStore } from '../../db/quota-store.js';
import { digestOf } from '../../oci/digest.js';
import type { RepositoryName, Tag } from '../../oci/reference.js';
import { buildTestApp, type TestApp } from '../../../test/helpers/app.js';
import { DIALECTS } from '../../../test/helpers/databases.js';

for (const dialect of DIALECTS) {
  describe(`quota warnings with the audit log (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(dialect);
    });
    after(async () => t.close());

    it('writes one quota_warning entry in the namespace when a push crosses a Warning limit', async () => {
      const repo = await t.registry.repositories.ensure('warned/app' as RepositoryName);
      const ns = await t.db.db.selectFrom('namespaces').select('id').where('name', '=', 'warned').executeTakeFirstOrThrow();
      const quotas = new QuotaStore(t.db.db, t.db.dialect);
      const q = await quotas.create(Number(ns.id), 1000);
      await quotas.addLimit(q!.id, 'Warning', 50);
      await quotas.addLimit(q!.id, 'Warning', 80);
      const blobs = new BlobStore(t.db.db);
      const push = async (tag: string, size: number) => {
        const layer = digestOf(Buffer.from(`layer-${tag}`));
        const config = digestOf(Buffer.from(`config-${tag}`));
        await blobs.link(repo.id, layer, size);
        await blobs.link(repo.id, config, 0);
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 0 },
            layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size }],
          }),
        );
        await t.registry.manifests.put(repo, { kind: 'tag', tag: tag as Tag }, manifest, 'application/vnd.oci.image.manifest.v1+json');
      };
      await push('a', 400); // 40 %
      await push('b', 450); // 85 %: crosses 50 % and 80 % at once: one entry, for 80 %
      await push('c', 100); // 95 %: nothing new crossed
      const { entries } = await t.registry.audit!.query({ namespace: 'warned', kinds: ['quota_warning'] });
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.actor.kind, 'system');
      assert.deepEqual(entries[0]!.metadata, { namespace: 'warned', threshold_percent: 80, usage_bytes: 850, limit_bytes: 1000, usage_percent: 85 });
    });

    it('a cache fill is a manifest write under the same rule: a Warning crossing is reported, a Reject limit refuses it (stage proxy) and stores nothing', async () => {
      const repo = await t.registry.repositories.ensure('cachewarn/app' as RepositoryName);
      const ns = await t.db.db.selectFrom('namespaces').select('id').where('name', '=', 'cachewarn').executeTakeFirstOrThrow();
      const quotas = new QuotaStore(t.db.db, t.db.dialect);
      const q = await quotas.create(Number(ns.id), 1000);
      await quotas.addLimit(q!.id, 'Warning', 50);
      await quotas.addLimit(q!.id, 'Reject', 100);
      const stages: string[] = [];
      t.registry.quotaGate.observe({ rejected: (e) => stages.push(e.stage) });
      // A fill stores the manifest before its blobs arrive: each counts at the size the manifest gives.
      const fill = async (tag: string, size: number) => {
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(Buffer.from(`cfg-${tag}`)), size: 0 },
            layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(Buffer.from(`fill-${tag}`)), size }],
          }),
        );
        const digest = digestOf(manifest);
        const put = () =>
          t.registry.manifests.put(repo, { kind: 'tag', tag: tag as Tag }, manifest, 'application/vnd.oci.image.manifest.v1+json', { digest, tag, hidden: false, expiresAt: null });
        return { digest, put };
      };
      await (await fill('a', 600)).put();
      const { entries } = await t.registry.audit!.query({ namespace: 'cachewarn', kinds: ['quota_warning'] });
      assert.deepEqual(entries.map((e) => e.metadata?.threshold_percent), [50]);
      const over = await fill('b', 500);
      await assert.rejects(over.put(), (err: Error & { code?: string }) => err.code === 'DENIED' && /Quota has been exceeded on namespace cachewarn/.test(err.message));
      assert.deepEqual(stages, ['proxy']);
      await assert.rejects(t.registry.manifests.get('cachewarn/app' as RepositoryName, { kind: 'digest', digest: over.digest }), /not found/);
    });
  });
}
