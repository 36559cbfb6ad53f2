/**
 * `quay_quota` replayed: the quota read from `organization/{org}` (`quotas[0]` with `limits`), POST
 * `organization/{org}/quota` then GET `organization/{org}/quota` for the new id, PUT of `limit_bytes`
 * when it differs, POST/PUT/DELETE of `…/quota/{id}/limit[/{lid}]` for the Warning and Reject
 * thresholds, DELETE `…/quota/{id}`; deciding "changed" as the module does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_MODES, buildQuayWorld, needUpdate, type QuayWorld } from '../helpers/quay-world.js';
import { DIALECTS } from '../helpers/databases.js';

interface QuotaParams {
  organization: string;
  /** Bytes (the module converts "10 GiB" and the like before its calls). */
  quota?: number;
  warning_pct?: number;
  reject_pct?: number;
  state?: 'present' | 'absent';
}

async function quayQuota(w: QuayWorld, p: QuotaParams): Promise<{ changed: boolean }> {
  const org = await w.getObject(`organization/${p.organization}`);
  if (!org) {
    assert.equal(p.state, 'absent');
    return { changed: false };
  }
  let details = org.quotas?.length ? org.quotas[0] : undefined;
  let qid = String(details?.id ?? 0);
  if (p.state === 'absent') {
    if (!details) return { changed: false };
    return { changed: (await w.remove(`organization/${p.organization}/quota/${qid}`)) === 'changed' };
  }
  let updated = false;
  if (p.quota !== undefined) {
    const fields = { limit_bytes: p.quota };
    if (details) {
      if (needUpdate(details, fields)) {
        await w.update(`organization/${p.organization}/quota/${qid}`, fields);
        updated = true;
      }
    } else {
      await w.create(`organization/${p.organization}/quota`, fields);
      updated = true;
      details = (await w.getObject(`organization/${p.organization}/quota`))[0];
      qid = String(details.id);
    }
  }
  const current: Record<string, { id?: string; pct?: number }> = { Warning: {}, Reject: {} };
  for (const l of details?.limits ?? []) current[l.type] = { id: String(l.id), pct: l.limit_percent };
  for (const [type, pct] of [['Warning', p.warning_pct], ['Reject', p.reject_pct]] as const) {
    const have = current[type]!;
    if (pct === 0) {
      if (have.id !== undefined && (await w.remove(`organization/${p.organization}/quota/${qid}/limit/${have.id}`)) === 'changed') updated = true;
    } else if (pct && pct !== have.pct) {
      const fields = { type, threshold_percent: pct };
      if (have.id === undefined) await w.create(`organization/${p.organization}/quota/${qid}/limit`, fields);
      else await w.update(`organization/${p.organization}/quota/${qid}/limit/${have.id}`, fields);
      updated = true;
    }
  }
  return { changed: updated };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_quota replayed (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    const GiB = 1024 ** 3;
    before(async () => {
      w = await buildQuayWorld(dialect, mode, { seed: true });
    });
    after(async () => w.close());

    const quota = async () => (await w.getObject('organization/qc')).quotas as any[];

    it('creates the quota with both thresholds once; a second run changes nothing', async () => {
      assert.deepEqual(await quayQuota(w, { organization: 'qc', quota: 10 * GiB, warning_pct: 70, reject_pct: 90 }), { changed: true });
      assert.deepEqual(await quayQuota(w, { organization: 'qc', quota: 10 * GiB, warning_pct: 70, reject_pct: 90 }), { changed: false });
      const [q] = await quota();
      assert.equal(q.limit_bytes, 10 * GiB);
      assert.deepEqual(q.limits.map((l: any) => [l.type, l.limit_percent]).sort(), [['Reject', 90], ['Warning', 70]]);
    });

    it('changes the size and a threshold once each', async () => {
      assert.deepEqual(await quayQuota(w, { organization: 'qc', quota: 20 * GiB, reject_pct: 95 }), { changed: true });
      assert.deepEqual(await quayQuota(w, { organization: 'qc', quota: 20 * GiB, reject_pct: 95 }), { changed: false });
      const [q] = await quota();
      assert.equal(q.limit_bytes, 20 * GiB);
      assert.equal(q.limits.find((l: any) => l.type === 'Reject').limit_percent, 95);
    });

    it('removes a threshold with 0 once, then the quota once', async () => {
      assert.deepEqual(await quayQuota(w, { organization: 'qc', warning_pct: 0 }), { changed: true });
      assert.deepEqual(await quayQuota(w, { organization: 'qc', warning_pct: 0 }), { changed: false });
      assert.deepEqual((await quota())[0].limits.map((l: any) => l.type), ['Reject']);
      assert.deepEqual(await quayQuota(w, { organization: 'qc', state: 'absent' }), { changed: true });
      assert.deepEqual(await quayQuota(w, { organization: 'qc', state: 'absent' }), { changed: false });
      assert.deepEqual(await quota(), []);
      assert.deepEqual(await quayQuota(w, { organization: 'nosuchorg', state: 'absent' }), { changed: false });
    });

    it('refuses bad input with Quay\'s error shape and no 5xx', async () => {
      for (const body of [{ limit_bytes: -1 }, { limit_bytes: 'lots' }, { limit: '10 parsecs' }, {}]) {
        assert.equal((await w.raw('POST', 'organization/qc/quota', body)).status, 400, JSON.stringify(body));
      }
      assert.equal((await w.raw('POST', 'organization/qc/quota', { limit_bytes: GiB })).status, 201);
      const [q] = await quota();
      for (const body of [{ type: 'Panic', threshold_percent: 50 }, { type: 'Warning', threshold_percent: 101 }, { type: 'Warning', threshold_percent: 'x' }]) {
        assert.equal((await w.raw('POST', `organization/qc/quota/${q.id}/limit`, body)).status, 400, JSON.stringify(body));
      }
      assert.equal((await w.raw('DELETE', `organization/qc/quota/${q.id}/limit/99999`)).status, 404);
      assert.equal((await w.raw('PUT', 'organization/qc/quota/99999', { limit_bytes: GiB })).status, 404);
      assert.equal((await w.raw('POST', 'organization/qc/quota', { limit_bytes: GiB }, await w.outsider())).status, 404);
    });
  });
}
