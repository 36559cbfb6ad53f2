/**
 * Scale-out: Wharf as several `wharf serve` processes on one PostgreSQL database and one S3 bucket
 * behind Debian's haproxy (round robin, no stickiness; docs/examples/haproxy.cfg), against CNCF
 * Distribution (Debian's docker-registry 2.8) with its S3 driver on its own root directory in the same
 * bucket, also behind haproxy:
 *   1. blob GET throughput of one large blob, N concurrent clients (aggregate MiB/s), through haproxy to
 *      1 and to 2 Wharf processes, streamed through Wharf and redirected (`storage.s3.redirect`: a 307 to
 *      a presigned GET that the clients follow), against Distribution with `redirect` off and on,
 *   2. manifest GET by tag under wrk through haproxy to 1 and to 2 Wharf processes, with the CPU split
 *      between the Wharf processes, haproxy, PostgreSQL's backends and wrk (what limits the rate),
 *   3. N concurrent first pulls of one uncached blob through a proxy-cache organization, spread by
 *      haproxy over 2 processes: upstream blob GETs (from the upstream's access log) and each client's
 *      time to first byte against a direct pull of the same blob from the upstream.
 * Every haproxy, Wharf and Distribution process runs for the whole run, so that each repetition measures
 * every case in turn (rotating the order). "1 process" is a haproxy whose backend lists only the first
 * of the two processes. Rows whose feature this build lacks (the redirect mode, fills shared across
 * processes: detected from the configuration schema) print "n/a (not supported by this build)".
 *
 * scripts/bench.sh provides PostgreSQL (BENCH_SCALEOUT_PG_URL, an admin URL: the run creates and drops
 * its own database) and the bucket (BENCH_SCALEOUT_S3_*; the run writes under a fresh key prefix and
 * deletes it afterwards). Runs, medians and the handling of a shared machine are as in registry-bench.ts:
 * the object store's daemons (BENCH_SCALEOUT_S3_PID_FILE), haproxy and the database's backends count as
 * part of the system under test, not as other load.
 *
 * Exit status: 0 when the run completed (targets met or missed), 1 when something broke.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { configSchema } from '../src/config/schema.js';
import { AccessLog } from './lib/access-log.js';
import { bucketFromEnv, emptyPrefix, type BucketSettings } from './lib/bucket.js';
import { MANIFEST_ACCEPT, makeContent, pushBlobBytes, pushImage, verifyBlob, verifyManifest, type Content } from './lib/content.js';
import { CpuSplit, type CoreSplit } from './lib/cpu-split.js';
import { startHaproxy } from './lib/haproxy.js';
import { blobRun, wrkRun, type BlobRun, type LoadTarget, type WrkRun } from './lib/load.js';
import { DISTURBED_CORES, MiB, envInt, fmt, log, median, pad, range, requireTools, run, undisturbed, waitForQuiet } from './lib/measure.js';
import { createBenchDatabase, type BenchDatabase } from './lib/pg-database.js';
import { renderTable, type Row } from './lib/report.js';
import { beginBench, runBench, type LiveResources } from './lib/run.js';
import { startDistribution, startWharf, type Server } from './lib/servers.js';

/** `auto` (when the build supports it), `on` (fail when it does not) or `off`. */
function envMode(name: string): 'auto' | 'on' | 'off' {
  const v = process.env[name] || 'auto';
  if (v !== 'auto' && v !== 'on' && v !== 'off') throw new Error(`${name} must be auto, on or off (got "${v}")`);
  return v;
}

const settings = {
  blobMiB: envInt('BENCH_SCALEOUT_BLOB_MIB', 64, 1, 4096),
  clients: envInt('BENCH_SCALEOUT_CLIENTS', 8, 1, 64),
  repeats: envInt('BENCH_SCALEOUT_REPEATS', 3, 1, 20),
  wrkSeconds: envInt('BENCH_SCALEOUT_WRK_SECONDS', 10, 1, 60),
  wrkConnections: envInt('BENCH_SCALEOUT_WRK_CONNECTIONS', 32, 1, 1024),
  wrkThreads: envInt('BENCH_SCALEOUT_WRK_THREADS', 2, 1, 64),
  missMiB: envInt('BENCH_SCALEOUT_MISS_MIB', 64, 1, 4096),
  missClients: envInt('BENCH_SCALEOUT_MISS_CLIENTS', 8, 2, 64),
  missRepeats: envInt('BENCH_SCALEOUT_MISS_REPEATS', 3, 1, 20),
  redirect: envMode('BENCH_SCALEOUT_REDIRECT'),
  crossFills: envMode('BENCH_SCALEOUT_CROSS_FILLS'),
  only: process.env.BENCH_SCALEOUT_ONLY ?? '',
  rssSampleMs: envInt('BENCH_RSS_SAMPLE_MS', 50, 10, 1000),
  quietWaitMs: envInt('BENCH_QUIET_WAIT_MS', 3000, 0, 60_000),
  wharfCli: process.env.WHARF_BENCH_CLI,
  wharfLogLevel: process.env.WHARF_BENCH_LOG_LEVEL ?? 'warn',
  jsonOut: process.env.BENCH_SCALEOUT_JSON,
};

const TARGETS = {
  /** Streamed blob GET through haproxy, Wharf over Distribution (redirect off) on the same bucket. */
  streamedBlobRatio: 1.0,
  /** Manifest GET rate, 2 processes over 1. */
  manifestTwoOverOne: 1.6,
  missUpstreamGets: 1,
  /** Each client's time to first byte over a direct pull of the same blob from the upstream, at most. */
  missFirstByteExcessMs: 10,
};

const NA = 'n/a (not supported by this build)';
const REPO = 'bench/big';
const TAG = 'bench';
const MISS_REPO = 'bench/miss';
const ORG = 'hub';

// ---------------------------------------------------------------------------------------------------
// What this build supports, from its configuration schema

/** Whether the configuration schema accepts `doc` (it rejects keys it does not know). */
const accepts = (doc: unknown) => configSchema.safeParse(doc).success;

function feature(mode: 'auto' | 'on' | 'off', supported: boolean, what: string, knob: string): boolean {
  if (mode === 'on' && !supported) throw new Error(`${knob}=on, but this build has no ${what}`);
  return mode !== 'off' && supported;
}

// ---------------------------------------------------------------------------------------------------
// The system under test

type Case = 'wharf-streamed-1' | 'wharf-streamed-2' | 'wharf-redirected-1' | 'wharf-redirected-2' | 'dist-streamed' | 'dist-redirected';

interface Front {
  /** haproxy */
  proxy: Server;
  /** The registry processes behind it. */
  backends: Server[];
  redirected: boolean;
}

interface System {
  db: BenchDatabase;
  bucket: BucketSettings;
  prefix: string;
  fronts: Partial<Record<Case, Front>>;
  upstream: Server;
  upstreamLog: AccessLog;
  /** The object store's daemons (when known): part of the system under test. */
  storePids: number[];
}

function storePidsFromEnv(): number[] {
  const file = process.env.BENCH_SCALEOUT_S3_PID_FILE;
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((pid) => Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`));
}

async function startSystem(workDir: string, servers: Server[], features: { redirect: boolean }, cleanups: Array<() => Promise<unknown>>): Promise<System> {
  const pgUrl = process.env.BENCH_SCALEOUT_PG_URL;
  if (!pgUrl) throw new Error('BENCH_SCALEOUT_PG_URL is not set: run the suite through scripts/bench.sh, which starts PostgreSQL (or name an admin URL)');
  const bucket = bucketFromEnv();
  const db = await createBenchDatabase(pgUrl, 'wharf_bench');
  cleanups.push(() => db.drop());
  const prefix = `bench-scaleout-${randomBytes(5).toString('hex')}`;
  cleanups.push(() => emptyPrefix(bucket, `${prefix}/`));
  log(`database ${new URL(db.url).pathname.slice(1)}, bucket ${bucket.bucket} at ${bucket.endpoint}, prefix ${prefix}/`);

  // The upstream of the proxy-cache organization logs every request: the counts come from its access log.
  const upstream = await startDistribution({ label: 'upstream', workDir, accessLog: true });
  servers.push(upstream);

  const wharfEnv = (redirect: boolean): Record<string, string> => ({
    WHARF_AUTH_ENABLED: 'false',
    WHARF_DB_URL: db.url,
    WHARF_TRUST_PROXY: '127.0.0.1',
    WHARF_STORAGE_DRIVER: 's3',
    WHARF_STORAGE_S3_ENDPOINT: bucket.endpoint,
    WHARF_STORAGE_S3_BUCKET: bucket.bucket,
    WHARF_STORAGE_S3_REGION: bucket.region,
    WHARF_STORAGE_S3_ACCESS_KEY_ID: bucket.accessKeyId,
    WHARF_STORAGE_S3_SECRET_ACCESS_KEY: bucket.secretAccessKey,
    WHARF_STORAGE_S3_PREFIX: `${prefix}/wharf`,
    WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1',
    // Processes sharing a database share the key that encrypts upstream credentials.
    WHARF_PROXY_CACHE_SECRET_KEY: proxySecret,
    ...(redirect ? { WHARF_STORAGE_S3_REDIRECT: 'true' } : {}),
  });
  const proxySecret = randomBytes(32).toString('base64');
  const wharf = async (label: string, redirect: boolean, setup?: string[][]) => {
    const s = await startWharf({ label, workDir, cli: settings.wharfCli, logLevel: settings.wharfLogLevel, env: wharfEnv(redirect), setup });
    servers.push(s);
    return s;
  };
  // The first process migrates the database; the setup commands create the proxy-cache organization.
  const s1 = await wharf('wharf-s1', false, [
    ['user', 'create', 'admin', '--password', 'bench-admin-password', '--superuser'],
    ['org', 'create', ORG, '--owner', 'admin'],
    ['proxycache', 'set', ORG, '--upstream', new URL(upstream.url).host, '--insecure', '--revalidate-interval', '30'],
  ]);
  const s2 = await wharf('wharf-s2', false);
  const r = features.redirect ? [await wharf('wharf-r1', true), await wharf('wharf-r2', true)] : [];
  const s3 = { ...bucket, rootDirectory: `/${prefix}/distribution` };
  const d = await startDistribution({ label: 'dist-streamed', workDir, s3: { ...s3, redirect: false } });
  servers.push(d);
  const dr = await startDistribution({ label: 'dist-redirected', workDir, s3: { ...s3, redirect: true } });
  servers.push(dr);

  const fronts: Partial<Record<Case, Front>> = {};
  const front = async (c: Case, backends: Server[], redirected: boolean) => {
    const proxy = await startHaproxy({ label: `haproxy-${c}`, workDir, backends, healthUri: c.startsWith('dist') ? '/v2/' : undefined });
    servers.push(proxy);
    fronts[c] = { proxy, backends, redirected };
  };
  await front('wharf-streamed-1', [s1], false);
  await front('wharf-streamed-2', [s1, s2], false);
  if (features.redirect) {
    await front('wharf-redirected-1', [r[0]!], true);
    await front('wharf-redirected-2', [r[0]!, r[1]!], true);
  }
  await front('dist-streamed', [d], false);
  await front('dist-redirected', [dr], true);
  return { db, bucket, prefix, fronts, upstream, upstreamLog: new AccessLog(upstream.logPath), storePids: storePidsFromEnv() };
}

/** CPU groups of a front: its registry processes, haproxy, the database's backends, the object store. */
async function cpuGroups(sys: System, f: Front) {
  return { registry: f.backends.map((b) => b.pid), haproxy: [f.proxy.pid], postgres: await sys.db.serverProcesses(), store: sys.storePids };
}
type Groups = 'registry' | 'haproxy' | 'postgres' | 'store';
const pidsOf = (p: readonly number[] | (() => readonly number[])): readonly number[] => (typeof p === 'function' ? p() : p);

// ---------------------------------------------------------------------------------------------------
// Measurements

interface Measured<R> {
  run: R;
  split: CoreSplit<Groups>;
}

async function measureBlob(sys: System, f: Front, c: Content): Promise<Measured<BlobRun>> {
  const groups = await cpuGroups(sys, f);
  const t: LoadTarget = { label: f.proxy.label, url: `${f.proxy.url}/v2/${REPO}/blobs/${c.blobDigest}`, pid: f.backends[0]!.pid, redirected: f.redirected };
  const extraPids = [...groups.registry.slice(1), ...groups.haproxy, ...pidsOf(groups.postgres), ...groups.store];
  await waitForQuiet(settings.quietWaitMs);
  const split = new CpuSplit<Groups>(groups);
  split.start();
  const r = await blobRun(t, c.blobSize, settings.clients, 1, { quietWaitMs: 0, rssSampleMs: settings.rssSampleMs, extraPids });
  return { run: r, split: split.stop(r.cpu.clientCores * r.seconds) };
}

async function measureManifest(sys: System, f: Front, seconds: number): Promise<Measured<WrkRun>> {
  const groups = await cpuGroups(sys, f);
  const t: LoadTarget = { label: f.proxy.label, url: `${f.proxy.url}/v2/${REPO}/manifests/${TAG}`, pid: f.backends[0]!.pid };
  const extraPids = [...groups.registry.slice(1), ...groups.haproxy, ...pidsOf(groups.postgres), ...groups.store];
  await waitForQuiet(settings.quietWaitMs);
  const split = new CpuSplit<Groups>(groups);
  split.start();
  const r = await wrkRun(t, { threads: settings.wrkThreads, connections: settings.wrkConnections, seconds, headers: { Accept: MANIFEST_ACCEPT }, timeoutSeconds: 30 }, { quietWaitMs: 0, rssSampleMs: settings.rssSampleMs, extraPids });
  return { run: r, split: split.stop(r.cpu.clientCores * seconds) };
}

interface MissBlob {
  digest: string;
  size: number;
}

/** `count` distinct blobs of `mib` MiB on the upstream (one random buffer, its first 64 bytes new each time). */
async function pushMissBlobs(upstream: Server, mib: number, count: number): Promise<MissBlob[]> {
  const bytes = Buffer.allocUnsafe(mib * MiB);
  randomFillSync(bytes);
  const out: MissBlob[] = [];
  for (let i = 0; i < count; i++) {
    randomFillSync(bytes, 0, 64);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await pushBlobBytes(upstream.url, MISS_REPO, undefined, bytes, digest);
    out.push({ digest, size: bytes.byteLength });
  }
  return out;
}

interface MissRound {
  /** A direct pull of the same blob from the upstream by the same client (curl), time to first byte. */
  directMs: number;
  /** Each client's time to first byte through haproxy (curl's time_starttransfer). */
  firstByteMs: number[];
  upstreamGets: number;
  upstreamMiB: number;
  /** Wall time until the last client had every byte. */
  seconds: number;
  cpu: { otherCores: number };
}

const curlTiming = ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_starttransfer}\\n'];

function parseTiming(which: string, r: { code: number | null; stdout: string; stderr: string }, size: number): number {
  const [status, got, ttfb] = r.stdout.trim().split(' ');
  if (r.code !== 0 || status !== '200' || Number(got) !== size) throw new Error(`${which}: curl exit ${r.code}, "${r.stdout.trim()}" (expected 200 ${size}): ${r.stderr}`);
  return Number(ttfb) * 1000;
}

/** Waits until the cache says `hit` for the blob through every process (haproxy alternates between them). */
async function waitCached(f: Front, blob: MissBlob, timeoutMs = 120_000): Promise<void> {
  const url = `${f.proxy.url}/v2/${ORG}/${MISS_REPO}/blobs/${blob.digest}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let hits = 0;
    for (let k = 0; k < f.backends.length; k++) {
      const res = await fetch(url, { method: 'HEAD' });
      if (res.status === 200 && res.headers.get('x-wharf-cache') === 'hit') hits++;
    }
    if (hits === f.backends.length) return;
    if (Date.now() >= deadline) throw new Error(`the cache did not commit blob ${blob.digest} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function missRound(sys: System, f: Front, blob: MissBlob): Promise<MissRound> {
  await waitForQuiet(settings.quietWaitMs);
  const direct = await run('curl', [...curlTiming, `${sys.upstream.url}/v2/${MISS_REPO}/blobs/${blob.digest}`]);
  const directMs = parseTiming('direct pull from the upstream', direct, blob.size);
  await sys.upstreamLog.settle(200);
  await waitForQuiet(settings.quietWaitMs);
  const mark = sys.upstreamLog.mark();
  const groups = await cpuGroups(sys, f);
  const split = new CpuSplit<Groups | 'upstream'>({ ...groups, upstream: [sys.upstream.pid] });
  split.start();
  const t0 = performance.now();
  const url = `${f.proxy.url}/v2/${ORG}/${MISS_REPO}/blobs/${blob.digest}`;
  const results = await Promise.all(Array.from({ length: settings.missClients }, () => run('curl', [...curlTiming, url])));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = split.stop(results.reduce((a, r) => a + r.cpuSeconds, 0));
  const firstByteMs = results.map((r, i) => parseTiming(`cold pull ${i + 1} through haproxy`, r, blob.size));
  await waitCached(f, blob);
  await sys.upstreamLog.settle();
  const gets = sys.upstreamLog.since(mark, (r) => r.method === 'GET' && r.path.endsWith(`/blobs/${blob.digest}`));
  return { directMs, firstByteMs, upstreamGets: gets.length, upstreamMiB: gets.reduce((a, r) => a + r.bytes, 0) / MiB, seconds, cpu: { otherCores: cpu.other } };
}

// ---------------------------------------------------------------------------------------------------
// Main

async function main(live: LiveResources): Promise<void> {
  const started = Date.now();
  await requireTools(['curl', 'wrk', 'getconf', 'haproxy'], 'scripts/bench.sh installs curl, wrk and haproxy when run as root');
  if (!['', 'blob', 'manifest', 'miss'].includes(settings.only)) throw new Error(`BENCH_SCALEOUT_ONLY must be blob, manifest or miss (got "${settings.only}")`);
  const doBlob = settings.only === '' || settings.only === 'blob';
  const doManifest = settings.only === '' || settings.only === 'manifest';
  const doMiss = settings.only === '' || settings.only === 'miss';
  const redirect = feature(settings.redirect, accepts({ storage: { driver: 's3', s3: { bucket: 'bench', redirect: true } } }), 'storage.s3.redirect', 'BENCH_SCALEOUT_REDIRECT');
  const crossFills = feature(settings.crossFills, accepts({ cluster: { fill_lease: '15s' } }), 'proxy-cache fills shared across processes (cluster.fill_lease)', 'BENCH_SCALEOUT_CROSS_FILLS');
  const { machine, distVersion, loadBefore, workDir } = await beginBench(live, { workDirPrefix: 'wharf-scaleout-bench-', wharfCli: settings.wharfCli, wharfLogLevel: settings.wharfLogLevel });
  log(`this build: redirect mode ${redirect ? 'measured' : 'not measured'}, fills shared across processes ${crossFills ? 'measured' : 'not measured'}`);
  const servers: Server[] = [];
  live.servers = servers;
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const sys = await startSystem(workDir, servers, { redirect }, cleanups);
    const fr = sys.fronts;
    for (const [c, f] of Object.entries(fr)) log(`${pad(c, 19)} ${f.proxy.url} → ${f.backends.map((b) => `${b.label} (pid ${b.pid})`).join(', ')}`);
    if (!sys.storePids.length) log('the object store\'s PIDs are unknown (BENCH_SCALEOUT_S3_PID_FILE): its CPU counts as other processes\'');

    log(`writing a ${settings.blobMiB} MiB random blob; pushing it through haproxy to 2 Wharf processes and to Distribution`);
    const content = makeContent(join(workDir, 'blob.bin'), settings.blobMiB);
    await pushImage(fr['wharf-streamed-2']!.proxy.url, REPO, TAG, undefined, content);
    await pushImage(fr['dist-streamed']!.proxy.url, REPO, TAG, undefined, content);
    rmSync(content.blobPath);
    const missBlobs = doMiss && crossFills ? await pushMissBlobs(sys.upstream, settings.missMiB, settings.missRepeats) : [];
    for (const [c, f] of Object.entries(fr)) {
      log(`verifying a full pull through ${c} (sha256 of manifest and blob${f.redirected ? ', one redirect followed' : ''})`);
      await verifyManifest(f.proxy.url, REPO, TAG, undefined, content.manifestDigest);
      for (let k = 0; k < f.backends.length; k++) await verifyBlob(`${f.proxy.url}/v2/${REPO}/blobs/${content.blobDigest}`, undefined, content.blobDigest, content.blobSize, f.redirected);
    }

    // 1. Blob GET throughput, every case in each repetition, rotating the order.
    const blobCases = Object.keys(fr) as Case[];
    const blob: Partial<Record<Case, Array<Measured<BlobRun>>>> = {};
    for (let rep = 0; doBlob && rep < settings.repeats; rep++) {
      const order = [...blobCases.slice(rep % blobCases.length), ...blobCases.slice(0, rep % blobCases.length)];
      for (const c of order) {
        const m = await measureBlob(sys, fr[c]!, content);
        (blob[c] ??= []).push(m);
        log(
          `blob GET ${settings.clients} clients, ${pad(c, 19)}: ${fmt(m.run.mibPerSec)} MiB/s in ${fmt(m.run.seconds, 2)} s; cores: registry ${fmt(m.split.registry, 2)}, ` +
            `haproxy ${fmt(m.split.haproxy, 2)}, store ${fmt(m.split.store, 2)}, clients ${fmt(m.split.clients, 2)}, other ${fmt(m.split.other, 2)}`,
        );
      }
    }

    // 2. Manifest GET rate, 1 and 2 processes, after a warm-up of each.
    const manifestCases: Case[] = ['wharf-streamed-1', 'wharf-streamed-2'];
    const manifest: Partial<Record<Case, Array<Measured<WrkRun>>>> = {};
    if (doManifest) {
      for (const c of manifestCases) await measureManifest(sys, fr[c]!, 2);
      for (let rep = 0; rep < settings.repeats; rep++) {
        for (const c of rep % 2 === 0 ? manifestCases : [...manifestCases].reverse()) {
          const m = await measureManifest(sys, fr[c]!, settings.wrkSeconds);
          (manifest[c] ??= []).push(m);
          log(
            `manifest GET ${pad(c, 19)}: ${fmt(m.run.rps)} req/s, p99 ${fmt(m.run.p99ms, 1)} ms; cores: wharf ${fmt(m.split.registry, 2)}, haproxy ${fmt(m.split.haproxy, 2)}, ` +
              `postgres ${fmt(m.split.postgres, 2)}, wrk ${fmt(m.split.clients, 2)}, other ${fmt(m.split.other, 2)}, machine ${fmt(m.split.machine, 2)}`,
          );
        }
      }
    }

    // 3. Concurrent misses spread over 2 processes, a fresh blob each round.
    const misses: MissRound[] = [];
    for (const b of missBlobs) {
      const m = await missRound(sys, fr['wharf-streamed-2']!, b);
      misses.push(m);
      log(
        `${settings.missClients} concurrent misses over 2 processes: upstream GETs ${m.upstreamGets} (${fmt(m.upstreamMiB)} MiB), first byte ${fmt(Math.min(...m.firstByteMs), 1)}–${fmt(Math.max(...m.firstByteMs), 1)} ms, ` +
          `direct ${fmt(m.directMs, 1)} ms; all done after ${fmt(m.seconds, 2)} s`,
      );
    }

    // The blob still comes back intact through every front.
    for (const f of Object.values(fr)) await verifyBlob(`${f.proxy.url}/v2/${REPO}/blobs/${content.blobDigest}`, undefined, content.blobDigest, content.blobSize, f.redirected);

    // Summary.
    const stamp = new Date().toISOString().slice(0, 16).replace('T', ' ');
    const machineLine = `${machine.nproc} CPUs ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}; ${distVersion}`;
    const lines: string[] = [];
    const pair = <R extends { cpu: { otherCores: number } }>(a: Array<Measured<R>>, b: Array<Measured<R>>, f: (r: R) => number) => {
      const qa = undisturbed(a.map((m) => m.run));
      const qb = undisturbed(b.map((m) => m.run));
      return {
        wharf: median(qa.map(f)),
        dist: median(qb.map(f)),
        wharfRange: range(a.map((m) => f(m.run))),
        distRange: range(b.map((m) => f(m.run))),
        used: [qa.length, qb.length] as [number, number],
        runs: a.length,
      };
    };
    if (doBlob) {
      const rows: Row[] = [];
      for (const mode of ['streamed', 'redirected'] as const) {
        const dist = blob[`dist-${mode}`]!;
        for (const n of [1, 2] as const) {
          const metric = `blob GET ${settings.blobMiB} MiB, ${mode}, ${n} process${n > 1 ? 'es' : ''}`;
          const w = blob[`wharf-${mode}-${n}`];
          const target = mode === 'streamed' ? `≥ ${TARGETS.streamedBlobRatio.toFixed(1)}×` : undefined;
          if (!w) {
            rows.push({ metric, wharf: NaN, dist: NaN, unit: 'MiB/s', digits: 0, target, na: NA });
            continue;
          }
          const row: Row = { metric, ...pair(w, dist, (r) => r.mibPerSec), unit: 'MiB/s', digits: 0, target };
          if (target) row.pass = row.wharf / row.dist >= TARGETS.streamedBlobRatio;
          rows.push(row);
        }
      }
      lines.push(
        ...renderTable(
          [
            `Scale-out blob GET through haproxy, ${settings.clients} concurrent clients: Wharf (1 or 2 processes) vs Distribution (1 process) on the same bucket — medians of ${settings.repeats} runs, ${stamp} UTC`,
            machineLine,
          ],
          rows,
        ),
      );
      lines.push('', 'CPU cores busy during the blob GETs (median):');
      for (const [c, ms] of Object.entries(blob)) {
        const med = (g: keyof CoreSplit<Groups>) => fmt(median(ms.map((m) => m.split[g])), 2);
        lines.push(`  ${pad(c, 22)}registry ${med('registry')}, haproxy ${med('haproxy')}, object store ${med('store')}, clients ${med('clients')}, other ${med('other')} (machine ${med('machine')} of ${machine.nproc})`);
      }
    }
    if (doManifest) {
      const one = manifest['wharf-streamed-1']!;
      const two = manifest['wharf-streamed-2']!;
      const row: Row = {
        metric: `manifest GET by tag, wrk -t${settings.wrkThreads} -c${settings.wrkConnections}`,
        ...pair(two, one, (r) => r.rps),
        unit: 'req/s',
        digits: 0,
        target: `≥ ${TARGETS.manifestTwoOverOne.toFixed(1)}×`,
      };
      row.pass = row.wharf / row.dist >= TARGETS.manifestTwoOverOne;
      const p99: Row = { metric: '  p99 latency', ...pair(two, one, (r) => r.p99ms), unit: 'ms', digits: 1, noRatio: true };
      delete p99.wharfRange;
      lines.push(...renderTable([`Scale-out manifest GET through haproxy: 2 Wharf processes vs 1 — medians of ${settings.repeats} runs`], [row, p99], ['2 processes', '1 process']));
      lines.push('', 'CPU cores busy during the manifest load (median): what limits the rate');
      for (const [label, ms] of [['1 process', one], ['2 processes', two]] as const) {
        const med = (g: keyof CoreSplit<Groups>) => fmt(median(ms.map((m) => m.split[g])), 2);
        lines.push(`  ${pad(label, 14)}wharf ${med('registry')}, haproxy ${med('haproxy')}, postgres ${med('postgres')}, wrk ${med('clients')}, other ${med('other')} (machine ${med('machine')} of ${machine.nproc})`);
      }
      const med2 = (g: keyof CoreSplit<Groups>) => median(two.map((m) => m.split[g]));
      if (med2('machine') >= machine.nproc - 0.25) {
        lines.push(
          `  With 2 processes all ${machine.nproc} cores were busy: Wharf ${fmt(med2('registry'), 2)}, the rest of the chain (haproxy, PostgreSQL, wrk) ` +
            `${fmt(med2('haproxy') + med2('postgres') + med2('clients'), 2)}, other processes ${fmt(med2('other'), 2)}; a second process can only use what these leave.`,
        );
      }
    }
    if (doMiss) {
      const rows: Row[] = [];
      const n = settings.missClients;
      if (!crossFills) {
        rows.push({ metric: `${n} concurrent misses over 2 processes: upstream GETs`, wharf: NaN, dist: NaN, unit: '', digits: 0, target: `= ${TARGETS.missUpstreamGets}`, na: NA });
        rows.push({ metric: "  slowest client's first byte over direct", wharf: NaN, dist: NaN, unit: 'ms', digits: 1, target: `≤ +${TARGETS.missFirstByteExcessMs} ms`, na: NA });
      } else {
        const quiet = undisturbed(misses);
        const gets: Row = { metric: `${n} concurrent misses over 2 processes: upstream GETs`, wharf: Math.max(...misses.map((m) => m.upstreamGets)), dist: 1, unit: '', digits: 0, noRatio: true, target: `= ${TARGETS.missUpstreamGets} (every round)` };
        gets.pass = misses.every((m) => m.upstreamGets === TARGETS.missUpstreamGets);
        rows.push(gets);
        const slowest: Row = {
          metric: "  slowest client's first byte",
          wharf: median(quiet.map((m) => Math.max(...m.firstByteMs))),
          dist: median(quiet.map((m) => m.directMs)),
          unit: 'ms',
          digits: 1,
          noRatio: true,
        };
        rows.push(slowest);
        const excess: Row = {
          metric: '  … over the direct pull',
          wharf: median(quiet.map((m) => Math.max(...m.firstByteMs) - m.directMs)),
          dist: 0,
          unit: 'ms',
          digits: 1,
          signed: true,
          noRatio: true,
          target: `≤ +${TARGETS.missFirstByteExcessMs} ms`,
        };
        excess.pass = excess.wharf <= TARGETS.missFirstByteExcessMs;
        rows.push(excess);
        rows.push({ metric: "  median client's first byte", wharf: median(quiet.map((m) => median(m.firstByteMs))), dist: slowest.dist, unit: 'ms', digits: 1, noRatio: true });
        rows.push({ metric: '  time until all clients are done', wharf: median(misses.map((m) => m.seconds)), dist: NaN, unit: 's', digits: 2, noRatio: true });
      }
      lines.push(
        ...renderTable(
          [`Scale-out cache misses: ${n} concurrent first pulls of a fresh ${settings.missMiB} MiB blob through haproxy to 2 processes, against a direct pull from the upstream — medians of ${settings.missRepeats} rounds`],
          rows,
          ['Wharf', 'direct'],
        ),
      );
    }
    const allRuns = [...Object.values(blob).flat().map((m) => m.run), ...Object.values(manifest).flat().map((m) => m.run), ...misses];
    const disturbed = allRuns.filter((r) => r.cpu.otherCores >= DISTURBED_CORES).length;
    lines.push(
      '',
      `load average (1 min) before ${fmt(loadBefore, 2)}, after ${fmt(loadavg()[0]!, 2)}; total ${fmt((Date.now() - started) / 1000)} s`,
      disturbed > 0
        ? `NOTE: other processes used ≥ ${DISTURBED_CORES} cores in ${disturbed} of ${allRuns.length} runs; medians leave those runs out where at least half remain.`
        : `Other processes stayed below ${DISTURBED_CORES} cores in every run.`,
      '',
    );
    process.stdout.write(lines.join('\n'));

    if (settings.jsonOut) {
      await writeFile(
        settings.jsonOut,
        JSON.stringify({ date: new Date().toISOString(), machine, distribution: distVersion, settings, targets: TARGETS, features: { redirect, crossFills }, blob, manifest, misses }, null, 2),
      );
      log(`results written to ${settings.jsonOut}`);
    }
  } finally {
    log('stopping the servers, dropping the database and deleting the prefix');
    for (const s of [...servers].reverse()) await s.stop().catch(() => {});
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => log(`cleanup failed: ${String(err)}`));
    await rm(workDir, { recursive: true, force: true });
  }
}

runBench(main, log);
