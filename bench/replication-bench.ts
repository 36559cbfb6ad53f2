/**
 * Replication between storage locations, on PostgreSQL and S3 (RADOS Gateway): the replication service
 * and worker of `wharf serve` (src/registry/replication/, src/workers/replication/) driven in this
 * process over real locations — a filesystem directory and two key prefixes of one bucket (one endpoint,
 * one set of credentials, so that S3 → S3 is a server-side copy):
 *   1. throughput (MiB/s) draining a queue of 1,000 small blobs (4–16 KiB) and of 10 large ones (64 MiB),
 *      fs → s3 (streamed through Wharf) and s3 → s3 (server side), each against the plain copy of the
 *      same bytes at the same concurrency from one Node process — PutObject of the same files for
 *      fs → s3, CopyObject of the same keys for s3 → s3 — i.e. how close Wharf comes to the storage's
 *      own rate (no peer registry here replicates between locations);
 *   2. the time from a blob's commit to "replicated everywhere" (its placement rows in both other
 *      locations), p50 and p99, under a steady load of commits (BENCH_REPLICATION_RATE per second for
 *      BENCH_REPLICATION_LOAD_S seconds), once with the worker in the committing process (woken by its
 *      commits, as in `wharf serve`) and once in another process (which finds the copies at its poll).
 * Queue, leases and placements are the real tables on PostgreSQL; each blob has its row and a
 * repository link, as after a push. Blobs are written into the source location through the verified
 * write path before the clock starts (part 1), or while it runs (part 2).
 *
 * scripts/bench.sh provides PostgreSQL (BENCH_REPLICATION_PG_URL, an admin URL: the run creates and drops
 * its own database) and the bucket (BENCH_SCALEOUT_S3_*: the run writes under a fresh key prefix and
 * deletes it afterwards). Knobs: BENCH_REPLICATION_SMALL (1000), BENCH_REPLICATION_LARGE (10),
 * BENCH_REPLICATION_LARGE_MIB (64), BENCH_REPLICATION_CONCURRENCY (4, replication.concurrency's default),
 * BENCH_REPLICATION_RATE (10 commits/s), BENCH_REPLICATION_LOAD_S (45), BENCH_REPLICATION_POLL_MS (5000,
 * replication.poll_interval's default), BENCH_REPLICATION_JSON (results file).
 *
 * Exit status: 0 when the run completed (targets met or missed), 1 when something broke.
 */
import { CopyObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes, randomFillSync, randomInt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobGuardStore } from '../src/db/blob-guard-store.js';
import { BlobPlacementStore } from '../src/db/blob-placement-store.js';
import { BlobStore } from '../src/db/blob-store.js';
import { openDatabase, type DatabaseHandle } from '../src/db/connect.js';
import { ReplicationJobStore } from '../src/db/replication-job-store.js';
import { ReplicationTargetStore } from '../src/db/replication-target-store.js';
import { RepositoryStore } from '../src/db/repository-store.js';
import { digestOf, type Digest } from '../src/oci/digest.js';
import { ReplicationService } from '../src/registry/replication/replication-service.js';
import { storeVerified } from '../src/registry/verified-write.js';
import type { BlobDriver } from '../src/storage/blob-driver.js';
import { FsBlobDriver } from '../src/storage/fs/fs-blob-driver.js';
import { blobKey } from '../src/storage/keys.js';
import { LocatedBlobDriver } from '../src/storage/located-driver.js';
import { S3BlobDriver } from '../src/storage/s3/s3-blob-driver.js';
import { copySource } from '../src/storage/s3/s3-writer.js';
import { ReplicationWorker } from '../src/workers/replication/replication-worker.js';
import { bucketFromEnv, emptyPrefix, type BucketSettings } from './lib/bucket.js';
import { MiB, envInt, fmt, log } from './lib/measure.js';
import { createBenchDatabase } from './lib/pg-database.js';
import pino from 'pino';
import { createLogger } from '../src/observability/logger.js';
import { renderTable, type Row } from './lib/report.js';
import { beginBench, runBench, type LiveResources } from './lib/run.js';

const settings = {
  small: envInt('BENCH_REPLICATION_SMALL', 1000, 1, 100_000),
  large: envInt('BENCH_REPLICATION_LARGE', 10, 1, 1000),
  largeMiB: envInt('BENCH_REPLICATION_LARGE_MIB', 64, 1, 4096),
  concurrency: envInt('BENCH_REPLICATION_CONCURRENCY', 4, 1, 256),
  rate: envInt('BENCH_REPLICATION_RATE', 10, 1, 1000),
  loadSeconds: envInt('BENCH_REPLICATION_LOAD_S', 45, 1, 600),
  pollMs: envInt('BENCH_REPLICATION_POLL_MS', 5000, 100, 60_000),
  jsonOut: process.env.BENCH_REPLICATION_JSON,
};

const TARGETS = {
  /** Large blobs: Wharf's copy over the plain copy of the same bytes, at least. */
  largeRatio: 0.8,
  /** Small blobs: each copy costs a few database round trips besides the storage requests. */
  smallRatio: 0.5,
  /** Commit to replicated everywhere, p99, at most (ms): the poll interval plus a copy. */
  latencyP99Ms: (pollMs: number) => pollMs + 2000,
};

interface Blob {
  digest: Digest;
  size: number;
  /** The bytes as a file (for the plain PutObject of the same bytes). */
  path: string;
}

interface Env {
  h: DatabaseHandle;
  bucket: BucketSettings;
  prefix: string;
  fs: FsBlobDriver;
  s3a: S3BlobDriver;
  s3b: S3BlobDriver;
  client: S3Client;
  repoId: number;
  filesDir: string;
}

function s3Driver(b: BucketSettings, prefix: string): S3BlobDriver {
  return new S3BlobDriver({ endpoint: b.endpoint, bucket: b.bucket, region: b.region, accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey, forcePathStyle: true, prefix });
}

/** The service's warnings and errors (a copy retried, a copy that could not be queued), on stderr. */
const benchLog = createLogger('warn', pino.destination(2));

function service(env: Env, locations: LocatedBlobDriver, targets: string[]): ReplicationService {
  const { h } = env;
  return new ReplicationService(
    locations,
    { jobs: new ReplicationJobStore(h.db, h.dialect), placements: new BlobPlacementStore(h.db), targets: new ReplicationTargetStore(h.db), blobs: new BlobStore(h.db), guards: new BlobGuardStore(h.db, h.dialect) },
    { targets, leaseMs: 300_000, backoff: { baseMs: 10_000, maxMs: 300_000 }, orphanMs: 3_600_000, log: benchLog },
  );
}

/** Writes `count` random blobs of `minBytes`–`maxBytes` into the filesystem location (and as files), rows and links recorded. */
async function makeBlobs(env: Env, label: string, count: number, minBytes: number, maxBytes: number): Promise<Blob[]> {
  const out: Blob[] = [];
  const blobs = new BlobStore(env.h.db);
  for (let i = 0; i < count; i++) {
    const size = minBytes === maxBytes ? minBytes : randomInt(minBytes, maxBytes + 1);
    const bytes = Buffer.allocUnsafe(size);
    randomFillSync(bytes);
    const digest = digestOf(bytes);
    const path = join(env.filesDir, `${label}-${i}`);
    await writeFile(path, bytes);
    await storeVerified(env.fs, Readable.from([bytes]), { digest, size });
    await blobs.link(env.repoId, digest, size);
    out.push({ digest, size, path });
  }
  return out;
}

/** Runs `task` over `items`, `concurrency` at a time. */
async function pool<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

interface Throughput {
  wharfMiBs: number;
  plainMiBs: number;
  wharfSeconds: number;
  plainSeconds: number;
  methods: Record<string, number>;
}

/** Wharf drains the queue of copies `from` → `to`; then the plain copy of the same bytes (`plain`). */
async function throughput(env: Env, set: Blob[], from: { name: string; driver: BlobDriver }, to: { name: string; driver: BlobDriver }, plain: (b: Blob) => Promise<void>): Promise<Throughput> {
  const locations = new LocatedBlobDriver([from, to]);
  const s = service(env, locations, [to.name]);
  const jobs = new ReplicationJobStore(env.h.db, env.h.dialect);
  const now = Date.now();
  for (const b of set) await jobs.enqueue(b.digest, [to.name], now);
  const worker = new ReplicationWorker({ service: s, concurrency: settings.concurrency, pollMs: settings.pollMs });
  const bytes = set.reduce((a, b) => a + b.size, 0);
  let t0 = performance.now();
  const results = await worker.runOnce();
  const wharfSeconds = (performance.now() - t0) / 1000;
  const methods: Record<string, number> = {};
  for (const r of results) {
    const k = r.outcome === 'copied' ? r.method : r.outcome;
    methods[k] = (methods[k] ?? 0) + 1;
  }
  if ((methods.streamed ?? 0) + (methods.server_side ?? 0) !== set.length) throw new Error(`${from.name} → ${to.name}: expected ${set.length} copies, got ${JSON.stringify(methods)}`);
  t0 = performance.now();
  await pool(set, settings.concurrency, plain);
  const plainSeconds = (performance.now() - t0) / 1000;
  return { wharfMiBs: bytes / MiB / wharfSeconds, plainMiBs: bytes / MiB / plainSeconds, wharfSeconds, plainSeconds, methods };
}

interface Latency {
  committed: number;
  p50: number;
  p99: number;
  max: number;
  /** Jobs that failed at least once (retried after the backoff). */
  retried: number;
}

/**
 * Commits at a steady rate into fs (preferred) with the worker polling; per blob, commit → placed in s3a
 * and s3b. `sameProcess`: the worker belongs to the process that commits (woken by its commits, as in
 * `wharf serve`); otherwise to another one (a second service over the same tables), which only polls.
 */
async function latencyUnderLoad(env: Env, sameProcess: boolean): Promise<Latency> {
  const locations = new LocatedBlobDriver([
    { name: 'fs', driver: env.fs },
    { name: 's3a', driver: env.s3a },
    { name: 's3b', driver: env.s3b },
  ]);
  const s = service(env, locations, []);
  s.listen();
  let retried = 0;
  const worker = new ReplicationWorker({ service: sameProcess ? s : service(env, locations, []), concurrency: settings.concurrency, pollMs: settings.pollMs });
  const observe = worker.runOnce.bind(worker);
  worker.runOnce = async () => {
    const r = await observe();
    retried += r.filter((x) => x.outcome === 'failed').length;
    return r;
  };
  const blobs = new BlobStore(env.h.db);
  const digests: Digest[] = [];
  worker.start();
  const t0 = performance.now();
  const total = settings.rate * settings.loadSeconds;
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / settings.rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const bytes = randomBytes(randomInt(4 * 1024, 16 * 1024 + 1));
    const digest = digestOf(bytes);
    // As a push: the bytes are committed (the listener queues the copies), then the blob row is recorded.
    await storeVerified(locations, Readable.from([bytes]), { digest, size: bytes.byteLength });
    await blobs.link(env.repoId, digest, bytes.byteLength);
    digests.push(digest);
  }
  const jobs = new ReplicationJobStore(env.h.db, env.h.dialect);
  const deadline = Date.now() + 5 * 60_000;
  // Drained: no job left, and every blob placed in all three (the last commits' copies are queued
  // just after the commit returns, so an empty queue alone may come too early).
  const placedEverywhere = async () =>
    Number((await env.h.db.selectFrom('blob_placements').select((eb) => eb.fn.countAll<string | number>().as('n')).where('digest', 'in', digests).executeTakeFirstOrThrow()).n) === digests.length * 3;
  while ((await jobs.backlog()).size > 0 || !(await placedEverywhere())) {
    if (Date.now() > deadline) throw new Error('the backlog did not drain within 5 minutes of the last commit');
    await sleep(100);
  }
  await worker.stop();
  const rows = await env.h.db.selectFrom('blob_placements').select(['digest', 'location', 'created_at']).where('digest', 'in', digests).execute();
  const at = new Map<string, Map<string, number>>();
  for (const r of rows) (at.get(r.digest) ?? at.set(r.digest, new Map()).get(r.digest)!).set(r.location, Number(r.created_at));
  const latencies = digests.map((d) => {
    const p = at.get(d);
    if (!p?.has('fs') || !p.has('s3a') || !p.has('s3b')) throw new Error(`${d} is not placed everywhere: ${JSON.stringify([...(p ?? [])])}`);
    return Math.max(p.get('s3a')!, p.get('s3b')!) - p.get('fs')!;
  });
  latencies.sort((a, b) => a - b);
  const q = (f: number) => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))]!;
  return { committed: digests.length, p50: q(0.5), p99: q(0.99), max: latencies[latencies.length - 1]!, retried };
}

async function main(live: LiveResources): Promise<void> {
  const started = Date.now();
  const pgUrl = process.env.BENCH_REPLICATION_PG_URL;
  if (!pgUrl) throw new Error('BENCH_REPLICATION_PG_URL is not set: run the suite through scripts/bench.sh, which starts PostgreSQL (or name an admin URL)');
  const { machine, loadBefore, workDir } = await beginBench(live, { workDirPrefix: 'wharf-replication-bench-', wharfLogLevel: 'warn' });
  const bucket = bucketFromEnv();
  const db = await createBenchDatabase(pgUrl, 'wharf_bench_repl');
  const prefix = `bench-replication-${randomBytes(5).toString('hex')}`;
  const h = await openDatabase({ url: db.url, dataDir: workDir, poolSize: 10 });
  const client = new S3Client({ endpoint: bucket.endpoint, region: bucket.region, forcePathStyle: true, credentials: { accessKeyId: bucket.accessKeyId, secretAccessKey: bucket.secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const env: Env = {
    h,
    bucket,
    prefix,
    fs: new FsBlobDriver(join(workDir, 'fs')),
    s3a: s3Driver(bucket, `${prefix}/a`),
    s3b: s3Driver(bucket, `${prefix}/b`),
    client,
    repoId: 0,
    filesDir: join(workDir, 'files'),
  };
  try {
    await mkdir(env.filesDir, { recursive: true });
    env.repoId = (await new RepositoryStore(h.db, h.dialect).ensure('bench', 'replication')).id;
    log(`database ${new URL(db.url).pathname.slice(1)}, bucket ${bucket.bucket} at ${bucket.endpoint}, prefix ${prefix}/; concurrency ${settings.concurrency}`);

    const fs = { name: 'fs', driver: env.fs as BlobDriver };
    const s3a = { name: 's3a', driver: env.s3a as BlobDriver };
    const s3b = { name: 's3b', driver: env.s3b as BlobDriver };
    const put = (peer: string) => async (b: Blob) => {
      await client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: `${prefix}/${peer}/${blobKey(b.digest)}`, Body: createReadStream(b.path), ContentLength: b.size }));
    };
    const copy = (peer: string) => async (b: Blob) => {
      await client.send(new CopyObjectCommand({ Bucket: bucket.bucket, Key: `${prefix}/${peer}/${blobKey(b.digest)}`, CopySource: copySource(bucket.bucket, `${prefix}/a/${blobKey(b.digest)}`) }));
    };
    const results: Record<string, Throughput> = {};
    for (const [label, count, min, max] of [
      ['small', settings.small, 4 * 1024, 16 * 1024],
      ['large', settings.large, settings.largeMiB * MiB, settings.largeMiB * MiB],
    ] as const) {
      log(`writing ${count} ${label} blobs into the filesystem location`);
      const set = await makeBlobs(env, label, count, min, max);
      results[`${label} fs→s3`] = await throughput(env, set, fs, s3a, put(`plain-put-${label}`));
      log(`${label} fs → s3: ${JSON.stringify(results[`${label} fs→s3`])}`);
      results[`${label} s3→s3`] = await throughput(env, set, s3a, s3b, copy(`plain-copy-${label}`));
      log(`${label} s3 → s3: ${JSON.stringify(results[`${label} s3→s3`])}`);
      await rm(env.filesDir, { recursive: true, force: true });
      await mkdir(env.filesDir, { recursive: true });
    }

    const latency: Record<'here' | 'elsewhere', Latency> = {} as never;
    for (const where of ['here', 'elsewhere'] as const) {
      log(`steady load: ${settings.rate} commits/s for ${settings.loadSeconds} s into fs, replicated to s3a and s3b by a worker in ${where === 'here' ? 'the committing process' : 'another process'} (poll every ${settings.pollMs} ms)`);
      latency[where] = await latencyUnderLoad(env, where === 'here');
      log(`latency: ${JSON.stringify(latency[where])}`);
    }

    const rows: Row[] = [];
    for (const [key, r] of Object.entries(results)) {
      const large = key.startsWith('large');
      const ratio = large ? TARGETS.largeRatio : TARGETS.smallRatio;
      const how = key.endsWith('fs→s3') ? 'PutObject' : 'CopyObject';
      const n = large ? `${settings.large} × ${settings.largeMiB} MiB` : `${settings.small} × 4–16 KiB`;
      rows.push({ metric: `${n}, ${key.split(' ')[1]} (plain: ${how})`, wharf: r.wharfMiBs, dist: r.plainMiBs, unit: 'MiB/s', digits: large ? 0 : 1, target: `≥ ${ratio.toFixed(1)}×`, pass: r.wharfMiBs / r.plainMiBs >= ratio });
    }
    const stamp = new Date().toISOString().slice(0, 16).replace('T', ' ');
    const lines = renderTable(
      [
        `Replication throughput, ${settings.concurrency} copies at once: Wharf's queue drained by its worker vs the plain copy of the same bytes at the same concurrency — ${stamp} UTC`,
        `${machine.nproc} CPUs ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}; PostgreSQL and RADOS Gateway on the same machine`,
      ],
      rows,
      ['Wharf', 'plain copy'],
    );
    lines.push('', 'Copies by method: ' + Object.entries(results).map(([k, r]) => `${k} ${Object.entries(r.methods).map(([m, c]) => `${c} ${m}`).join(', ')}`).join('; '));
    const limit = TARGETS.latencyP99Ms(settings.pollMs);
    const { here, elsewhere } = latency;
    lines.push(
      ...renderTable(
        [
          `Commit to "replicated everywhere" (placed in s3a and s3b), ${here.committed} blobs of 4–16 KiB at ${settings.rate}/s into fs (the preferred location), ${settings.concurrency} copies at once;`,
          `the worker in the committing process (woken by its commits) and in another process (poll every ${settings.pollMs} ms)`,
        ],
        [
          { metric: 'p50', wharf: here.p50, dist: elsewhere.p50, unit: 'ms', digits: 0, noRatio: true },
          { metric: 'p99', wharf: here.p99, dist: elsewhere.p99, unit: 'ms', digits: 0, noRatio: true, target: `≤ ${limit} ms (both)`, pass: here.p99 <= limit && elsewhere.p99 <= limit },
          { metric: 'max', wharf: here.max, dist: elsewhere.max, unit: 'ms', digits: 0, noRatio: true },
        ],
        ['same process', 'other process'],
      ),
      `  copies retried after a failed attempt: ${here.retried} (same process), ${elsewhere.retried} (other process)`,
      '',
      `load average (1 min) before ${fmt(loadBefore, 2)}, after ${fmt(loadavg()[0]!, 2)}; total ${fmt((Date.now() - started) / 1000)} s`,
      '',
    );
    process.stdout.write(lines.join('\n'));
    if (settings.jsonOut) await writeFile(settings.jsonOut, JSON.stringify({ date: new Date().toISOString(), machine, settings, loadBefore, loadAfter: loadavg()[0], results, latency }, null, 2));
  } finally {
    log('dropping the database and deleting the prefix');
    env.s3a.close();
    env.s3b.close();
    client.destroy();
    await h.close().catch(() => {});
    await db.drop().catch((err: unknown) => log(`drop failed: ${String(err)}`));
    await emptyPrefix(bucket, `${prefix}/`).catch((err: unknown) => log(`cleanup failed: ${String(err)}`));
    await rm(workDir, { recursive: true, force: true });
  }
}

runBench(main, log);
