import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import { BlobFillLeaseStore } from './blob-fill-lease-store.js';
import type { DatabaseHandle } from './connect.js';
import { ServerSettingsStore } from './server-settings-store.js';

const A = { owner: 'process-a', ownerUrl: 'http://10.0.0.1:5000' };
const B = { owner: 'process-b', ownerUrl: 'http://10.0.0.2:5000' };
const LEASE = 10_000;

for (const dialect of DIALECTS) {
  describe(`BlobFillLeaseStore (${dialect})`, () => {
    let h: DatabaseHandle;
    let leases: BlobFillLeaseStore;
    before(async () => {
      h = await openTestDatabase(dialect);
      leases = new BlobFillLeaseStore(h.db);
    });
    after(async () => h.close());

    it('gives a free fill to exactly one of many concurrent takers, and names the owner to the others', async () => {
      const who = Array.from({ length: 8 }, (_, i) => ({ owner: `p${i}`, ownerUrl: `http://10.0.1.${i}:5000` }));
      const results = await Promise.all(who.map((w) => leases.take('sha256:race', w, 1_000, LEASE)));
      const winners = results.filter((r) => r.taken);
      assert.equal(winners.length, 1);
      const owner = winners[0]!.lease!.owner;
      for (const r of results) assert.equal(r.lease?.owner, owner);
      const row = await leases.find('sha256:race');
      assert.equal(row?.owner, owner);
      assert.equal(row?.owner_url, who.find((w) => w.owner === owner)!.ownerUrl);
      assert.equal(row?.expires_at, 1_000 + LEASE);
      assert.equal(row?.started_at, 1_000);
    });

    it('sweeps leases that expired before a time, and only those', async () => {
      const t = 1_000_000_000;
      await leases.take('sha256:sweep-old', A, t, LEASE);
      await leases.take('sha256:sweep-new', B, t + 3 * LEASE, LEASE);
      // Rows other tests left with earlier times go too; these two show where the line is.
      assert.ok((await leases.sweepExpired(t + LEASE + 1)) >= 1);
      assert.equal(await leases.find('sha256:sweep-old'), undefined);
      assert.equal((await leases.find('sha256:sweep-new'))?.owner, B.owner);
      await leases.release('sha256:sweep-new', B.owner);
    });

    it('lets another process take an expired lease, and only once', async () => {
      assert.equal((await leases.take('sha256:exp', A, 1_000, LEASE)).taken, true);
      assert.equal((await leases.take('sha256:exp', B, 1_000 + LEASE - 1, LEASE)).taken, false);
      const late = 1_000 + LEASE;
      const [b, c] = await Promise.all([leases.take('sha256:exp', B, late, LEASE), leases.take('sha256:exp', { owner: 'c', ownerUrl: 'http://c' }, late, LEASE)]);
      assert.equal(Number(b.taken) + Number(c.taken), 1);
      assert.equal(await leases.renew('sha256:exp', A.owner, late, LEASE), false, 'the old owner lost it');
    });

    it('replaces a live lease only when it is still the row the caller saw (its owner died)', async () => {
      const a = await leases.take('sha256:cas', A, 1_000, LEASE);
      const seen = a.lease!;
      assert.equal(await leases.renew('sha256:cas', A.owner, 2_000, LEASE), true);
      // The owner renewed since B looked: B's view is stale, nothing changes.
      const stale = await leases.take('sha256:cas', B, 2_500, LEASE, seen);
      assert.equal(stale.taken, false);
      assert.equal(stale.lease?.owner, A.owner);
      const fresh = await leases.take('sha256:cas', B, 2_500, LEASE, stale.lease);
      assert.equal(fresh.taken, true);
      assert.equal((await leases.find('sha256:cas'))?.owner, B.owner);
    });

    it('renews and releases only for the owner', async () => {
      await leases.take('sha256:rel', A, 1_000, LEASE);
      assert.equal(await leases.renew('sha256:rel', B.owner, 1_500, LEASE), false);
      await leases.release('sha256:rel', B.owner);
      assert.equal((await leases.find('sha256:rel'))?.expires_at, 1_000 + LEASE);
      assert.equal(await leases.renew('sha256:rel', A.owner, 1_500, LEASE), true);
      assert.equal((await leases.find('sha256:rel'))?.expires_at, 1_500 + LEASE);
      await leases.release('sha256:rel', A.owner);
      assert.equal(await leases.find('sha256:rel'), undefined);
      assert.equal((await leases.take('sha256:rel', B, 1_600, LEASE)).taken, true);
    });

    it('claims a shared setting once: every caller gets the first value', async () => {
      const settings = new ServerSettingsStore(h.db);
      const values = await Promise.all(['one', 'two', 'three'].map((v) => settings.claim('cluster.test_secret', v, 1)));
      assert.equal(new Set(values).size, 1);
      assert.equal(await settings.claim('cluster.test_secret', 'four', 2), values[0]);
    });
  });
}
