/**
 * QuotaService on SQLite and PostgreSQL: quotas and limits with Quay's validation and messages, the
 * audit entries of changes, and the usage it reads (namespaces, repositories, the registry) after
 * real pushes through the registry's services.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../config/load.js';
import { createServices } from '../../main/compose.js';
import { digestOf } from '../../oci/digest.js';
import type { RepositoryName, Tag } from '../../oci/reference.js';
import { MemoryBlobDriver } from '../../storage/memory/memory-blob-driver.js';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import { AccountError } from '../accounts/account-error.js';
import type { Accounts } from '../accounts/accounts.js';
import type { Registry } from '../registry.js';
import { MAX_LIMIT_BYTES, QUOTA_LIMIT_EXISTS, QUOTA_SIZE_UNSUPPORTED, QUOTA_THRESHOLD_INVALID, QUOTA_TYPE_INVALID, type QuotaService } from './quota-service.js';

const GiB = 1024 ** 3;
const who = { actor: { kind: 'system' as const, name: 'test' } };

/** Rejects with an AccountError of `type` whose message matches `message`. */
async function refused(p: Promise<unknown>, type: AccountError['type'], message?: RegExp | string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AccountError, String(err));
    assert.equal(err.type, type, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return true;
  });
}

for (const dialect of DIALECTS) {
  describe(`QuotaService (${dialect})`, () => {
    let db: Awaited<ReturnType<typeof openTestDatabase>>;
    let registry: Registry;
    let accounts: Accounts;
    let quota: QuotaService;
    before(async () => {
      db = await openTestDatabase(dialect);
      const config = loadConfig({ env: {}, overrides: { log_level: 'silent' } });
      ({ registry, accounts } = createServices({ db, storage: new MemoryBlobDriver(), config }) as { registry: Registry; accounts: Accounts });
      quota = registry.quota;
      await accounts.accounts.createUser({ name: 'alice', password: 'alice-password' });
      for (const org of ['acme', 'other', 'blank']) await accounts.accounts.createOrganization({ name: org, creator: 'alice' });
    });
    after(async () => {
      await registry?.audit?.flush();
      await db?.close();
    });

    /** Pushes an image of `layers` (plus a config blob) to `repo`; returns the bytes of its blobs. */
    const push = async (repo: string, tag: string, layers: string[]): Promise<{ config: number; layers: number[] }> => {
      const ref = await registry.repositories.ensure(repo as RepositoryName);
      const config = Buffer.from(JSON.stringify({ os: 'linux', repo, tag }));
      const blobs = [config, ...layers.map((l) => Buffer.from(l))];
      for (const b of blobs) await registry.uploads.monolithic(ref, digestOf(b), (async function* () { yield b; })(), b.length);
      const [c, ...ls] = blobs.map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(b), size: b.length }));
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { ...c, mediaType: 'application/vnd.oci.image.config.v1+json' }, layers: ls }));
      await registry.manifests.put(ref, { kind: 'tag', tag: tag as Tag }, manifest, 'application/vnd.oci.image.manifest.v1+json');
      return { config: config.length, layers: ls.map((l) => l.size) };
    };

    it('creates a quota from limit_bytes or from text, one per namespace', async () => {
      const created = await quota.create('acme', { limit: '10 GiB' }, who);
      assert.equal(created.limitBytes, 10 * GiB);
      assert.deepEqual(await quota.list('acme'), [{ id: created.id, namespaceId: created.namespaceId, limitBytes: 10 * GiB, limits: [] }]);
      assert.deepEqual(await quota.get('acme', created.id), { id: created.id, namespaceId: created.namespaceId, limitBytes: 10 * GiB, limits: [] });
      await refused(quota.create('acme', { limitBytes: 5 }, who), 'invalid_request', "Organization quota for 'acme' already exists");
      // limit_bytes wins over limit, as in Quay.
      const user = await quota.create('alice', { limitBytes: 1234, limit: '1 GiB' }, who);
      assert.equal(user.limitBytes, 1234);
      assert.deepEqual(await quota.list('blank'), []);
      await refused(quota.list('nosuch'), 'not_found', /namespace nosuch not found/);
      await refused(quota.create('nosuch', { limitBytes: 1 }, who), 'not_found');
    });

    it("refuses sizes that are not positive, not whole, unreadable or too big, with Quay's messages", async () => {
      const cases: Array<[Parameters<QuotaService['create']>[1], RegExp | string]> = [
        [{}, /give limit_bytes .* or limit/],
        [{ limitBytes: 0 }, "Invalid quota size limit value: '0'"],
        [{ limitBytes: -5 }, "Invalid quota size limit value: '-5'"],
        [{ limitBytes: 1.5 }, "Invalid quota size limit value: '1.5'"],
        [{ limitBytes: MAX_LIMIT_BYTES + 1 }, QUOTA_SIZE_UNSUPPORTED],
        [{ limitBytes: 2 ** 60 + 1 }, QUOTA_SIZE_UNSUPPORTED],
        [{ limit: '0 GiB' }, "Invalid quota size limit value: '0 GiB'"],
        [{ limit: '0.5 B' }, "Invalid quota size limit value: '0.5 B'"],
        [{ limit: '10 XB' }, /^Invalid quota size limit value: '10 XB': give a number of bytes or a size such as "10 GiB"/],
        [{ limit: 'lots' }, /Invalid quota size limit value: 'lots'/],
        [{ limit: '-1 GiB' }, /Invalid quota size limit value: '-1 GiB'/],
        [{ limit: '9 PiB' }, QUOTA_SIZE_UNSUPPORTED],
        [{ limit: '1 EiB' }, QUOTA_SIZE_UNSUPPORTED],
      ];
      for (const [input, message] of cases) await refused(quota.create('blank', input, who), 'invalid_request', message);
      assert.deepEqual(await quota.list('blank'), []);
      const max = await quota.create('blank', { limitBytes: MAX_LIMIT_BYTES }, who);
      await quota.delete('blank', max.id, who);
    });

    it('changes the size (an empty change changes nothing) and 404s quotas of other namespaces', async () => {
      const [q] = await quota.list('acme');
      const changed = await quota.update('acme', q!.id, { limit: '500 MiB' }, who);
      assert.equal(changed.limitBytes, 500 * 1024 ** 2);
      assert.equal((await quota.get('acme', q!.id)).limitBytes, 500 * 1024 ** 2);
      assert.deepEqual(await quota.update('acme', q!.id, {}, who), changed);
      await refused(quota.update('acme', q!.id, { limitBytes: 0 }, who), 'invalid_request', "Invalid quota size limit value: '0'");
      await refused(quota.get('other', q!.id), 'not_found', /quota \d+ not found in namespace other/);
      await refused(quota.update('alice', q!.id, { limitBytes: 7 }, who), 'not_found');
      await refused(quota.get('acme', 987654), 'not_found');
      await refused(quota.get('acme', Number.NaN), 'not_found');
      await quota.update('acme', q!.id, { limitBytes: 10 * GiB }, who);
    });

    it('adds, changes and deletes limits; refuses bad types, thresholds and duplicates', async () => {
      const [q] = await quota.list('acme');
      const warn = await quota.addLimit('acme', q!.id, { type: 'warning', thresholdPercent: 80 }, who);
      assert.deepEqual(warn, { id: warn.id, kind: 'Warning', percent: 80 });
      const reject = await quota.addLimit('acme', q!.id, { type: 'REJECT', thresholdPercent: '100' }, who);
      // Several Reject limits are allowed (Quay's one-Reject check is dead code).
      const reject90 = await quota.addLimit('acme', q!.id, { type: 'Reject', thresholdPercent: 90 }, who);
      assert.deepEqual((await quota.get('acme', q!.id)).limits.map((l) => [l.kind, l.percent]), [['Warning', 80], ['Reject', 90], ['Reject', 100]]);

      await refused(quota.addLimit('acme', q!.id, { type: 'Warning', thresholdPercent: 80 }, who), 'invalid_request', QUOTA_LIMIT_EXISTS);
      for (const thresholdPercent of [0, 101, -1, 50.5, 'x', '', null, undefined]) {
        await refused(quota.addLimit('acme', q!.id, { type: 'Warning', thresholdPercent }, who), 'invalid_request', QUOTA_THRESHOLD_INVALID);
      }
      for (const type of ['Info', '', null, undefined]) await refused(quota.addLimit('acme', q!.id, { type, thresholdPercent: 50 }, who), 'invalid_request', QUOTA_TYPE_INVALID);
      await refused(quota.addLimit('acme', 987654, { type: 'Warning', thresholdPercent: 50 }, who), 'not_found');

      assert.deepEqual(await quota.limit('acme', q!.id, warn.id), warn);
      await refused(quota.limit('acme', q!.id, 987654), 'not_found', /quota limit 987654 not found/);
      const otherQuota = await quota.create('other', { limitBytes: GiB }, who);
      await refused(quota.limit('other', otherQuota.id, warn.id), 'not_found');

      const updated = await quota.updateLimit('acme', q!.id, warn.id, { thresholdPercent: 70 }, who);
      assert.equal(updated.id, q!.id);
      assert.deepEqual(updated.limits.map((l) => [l.id, l.kind, l.percent]), [[warn.id, 'Warning', 70], [reject90.id, 'Reject', 90], [reject.id, 'Reject', 100]]);
      await refused(quota.updateLimit('acme', q!.id, warn.id, { type: 'Reject', thresholdPercent: 90 }, who), 'invalid_request', QUOTA_LIMIT_EXISTS);
      await refused(quota.updateLimit('acme', q!.id, warn.id, { thresholdPercent: 0 }, who), 'invalid_request', QUOTA_THRESHOLD_INVALID);
      await refused(quota.updateLimit('acme', q!.id, warn.id, { type: 'x' }, who), 'invalid_request', QUOTA_TYPE_INVALID);
      await refused(quota.updateLimit('other', otherQuota.id, warn.id, { thresholdPercent: 5 }, who), 'not_found');
      assert.deepEqual(await quota.updateLimit('acme', q!.id, warn.id, {}, who), updated);

      await quota.deleteLimit('acme', q!.id, reject90.id, who);
      await refused(quota.deleteLimit('acme', q!.id, reject90.id, who), 'not_found');
      assert.deepEqual((await quota.get('acme', q!.id)).limits.map((l) => l.id), [warn.id, reject.id]);
    });

    it('deleting a quota deletes its limits', async () => {
      const [q] = await quota.list('other');
      await quota.addLimit('other', q!.id, { type: 'Reject', thresholdPercent: 100 }, who);
      await quota.delete('other', q!.id, who);
      assert.deepEqual(await quota.list('other'), []);
      await refused(quota.get('other', q!.id), 'not_found');
      await refused(quota.delete('other', q!.id, who), 'not_found');
      const count = await db.db.selectFrom('quota_limits').select((eb) => eb.fn.countAll<number>().as('n')).where('quota_id', '=', q!.id).executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 0);
    });

    it("records Quay's audit kinds with the previous values of changes", async () => {
      const q = await quota.create('other', { limit: '1 GiB' }, who);
      await quota.update('other', q.id, { limit: '5 GiB' }, who);
      const l = await quota.addLimit('other', q.id, { type: 'Warning', thresholdPercent: 80 }, who);
      await quota.updateLimit('other', q.id, l.id, { thresholdPercent: 90 }, who);
      await quota.deleteLimit('other', q.id, l.id, who);
      await quota.delete('other', q.id, who);
      const kinds = ['org_create_quota', 'org_change_quota', 'org_delete_quota', 'org_create_quota_limit', 'org_change_quota_limit', 'org_delete_quota_limit'];
      const { entries } = await registry.audit!.query({ namespace: 'other', kinds });
      const last = (kind: string) => entries.find((e) => e.kind === kind)!;
      assert.deepEqual(last('org_create_quota').metadata, { namespace: 'other', quota_id: q.id, limit_bytes: GiB, limit: '1.0 GiB' });
      assert.deepEqual(last('org_change_quota').metadata, { namespace: 'other', quota_id: q.id, limit_bytes: 5 * GiB, limit: '5.0 GiB', previous_limit_bytes: GiB, previous_limit: '1.0 GiB' });
      assert.deepEqual(last('org_create_quota_limit').metadata, { namespace: 'other', quota_id: q.id, limit_id: l.id, type: 'Warning', threshold_percent: 80 });
      assert.deepEqual(last('org_change_quota_limit').metadata, { namespace: 'other', quota_id: q.id, limit_id: l.id, type: 'Warning', threshold_percent: 90, previous_type: 'Warning', previous_threshold_percent: 80 });
      assert.deepEqual(last('org_delete_quota_limit').metadata, { namespace: 'other', quota_id: q.id, limit_id: l.id, type: 'Warning', threshold_percent: 90 });
      assert.deepEqual(last('org_delete_quota').metadata, { namespace: 'other', quota_id: q.id, limit_bytes: 5 * GiB, limit: '5.0 GiB' });
      assert.equal(last('org_create_quota').actor.name, 'test');
      // A change that changes nothing is not recorded.
      const before = entries.length;
      const again = await quota.create('other', { limitBytes: 10 }, who);
      await quota.update('other', again.id, { limitBytes: 10 }, who);
      assert.equal((await registry.audit!.query({ namespace: 'other', kinds })).entries.length, before + 1);
    });

    it('reads usage: a blob counts once per repository and once per namespace', async () => {
      const shared = 'shared layer '.repeat(10);
      const app = await push('acme/app', 'v1', [shared, 'app layer']);
      const web = await push('acme/web', 'v1', [shared]);
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const appBytes = app.config + sum(app.layers);
      const webBytes = web.config + sum(web.layers);

      const usage = await quota.usage('acme');
      assert.equal(usage.usedBytes, appBytes + web.config);
      assert.equal(usage.quota?.limitBytes, 10 * GiB);
      assert.deepEqual(await quota.usage('blank'), { quota: undefined, usedBytes: 0 });

      const repos = await quota.repositoryUsage([
        { namespace: 'acme', name: 'app' },
        { namespace: 'acme', name: 'web' },
        { namespace: 'alice', name: 'app' },
        { namespace: 'acme', name: 'nosuch' },
      ]);
      assert.deepEqual(Object.fromEntries(repos), { 'acme/app': { usedBytes: appBytes, limitBytes: 10 * GiB }, 'acme/web': { usedBytes: webBytes, limitBytes: 10 * GiB } });
      const mine = await push('alice/app', 'v1', ['mine']);
      const blank = await push('blank/app', 'v1', ['mine']);
      assert.deepEqual(Object.fromEntries(await quota.repositoryUsage([{ namespace: 'alice', name: 'app' }, { namespace: 'blank', name: 'app' }])), {
        'alice/app': { usedBytes: mine.config + mine.layers[0]!, limitBytes: 1234 },
        'blank/app': { usedBytes: blank.config + blank.layers[0]!, limitBytes: null },
      });
      assert.deepEqual(await quota.repositoryUsage([]), new Map());

      // The registry holds every blob once, whichever namespaces use it.
      const size = await quota.registrySize();
      assert.equal(size.sizeBytes, appBytes + web.config + mine.config + mine.layers[0]! + blank.config);
      assert.ok(Math.abs(size.ranAt - Date.now()) < 60_000);
    });

    it('recount reports the totals it checked (none drifted)', async () => {
      const report = await quota.recount({ dryRun: true });
      assert.deepEqual(report.drift, { repositories: [], namespaces: [], blobCounts: 0 });
      assert.equal(report.fixed, false);
      assert.ok(report.repositories >= 4 && report.namespaces >= 3, JSON.stringify(report));
      assert.equal((await quota.recount()).drift.namespaces.length, 0);
    });
  });
}
