/**
 * Pull-through caches side by side on this machine: Wharf with proxy organizations vs CNCF Distribution
 * (Debian's docker-registry 2.8) configured as a pull-through cache (`proxy: remoteurl:`), both in front
 * of the same upstream — a third, plain docker-registry holding the images, whose access log tells what
 * reached it.
 *   1. cache-hit blob GET throughput of one large blob, 1 and 8 concurrent clients (aggregate MiB/s),
 *   2. manifest GET by tag of a cached tag under wrk: Distribution asks the upstream on every request;
 *      Wharf with `revalidate_interval_s` set (one upstream HEAD per interval) and with 0 (one HEAD per
 *      pull, shared by the pulls that arrive while it runs),
 *   3. cache-miss time to first byte of a large blob, through each cache and directly from the upstream,
 *   4. upstream blob GETs (and bytes) for N concurrent first pulls of one large blob.
 * Both caches run open (Wharf with WHARF_AUTH_ENABLED=false); Wharf's proxy organizations are set up
 * with the CLI (`wharf user create`, `org create`, `proxycache set`) before `wharf serve`, since
 * `/api/v1` is not served without authentication. Run through `npm run bench` (scripts/bench.sh).
 *
 * Cache misses need blobs neither cache has seen: every miss measurement pulls its own fresh blob
 * (pushed to the upstream before any measurement starts), and waits until both caches have committed it
 * before the next one. Runs, medians and the handling of a shared machine are as in registry-bench.ts;
 * the upstream's CPU is accounted apart (neither the clients' nor other processes').
 *
 * Exit status: 0 when the run completed (targets met or missed), 1 when something broke.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, rmSync, statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AccessLog, type LoggedRequest } from './lib/access-log.js';
import { MANIFEST_ACCEPT, makeContent, pushBlobBytes, pushImage, verifyBlob, verifyManifest, type Content } from './lib/content.js';
import { blobRun, timedGet, wrkRun, type BlobRun, type LoadOptions, type LoadTarget, type TimedGet, type WrkRun } from './lib/load.js';
import { DISTURBED_CORES, MiB, Probe, envInt, fmt, log, median, pad, processCpuSeconds, range, requireTools, run, undisturbed, waitForQuiet, type PhaseCpu } from './lib/measure.js';
import { renderTable, type Row } from './lib/report.js';
import { beginBench, runBench, type LiveResources } from './lib/run.js';
import { distributionBlobPath, startDistribution, startWharf, type Server } from './lib/servers.js';

const settings = {
  blobMiB: envInt('BENCH_BLOB_MIB', 256, 1, 4096),
  missMiB: envInt('BENCH_PROXY_MISS_MIB', 256, 1, 4096),
  repeats: envInt('BENCH_REPEATS', 5, 1, 20),
  /** Cold pulls by one client (each of: direct, Wharf, Distribution), and rounds of concurrent cold pulls. */
  missRepeats: envInt('BENCH_PROXY_MISS_REPEATS', 5, 1, 20),
  concurrentRepeats: envInt('BENCH_PROXY_CONCURRENT_REPEATS', 3, 1, 20),
  singleClientPulls: envInt('BENCH_SINGLE_CLIENT_PULLS', 4, 1, 32),
  concurrency: envInt('BENCH_CONCURRENCY', 8, 2, 64),
  missClients: envInt('BENCH_PROXY_MISS_CLIENTS', 8, 2, 64),
  wrkSeconds: envInt('BENCH_WRK_SECONDS', 10, 1, 60),
  wrkThreads: envInt('BENCH_WRK_THREADS', 2, 1, 64),
  wrkConnections: envInt('BENCH_PROXY_WRK_CONNECTIONS', 32, 1, 1024),
  revalidateS: envInt('BENCH_PROXY_REVALIDATE_S', 30, 1, 3600),
  rssSampleMs: envInt('BENCH_RSS_SAMPLE_MS', 50, 10, 1000),
  quietWaitMs: envInt('BENCH_QUIET_WAIT_MS', 3000, 0, 60_000),
  wharfCli: process.env.WHARF_BENCH_CLI,
  wharfLogLevel: process.env.WHARF_BENCH_LOG_LEVEL ?? 'warn',
  jsonOut: process.env.BENCH_PROXY_JSON,
  only: process.env.BENCH_PROXY_ONLY ?? '',
};

const TARGETS = {
  hitBlobRatio: 1.0,
  manifestRevalidateRatio: 10,
  manifestNoRevalidateRatio: 1.0,
  missFirstByteExcessMs: 10,
  /** A single client's whole cold pull, Wharf's throughput over Distribution's. */
  missWholeRatio: 0.9,
  missUpstreamGets: 1,
  /** N concurrent cold pulls: Wharf's time until all clients are done over Distribution's, at most. */
  missConcurrentRatio: 1.0,
};

/** Upstream repositories: the image whose tag and layer are cached, and fresh blobs for misses. */
const REPO = 'bench/big';
const TAG = 'bench';
const MISS_REPO = 'bench/miss';
/** Wharf's proxy organizations: upstream answers reused for `revalidateS`, and never (0). */
const ORG_REVALIDATE = 'hub';
const ORG_EVERY_PULL = 'hub0';

type Label = 'upstream' | 'wharf' | 'distribution';
type CacheLabel = 'wharf' | 'distribution';

// ---------------------------------------------------------------------------------------------------
// Servers and paths

interface Setup {
  upstream: Server<Label>;
  wharf: Server<Label>;
  dist: Server<Label>;
  upstreamLog: AccessLog;
}

async function startServers(workDir: string, servers: Array<Server<Label>>): Promise<Setup> {
  // The upstream logs every request: the counts below come from its access log.
  const upstream = await startDistribution<Label>({ label: 'upstream', workDir, accessLog: true });
  servers.push(upstream);
  const upstreamHost = new URL(upstream.url).host;
  const wharf = await startWharf<Label>({
    label: 'wharf',
    workDir,
    cli: settings.wharfCli,
    logLevel: settings.wharfLogLevel,
    env: { WHARF_AUTH_ENABLED: 'false', WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1' },
    // Organizations need an owner, also with authentication off.
    setup: [
      ['user', 'create', 'admin', '--password', 'bench-admin-password', '--superuser'],
      ['org', 'create', ORG_REVALIDATE, '--owner', 'admin'],
      ['org', 'create', ORG_EVERY_PULL, '--owner', 'admin'],
      ['proxycache', 'set', ORG_REVALIDATE, '--upstream', upstreamHost, '--insecure', '--revalidate-interval', String(settings.revalidateS)],
      // Only one organization may answer for a host (containerd's ns=); this one answers for none.
      ['proxycache', 'set', ORG_EVERY_PULL, '--upstream', upstreamHost, '--insecure', '--revalidate-interval', '0', '--no-answers-for'],
    ],
  });
  servers.push(wharf);
  const dist = await startDistribution<Label>({ label: 'distribution', workDir, proxyRemoteUrl: upstream.url });
  servers.push(dist);
  return { upstream, wharf, dist, upstreamLog: new AccessLog(upstream.logPath) };
}

/** The URL of `/v2/<repo>/<rest>` through a cache (Wharf: under a proxy organization). */
function cacheUrl(s: Server, repo: string, rest: string, org = ORG_REVALIDATE): string {
  return s.label === 'wharf' ? `${s.url}/v2/${org}/${repo}/${rest}` : `${s.url}/v2/${repo}/${rest}`;
}

/** Waits until the cache has committed the blob (Wharf says `hit`; Distribution's file appears). */
async function waitCommitted(s: Server, repo: string, digest: string, size: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (s.label === 'wharf') {
      const res = await fetch(cacheUrl(s, repo, `blobs/${digest}`), { method: 'HEAD' });
      if (res.status === 200 && res.headers.get('x-wharf-cache') === 'hit') return;
    } else {
      const path = distributionBlobPath(s, digest);
      if (existsSync(path) && statSync(path).size === size) return;
    }
    if (Date.now() >= deadline) throw new Error(`${s.label} did not commit blob ${digest} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------------
// Content: the cached image, and fresh blobs for misses

interface MissBlob {
  digest: string;
  size: number;
}

/**
 * `count` distinct blobs of `mib` MiB, pushed to the upstream: one random buffer, each copy with its own
 * random first 64 bytes (so a distinct digest), hashed and pushed in turn.
 */
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

/** Pulls the image through every cache until it is cached there, and checks the bytes. */
async function warmCaches(s: Setup, c: Content): Promise<void> {
  for (const org of [ORG_REVALIDATE, ORG_EVERY_PULL]) await verifyManifest(s.wharf.url, `${org}/${REPO}`, TAG, undefined, c.manifestDigest);
  await verifyManifest(s.dist.url, REPO, TAG, undefined, c.manifestDigest);
  for (const cache of [s.wharf, s.dist]) {
    await verifyBlob(cacheUrl(cache, REPO, `blobs/${c.blobDigest}`), undefined, c.blobDigest, c.blobSize);
  }
  for (const cache of [s.wharf, s.dist]) await waitCommitted(cache, REPO, c.blobDigest, c.blobSize);
  await s.upstreamLog.settle();
  // Now both serve the layer from their copy: pulled again, it must not reach the upstream.
  const mark = s.upstreamLog.mark();
  for (const cache of [s.wharf, s.dist]) await verifyBlob(cacheUrl(cache, REPO, `blobs/${c.blobDigest}`), undefined, c.blobDigest, c.blobSize);
  await s.upstreamLog.settle();
  const gets = s.upstreamLog.since(mark, (r) => r.path.endsWith(`/blobs/${c.blobDigest}`));
  if (gets.length) throw new Error(`cached layer pulls reached the upstream: ${JSON.stringify(gets)}`);
}

// ---------------------------------------------------------------------------------------------------
// Measurements

const loadOptions = (s: Setup): LoadOptions => ({ quietWaitMs: settings.quietWaitMs, rssSampleMs: settings.rssSampleMs, extraPids: [s.upstream.pid] });

interface ManifestRun extends WrkRun {
  /** Requests that reached the upstream, per manifest GET served. */
  upstreamPerRequest: number;
}

type ManifestCase = 'wharf-revalidate' | 'wharf-every-pull' | 'distribution';

async function manifestRun(s: Setup, which: ManifestCase, seconds: number): Promise<ManifestRun> {
  const target: LoadTarget =
    which === 'distribution'
      ? { label: which, url: cacheUrl(s.dist, REPO, `manifests/${TAG}`), pid: s.dist.pid }
      : { label: which, url: cacheUrl(s.wharf, REPO, `manifests/${TAG}`, which === 'wharf-revalidate' ? ORG_REVALIDATE : ORG_EVERY_PULL), pid: s.wharf.pid };
  const mark = s.upstreamLog.mark();
  const r = await wrkRun(target, { threads: settings.wrkThreads, connections: settings.wrkConnections, seconds, headers: { Accept: MANIFEST_ACCEPT } }, loadOptions(s));
  await s.upstreamLog.settle(200);
  const upstream = s.upstreamLog.since(mark).length;
  return { ...r, upstreamPerRequest: upstream / Math.max(1, r.requests) };
}

interface MissFirstByte extends TimedGet {
  upstreamGets: number;
  cpu: PhaseCpu;
  /** The server's CPU seconds from the request until it had stored the blob (Distribution stores it apart). */
  serverCpuUntilStored: number;
  peakRssMiB: number;
}

const blobGetsOf = (digest: string) => (r: LoggedRequest) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`);

/** One cold pull of `blob`: directly from the upstream, or through a cache (then waits for its commit). */
async function missFirstByteRun(s: Setup, which: 'upstream' | CacheLabel, blob: MissBlob): Promise<MissFirstByte> {
  const server = which === 'upstream' ? s.upstream : which === 'wharf' ? s.wharf : s.dist;
  const url = which === 'upstream' ? `${server.url}/v2/${MISS_REPO}/blobs/${blob.digest}` : cacheUrl(server, MISS_REPO, `blobs/${blob.digest}`);
  await waitForQuiet(settings.quietWaitMs);
  const mark = s.upstreamLog.mark();
  const probe = new Probe(server.pid, settings.rssSampleMs, which === 'upstream' ? [] : [s.upstream.pid]);
  const cpu0 = processCpuSeconds(server.pid);
  probe.start();
  const r = await timedGet(url);
  const { cpu, peakRssMiB } = probe.stop(0);
  if (r.status !== 200 || r.bytes !== blob.size) throw new Error(`cold pull from ${which}: status ${r.status}, ${r.bytes} bytes (expected 200, ${blob.size})`);
  if (which === 'wharf' && r.headers['x-wharf-cache'] !== 'miss') throw new Error(`cold pull from wharf: X-Wharf-Cache ${String(r.headers['x-wharf-cache'])}, expected miss`);
  if (which !== 'upstream') await waitCommitted(server, MISS_REPO, blob.digest, blob.size);
  const serverCpuUntilStored = processCpuSeconds(server.pid) - cpu0;
  await s.upstreamLog.settle();
  return { ...r, cpu, peakRssMiB, serverCpuUntilStored, upstreamGets: s.upstreamLog.since(mark, blobGetsOf(blob.digest)).length };
}

interface ConcurrentMiss {
  /** Wall time until the last client had every byte. */
  seconds: number;
  /** Each client's time to the first response byte (curl's time_starttransfer), ms. */
  firstByteMs: number[];
  upstreamGets: number;
  upstreamHeads: number;
  upstreamMiB: number;
  cpu: PhaseCpu;
  peakRssMiB: number;
}

/** `settings.missClients` curl processes pull the same uncached blob at once through a cache. */
async function concurrentMissRun(s: Setup, which: CacheLabel, blob: MissBlob): Promise<ConcurrentMiss> {
  const server = which === 'wharf' ? s.wharf : s.dist;
  const url = cacheUrl(server, MISS_REPO, `blobs/${blob.digest}`);
  await waitForQuiet(settings.quietWaitMs);
  const mark = s.upstreamLog.mark();
  const probe = new Probe(server.pid, settings.rssSampleMs, [s.upstream.pid]);
  probe.start();
  const results = await Promise.all(
    Array.from({ length: settings.missClients }, () => run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_starttransfer}\\n', url])),
  );
  const { seconds, cpu, peakRssMiB } = probe.stop(results.reduce((a, r) => a + r.cpuSeconds, 0));
  const firstByteMs: number[] = [];
  for (const r of results) {
    const [status, size, ttfb] = r.stdout.trim().split(' ');
    if (r.code !== 0 || status !== '200' || Number(size) !== blob.size) {
      throw new Error(`concurrent cold pull from ${which}: curl exit ${r.code}, "${r.stdout.trim()}" (expected 200 ${blob.size}): ${r.stderr}`);
    }
    firstByteMs.push(Number(ttfb) * 1000);
  }
  await waitCommitted(server, MISS_REPO, blob.digest, blob.size);
  await s.upstreamLog.settle();
  const logged = s.upstreamLog.since(mark, (r) => r.path.endsWith(`/blobs/${blob.digest}`));
  const gets = logged.filter((r) => r.method === 'GET');
  return {
    seconds,
    firstByteMs,
    upstreamGets: gets.length,
    upstreamHeads: logged.filter((r) => r.method === 'HEAD').length,
    upstreamMiB: gets.reduce((a, r) => a + r.bytes, 0) / MiB,
    cpu,
    peakRssMiB,
  };
}

// ---------------------------------------------------------------------------------------------------
// Main

async function main(live: LiveResources): Promise<void> {
  const started = Date.now();
  await requireTools(['curl', 'wrk', 'getconf'], 'scripts/bench.sh installs curl and wrk when run as root');
  if (!['', 'hit', 'manifest', 'miss'].includes(settings.only)) throw new Error(`BENCH_PROXY_ONLY must be hit, manifest or miss (got "${settings.only}")`);
  const doHit = settings.only === '' || settings.only === 'hit';
  const doManifest = settings.only === '' || settings.only === 'manifest';
  const doMiss = settings.only === '' || settings.only === 'miss';
  const { machine, distVersion, loadBefore, workDir } = await beginBench(live, { workDirPrefix: 'wharf-proxy-bench-', wharfCli: settings.wharfCli, wharfLogLevel: settings.wharfLogLevel });
  const servers: Array<Server<Label>> = [];
  live.servers = servers;
  try {
    const s = await startServers(workDir, servers);
    log(`upstream ${s.upstream.url} (pid ${s.upstream.pid}), wharf ${s.wharf.url} (pid ${s.wharf.pid}), distribution proxy ${s.dist.url} (pid ${s.dist.pid})`);
    log(`writing a ${settings.blobMiB} MiB random blob and pushing it to the upstream as ${REPO}:${TAG}`);
    const content = makeContent(join(workDir, 'blob.bin'), settings.blobMiB);
    await pushImage(s.upstream.url, REPO, TAG, undefined, content);
    rmSync(content.blobPath);
    const missCount = doMiss ? settings.missRepeats * 3 + settings.concurrentRepeats * 2 : 0;
    log(`pushing ${missCount} fresh ${settings.missMiB} MiB blobs for the cache misses`);
    const missBlobs = await pushMissBlobs(s.upstream, settings.missMiB, missCount);
    log('pulling the image through both caches (and checking the bytes)');
    await warmCaches(s, content);
    const opts = loadOptions(s);

    // 1. Cache-hit blob throughput.
    const conc = `c${settings.concurrency}`;
    const blob: Record<string, Record<CacheLabel, BlobRun[]>> = {};
    const hitMark = s.upstreamLog.mark();
    for (const cs of doHit ? [{ key: 'c1', clients: 1, pulls: settings.singleClientPulls }, { key: conc, clients: settings.concurrency, pulls: 1 }] : []) {
      blob[cs.key] = { wharf: [], distribution: [] };
      for (let rep = 0; rep < settings.repeats; rep++) {
        for (const cache of rep % 2 === 0 ? [s.wharf, s.dist] : [s.dist, s.wharf]) {
          const t = { label: cache.label, url: cacheUrl(cache, REPO, `blobs/${content.blobDigest}`), pid: cache.pid };
          const r = await blobRun(t, content.blobSize, cs.clients, cs.pulls, opts);
          blob[cs.key]![cache.label as CacheLabel].push(r);
          log(
            `cache-hit blob GET ${cs.clients} client(s) × ${cs.pulls}, ${pad(cache.label, 12)}: ${fmt(r.mibPerSec)} MiB/s, server ${fmt(r.serverCpuPerGiB, 2)} CPU-s/GiB, ` +
              `peak RSS ${fmt(r.peakRssMiB)} MiB, cores: server ${fmt(r.cpu.serverCores, 2)}, clients ${fmt(r.cpu.clientCores, 2)}, other ${fmt(r.cpu.otherCores, 2)}`,
          );
        }
      }
    }
    await s.upstreamLog.settle(200);
    const hitUpstreamGets = s.upstreamLog.since(hitMark, blobGetsOf(content.blobDigest)).length;

    // 2. Manifest GET by tag of the cached tag.
    const cases: ManifestCase[] = ['wharf-revalidate', 'wharf-every-pull', 'distribution'];
    const manifest: Record<ManifestCase, ManifestRun[]> = { 'wharf-revalidate': [], 'wharf-every-pull': [], distribution: [] };
    if (doManifest) {
      for (const c of cases) {
        log(`manifest warm-up: ${c}`);
        await manifestRun(s, c, 2);
      }
      for (let rep = 0; rep < settings.repeats; rep++) {
        const order = [...cases.slice(rep % 3), ...cases.slice(0, rep % 3)];
        for (const c of order) {
          const r = await manifestRun(s, c, settings.wrkSeconds);
          manifest[c].push(r);
          log(
            `manifest GET ${pad(c, 17)}: ${fmt(r.rps)} req/s, p50 ${fmt(r.p50ms, 2)} ms, p99 ${fmt(r.p99ms, 2)} ms, upstream requests per GET ${fmt(r.upstreamPerRequest, 3)}, ` +
              `cores: server ${fmt(r.cpu.serverCores, 2)}, upstream ${fmt(r.extraCores, 2)}, clients ${fmt(r.cpu.clientCores, 2)}, other ${fmt(r.cpu.otherCores, 2)}`,
          );
        }
      }
    }

    // 3. and 4. Cache misses, each on a blob no cache has seen.
    const firstByte: Record<'upstream' | CacheLabel, MissFirstByte[]> = { upstream: [], wharf: [], distribution: [] };
    const concurrent: Record<CacheLabel, ConcurrentMiss[]> = { wharf: [], distribution: [] };
    const fresh = () => missBlobs.shift()!;
    for (let rep = 0; doMiss && rep < settings.missRepeats; rep++) {
      const order = (['upstream', 'wharf', 'distribution'] as const).slice(rep % 3).concat((['upstream', 'wharf', 'distribution'] as const).slice(0, rep % 3));
      for (const which of order) {
        const r = await missFirstByteRun(s, which, fresh());
        firstByte[which].push(r);
        log(
          `cold pull, ${pad(which, 12)}: first byte after ${fmt(r.firstByteMs, 1)} ms (headers ${fmt(r.headersMs, 1)} ms), all ${fmt(settings.missMiB)} MiB after ${fmt(r.totalMs)} ms, ` +
            `upstream blob GETs ${r.upstreamGets}, server CPU until stored ${fmt(r.serverCpuUntilStored, 2)} s, peak RSS ${fmt(r.peakRssMiB)} MiB, ` +
            `cores: server ${fmt(r.cpu.serverCores, 2)}, other ${fmt(r.cpu.otherCores, 2)}`,
        );
      }
    }
    for (let rep = 0; doMiss && rep < settings.concurrentRepeats; rep++) {
      for (const which of rep % 2 === 0 ? (['wharf', 'distribution'] as const) : (['distribution', 'wharf'] as const)) {
        const r = await concurrentMissRun(s, which, fresh());
        concurrent[which].push(r);
        log(
          `${settings.missClients} concurrent cold pulls, ${pad(which, 12)}: all done after ${fmt(r.seconds, 2)} s, first byte ${fmt(Math.min(...r.firstByteMs), 1)}–${fmt(Math.max(...r.firstByteMs), 1)} ms, ` +
            `upstream: ${r.upstreamGets} GETs, ${r.upstreamHeads} HEADs, ${fmt(r.upstreamMiB)} MiB; peak RSS ${fmt(r.peakRssMiB)} MiB; cores: server ${fmt(r.cpu.serverCores, 2)}, other ${fmt(r.cpu.otherCores, 2)}`,
        );
      }
    }

    // The cached layer still comes back intact from both.
    for (const cache of [s.wharf, s.dist]) await verifyBlob(cacheUrl(cache, REPO, `blobs/${content.blobDigest}`), undefined, content.blobDigest, content.blobSize);

    // Summary.
    const rows: Row[] = [];
    const both = <T>(runs: Record<CacheLabel, T[]>, f: (r: T) => number, quiet: (xs: T[]) => T[]) => {
      const w = quiet(runs.wharf);
      const d = quiet(runs.distribution);
      return {
        wharf: median(w.map(f)),
        dist: median(d.map(f)),
        wharfRange: range(runs.wharf.map(f)),
        distRange: range(runs.distribution.map(f)),
        used: [w.length, d.length] as [number, number],
        runs: runs.wharf.length,
      };
    };
    const quietOf = <T extends { cpu: PhaseCpu }>(xs: T[]) => undisturbed(xs);
    const all = <T>(xs: T[]) => xs;
    if (doHit) {
      for (const [key, label] of [['c1', '1 client'], [conc, `${settings.concurrency} clients`]] as const) {
        const row: Row = { metric: `cache-hit blob GET ${settings.blobMiB} MiB, ${label}`, ...both(blob[key]!, (r) => r.mibPerSec, quietOf), unit: 'MiB/s', digits: 0, target: `≥ ${TARGETS.hitBlobRatio.toFixed(1)}×` };
        row.pass = row.wharf / row.dist >= TARGETS.hitBlobRatio;
        rows.push(row);
      }
      for (const [key, label] of [['c1', '1 client'], [conc, `${settings.concurrency} clients`]] as const) {
        rows.push({ metric: `  server CPU per GiB served, ${label}`, ...both(blob[key]!, (r) => r.serverCpuPerGiB, all), unit: 's', digits: 2 });
      }
    }
    if (doManifest) {
      const mrow = (c: ManifestCase, metric: string, target: number) => {
        const w = undisturbed(manifest[c]);
        const d = undisturbed(manifest.distribution);
        const row: Row = {
          metric,
          wharf: median(w.map((r) => r.rps)),
          dist: median(d.map((r) => r.rps)),
          wharfRange: range(manifest[c].map((r) => r.rps)),
          distRange: range(manifest.distribution.map((r) => r.rps)),
          used: [w.length, d.length],
          runs: settings.repeats,
          unit: 'req/s',
          digits: 0,
          target: `≥ ${target.toFixed(1)}×`,
        };
        row.pass = row.wharf / row.dist >= target;
        rows.push(row);
        rows.push({
          metric: '  upstream requests per manifest GET',
          wharf: median(manifest[c].map((r) => r.upstreamPerRequest)),
          dist: median(manifest.distribution.map((r) => r.upstreamPerRequest)),
          unit: '',
          digits: 3,
          noRatio: true,
        });
        rows.push({ metric: '  p99 latency', wharf: median(manifest[c].map((r) => r.p99ms)), dist: median(manifest.distribution.map((r) => r.p99ms)), unit: 'ms', digits: 1 });
      };
      mrow('wharf-revalidate', `manifest GET by tag, revalidate_interval_s ${settings.revalidateS}`, TARGETS.manifestRevalidateRatio);
      mrow('wharf-every-pull', 'manifest GET by tag, revalidate_interval_s 0', TARGETS.manifestNoRevalidateRatio);
    }
    if (doMiss) {
      // Milliseconds are at the mercy of the scheduler: leave out runs during which other processes were busy.
      const direct = median(undisturbed(firstByte.upstream).map((r) => r.firstByteMs));
      const ttfb = both({ wharf: firstByte.wharf, distribution: firstByte.distribution }, (r) => r.firstByteMs, quietOf);
      rows.push({ metric: `cache miss ${settings.missMiB} MiB: time to first byte`, ...ttfb, unit: 'ms', digits: 1, target: `direct: ${fmt(direct, 1)} ms` });
      const excess: Row = {
        metric: '  … over direct from the upstream',
        wharf: ttfb.wharf - direct,
        dist: ttfb.dist - direct,
        unit: 'ms',
        digits: 1,
        signed: true,
        noRatio: true,
        target: `Wharf ≤ +${TARGETS.missFirstByteExcessMs} ms`,
      };
      excess.pass = excess.wharf <= TARGETS.missFirstByteExcessMs;
      rows.push(excess);
      const directMiBs = median(undisturbed(firstByte.upstream).map((r) => r.bytes / MiB / (r.totalMs / 1000)));
      const whole: Row = {
        metric: `cache miss ${settings.missMiB} MiB: whole transfer, 1 client`,
        ...both({ wharf: firstByte.wharf, distribution: firstByte.distribution }, (r) => r.bytes / MiB / (r.totalMs / 1000), quietOf),
        unit: 'MiB/s',
        digits: 0,
        target: `≥ ${TARGETS.missWholeRatio.toFixed(1)}× (direct: ${fmt(directMiBs)})`,
      };
      whole.pass = whole.wharf / whole.dist >= TARGETS.missWholeRatio;
      rows.push(whole);
      rows.push({ metric: '  server CPU per cold pull, until stored', ...both({ wharf: firstByte.wharf, distribution: firstByte.distribution }, (r) => r.serverCpuUntilStored, all), unit: 's', digits: 2 });
      rows.push({ metric: '  peak RSS during a cold pull', ...both({ wharf: firstByte.wharf, distribution: firstByte.distribution }, (r) => r.peakRssMiB, all), unit: 'MiB', digits: 0, noRatio: true });
      const n = settings.missClients;
      const gets: Row = {
        metric: `${n} concurrent misses: upstream blob GETs`,
        ...both(concurrent, (r) => r.upstreamGets, all),
        unit: '',
        digits: 0,
        noRatio: true,
        target: `Wharf = ${TARGETS.missUpstreamGets}`,
      };
      gets.pass = Math.max(...concurrent.wharf.map((r) => r.upstreamGets)) === TARGETS.missUpstreamGets;
      rows.push(gets);
      rows.push({ metric: '  upstream bytes', ...both(concurrent, (r) => r.upstreamMiB, all), unit: 'MiB', digits: 0 });
      const done: Row = {
        metric: '  time until all clients are done',
        ...both(concurrent, (r) => r.seconds, all),
        unit: 's',
        digits: 2,
        target: `≤ ${TARGETS.missConcurrentRatio.toFixed(1)}×`,
      };
      done.pass = done.wharf / done.dist <= TARGETS.missConcurrentRatio;
      rows.push(done);
      rows.push({ metric: "  slowest client's first byte", ...both(concurrent, (r) => Math.max(...r.firstByteMs), all), unit: 'ms', digits: 1 });
      rows.push({ metric: '  peak RSS', ...both(concurrent, (r) => r.peakRssMiB, all), unit: 'MiB', digits: 0, noRatio: true });
    }

    const lines = renderTable(
      [
        `Proxy cache: Wharf vs Distribution (pull-through) — medians, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
        `${machine.nproc} CPUs ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}; ${distVersion}`,
        `cache hits and manifests: ${settings.repeats} runs each (manifests: wrk -t${settings.wrkThreads} -c${settings.wrkConnections} -d${settings.wrkSeconds}s); cold pulls: ${settings.missRepeats} runs each, ${settings.concurrentRepeats} rounds of ${settings.missClients} concurrent ones, a fresh blob every time`,
      ],
      rows,
    );
    if (doHit) lines.push('', `Upstream blob GETs during all cache-hit pulls: ${hitUpstreamGets} (both caches served their copy).`);
    const cpuLine = (label: string, runs: Array<{ cpu: PhaseCpu; extraCores?: number }>) =>
      `  ${pad(label, 48)}server ${fmt(median(runs.map((r) => r.cpu.serverCores)), 2)}, ` +
      (runs[0]?.extraCores !== undefined ? `upstream ${fmt(median(runs.map((r) => r.extraCores ?? 0)), 2)}, ` : '') +
      `clients ${fmt(median(runs.map((r) => r.cpu.clientCores)), 2)}, other processes ${fmt(median(runs.map((r) => r.cpu.otherCores)), 2)} (of ${machine.nproc})`;
    lines.push('', 'CPU cores busy during the measurements (median; clients share the same cores):');
    if (doHit) {
      for (const key of ['c1', conc]) for (const c of ['wharf', 'distribution'] as const) lines.push(cpuLine(`cache-hit blob, ${key}, ${c}`, blob[key]![c]));
    }
    if (doManifest) for (const c of cases) lines.push(cpuLine(`manifest, ${c}`, manifest[c]));
    if (doMiss) for (const c of ['wharf', 'distribution'] as const) lines.push(cpuLine(`${settings.missClients} concurrent misses, ${c}`, concurrent[c]));
    const allRuns = [...Object.values(blob).flatMap((b) => [...b.wharf, ...b.distribution]), ...Object.values(manifest).flat(), ...Object.values(firstByte).flat()];
    const disturbed = allRuns.filter((r) => r.cpu.otherCores >= DISTURBED_CORES).length;
    lines.push(
      `load average (1 min) before ${fmt(loadBefore, 2)}, after ${fmt(loadavg()[0]!, 2)}; total ${fmt((Date.now() - started) / 1000)} s`,
      disturbed > 0
        ? `NOTE: other processes used ≥ ${DISTURBED_CORES} cores in ${disturbed} of ${allRuns.length} runs (cache hits, manifests, cold pulls); medians leave those runs out where at least half remain.`
        : `Other processes stayed below ${DISTURBED_CORES} cores in every run.`,
      '',
    );
    process.stdout.write(lines.join('\n'));

    if (settings.jsonOut) {
      await writeFile(
        settings.jsonOut,
        JSON.stringify({ date: new Date().toISOString(), machine, distribution: distVersion, settings, targets: TARGETS, rows, blob, manifest, firstByte, concurrent, hitUpstreamGets }, null, 2),
      );
      log(`results written to ${settings.jsonOut}`);
    }
  } finally {
    for (const srv of [...servers].reverse()) await srv.stop().catch(() => {});
    await rm(workDir, { recursive: true, force: true });
  }
}

runBench(main, log);
