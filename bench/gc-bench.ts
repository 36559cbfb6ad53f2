/**
 * Garbage collection and the quota recount over a large registry, on SQLite and (when a URL is given)
 * PostgreSQL: seeds the tables directly with SQL, then times
 *   1. `QuotaAccounting.recount()` twice: the first fills the quota tables (the seeder leaves them
 *      empty, so every total has drifted), the second finds nothing to correct ("no drift"),
 *   2. a GC dry run and one real pass (which keeps the quota totals as it deletes), with rows per second,
 *   3. a dry-run recount after the pass, which must find no drift (GC kept the totals exact),
 * and reports each recount against the GC pass of the same run (there is no peer for either).
 *
 *   node --import tsx bench/gc-bench.ts      (scripts/bench.sh runs it with BENCH_SUITE=gc or all)
 *
 * Knobs (environment): BENCH_GC_BLOBS (100000), BENCH_GC_TAGS (1000000), BENCH_GC_BATCH (500),
 * BENCH_GC_PG_URL (an admin URL such as postgres://postgres@127.0.0.1:5432/postgres; default
 * WHARF_TEST_PG_URL; unset: SQLite only). A throw-away database is created and dropped. Exit status 1
 * when something broke, including a GC pass that removed other counts than the seed implies or a
 * recount that found drift where there must be none.
 *
 * The shape: 10% of the blobs are orphans (linked two days ago, used by no manifest); the others belong
 * to manifests of two blobs each, spread over 100 repositories. Every manifest has BENCH_GC_TAGS /
 * manifests tag rows: half of the manifests have a live tag, a quarter only history within the
 * two-week window, a quarter only history from 30 days ago, which GC removes with their blobs. Blob
 * bytes are not stored (the memory driver's deletes are no-ops): this measures the database work.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { BlobGuardStore } from '../src/db/blob-guard-store.js';
import { openDatabase, type DatabaseHandle } from '../src/db/connect.js';
import { GcPreviewStore } from '../src/db/gc-preview-store.js';
import { GcStore } from '../src/db/gc-store.js';
import { QuotaAccounting, type RecountReport } from '../src/db/quota-accounting.js';
import type { Database } from '../src/db/tables.js';
import { GarbageCollector } from '../src/registry/gc.js';
import { MemoryBlobDriver } from '../src/storage/memory/memory-blob-driver.js';

const BLOBS = Number(process.env.BENCH_GC_BLOBS ?? 100_000);
const TAGS = Number(process.env.BENCH_GC_TAGS ?? 1_000_000);
const BATCH = Number(process.env.BENCH_GC_BATCH ?? 500);
const PG_URL = process.env.BENCH_GC_PG_URL ?? process.env.WHARF_TEST_PG_URL;
const REPOS = 100;
const DAY = 86_400_000;

export async function seed(h: DatabaseHandle): Promise<{ manifests: number; tagsPerManifest: number }> {
  const db = h.db as Kysely<Database>;
  const pgsql = h.dialect.name === 'postgres';
  const now = Date.now();
  const referenced = Math.floor(BLOBS * 0.9);
  const manifests = Math.floor(referenced / 2);
  const tagsPerManifest = Math.max(1, Math.floor(TAGS / manifests));
  const hex = (n: string, offset: number) => (pgsql ? sql.raw(`lpad(to_hex(${n} + ${offset}), 64, '0')`) : sql.raw(`printf('%064x', ${n} + ${offset})`));
  // Constants are inlined (sql.lit): SQLite would bind numbers as reals and divide them as such.
  const seq = (count: number) => sql.raw(`with recursive seq(n) as (select 0 union all select n + 1 from seq where n < ${count - 1})`);
  const bytes = pgsql ? sql.raw(`'\\x7b7d'::bytea`) : sql.raw(`x'7b7d'`);

  const ns = await db.insertInto('namespaces').values({ name: 'bench', created_at: now }).returning('id').executeTakeFirstOrThrow();
  await sql`${seq(REPOS)} insert into repositories (namespace_id, name, created_at) select ${sql.lit(ns.id)}, 'r' || n, ${sql.lit(now)} from seq`.execute(db);
  const firstRepo = Number((await db.selectFrom('repositories').select((eb) => eb.fn.min('id').as('id')).executeTakeFirstOrThrow()).id);
  const firstBlobId = 1;
  await sql`${seq(BLOBS)} insert into blobs (digest, size, created_at) select 'sha256:' || ${hex('n', 0)}, 1000 + n, ${sql.lit(now - 2 * DAY)} from seq`.execute(db);
  await sql`${seq(manifests)} insert into manifests (repository_id, digest, media_type, size, content, created_at)
    select ${sql.lit(firstRepo)} + (n % ${sql.lit(REPOS)}), 'sha256:' || ${hex('n', 1 << 30)}, 'application/vnd.oci.image.manifest.v1+json', 2, ${bytes}, ${sql.lit(now - 40 * DAY)} from seq`.execute(db);
  const firstManifest = Number((await db.selectFrom('manifests').select((eb) => eb.fn.min('id').as('id')).executeTakeFirstOrThrow()).id);
  // Manifest i uses blobs 2i and 2i+1 and lives in repository i % REPOS; every blob is linked there.
  await sql`${seq(referenced)} insert into manifest_blobs (manifest_id, blob_id) select ${sql.lit(firstManifest)} + n / 2, ${sql.lit(firstBlobId)} + n from seq`.execute(db);
  await sql`${seq(BLOBS)} insert into repository_blobs (repository_id, blob_id, created_at) select ${sql.lit(firstRepo)} + ((n / 2) % ${sql.lit(REPOS)}), ${sql.lit(firstBlobId)} + n, ${sql.lit(now - 2 * DAY)} from seq`.execute(db);
  // Tag rows: k = 0 is live for even manifests; the rest is history, recent for i % 4 == 1, old for i % 4 == 3.
  const total = manifests * tagsPerManifest;
  await sql`${seq(total)} insert into tags (repository_id, name, manifest_id, lifetime_start, lifetime_end, hidden)
    select ${sql.lit(firstRepo)} + ((n / ${sql.lit(tagsPerManifest)}) % ${sql.lit(REPOS)}), 't' || n, ${sql.lit(firstManifest)} + n / ${sql.lit(tagsPerManifest)}, ${sql.lit(now - 60 * DAY)},
      case when (n / ${sql.lit(tagsPerManifest)}) % 2 = 0 and n % ${sql.lit(tagsPerManifest)} = 0 then null
           when (n / ${sql.lit(tagsPerManifest)}) % 4 = 3 then ${sql.lit(now - 30 * DAY)}
           else ${sql.lit(now - DAY)} end, 0
    from seq`.execute(db);
  if (pgsql) await sql`analyze`.execute(db);
  return { manifests, tagsPerManifest };
}

/** Times `f` in seconds. */
async function timed<T>(f: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t = performance.now();
  const value = await f();
  return { value, seconds: (performance.now() - t) / 1000 };
}

/** "no drift", or how many totals and per-blob counts differed from a count from scratch. */
function driftText(r: RecountReport): string {
  const d = r.drift;
  if (!d.repositories.length && !d.namespaces.length && !d.blobCounts) return 'no drift';
  return `drift in ${d.repositories.length} repository totals, ${d.namespaces.length} namespace totals, ${d.blobCounts} per-blob counts`;
}

const hasDrift = (r: RecountReport) => r.drift.repositories.length > 0 || r.drift.namespaces.length > 0 || r.drift.blobCounts > 0;

/** Set when a check of a run failed; the run goes on (the other dialect still runs) and exits 1. */
let failed = false;

async function bench(label: string, open: () => Promise<DatabaseHandle & { drop(): Promise<void> }>): Promise<void> {
  const h = await open();
  try {
    let t = performance.now();
    const { manifests, tagsPerManifest } = await seed(h);
    const seeded = (performance.now() - t) / 1000;
    const counts = async () => {
      const one = async (table: 'tags' | 'manifests' | 'blobs' | 'repository_blobs') => Number((await h.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      return { tags: await one('tags'), manifests: await one('manifests'), blobs: await one('blobs'), links: await one('repository_blobs') };
    };
    const before = await counts();
    // The seeder wrote manifests and manifest_blobs without their quota counts: the first recount
    // fills them (and must find drift), the second finds them exact.
    const accounting = new QuotaAccounting(h.db, h.dialect);
    const fill = await timed(() => accounting.recount());
    const steady = await timed(() => accounting.recount());
    const gc = new GarbageCollector(
      { store: new GcStore(h.db, h.dialect), preview: new GcPreviewStore(h.db), guards: new BlobGuardStore(h.db, h.dialect), storage: new MemoryBlobDriver() },
      { gracePeriodMs: 3_600_000, timeMachineDefaultMs: 14 * DAY, batchSize: BATCH },
    );
    t = performance.now();
    const dry = await gc.run({ dryRun: true });
    const drySeconds = (performance.now() - t) / 1000;
    t = performance.now();
    const pass = await gc.run();
    const seconds = (performance.now() - t) / 1000;
    const after = await counts();
    const check = await timed(() => accounting.recount({ dryRun: true }));
    const examined = before.tags + before.manifests + before.blobs + before.links;
    const removed = pass.tags + pass.manifests.count + pass.blobs.count + pass.links;
    const expected = { tags: Math.floor(manifests / 4) * tagsPerManifest, manifests: Math.floor(manifests / 4) };
    const gcOk = pass.tags === expected.tags && pass.manifests.count === expected.manifests;
    const problems = [
      ...(gcOk ? [] : [`GC removed ${pass.tags} tags, ${pass.manifests.count} manifests; expected ${expected.tags}, ${expected.manifests}`]),
      ...(hasDrift(fill.value) ? [] : ['the first recount found no drift, but the seeder left the quota tables empty']),
      ...(hasDrift(steady.value) ? [`the second recount found ${driftText(steady.value)}`] : []),
      ...(hasDrift(check.value) ? [`after the GC pass, a recount found ${driftText(check.value)}: GC did not keep the totals exact`] : []),
    ];
    if (problems.length) failed = true;
    const vsGc = (s: number) => `${(s / seconds).toFixed(2)}× the GC pass`;
    process.stdout.write(
      [
        `${label}: ${before.tags} tag rows, ${before.manifests} manifests, ${before.blobs} blobs, ${before.links} links (seeded in ${seeded.toFixed(1)} s)`,
        `  recount, first (fills)  ${fill.seconds.toFixed(2)} s (${vsGc(fill.seconds)}): ${fill.value.repositories} repositories, ${fill.value.namespaces} namespace; ${driftText(fill.value)}; ${fill.value.fixed ? 'rewritten' : 'not rewritten'}`,
        `  recount, no drift       ${steady.seconds.toFixed(2)} s (${vsGc(steady.seconds)}): ${driftText(steady.value)}`,
        `  GC dry run              ${drySeconds.toFixed(2)} s: would remove ${dry.tags} tags, ${dry.manifests.count} manifests, ${dry.links} links, ${dry.blobs.count} blobs`,
        `  GC pass                 ${seconds.toFixed(2)} s: removed ${pass.tags} tags, ${pass.manifests.count} manifests, ${pass.links} links, ${pass.blobs.count} blobs`,
        `                          ${Math.round(examined / seconds)} rows examined/s, ${Math.round(removed / seconds)} rows removed/s (batch ${BATCH})`,
        `  left                    ${after.tags} tags, ${after.manifests} manifests, ${after.blobs} blobs, ${after.links} links`,
        `  recount dry run after   ${check.seconds.toFixed(2)} s (${vsGc(check.seconds)}): ${driftText(check.value)}`,
        ...problems.map((p) => `  FAILED: ${p}`),
        '',
      ].join('\n'),
    );
  } finally {
    await h.drop();
  }
}

async function main(): Promise<void> {
  process.stdout.write(`GC and quota recount benchmark: ${BLOBS} blobs, about ${TAGS} tag rows, GC batches of ${BATCH}\n\n`);
  await bench('SQLite', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-gc-bench-'));
    const h = await openDatabase({ url: `sqlite:${join(dir, 'bench.db')}`, dataDir: dir });
    return { ...h, drop: async () => { await h.close(); await rm(dir, { recursive: true, force: true }); } };
  });
  if (!PG_URL) {
    process.stdout.write('PostgreSQL: skipped (set BENCH_GC_PG_URL)\n');
    return;
  }
  await bench('PostgreSQL', async () => {
    const name = `wharf_gc_bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const u = new URL(PG_URL);
    u.pathname = `/${name}`;
    const h = await openDatabase({ url: u.toString(), dataDir: tmpdir(), poolSize: 4 });
    return {
      ...h,
      drop: async () => {
        await h.close();
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      },
    };
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => {
      if (failed) process.exitCode = 1;
    },
    (err: unknown) => {
      process.stderr.write(`gc-bench: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
