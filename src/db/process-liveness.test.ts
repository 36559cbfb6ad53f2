import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, openProcessDatabase, openTestDatabase, pgRows } from '../../test/helpers/databases.js';
import { BlobFillLeaseStore } from './blob-fill-lease-store.js';
import { openDatabase, type DatabaseHandle } from './connect.js';
import { ReplicationJobStore } from './replication-job-store.js';
import { UploadStore } from './upload-store.js';

const CLAIM = 15_000;
const NOW = 1_000_000;

/** Two "processes" on one database: handles with different process ids, each holding its liveness lock. */
const openProcess = openProcessDatabase;

/** The backend pids holding `processId`'s liveness lock, seen from a connection of their own. */
async function lockHolders(url: string, processId: string): Promise<number[]> {
  const rows = await pgRows(url, `select l.pid from pg_locks l where l.locktype = 'advisory' and l.granted and l.objsubid = 2 and l.objid = hashtext('${processId}')::oid`);
  return rows.map((r) => Number(r.pid));
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`never: ${what}`);
}

let uploadSeq = 0;
async function newUpload(h: DatabaseHandle): Promise<string> {
  const ns = await h.db.insertInto('namespaces').values({ name: `ns${++uploadSeq}`, created_at: 0 }).returning('id').executeTakeFirstOrThrow();
  const repo = await h.db.insertInto('repositories').values({ namespace_id: Number(ns.id), name: 'r', created_at: 0 }).returning('id').executeTakeFirstOrThrow();
  const id = `00000000-0000-4000-8000-${String(uploadSeq).padStart(12, '0')}`;
  await new UploadStore(h.db).create(id, Number(repo.id));
  return id;
}

describe('process liveness (postgres): the claims of a process are taken over the moment it dies', () => {
  let admin: DatabaseHandle & { url: string };
  before(async () => {
    admin = await openTestDatabase('postgres');
  });
  after(async () => admin.close());

  it("takes over B's chunk claim at once after B's liveness connection closes, and not while B lives and its claim is current", async () => {
    const a = await openProcess(admin.url, 'process-a');
    const b = await openProcess(admin.url, 'process-b');
    try {
      assert.equal(a.processId, 'process-a');
      const id = await newUpload(admin);
      const mine = new UploadStore(a.db, a.dialect, a.processId);
      const theirs = new UploadStore(b.db, b.dialect, b.processId);
      assert.equal(await theirs.claimChunk(id, 'writer-b', NOW, CLAIM), 'claimed');
      assert.equal(await mine.claimChunk(id, 'writer-a', NOW + 1, CLAIM), 'busy', 'B lives and its claim is current');
      assert.equal(await theirs.renewChunk(id, 'writer-b', NOW + 2, CLAIM), true);
      await b.close(); // B dies: its liveness connection closes with it
      assert.equal(await mine.claimChunk(id, 'writer-a', NOW + 3, CLAIM), 'claimed', 'long before the claim expires');
      const row = await admin.db.selectFrom('uploads').select(['chunk_writer', 'chunk_process']).where('id', '=', id).executeTakeFirstOrThrow();
      assert.deepEqual(row, { chunk_writer: 'writer-a', chunk_process: 'process-a' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('leaves the claim of a process without a liveness lock (a CLI command) until it expires', async () => {
    const a = await openProcess(admin.url, 'process-a');
    try {
      const id = await newUpload(admin);
      await new UploadStore(admin.db, admin.dialect).claimChunk(id, 'writer-cli', NOW, CLAIM);
      const mine = new UploadStore(a.db, a.dialect, a.processId);
      assert.equal(await mine.claimChunk(id, 'writer-a', NOW + CLAIM - 1, CLAIM), 'busy');
      assert.equal(await mine.claimChunk(id, 'writer-a', NOW + CLAIM, CLAIM), 'claimed');
    } finally {
      await a.close();
    }
  });

  it('a process whose liveness connection drops is taken for dead, cannot commit under a claim taken over, and takes its lock again', async () => {
    const a = await openProcess(admin.url, 'process-a');
    const b = await openProcess(admin.url, 'process-b');
    try {
      const id = await newUpload(admin);
      const mine = new UploadStore(a.db, a.dialect, a.processId);
      const theirs = new UploadStore(b.db, b.dialect, b.processId);
      assert.equal(await theirs.claimChunk(id, 'writer-b', NOW, CLAIM), 'claimed');
      const [pid, ...more] = await lockHolders(admin.url, 'process-b');
      assert.ok(pid !== undefined && more.length === 0, 'B holds its lock on one connection');
      await pgRows(admin.url, `select pg_terminate_backend(${pid})`);
      await until("B's lock is gone", async () => (await lockHolders(admin.url, 'process-b')).length === 0);
      assert.equal(await mine.claimChunk(id, 'writer-a', NOW + 1, CLAIM), 'claimed');
      // B's chunk ends: the check before its commit finds the claim is no longer its own.
      assert.equal(await theirs.renewChunk(id, 'writer-b', NOW + 2, CLAIM), false);
      // B reconnects on its own and is alive again: its new claims hold against A.
      await until('B holds its lock again', async () => (await lockHolders(admin.url, 'process-b')).length === 1);
      const other = await newUpload(admin);
      assert.equal(await theirs.claimChunk(other, 'writer-b2', NOW + 3, CLAIM), 'claimed');
      assert.equal(await mine.claimChunk(other, 'writer-a2', NOW + 4, CLAIM), 'busy');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('after every connection to the database is cut (as a restart of PostgreSQL does), each process holds its lock again and works on', async () => {
    const a = await openProcess(admin.url, 'process-a');
    const b = await openProcess(admin.url, 'process-b');
    try {
      const mine = new UploadStore(a.db, a.dialect, a.processId);
      const theirs = new UploadStore(b.db, b.dialect, b.processId);
      const before = await newUpload(admin);
      assert.equal(await theirs.claimChunk(before, 'writer-b', NOW, CLAIM), 'claimed');
      await pgRows(admin.url, 'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
      await until('both processes hold their locks again', async () => (await lockHolders(admin.url, 'process-a')).length === 1 && (await lockHolders(admin.url, 'process-b')).length === 1);
      // Pooled connections were cut too: queries reconnect.
      const after = await newUpload(admin);
      assert.equal(await theirs.claimChunk(after, 'writer-b2', NOW + 1, CLAIM), 'claimed');
      assert.equal(await mine.claimChunk(after, 'writer-a', NOW + 2, CLAIM), 'busy', 'B is alive again');
      assert.equal(await mine.claimChunk(before, 'writer-a', NOW + 2, CLAIM), 'busy', 'a claim B made before the cut is current and B lives');
      assert.equal(await theirs.renewChunk(before, 'writer-b', NOW + 3, CLAIM), true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("takes over a dead process's blob fill lease and replication job at once", async () => {
    const a = await openProcess(admin.url, 'process-a');
    const b = await openProcess(admin.url, 'process-b');
    try {
      const fillsA = new BlobFillLeaseStore(a.db, a.dialect, a.processId);
      const fillsB = new BlobFillLeaseStore(b.db, b.dialect, b.processId);
      const A = { owner: 'process-a', ownerUrl: 'http://a' };
      const B = { owner: 'process-b', ownerUrl: 'http://b' };
      assert.equal((await fillsB.take('sha256:fill', B, NOW, CLAIM)).taken, true);
      assert.equal((await fillsA.take('sha256:fill', A, NOW + 1, CLAIM)).taken, false);

      const jobsA = new ReplicationJobStore(a.db, a.dialect, a.processId);
      const jobsB = new ReplicationJobStore(b.db, b.dialect, b.processId);
      await jobsB.enqueue('sha256:job', ['eu'], 0);
      const [held] = await jobsB.claim('worker-b', 1, NOW, CLAIM);
      assert.ok(held);
      assert.deepEqual(await jobsA.claim('worker-a', 1, NOW + 1, CLAIM), []);

      await b.close();
      const fill = await fillsA.take('sha256:fill', A, NOW + 2, CLAIM);
      assert.deepEqual([fill.taken, fill.lease?.owner, fill.lease?.owner_process], [true, 'process-a', 'process-a']);
      const [taken] = await jobsA.claim('worker-a', 1, NOW + 2, CLAIM);
      assert.equal(taken?.id, held.id);
      assert.equal(taken.attempts, 1, 'the lost lease counts as an attempt');
      assert.equal((await jobsA.find('sha256:job', 'eu'))?.last_error, 'the process of worker-b died before its copy finished');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

for (const dialect of DIALECTS) {
  describe(`chunk claims of another writer (${dialect})`, () => {
    let h: DatabaseHandle;
    before(async () => {
      h = await openTestDatabase(dialect);
    });
    after(async () => h.close());

    it('hold against a live process until they expire', async () => {
      // One process with its liveness lock on PostgreSQL; on SQLite the id changes nothing.
      const p = await openDatabase({ url: (h as DatabaseHandle & { url: string }).url, dataDir: tmpdir(), migrate: false, processId: 'process-live' });
      try {
        assert.equal(p.processId, dialect === 'postgres' ? 'process-live' : undefined);
        const id = await newUpload(h);
        const store = new UploadStore(p.db, p.dialect, p.processId);
        assert.equal(await store.claimChunk(id, 'first', NOW, CLAIM), 'claimed');
        assert.equal(await store.claimChunk(id, 'second', NOW + CLAIM - 1, CLAIM), 'busy');
        assert.equal(await store.claimChunk(id, 'second', NOW + CLAIM, CLAIM), 'claimed');
        assert.equal(await store.renewChunk(id, 'first', NOW + CLAIM, CLAIM), false);
      } finally {
        await p.close();
      }
    });
  });
}
