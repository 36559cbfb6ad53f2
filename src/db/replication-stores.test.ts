/**
 * The replication stores on both dialects: idempotent enqueueing, claims under leases (many concurrent
 * claimers take distinct jobs; an expired lease is taken over; a live one is not; a claim's batch stays
 * within its byte limit), batch renewals and releases, finish, fail with a
 * capped exponential backoff, placements, organization targets, backfill scans, status aggregates, and
 * GC deleting a blob's placements and jobs with its row.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import type { Digest } from '../oci/digest.js';
import { BlobPlacementStore } from './blob-placement-store.js';
import { BlobStore } from './blob-store.js';
import type { DatabaseHandle } from './connect.js';
import { GcStore } from './gc-store.js';
import { ReplicationJobStore, backoffDelay } from './replication-job-store.js';
import { ReplicationTargetStore } from './replication-target-store.js';
import { RepositoryStore } from './repository-store.js';

const LEASE = 60_000;
const BACKOFF = { baseMs: 1_000, maxMs: 8_000 };
const d = (n: number | string) => `sha256:${String(n).padStart(64, '0')}` as Digest;

for (const dialect of DIALECTS) {
  describe(`replication stores (${dialect})`, () => {
    let h: DatabaseHandle;
    let jobs: ReplicationJobStore;
    let placements: BlobPlacementStore;
    let targets: ReplicationTargetStore;
    let blobs: BlobStore;
    let repos: RepositoryStore;
    before(async () => {
      h = await openTestDatabase(dialect);
      jobs = new ReplicationJobStore(h.db, h.dialect);
      placements = new BlobPlacementStore(h.db);
      targets = new ReplicationTargetStore(h.db);
      blobs = new BlobStore(h.db);
      repos = new RepositoryStore(h.db, h.dialect);
    });
    after(async () => h.close());
    const clear = () => h.db.deleteFrom('replication_jobs').execute();

    it('enqueues once per digest and location', async () => {
      await clear();
      assert.equal(await jobs.enqueue(d(1), ['eu', 'us'], 100), 2);
      assert.equal(await jobs.enqueue(d(1), ['eu', 'us', 'ap'], 200), 1);
      assert.equal(await jobs.enqueue(d(1), [], 200), 0);
      assert.equal((await jobs.find(d(1), 'eu'))?.created_at, 100);
      assert.deepEqual(await jobs.backlog(), new Map([['ap', 1], ['eu', 1], ['us', 1]]));
    });

    it('gives each due job to one of many concurrent claimers, and none that is not due', async () => {
      await clear();
      for (let i = 0; i < 20; i++) await jobs.enqueue(d(`c${i}`), ['eu'], 1_000);
      await jobs.enqueue(d('later'), ['eu'], 5_000);
      const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => jobs.claim(`w${i}`, 4, 2_000, LEASE)));
      const ids = claims.flat().map((j) => j.id);
      assert.equal(ids.length, new Set(ids).size, 'no job claimed twice');
      const rest = await jobs.claim('late', 100, 2_000, LEASE);
      assert.equal(ids.length + rest.length, 20, 'every due job claimed, the one due later not');
      assert.ok(![...ids, ...rest.map((j) => j.id)].includes((await jobs.find(d('later'), 'eu'))!.id));
      for (const j of claims.flat()) assert.equal(j.leaseExpiresAt, 2_000 + LEASE);
    });

    it('takes over a job only once its lease expired; the old holder can then neither renew nor fail it', async () => {
      await clear();
      await jobs.enqueue(d('lease'), ['eu'], 0);
      const [a] = await jobs.claim('a', 1, 1_000, LEASE);
      assert.ok(a);
      assert.deepEqual(await jobs.claim('b', 1, 1_000 + LEASE - 1, LEASE), []);
      assert.equal(await jobs.renew(a.id, 'a', 2_000, LEASE), true);
      assert.deepEqual(await jobs.claim('b', 1, 1_000 + LEASE, LEASE), [], 'renewed');
      const late = 2_000 + LEASE;
      const [b, c] = await Promise.all([jobs.claim('b', 1, late, LEASE), jobs.claim('c', 1, late, LEASE)]);
      assert.equal(b!.length + c!.length, 1);
      assert.equal(await jobs.renew(a.id, 'a', late, LEASE), false);
      assert.equal(await jobs.fail(a.id, 'a', 'late', late, BACKOFF), false);
      // The lost lease counts as an attempt, saying whose it was.
      const [taken] = [...b!, ...c!];
      assert.equal(taken!.attempts, 1);
      const row = (await jobs.find(d('lease'), 'eu'))!;
      assert.deepEqual([row.attempts, row.state, row.last_error], [1, 'retrying', 'the lease of a expired before its copy finished (the worker stopped or hung)']);
      assert.equal(await jobs.fail(taken!.id, taken!.leaseOwner, 'down', late, BACKOFF), true);
      assert.equal((await jobs.find(d('lease'), 'eu'))?.attempts, 2);
      const [free] = await jobs.claim('d', 1, late + BACKOFF.maxMs, LEASE);
      assert.equal(free!.attempts, 2, 'a released job is claimed without counting an attempt');
    });

    it('fails with an exponential backoff, capped; finish records the placement and removes the job', async () => {
      await clear();
      assert.deepEqual([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n, BACKOFF)), [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
      await jobs.enqueue(d('fail'), ['us'], 0);
      let now = 0;
      const delays: number[] = [];
      for (let i = 0; i < 5; i++) {
        const [j] = await jobs.claim('w', 1, now, LEASE);
        assert.ok(j, `attempt ${i + 1} claimed`);
        assert.equal(j.attempts, i);
        assert.equal(await jobs.fail(j.id, 'w', `boom ${i}`, now, BACKOFF), true);
        const row = (await jobs.find(d('fail'), 'us'))!;
        assert.equal(row.state, 'retrying');
        assert.equal(row.lease_owner, null);
        assert.equal(row.last_error, `boom ${i}`);
        delays.push(row.next_attempt_at - now);
        assert.deepEqual(await jobs.claim('w', 1, row.next_attempt_at - 1, LEASE), [], 'not before the backoff');
        now = row.next_attempt_at;
      }
      assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 8_000]);
      const [j] = await jobs.claim('w', 1, now, LEASE);
      await jobs.finish(j!.id, d('fail'), 'us', now);
      assert.equal(await jobs.find(d('fail'), 'us'), undefined);
      assert.deepEqual(await placements.list(d('fail')), ['us']);
    });

    it('claims many small jobs at once and a large one alone (a byte limit per claim); renews, releases and lists them as batches', async () => {
      await clear();
      const r = await repos.ensure('batch', 'app');
      for (const [name, size] of [['s1', 1_000], ['s2', 1_000], ['big', 10_000], ['s3', 1_000]] as const) {
        await blobs.link(r.id, d(name), size);
        await jobs.enqueue(d(name), ['us'], 1_000);
      }
      await jobs.enqueue(d('norow'), ['us', 'eu'], 1_000);
      const names = (js: Array<{ digest: string; location: string }>) => js.map((j) => `${j.digest.slice(-5).replace(/^0+/, '')}>${j.location}`);
      const first = await jobs.claim('w', 10, 2_000, LEASE, 5_000);
      assert.deepEqual(names(first), ['s1>us', 's2>us'], 'the next one would pass the limit');
      assert.deepEqual(names(await jobs.claim('w', 10, 2_000, LEASE, 5_000)), ['big>us'], 'alone, larger than the limit');
      const last = await jobs.claim('w', 2, 2_000, LEASE, 5_000);
      assert.deepEqual(names(last), ['s3>us', 'norow>us'], 'a job without a row counts no bytes; at most the limit of jobs');
      assert.deepEqual(names(await jobs.claim('w', 10, 2_000, LEASE, 0)), ['norow>eu']);

      const ids = [...first, ...last].map((j) => j.id);
      assert.deepEqual(await jobs.renewAll(ids, 'w', 3_000, LEASE), new Set(ids));
      assert.equal((await jobs.find(d('s3'), 'us'))!.lease_expires_at, 3_000 + LEASE);
      assert.deepEqual(await jobs.renewAll(ids, 'other', 3_000, LEASE), new Set(), 'not the holder');
      await jobs.release(first.map((j) => j.id), 'w');
      assert.deepEqual([(await jobs.find(d('s1'), 'us'))!.lease_owner, (await jobs.find(d('s3'), 'us'))!.lease_owner], [null, 'w']);
      assert.deepEqual(await jobs.renewAll(ids, 'w', 4_000, LEASE), new Set(last.map((j) => j.id)), 'released jobs are no longer held');
      const queued = await jobs.queuedFor([d('norow'), d('s1'), d('none')]);
      assert.deepEqual([...queued.keys()].sort(), [d('norow'), d('s1')].sort());
      assert.deepEqual(queued.get(d('norow'))!.sort(), ['eu', 'us']);
      await placements.add(d('s1'), 'us', 1);
      await placements.add(d('s1'), 'eu', 1);
      assert.deepEqual(await placements.listAll([d('s1'), d('s2')]), new Map([[d('s1'), ['eu', 'us']]]));
    });

    it('adds, lists and removes placements idempotently', async () => {
      await placements.add(d('p'), 'us', 1);
      await placements.add(d('p'), 'eu', 1);
      await placements.add(d('p'), 'eu', 2);
      assert.deepEqual(await placements.list(d('p')), ['eu', 'us']);
      await placements.remove(d('p'), 'us');
      assert.deepEqual(await placements.list(d('p')), ['eu']);
    });

    it('keeps organization targets, and unions the targets of every organization linking a digest', async () => {
      const a = await repos.ensure('orga', 'team/app');
      const b = await repos.ensure('orgb', 'tool');
      await repos.ensure('orgc', 'other');
      const nsA = Number((await h.db.selectFrom('namespaces').select('id').where('name', '=', 'orga').executeTakeFirstOrThrow()).id);
      const nsB = Number((await h.db.selectFrom('namespaces').select('id').where('name', '=', 'orgb').executeTakeFirstOrThrow()).id);
      const nsC = Number((await h.db.selectFrom('namespaces').select('id').where('name', '=', 'orgc').executeTakeFirstOrThrow()).id);
      await targets.set(nsA, ['us', 'eu', 'us']);
      await targets.set(nsB, ['ap']);
      await targets.set(nsC, ['zz']);
      assert.deepEqual(await targets.get(nsA), ['eu', 'us']);
      await blobs.link(a.id, d('shared'), 10);
      await blobs.link(b.id, d('shared'), 10);
      await blobs.link(a.id, d('onlya'), 10);
      assert.deepEqual(await targets.forDigest(d('shared')), ['ap', 'eu', 'us']);
      assert.deepEqual(await targets.forDigest(d('onlya')), ['eu', 'us']);
      assert.deepEqual(await targets.forDigest(d('nobody')), []);
      assert.deepEqual(await targets.forDigests([d('shared'), d('onlya'), d('nobody')]), new Map([[d('shared'), ['ap', 'eu', 'us']], [d('onlya'), ['eu', 'us']]]), 'one statement for several digests');
      await targets.set(nsA, []);
      assert.deepEqual(await targets.get(nsA), []);
      assert.deepEqual((await targets.all()).map((t) => t.locations), [['ap'], ['zz']]);
      await h.db.deleteFrom('namespaces').where('id', '=', nsC).execute();
      assert.deepEqual((await targets.all()).map((t) => t.locations), [['ap']], 'deleting the namespace deletes its targets');
    });

    it('backfills every blob a location lacks, in batches, optionally only a namespace', async () => {
      await clear();
      const r = await repos.ensure('fill', 'app');
      const other = await repos.ensure('fillother', 'app');
      const fill = Array.from({ length: 5 }, (_, i) => d(`fill${i}`));
      for (const digest of fill) await blobs.link(r.id, digest, 1);
      await blobs.link(other.id, d('fillother'), 1);
      await placements.add(fill[0]!, 'ap', 0);
      const nsId = Number((await h.db.selectFrom('namespaces').select('id').where('name', '=', 'fill').executeTakeFirstOrThrow()).id);
      let after: number | undefined = 0;
      let queued = 0;
      let batches = 0;
      while (after !== undefined) {
        const res: { queued: number; next?: number } = await jobs.enqueueMissing('ap', after, 2, 10, nsId);
        queued += res.queued;
        after = res.next;
        batches++;
      }
      assert.equal(queued, 4, 'every blob of the namespace but the one placed');
      assert.ok(batches >= 3);
      assert.equal(await jobs.find(d('fillother'), 'ap'), undefined);
      assert.equal(await jobs.find(fill[0]!, 'ap'), undefined);
      const again = await jobs.enqueueMissing('ap', 0, 1000, 20, nsId);
      assert.equal(again.queued, 0, 'idempotent');
    });

    it('reports per location how much of a scope it holds, the backlog and the failures', async () => {
      await clear();
      const r = await repos.ensure('stat', 'team/app');
      const r2 = await repos.ensure('stat', 'other');
      await blobs.link(r.id, d('s1'), 100);
      await blobs.link(r.id, d('s2'), 20);
      await blobs.link(r2.id, d('s3'), 3);
      await placements.add(d('s1'), 'eu', 0);
      await placements.add(d('s2'), 'eu', 0);
      await placements.add(d('s3'), 'eu', 0);
      await placements.add(d('s1'), 'us', 0);
      await jobs.enqueue(d('s2'), ['us'], 0);
      await jobs.enqueue(d('s3'), ['us'], 0);
      const [j] = await jobs.claim('w', 1, 0, LEASE);
      await jobs.fail(j!.id, 'w', 'us is down', 0, BACKOFF);
      const ns = Number((await h.db.selectFrom('namespaces').select('id').where('name', '=', 'stat').executeTakeFirstOrThrow()).id);
      const all = await placements.status(['us', 'eu'], { namespaceId: ns });
      assert.deepEqual(all, {
        blobs: 3,
        bytes: 123,
        locations: [
          { location: 'us', blobs: 1, bytes: 100, backlog: 2, failing: 1, lastError: 'us is down' },
          { location: 'eu', blobs: 3, bytes: 123, backlog: 0, failing: 0, lastError: null },
        ],
      });
      const repo = await placements.status(['us', 'eu'], { namespaceId: ns, repositoryId: r.id });
      assert.equal(repo.blobs, 2);
      assert.equal(repo.bytes, 120);
      assert.equal(repo.locations[0]!.backlog, 1);
      const registry = await placements.status(['us', 'eu', 'ap']);
      assert.ok(registry.blobs >= 3);
      assert.deepEqual(registry.locations.map((l) => l.location).slice(0, 3), ['us', 'eu', 'ap']);
    });

    it('GC deletes the placements and queued jobs of the blobs it deletes, and only theirs', async () => {
      await clear();
      const r = await repos.ensure('gcrep', 'app');
      await blobs.link(r.id, d('gone'), 5);
      await blobs.link(r.id, d('kept'), 5);
      await h.db.deleteFrom('repository_blobs').where('repository_id', '=', r.id).where('blob_id', '=', (await blobs.find(d('gone')))!.id).execute();
      await h.db.updateTable('blobs').set({ created_at: 0 }).execute();
      for (const digest of [d('gone'), d('kept')]) {
        await placements.add(digest, 'eu', 0);
        await jobs.enqueue(digest, ['us'], 0);
      }
      const gc = new GcStore(h.db, h.dialect);
      const res = await gc.deleteBlobs({ now: Date.now(), graceCutoff: Date.now(), defaultWindowMs: 0 }, 0, 1000, Date.now() + 60_000);
      assert.ok(res.blobs.some((b) => b.digest === d('gone')));
      assert.ok(!res.blobs.some((b) => b.digest === d('kept')));
      assert.deepEqual(await placements.list(d('gone')), []);
      assert.equal(await jobs.find(d('gone'), 'us'), undefined);
      assert.deepEqual(await placements.list(d('kept')), ['eu']);
      assert.ok(await jobs.find(d('kept'), 'us'));
    });
  });
}
