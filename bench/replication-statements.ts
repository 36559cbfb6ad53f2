/**
 * Database statements per small replication copy: the replication worker drains a queue of small blobs
 * (4–16 KiB) between two filesystem locations at `replication.concurrency` (4) while a Kysely plugin
 * counts every statement it sends, and every transaction (on PostgreSQL a transaction adds a BEGIN and
 * a COMMIT round trip). Not a timing: the counts do not depend on the machine's load.
 *
 *   node --import tsx bench/replication-statements.ts [postgres://admin-url]
 *
 * With a PostgreSQL admin URL (or WHARF_TEST_PG_URL) the run creates and drops its own database there;
 * otherwise it uses SQLite in a temporary directory. BENCH_REPLICATION_SMALL: blobs (default 200).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import type { KyselyPlugin } from 'kysely';
import { BlobGuardStore } from '../src/db/blob-guard-store.js';
import { BlobPlacementStore } from '../src/db/blob-placement-store.js';
import { BlobStore } from '../src/db/blob-store.js';
import { openDatabase } from '../src/db/connect.js';
import { ReplicationJobStore } from '../src/db/replication-job-store.js';
import { ReplicationTargetStore } from '../src/db/replication-target-store.js';
import { RepositoryStore } from '../src/db/repository-store.js';
import { digestOf } from '../src/oci/digest.js';
import { ReplicationService } from '../src/registry/replication/replication-service.js';
import { storeVerified } from '../src/registry/verified-write.js';
import { FsBlobDriver } from '../src/storage/fs/fs-blob-driver.js';
import { LocatedBlobDriver } from '../src/storage/located-driver.js';
import { ReplicationWorker } from '../src/workers/replication/replication-worker.js';
import { envInt } from './lib/measure.js';

const count = envInt('BENCH_REPLICATION_SMALL', 200, 1, 100_000);
const admin = process.argv[2] ?? process.env.WHARF_TEST_PG_URL;
const dir = await mkdtemp(join(tmpdir(), 'wharf-replication-statements-'));
let url: string | undefined;
let drop = async () => {};
if (admin) {
  const name = `wharf_statements_${randomBytes(5).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`create database ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  url = u.toString();
  drop = async () => {
    const d = new pg.Client({ connectionString: admin });
    await d.connect();
    await d.query(`drop database ${name} with (force)`);
    await d.end();
  };
}
const h = await openDatabase({ ...(url ? { url } : {}), dataDir: dir, poolSize: 10 });
try {
  const stats = { statements: 0, transactions: 0, counting: false };
  const counter: KyselyPlugin = {
    transformQuery: (a) => {
      if (stats.counting) stats.statements++;
      return a.node;
    },
    transformResult: async (a) => a.result,
  };
  const db = h.db.withPlugin(counter);
  const transaction = db.transaction.bind(db);
  db.transaction = () => {
    if (stats.counting) stats.transactions++;
    return transaction();
  };

  const src = new FsBlobDriver(join(dir, 'a'));
  const dst = new FsBlobDriver(join(dir, 'b'));
  const locations = new LocatedBlobDriver([
    { name: 'a', driver: src },
    { name: 'b', driver: dst },
  ]);
  const jobs = new ReplicationJobStore(db, h.dialect);
  const blobs = new BlobStore(h.db);
  const repo = await new RepositoryStore(h.db, h.dialect).ensure('bench', 'statements');
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(randomInt(4 * 1024, 16 * 1024 + 1));
    const digest = digestOf(bytes);
    await storeVerified(src, Readable.from([bytes]), { digest, size: bytes.byteLength });
    await blobs.link(repo.id, digest, bytes.byteLength);
    await new BlobPlacementStore(h.db).add(digest, 'a', Date.now());
    await jobs.enqueue(digest, ['b'], Date.now());
  }
  const service = new ReplicationService(
    locations,
    { jobs, placements: new BlobPlacementStore(db), targets: new ReplicationTargetStore(db), blobs: new BlobStore(db), guards: new BlobGuardStore(db, h.dialect) },
    { targets: ['a', 'b'], leaseMs: 300_000, backoff: { baseMs: 10_000, maxMs: 300_000 }, orphanMs: 3_600_000 },
  );
  const worker = new ReplicationWorker({ service, concurrency: 4, pollMs: 5000 });
  stats.counting = true;
  const results = await worker.runOnce();
  stats.counting = false;
  const copied = results.filter((r) => r.outcome === 'copied').length;
  if (copied !== count) throw new Error(`expected ${count} copies, got ${JSON.stringify(results.map((r) => r.outcome))}`);
  const roundTrips = stats.statements + (h.dialect.name === 'postgres' ? 2 * stats.transactions : 0);
  console.log(
    JSON.stringify({
      dialect: h.dialect.name,
      copies: copied,
      statementsPerCopy: +(stats.statements / copied).toFixed(2),
      transactionsPerCopy: +(stats.transactions / copied).toFixed(2),
      roundTripsPerCopy: +(roundTrips / copied).toFixed(2),
    }),
  );
} finally {
  await h.close();
  await drop();
  await rm(dir, { recursive: true, force: true });
}
