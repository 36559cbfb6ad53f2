/**
 * The replication service and worker over real filesystem locations and both databases: a commit queues
 * copies to the targets, the worker copies and records placements; a target that holds a large blob
 * already, or that the placements say holds it, is only recorded, a small unrecorded one is copied
 * without asking the target; a missing source, a location that is down and corrupt source bytes fail with backoff
 * and nothing visible; organization targets are found when the job runs; GC's guard and a deleted blob
 * row stop copies; a copy's guard against GC lives and is renewed with its lease, also while the job
 * waits for a slot in its claimed batch, and stopping releases both; the holders the placements name are
 * copied from without a stat of every location; two workers racing over one job after a lease expiry
 * leave one object; the wiring
 * refuses unknown targets and builds nothing for one location.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import { fsLocations, TestLocations } from '../../../test/helpers/storage-locations.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import { BlobGuardStore } from '../../db/blob-guard-store.js';
import { BlobPlacementStore } from '../../db/blob-placement-store.js';
import { BlobStore } from '../../db/blob-store.js';
import type { DatabaseHandle } from '../../db/connect.js';
import { ReplicationJobStore } from '../../db/replication-job-store.js';
import { ReplicationTargetStore } from '../../db/replication-target-store.js';
import { RepositoryStore } from '../../db/repository-store.js';
import { createReplication } from '../../main/compose-replication.js';
import { digestOf, type Digest } from '../../oci/digest.js';
import { Metrics } from '../../observability/metrics.js';
import type { BlobDriver } from '../../storage/blob-driver.js';
import { blobKey } from '../../storage/keys.js';
import { ReplicationWorker } from './replication-worker.js';
import { ReplicationService } from '../../registry/replication/replication-service.js';
import { ReplicationAdmin } from '../../registry/replication/replication-admin.js';
import { NamespaceStore } from '../../db/namespace-store.js';

const LEASE_MS = 300;
const BACKOFF = { baseMs: 10_000, maxMs: 80_000 };

async function readAll(driver: BlobDriver, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await driver.reader(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function keys(driver: BlobDriver): Promise<string[]> {
  const out: string[] = [];
  for await (const k of driver.list('blobs/')) out.push(k);
  return out.sort();
}

/** `source` whose readers yield their first 1000 bytes, then wait for `resume()`; `copying` resolves at the stall. */
function stallAfterFirstBytes(source: BlobDriver): { driver: BlobDriver; copying: Promise<void>; resume: () => void } {
  let resume!: () => void;
  const stalled = new Promise<void>((r) => (resume = r));
  let started!: () => void;
  const copying = new Promise<void>((r) => (started = r));
  const driver: BlobDriver = Object.create(source, {
    reader: {
      value: async (key: string) => {
        const all = await readAll(source, key);
        return Readable.from(
          (async function* () {
            yield all.subarray(0, 1000);
            started();
            await stalled;
            yield all.subarray(1000);
          })(),
        );
      },
    },
  });
  return { driver, copying, resume };
}

for (const dialect of DIALECTS) {
  describe(`replication service (${dialect})`, () => {
    let h: DatabaseHandle;
    let locations: TestLocations;
    let cleanup: () => Promise<void>;
    let clock = 1_000_000;
    const now = () => clock;
    let repos: RepositoryStore;
    let blobs: BlobStore;
    let jobs: ReplicationJobStore;
    let placements: BlobPlacementStore;
    let targets: ReplicationTargetStore;

    const service = (opts: { targets?: string[]; locs?: TestLocations; now?: () => number } = {}) =>
      new ReplicationService(
        opts.locs ?? locations,
        { jobs, placements, targets, blobs, guards: new BlobGuardStore(h.db, h.dialect) },
        { targets: opts.targets ?? [], leaseMs: LEASE_MS, backoff: BACKOFF, orphanMs: 3_600_000, now: opts.now ?? now },
      );
    const worker = (s: ReplicationService, metrics?: Metrics, owner?: string) =>
      new ReplicationWorker({ service: s, concurrency: 2, pollMs: 1000, backlog: () => jobs.backlog(), ...(metrics ? { metrics } : {}), ...(owner ? { owner } : {}) });
    /** A blob pushed into `repo` (row and link) whose bytes were committed in `location`. */
    const push = async (repo: string, location: string, size = 4096) => {
      const bytes = randomBytes(size);
      const [ns, name] = [repo.slice(0, repo.indexOf('/')), repo.slice(repo.indexOf('/') + 1)];
      const r = await repos.ensure(ns, name);
      const digest = await locations.commit(location, bytes);
      await blobs.link(r.id, digest, size);
      return { digest, bytes };
    };
    const nsId = async (name: string) => Number((await h.db.selectFrom('namespaces').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id);

    before(async () => {
      h = await openTestDatabase(dialect);
      repos = new RepositoryStore(h.db, h.dialect);
      blobs = new BlobStore(h.db);
      jobs = new ReplicationJobStore(h.db, h.dialect);
      placements = new BlobPlacementStore(h.db);
      targets = new ReplicationTargetStore(h.db);
    });
    after(async () => h.close());
    beforeEach(async () => {
      await cleanup?.();
      ({ locations, cleanup } = await fsLocations(['eu', 'us', 'ap']));
      await h.db.deleteFrom('replication_jobs').execute();
      await h.db.deleteFrom('namespace_replication_targets').execute();
    });

    it('copies a committed blob to every other location and records where it is', async () => {
      const s = service();
      s.listen();
      const metrics = new Metrics({ defaultMetrics: false });
      const { digest, bytes } = await push('acme/team/app', 'eu');
      // The listener queues in the background.
      for (let i = 0; i < 500 && (await jobs.backlog()).size < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual([...(await jobs.backlog())].sort(), [['ap', 1], ['us', 1]]);
      const results = await worker(s, metrics).runOnce();
      assert.deepEqual(results.filter((r) => r.outcome !== 'present').map((r) => r.outcome), ['copied', 'copied']);
      for (const l of ['us', 'ap']) assert.deepEqual(await readAll(locations.driver(l), blobKey(digest)), bytes);
      assert.deepEqual(await placements.list(digest), ['ap', 'eu', 'us']);
      assert.deepEqual(await jobs.backlog(), new Map());
      assert.match(await metrics.registry.getSingleMetricAsString('wharf_replication_bytes_total'), /location="us",method="streamed"} 4096/);
      assert.match(await metrics.registry.getSingleMetricAsString('wharf_replication_copy_seconds'), /wharf_replication_copy_seconds_count{location="ap"} 1/);
      assert.match(await metrics.registry.getSingleMetricAsString('wharf_replication_backlog'), /location="us"} 0/);
    });

    it('only records the placement when the target holds a large blob already (idempotent)', async () => {
      const s = service({ targets: ['eu', 'us'] });
      const { digest, bytes } = await push('acme/app', 'eu', 1024 * 1024 + 1);
      await locations.commit('us', bytes);
      const before = await locations.driver('us').stat(blobKey(digest));
      await s.onCommitted(digest, 'eu');
      const results = await worker(s).runOnce();
      assert.deepEqual(results.map((r) => r.outcome), ['present']);
      assert.deepEqual(await locations.driver('us').stat(blobKey(digest)), before, 'not written again');
      assert.deepEqual(await placements.list(digest), ['eu', 'us']);
      assert.equal(await locations.driver('ap').stat(blobKey(digest)), undefined, 'not a target');
    });

    it('copies a small blob the placements do not place in the target without asking it first, and only records one they do', async () => {
      const s = service({ targets: ['eu', 'us'] });
      const { digest, bytes } = await push('acme/app', 'eu');
      await locations.commit('us', bytes);
      let asked = 0;
      const us = locations.driver('us');
      const counting: BlobDriver = Object.create(us, { stat: { value: (key: string) => (asked++, us.stat(key)) } });
      const locs = new TestLocations([
        { name: 'eu', driver: locations.driver('eu') },
        { name: 'us', driver: counting },
      ]);
      const s2 = service({ targets: ['eu', 'us'], locs });
      await s.onCommitted(digest, 'eu');
      // Unrecorded in `us`: copied over (the same bytes under their content-addressed key), the target never asked.
      assert.deepEqual((await worker(s2).runOnce()).map((r) => r.outcome), ['copied']);
      assert.equal(asked, 0);
      assert.deepEqual(await readAll(us, blobKey(digest)), bytes);
      assert.deepEqual(await placements.list(digest), ['eu', 'us']);
      // Recorded there (a job queued even so): the target is asked, and only the placement recorded.
      await jobs.enqueue(digest, ['us'], now(), { evenIfPlaced: true });
      assert.deepEqual((await worker(s2).runOnce()).map((r) => r.outcome), ['present']);
      assert.equal(asked, 1);
    });

    it('retries a copy whose source is missing with a growing backoff, then copies once the bytes are back', async () => {
      const s = service({ targets: ['us'] });
      const metrics = new Metrics({ defaultMetrics: false });
      const { digest, bytes } = await push('acme/app', 'eu');
      await locations.driver('eu').delete(blobKey(digest));
      await s.onCommitted(digest, 'eu');
      const w = worker(s, metrics);
      assert.deepEqual((await w.runOnce()).map((r) => r.outcome), ['failed']);
      let row = (await jobs.find(digest, 'us'))!;
      assert.equal(row.attempts, 1);
      assert.equal(row.next_attempt_at, clock + BACKOFF.baseMs);
      assert.match(row.last_error!, /no location holds the blob/);
      assert.deepEqual(await w.runOnce(), [], 'not due yet');
      clock += BACKOFF.baseMs;
      assert.deepEqual((await w.runOnce()).map((r) => r.outcome), ['failed']);
      row = (await jobs.find(digest, 'us'))!;
      assert.equal(row.next_attempt_at, clock + 2 * BACKOFF.baseMs);
      assert.match(await metrics.registry.getSingleMetricAsString('wharf_replication_failures_total'), /location="us"} 2/);
      await locations.commit('ap', bytes);
      clock += 2 * BACKOFF.baseMs;
      assert.deepEqual((await w.runOnce()).map((r) => r.outcome), ['copied']);
      assert.deepEqual(await readAll(locations.driver('us'), blobKey(digest)), bytes);
    });

    it('names the locations that are down, and copies from another holder when the preferred one fails', async () => {
      const s = service({ targets: ['ap'] });
      const { digest, bytes } = await push('acme/app', 'eu');
      locations.down.add('eu');
      await s.onCommitted(digest, 'eu');
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['failed']);
      assert.match((await jobs.find(digest, 'ap'))!.last_error!, /down: eu/);
      locations.down.clear();
      // The preferred holder's bytes are corrupt: the copy from it fails verification, the next holder serves.
      await locations.commit('us', bytes);
      const eu = locations.driver('eu');
      await eu.delete(blobKey(digest));
      const w = await eu.writer(blobKey(digest));
      await w.write(randomBytes(bytes.length));
      await w.commit();
      clock += BACKOFF.baseMs;
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['copied']);
      assert.deepEqual(await readAll(locations.driver('ap'), blobKey(digest)), bytes);
    });

    it('writes nothing to a target that is down (or awaiting its identity check), and copies once it is back', async () => {
      const s = service({ targets: ['ap'] });
      const { digest, bytes } = await push('acme/down-target', 'eu');
      locations.down.add('ap');
      await s.onCommitted(digest, 'eu');
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['failed']);
      assert.match((await jobs.find(digest, 'ap'))!.last_error!, /target location ap is down/);
      locations.down.clear();
      assert.equal(await locations.driver('ap').stat(blobKey(digest)), undefined, 'nothing was written while it was down');
      clock += BACKOFF.baseMs;
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['copied']);
      assert.deepEqual(await readAll(locations.driver('ap'), blobKey(digest)), bytes);
    });

    it('never makes corrupt source bytes visible in the target', async () => {
      const s = service({ targets: ['us'] });
      const { digest, bytes } = await push('acme/app', 'eu');
      const eu = locations.driver('eu');
      await eu.delete(blobKey(digest));
      const w = await eu.writer(blobKey(digest));
      await w.write(randomBytes(bytes.length));
      await w.commit();
      await s.onCommitted(digest, 'eu');
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['failed']);
      assert.equal(await locations.driver('us').stat(blobKey(digest)), undefined);
      assert.deepEqual(await keys(locations.driver('us')), []);
      assert.match((await jobs.find(digest, 'us'))!.last_error!, /copy from eu/);
    });

    it("adds an organization's targets when the job runs, also for a blob committed before it was linked", async () => {
      const s = service({ targets: ['eu', 'us'] });
      await repos.ensure('orgt', 'app');
      await targets.set(await nsId('orgt'), ['ap']);
      // Bytes committed first (nothing links them yet): only the registry-wide targets are known.
      const bytes = randomBytes(1000);
      const digest = await locations.commit('eu', bytes);
      await s.onCommitted(digest, 'eu');
      assert.deepEqual([...(await jobs.backlog()).keys()], ['us']);
      await blobs.link((await repos.find('orgt', 'app'))!.id, digest, bytes.length);
      await worker(s).runOnce();
      assert.deepEqual(await placements.list(digest), ['ap', 'eu', 'us']);
      assert.deepEqual(await readAll(locations.driver('ap'), blobKey(digest)), bytes);

      // No registry-wide target but the committing location: a job for that location looks again when it runs.
      const only = service({ targets: ['eu'] });
      const bytes2 = randomBytes(1000);
      const digest2 = await locations.commit('eu', bytes2);
      await only.onCommitted(digest2, 'eu');
      assert.deepEqual([...(await jobs.backlog()).keys()], ['eu']);
      await blobs.link((await repos.find('orgt', 'app'))!.id, digest2, bytes2.length);
      const results = await worker(only).runOnce();
      assert.deepEqual(results.map((r) => r.outcome), ['present', 'copied']);
      assert.deepEqual(await placements.list(digest2), ['ap', 'eu']);
    });

    it("queues a blob linked into an organization's repository for the organization's own targets that lack it, and nothing without targets", async () => {
      const s = service({ targets: ['eu'] });
      const plain = await repos.ensure('plain', 'app');
      const org = await repos.ensure('orgt', 'app');
      await targets.set(await nsId('orgt'), ['ap']);
      const bytes = randomBytes(1000);
      const digest = await locations.commit('eu', bytes);
      await placements.add(digest, 'eu', now());
      const links = new BlobStore(h.db);
      s.listen(links);
      await links.link(plain.id, digest, bytes.length);
      assert.deepEqual(await jobs.backlog(), new Map(), 'plain has no targets of its own');
      await links.link(org.id, digest, bytes.length);
      assert.deepEqual([...(await jobs.backlog())], [['ap', 1]]);
      await links.link(org.id, digest, bytes.length);
      assert.deepEqual([...(await jobs.backlog())], [['ap', 1]], 'queued once');
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['copied']);
      assert.deepEqual(await readAll(locations.driver('ap'), blobKey(digest)), bytes);
      await links.link(org.id, digest, bytes.length);
      assert.deepEqual(await jobs.backlog(), new Map(), 'in place: nothing queued');
    });

    it("queues an organization's blobs for the targets it gains, the first batches at once and the rest in the background", async () => {
      const s = service({ targets: ['eu'] });
      const admin = new ReplicationAdmin({ service: s, jobs, placements, targets, namespaces: new NamespaceStore(h.db, h.dialect), repositories: repos, now, backfillBatch: 2, inlineBatches: 1 });
      const r = await repos.ensure('orgy', 'app');
      for (let i = 0; i < 5; i++) {
        const bytes = randomBytes(100);
        await blobs.link(r.id, await locations.commit('eu', bytes), bytes.length);
      }
      const change = await admin.setTargets(await nsId('orgy'), ['us', 'eu']);
      assert.deepEqual(change.locations, ['eu', 'us']);
      assert.equal(change.queued, 2);
      assert.equal(change.backfilling, true);
      await admin.idle();
      assert.deepEqual([...(await jobs.backlog())], [['us', 5]]);
      const again = await admin.setTargets(await nsId('orgy'), ['us', 'ap']);
      assert.equal(again.queued, 2, 'ap gained; us was held already');
      await admin.idle();
      assert.deepEqual([...(await jobs.backlog())].sort(), [['ap', 5], ['us', 5]]);
    });

    it('does not copy a blob that garbage collection is deleting, and drops jobs of blobs whose row is long gone', async () => {
      const s = service({ targets: ['us'] });
      const { digest } = await push('acme/app', 'eu');
      await s.onCommitted(digest, 'eu');
      const guards = new BlobGuardStore(h.db, h.dialect);
      const [g] = (await h.db.insertInto('blob_guards').values({ digest, kind: 'delete', expires_at: Date.now() + 60_000 }).returning('id').execute()).map((r) => Number(r.id));
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['failed']);
      assert.match((await jobs.find(digest, 'us'))!.last_error!, /garbage collection/);
      assert.equal(await locations.driver('us').stat(blobKey(digest)), undefined);
      await guards.release([g!]);

      const orphan = digestOf(randomBytes(10));
      await jobs.enqueue(orphan, ['us'], clock);
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['failed'], 'a push may still record it');
      clock += 3_600_000;
      const outcomes = (await worker(s).runOnce()).map((r) => r.outcome).sort();
      assert.deepEqual(outcomes, ['copied', 'dropped']);
      assert.equal(await jobs.find(orphan, 'us'), undefined);
    });

    it('a job whose worker stalls is taken over after its lease; the stalled copy commits nothing; one object', async () => {
      const { digest, bytes } = await push('acme/race', 'eu', 256 * 1024);
      // Process A's source stalls after its first bytes (its process hangs mid-copy).
      const { driver: stalling, copying, resume } = stallAfterFirstBytes(locations.driver('eu'));
      const { TestLocations } = await import('../../../test/helpers/storage-locations.js');
      const locsA = new TestLocations([{ name: 'eu', driver: stalling }, locations.get('us')!]);
      // A's clock stands still: its renewals no longer extend the lease (a hung process).
      const frozen = clock;
      const a = service({ targets: ['us'], locs: locsA, now: () => frozen });
      const b = service({ targets: ['us'] });
      await b.onCommitted(digest, 'eu');
      const runA = worker(a, undefined, 'process-a').runOnce();
      await copying;
      assert.deepEqual(await worker(b, undefined, 'process-b').runOnce(), [], 'the lease holds');
      clock += LEASE_MS + 1;
      const resultB = await worker(b, undefined, 'process-b').runOnce();
      assert.deepEqual(resultB.map((r) => r.outcome), ['copied']);
      // A notices at its next renewal that it lost the job, and stops without committing.
      await new Promise((r) => setTimeout(r, LEASE_MS));
      resume();
      const resultA = await runA;
      assert.deepEqual(resultA.map((r) => r.outcome), ['lost']);
      assert.deepEqual(await keys(locations.driver('us')), [blobKey(digest)]);
      assert.deepEqual(await readAll(locations.driver('us'), blobKey(digest)), bytes);
      assert.deepEqual(await placements.list(digest), ['eu', 'us']);
      assert.equal(await jobs.find(digest, 'us'), undefined);
    });

    it('a copy holds GC off its blob only as long as its lease, and renews the guard with the lease', async () => {
      const { digest } = await push('acme/guarded', 'eu', 256 * 1024);
      const { driver: stalling, copying, resume } = stallAfterFirstBytes(locations.driver('eu'));
      const { TestLocations } = await import('../../../test/helpers/storage-locations.js');
      const s = service({ targets: ['us'], locs: new TestLocations([{ name: 'eu', driver: stalling }, locations.get('us')!]) });
      await s.onCommitted(digest, 'eu');
      const run = worker(s, undefined, 'guarded').runOnce();
      await copying;
      const guards = async () => (await h.db.selectFrom('blob_guards').select(['kind', 'expires_at']).where('digest', '=', digest).execute()).map((g) => [g.kind, Number(g.expires_at)]);
      // A worker dying now holds GC off the blob until its lease ran out, not longer.
      assert.deepEqual(await guards(), [['write', clock + LEASE_MS]]);
      clock += LEASE_MS / 3;
      for (let i = 0; i < 200 && (await guards())[0]?.[1] !== clock + LEASE_MS; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(await guards(), [['write', clock + LEASE_MS]], 'renewed with the lease');
      assert.equal((await jobs.find(digest, 'us'))?.lease_expires_at, clock + LEASE_MS);
      resume();
      assert.deepEqual((await run).map((r) => r.outcome), ['copied']);
      assert.deepEqual(await guards(), [], 'released after the copy');
    });

    it('a copy whose guard lapsed before its renewal stops, commits nothing and is retried after the backoff', async () => {
      const { digest } = await push('acme/lapsed', 'eu', 256 * 1024);
      const { driver: stalling, copying, resume } = stallAfterFirstBytes(locations.driver('eu'));
      const { TestLocations } = await import('../../../test/helpers/storage-locations.js');
      const s = service({ targets: ['us'], locs: new TestLocations([{ name: 'eu', driver: stalling }, locations.get('us')!]) });
      await s.onCommitted(digest, 'eu');
      const run = worker(s, undefined, 'lapsed').runOnce();
      await copying;
      // The process stood still for longer than the lease (GC may have considered the blob meanwhile).
      clock += LEASE_MS + 1;
      // Its next renewal (every third of the lease) finds the guard expired and stops the copy.
      await new Promise((r) => setTimeout(r, LEASE_MS));
      resume();
      const results = await run;
      assert.deepEqual(results.map((r) => r.outcome), ['failed']);
      const row = (await jobs.find(digest, 'us'))!;
      assert.deepEqual([row.attempts, row.lease_owner, row.next_attempt_at], [1, null, clock + BACKOFF.baseMs]);
      assert.match(row.last_error!, /guard against garbage collection expired/);
      assert.deepEqual(await keys(locations.driver('us')), []);
      assert.equal(await h.db.selectFrom('blob_guards').select('id').where('digest', '=', digest).executeTakeFirst(), undefined);
    });

    it('copies from the holder the placements name without asking every location, and asks them when that holder lacks the bytes', async () => {
      const s = service({ targets: ['us'] });
      let asked = 0;
      const holders = locations.holders.bind(locations);
      locations.holders = async (key) => (asked++, holders(key));
      const { digest, bytes } = await push('acme/placed', 'eu');
      await s.onCommitted(digest, 'eu');
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['copied']);
      assert.equal(asked, 0, 'no stat of the holders');
      assert.deepEqual(await readAll(locations.driver('us'), blobKey(digest)), bytes);

      // The placement says eu, but the bytes are only in ap (not recorded): found by asking every location.
      const other = await push('acme/placed', 'eu');
      await locations.commit('ap', other.bytes);
      await locations.driver('eu').delete(blobKey(other.digest));
      await s.onCommitted(other.digest, 'eu');
      assert.deepEqual((await worker(s).runOnce()).map((r) => r.outcome), ['copied']);
      assert.equal(asked, 1);
      assert.deepEqual(await readAll(locations.driver('us'), blobKey(other.digest)), other.bytes);
      assert.deepEqual(await placements.list(other.digest), ['eu', 'us'], 'the copy records its target only');
    });

    it('claimed jobs waiting for a slot keep their lease and guard; stopping releases them and their guards', async () => {
      const pushed: Array<{ digest: Digest }> = [];
      for (let i = 0; i < 3; i++) pushed.push(await push('acme/waiting', 'eu', 256 * 1024));
      const { driver: stalling, copying, resume } = stallAfterFirstBytes(locations.driver('eu'));
      const { TestLocations } = await import('../../../test/helpers/storage-locations.js');
      const s = service({ targets: ['us'], locs: new TestLocations([{ name: 'eu', driver: stalling }, locations.get('us')!]) });
      for (const p of pushed) await s.onCommitted(p.digest, 'eu');
      // One slot, three jobs claimed at once: one copies (and stalls), two wait.
      const w = new ReplicationWorker({ service: s, concurrency: 1, claimBatch: 3, pollMs: 1000, owner: 'batch' });
      const run = w.runOnce();
      await copying;
      const state = async () =>
        Promise.all(
          pushed.map(async (p) => {
            const job = (await jobs.find(p.digest, 'us'))!;
            const guard = await h.db.selectFrom('blob_guards').select(['kind', 'expires_at']).where('digest', '=', p.digest).executeTakeFirst();
            return [job.lease_owner, job.lease_expires_at, job.attempts, guard && [guard.kind, Number(guard.expires_at)]];
          }),
        );
      assert.deepEqual(await state(), pushed.map(() => ['batch', clock + LEASE_MS, 0, ['write', clock + LEASE_MS]]));
      clock += LEASE_MS / 3;
      for (let i = 0; i < 200 && (await state())[2]![1] !== clock + LEASE_MS; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(await state(), pushed.map(() => ['batch', clock + LEASE_MS, 0, ['write', clock + LEASE_MS]]), 'the waiting jobs renewed with the copying one');
      await w.stop();
      resume();
      assert.deepEqual((await run).map((r) => r.outcome), ['lost'], 'the copy stopped; the waiting jobs not run');
      assert.deepEqual(await state(), pushed.map(() => [null, null, 0, undefined]), 'released at once, no attempt counted');
      assert.deepEqual(await keys(locations.driver('us')), []);
    });

    it('claims the next batch while its slots still copy, not once they have run out', async () => {
      const s = service({ targets: ['us'] });
      for (let i = 0; i < 5; i++) await s.onCommitted((await push('acme/ahead', 'eu', 512)).digest, 'eu');
      let done = 0;
      const claimedAfter: number[] = [];
      const counted = Object.assign(Object.create(s) as typeof s, {
        claim: (owner: string, n: number) => {
          claimedAfter.push(done);
          return s.claim(owner, n);
        },
        runJob: async (job: Parameters<typeof s.runJob>[0], signal: AbortSignal) => {
          const r = await s.runJob(job, signal);
          done++;
          return r;
        },
      });
      const w = new ReplicationWorker({ service: counted, concurrency: 1, claimBatch: 2, pollMs: 1000 });
      assert.deepEqual((await w.runOnce()).map((r) => r.outcome), ['copied', 'copied', 'copied', 'copied', 'copied']);
      // One slot, two jobs a claim: the second claim goes out when the slot takes the batch's last job
      // (one copy done), the third likewise (three done) and comes back short, so the slot asks once
      // more only when it has nothing left (five done). Claiming only then would give [0, 2, 4, 5].
      assert.deepEqual(claimedAfter, [0, 1, 3, 5]);
    });

    it('two workers draining one queue copy each blob once', async () => {
      const s1 = service({ targets: ['us'] });
      const s2 = service({ targets: ['us'] });
      const pushed = [];
      for (let i = 0; i < 24; i++) pushed.push(await push('acme/many', 'eu', 512));
      for (const p of pushed) await s1.onCommitted(p.digest, 'eu');
      const [r1, r2] = await Promise.all([worker(s1, undefined, 'w1').runOnce(), worker(s2, undefined, 'w2').runOnce()]);
      const all = [...r1, ...r2];
      assert.equal(all.length, 24);
      assert.ok(all.every((r) => r.outcome === 'copied'), JSON.stringify(all.map((r) => r.outcome)));
      assert.deepEqual(await keys(locations.driver('us')), pushed.map((p) => blobKey(p.digest)).sort());
      assert.deepEqual(await jobs.backlog(), new Map());
    });

    it('starts a copy this process queues at once, without waiting for its poll, also before the blob row is recorded', async () => {
      const s = service({ targets: ['us'] });
      s.listen();
      // A poll an hour away: only the wake-up can start the copy.
      const w = new ReplicationWorker({ service: s, concurrency: 2, pollMs: 3_600_000 });
      w.start();
      try {
        const bytes = randomBytes(2048);
        const digest = digestOf(bytes);
        const repo = await repos.ensure('acme', 'wake');
        // As a push: the bytes are committed (which queues the copy), the blob's row is recorded after.
        await locations.commit('eu', bytes);
        await new Promise((r) => setTimeout(r, 100));
        await blobs.link(repo.id, digest, bytes.length);
        for (let i = 0; i < 1000 && !(await placements.list(digest)).includes('us'); i++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(await placements.list(digest), ['eu', 'us']);
        assert.deepEqual(await readAll(locations.driver('us'), blobKey(digest)), bytes);
      } finally {
        await w.stop();
      }
    });

    it('is built only for several locations, and refuses a registry-wide target that is not a location', async () => {
      const config = (replication: Record<string, unknown>) => loadConfig({ env: {}, overrides: { replication } });
      assert.equal(createReplication(h, config({}), undefined), undefined);
      const one = new (await import('../../../test/helpers/storage-locations.js')).TestLocations([locations.get('eu')!]);
      assert.equal(createReplication(h, config({}), one), undefined);
      assert.throws(() => createReplication(h, config({ targets: ['eu', 'mars'] }), locations), (err: unknown) => err instanceof ConfigError && /replication.targets: "mars" is not a configured storage location \(locations: eu, us, ap\)/.test((err as Error).message));
      const r = createReplication(h, config({ targets: 'eu,us' }), locations)!;
      assert.deepEqual(r.service.defaultTargets, ['eu', 'us']);
    });
  });
}
