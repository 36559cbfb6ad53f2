/**
 * Repository mirroring against what users run today instead, `skopeo sync` (Debian's skopeo), in the
 * same run and from the same upstream:
 *
 *   upstream: docker-registry (access log on) ── bench/app, N tags sharing their base layers
 *      ├── skopeo sync --all --preserve-digests --src docker --dest docker ──► docker-registry (dest-K)
 *      └── wharf serve (wharf-K): bench/app mirrors <upstream>/bench/app, tags `*`
 *
 *   1. cold: the destination is empty (a new Distribution and a new Wharf for every repetition);
 *   2. warm: the same sync again, nothing changed upstream (BENCH_MIRROR_WARM_RUNS times each);
 *   3. warm with the upstream BENCH_MIRROR_RTT_MS away (BENCH_MIRROR_RTT_RUNS times each): both sides
 *      sync the same upstream again, now through a forwarder on 127.0.0.1 that adds that round-trip time (lib/latency-forwarder.ts).
 *      Skopeo's source names the forwarder; Wharf's mirror gets it as its external_reference (PUT
 *      …/mirror), so its local tags stay as they are and the runs stay warm.
 * Skopeo's time is the process's wall time. Wharf's is the run as its worker records it (claim to
 * release, the milliseconds of `last_started_at`/`last_finished_at` in its SQLite database; the API
 * shows the same to the second), and also from the `sync-now` request until `GET …/mirror` shows the
 * run finished (which adds the worker's wait for its next poll, `mirror.poll_interval` 1 s, and this
 * script's polling every 100 ms: each GET signs in with Basic credentials, and polling faster
 * costs Wharf CPU during the run it measures). What reached the upstream in each run is read from its access log:
 * blob GETs and bytes, manifest requests (GET and HEAD) per tag, all requests. The floor of a warm
 * re-sync, 100 bare HEADs 8 at a time, is measured both directly and through the forwarder.
 *
 * Wharf runs with authentication on (`/api/v1` is served only then), SQLite, compiled as in the other
 * benchmarks. Before `wharf serve` the CLI creates the superuser and the organization `bench`; then,
 * through the API as the superuser: robot `bench+mirror` (PUT /organization/bench/robots/mirror), the
 * repository (POST /repository), the mirror (POST /repository/bench/app/mirror, start date a day
 * ahead so that only `sync-now` starts a run), then `sync-now` and polling of GET …/mirror.
 *
 * After the cold runs, and again after the runs through the forwarder, both destinations must hold
 * every tag with the upstream's manifest digest, and two blobs must come back intact from Wharf; every
 * Wharf run must end in SUCCESS. Runs alternate which
 * of the two goes first; medians leave out runs during which other processes used ≥ 0.25 cores where
 * at least half remain (registry-bench.ts). Run through `npm run bench` (BENCH_SUITE=mirror).
 *
 * Exit status: 0 when the run completed (targets met or missed), 1 when something broke.
 */
import { rm, writeFile } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MirrorApi, apiRequest, syncStartDate } from '../test/helpers/mirror-api.js';
import { AccessLog, type LoggedRequest } from './lib/access-log.js';
import { MANIFEST_ACCEPT, verifyBlob } from './lib/content.js';
import { LatencyForwarder } from './lib/latency-forwarder.js';
import { DISTURBED_CORES, MiB, Probe, envInt, fmt, log, median, range, requireTools, run, undisturbed, waitForQuiet, type PhaseCpu } from './lib/measure.js';
import { renderTable, type Row } from './lib/report.js';
import { beginBench, runBench, type LiveResources } from './lib/run.js';
import { startDistribution, startWharf, type Server } from './lib/servers.js';
import { pushSharedLayerRepo, type SharedLayerRepo } from './lib/shared-layer-repo.js';

const settings = {
  tags: envInt('BENCH_MIRROR_TAGS', 100, 1, 1000),
  baseLayers: envInt('BENCH_MIRROR_BASE_LAYERS', 3, 0, 16),
  baseMiB: envInt('BENCH_MIRROR_BASE_MIB', 32, 1, 1024),
  uniqueKiB: envInt('BENCH_MIRROR_UNIQUE_KIB', 2048, 1, 1 << 20),
  repeats: envInt('BENCH_MIRROR_REPEATS', 3, 1, 20),
  /** Warm re-syncs of each side per repetition (they take seconds, and vary more than the cold ones). */
  warmRuns: envInt('BENCH_MIRROR_WARM_RUNS', 3, 1, 20),
  /** Round-trip time (ms) the forwarder adds for the warm runs against a distant upstream. */
  rttMs: envInt('BENCH_MIRROR_RTT_MS', 20, 1, 1000),
  /** Warm re-syncs of each side per repetition with the upstream rttMs away (skopeo's take about 14 s at 20 ms). */
  rttRuns: envInt('BENCH_MIRROR_RTT_RUNS', 1, 1, 20),
  pollIntervalS: envInt('BENCH_MIRROR_POLL_S', 1, 1, 60),
  rssSampleMs: envInt('BENCH_RSS_SAMPLE_MS', 50, 10, 1000),
  quietWaitMs: envInt('BENCH_QUIET_WAIT_MS', 3000, 0, 60_000),
  wharfCli: process.env.WHARF_BENCH_CLI,
  wharfLogLevel: process.env.WHARF_BENCH_LOG_LEVEL ?? 'warn',
  jsonOut: process.env.BENCH_MIRROR_JSON,
};

const TARGETS = {
  /** Cold sync: Wharf's time over skopeo's, at most. */
  coldRatio: 1.0,
  /** Warm re-sync, on loopback and with the upstream BENCH_MIRROR_RTT_MS away: Wharf's time over skopeo's, at most. */
  warmRatio: 0.1,
  warmBlobBytes: 0,
  warmManifestRequestsPerTag: 1,
};

const ADMIN = { username: 'admin', password: 'bench-admin-password' };
const BASIC = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`;
const UPSTREAM_REPO = 'bench/app';
const WHARF_REPO = 'bench/app';
const ROBOT = 'bench+mirror';
/** skopeo sync puts `<source repo's last component>` under the destination path: mirror/app. */
const SKOPEO_DEST_PATH = 'mirror';
const SKOPEO_REPO = 'mirror/app';

type Side = 'wharf' | 'skopeo';

/** What reached the upstream during one run. */
interface UpstreamCounts {
  requests: number;
  manifestRequests: number;
  blobGets: number;
  blobBytes: number;
}

interface SyncRun {
  /** The compared time: skopeo's wall time; Wharf's run as its API reports it. */
  seconds: number;
  /** Wharf: from sync-now until the API showed the run finished. Skopeo: its wall time again. */
  wallSeconds: number;
  /** CPU of the syncing side: Wharf; skopeo plus its destination registry. */
  syncCpuSeconds: number;
  peakRssMiB: number;
  cpu: PhaseCpu;
  upstream: UpstreamCounts;
  /** Wharf: last_run.bytes. */
  reportedBytes?: number;
}

function countUpstream(reqs: LoggedRequest[]): UpstreamCounts {
  const manifests = reqs.filter((r) => r.path.includes('/manifests/'));
  const blobGets = reqs.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
  return { requests: reqs.length, manifestRequests: manifests.length, blobGets: blobGets.length, blobBytes: blobGets.reduce((s, r) => s + r.bytes, 0) };
}

// ---------------------------------------------------------------------------------------------------
// One repetition's destinations

interface Destinations {
  dest: Server;
  wharf: Server;
  mirror: MirrorApi;
}

async function startDestinations(rep: number, workDir: string, upstream: Server, servers: Server[]): Promise<Destinations> {
  const dest = await startDistribution({ label: `dest-${rep}`, workDir });
  servers.push(dest);
  const wharf = await startWharf({
    label: `wharf-${rep}`,
    workDir,
    cli: settings.wharfCli,
    logLevel: settings.wharfLogLevel,
    env: {
      WHARF_AUTH_ENABLED: 'true',
      WHARF_PROXY_CACHE_ALLOW_PRIVATE_UPSTREAMS: '127.0.0.1',
      WHARF_MIRROR_POLL_INTERVAL: `${settings.pollIntervalS}s`,
    },
    setup: [
      ['user', 'create', ADMIN.username, '--password', ADMIN.password, '--superuser'],
      ['org', 'create', 'bench', '--owner', ADMIN.username],
    ],
  });
  servers.push(wharf);
  const must = async (what: string, p: Promise<{ status: number; text: string }>, ok: number[]) => {
    const r = await p;
    if (!ok.includes(r.status)) throw new Error(`${what} on ${wharf.label}: ${r.status} ${r.text.slice(0, 500)}`);
  };
  await must('PUT robot', apiRequest(wharf.url, BASIC, 'PUT', '/organization/bench/robots/mirror', { description: 'mirror benchmark' }), [200, 201]);
  await must('POST repository', apiRequest(wharf.url, BASIC, 'POST', '/repository', { namespace: 'bench', repository: 'app', visibility: 'private', description: '' }), [201]);
  const mirror = new MirrorApi(wharf.url, BASIC, WHARF_REPO);
  await mirror.create({
    external_reference: `${new URL(upstream.url).host}/${UPSTREAM_REPO}`,
    sync_interval: 86_400,
    sync_start_date: syncStartDate(new Date(Date.now() + 86_400_000)),
    root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['*'] },
    robot_username: ROBOT,
    is_enabled: true,
    external_registry_config: { verify_tls: false },
  });
  return { dest, wharf, mirror };
}

// ---------------------------------------------------------------------------------------------------
// The two syncs

/** `skopeo sync` from `source` (host:port of the upstream, or of the forwarder in front of it) into `dest`. */
async function skopeoSync(source: string, upstream: Server, upstreamLog: AccessLog, dest: Server): Promise<SyncRun> {
  await run('sync', []);
  await waitForQuiet(settings.quietWaitMs);
  const mark = upstreamLog.mark();
  const probe = new Probe(dest.pid, settings.rssSampleMs, [upstream.pid]);
  probe.start();
  const r = await run('skopeo', [
    'sync',
    '--all',
    '--preserve-digests',
    '--src',
    'docker',
    '--dest',
    'docker',
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    '--src-no-creds',
    '--dest-no-creds',
    '--retry-times',
    '0',
    `${source}/${UPSTREAM_REPO}`,
    `${new URL(dest.url).host}/${SKOPEO_DEST_PATH}`,
  ]);
  const m = probe.stop(r.cpuSeconds);
  if (r.code !== 0) throw new Error(`skopeo sync failed (exit ${r.code}):\n${r.stderr.slice(-2000)}`);
  await upstreamLog.settle(200);
  const serverCpu = (m.cpu.serverCores * m.seconds);
  return { seconds: m.seconds, wallSeconds: m.seconds, syncCpuSeconds: serverCpu + r.cpuSeconds, peakRssMiB: m.peakRssMiB, cpu: m.cpu, upstream: countUpstream(upstreamLog.since(mark)) };
}

/**
 * The last finished run of the mirror as the worker recorded it (epoch ms): the API shows whole
 * seconds, too coarse for runs of a fraction of one, so the benchmark reads Wharf's SQLite database.
 */
function lastRunMs(wharf: Server): { startedAt: number; finishedAt: number; bytes: number } {
  const db = new Database(join(wharf.dataDir, 'wharf.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('select last_started_at, last_finished_at, last_bytes from repository_mirrors').get() as
      | { last_started_at: number | null; last_finished_at: number | null; last_bytes: number | null }
      | undefined;
    if (!row || row.last_started_at === null || row.last_finished_at === null) throw new Error(`${wharf.label}: the mirror row records no finished run`);
    return { startedAt: Number(row.last_started_at), finishedAt: Number(row.last_finished_at), bytes: Number(row.last_bytes ?? 0) };
  } finally {
    db.close();
  }
}

async function wharfSync(upstream: Server, upstreamLog: AccessLog, d: Destinations): Promise<SyncRun> {
  await run('sync', []);
  await waitForQuiet(settings.quietWaitMs);
  const mark = upstreamLog.mark();
  const probe = new Probe(d.wharf.pid, settings.rssSampleMs, [upstream.pid]);
  probe.start();
  const t0 = performance.now();
  const requested = Date.now();
  await d.mirror.syncNow();
  const view = await d.mirror.waitForRun({ intervalMs: 100, timeoutMs: 600_000 });
  const t1 = performance.now();
  const m = probe.stop(0);
  if (view.last_run?.outcome !== 'SUCCESS') throw new Error(`Wharf's mirror run did not succeed: ${JSON.stringify(view.last_run)} (status ${view.sync_status})`);
  const recorded = lastRunMs(d.wharf);
  if (recorded.startedAt < requested - 1000) throw new Error(`${d.wharf.label}: the last run recorded started before sync-now (${new Date(recorded.startedAt).toISOString()})`);
  await upstreamLog.settle(200);
  return {
    seconds: (recorded.finishedAt - recorded.startedAt) / 1000,
    wallSeconds: (t1 - t0) / 1000,
    syncCpuSeconds: m.cpu.serverCores * m.seconds,
    peakRssMiB: m.peakRssMiB,
    cpu: m.cpu,
    upstream: countUpstream(upstreamLog.since(mark)),
    reportedBytes: recorded.bytes,
  };
}

/**
 * The floor of a warm re-sync: one `HEAD` per tag against `address` (host:port of the upstream or of
 * the forwarder in front of it), 8 at a time over kept-alive connections (node:http, opened in the
 * round), and nothing else; wall seconds.
 */
async function bareHeads(address: string, fixture: SharedLayerRepo): Promise<number> {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 8 });
  const url = new URL(`http://${address}`);
  const head = (tag: string) =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, method: 'HEAD', path: `/v2/${UPSTREAM_REPO}/manifests/${tag}`, agent, headers: { Accept: MANIFEST_ACCEPT } }, (res) => {
        res.resume();
        res.once('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HEAD ${tag}: ${res.statusCode}`))));
      });
      req.once('error', reject);
      req.end();
    });
  try {
    await waitForQuiet(settings.quietWaitMs);
    const tags = [...fixture.manifests.keys()];
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let i = next++; i < tags.length; i = next++) await head(tags[i]!);
    }));
    return (performance.now() - t0) / 1000;
  } finally {
    agent.destroy();
  }
}

/** Every tag of the fixture is in `repo` on `s` with the upstream's manifest digest. */
async function verifyTags(s: Server, repo: string, auth: string | undefined, fixture: SharedLayerRepo): Promise<void> {
  const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT, ...(auth ? { Authorization: auth } : {}) };
  const list = await fetch(`${s.url}/v2/${repo}/tags/list?n=10000`, { headers });
  const body = (await list.json()) as { tags?: string[] };
  const tags = new Set(body.tags ?? []);
  for (const [tag, digest] of fixture.manifests) {
    if (!tags.has(tag)) throw new Error(`${s.label}: ${repo} lacks tag ${tag} (tags/list: ${list.status}, ${tags.size} tags)`);
    const res = await fetch(`${s.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers });
    await res.arrayBuffer();
    const got = res.headers.get('docker-content-digest');
    if (res.status !== 200 || got !== digest) throw new Error(`${s.label}: ${repo}:${tag} answers ${res.status} with digest ${got}, the upstream has ${digest}`);
  }
}

// ---------------------------------------------------------------------------------------------------

async function main(live: LiveResources): Promise<void> {
  const started = Date.now();
  await requireTools(['skopeo', 'curl', 'getconf', 'sync'], 'scripts/bench.sh installs skopeo and curl when run as root');
  const { machine, distVersion, loadBefore, workDir } = await beginBench(live, { workDirPrefix: 'wharf-mirror-bench-', wharfCli: settings.wharfCli, wharfLogLevel: settings.wharfLogLevel });
  const skopeoVersion = (await run('skopeo', ['--version'])).stdout.trim();
  const servers: Server[] = [];
  live.servers = servers;
  let forwarder: LatencyForwarder | undefined;
  try {
    const upstream = await startDistribution({ label: 'upstream', workDir, accessLog: true });
    servers.push(upstream);
    const upstreamLog = new AccessLog(upstream.logPath);
    log(`upstream ${upstream.url} (pid ${upstream.pid}); ${skopeoVersion}; ${distVersion}`);
    const near = new URL(upstream.url).host;
    forwarder = new LatencyForwarder({ host: '127.0.0.1', port: Number(new URL(upstream.url).port) }, settings.rttMs);
    const distant = await forwarder.start();
    log(`latency forwarder ${distant} → upstream, adding a round trip of ${settings.rttMs} ms`);
    log(`pushing ${UPSTREAM_REPO}: ${settings.tags} tags, each ${settings.baseLayers} shared layers of ${settings.baseMiB} MiB and one of ${settings.uniqueKiB} KiB of its own`);
    const fixture = await pushSharedLayerRepo(upstream.url, UPSTREAM_REPO, { tags: settings.tags, baseLayers: settings.baseLayers, baseMiB: settings.baseMiB, uniqueKiB: settings.uniqueKiB });
    const repoMiB = fixture.bytes / MiB;
    log(`upstream holds ${fixture.manifests.size} tags, ${fixture.blobs} blobs, ${fmt(repoMiB)} MiB (${fmt(fixture.sharedBytes / MiB)} MiB shared by every tag)`);

    const cold: Record<Side, SyncRun[]> = { wharf: [], skopeo: [] };
    const warm: Record<Side, SyncRun[]> = { wharf: [], skopeo: [] };
    /** Warm runs with the upstream rttMs away (through the forwarder). */
    const far: Record<Side, SyncRun[]> = { wharf: [], skopeo: [] };
    const heads: number[] = [];
    const farHeads: number[] = [];
    for (let rep = 0; rep < settings.repeats; rep++) {
      const d = await startDestinations(rep, workDir, upstream, servers);
      log(`repetition ${rep + 1}: destination ${d.dest.url} (pid ${d.dest.pid}), wharf ${d.wharf.url} (pid ${d.wharf.pid})`);
      const order: Side[] = rep % 2 === 0 ? ['skopeo', 'wharf'] : ['wharf', 'skopeo'];
      const once = async (side: Side, phase: 'cold' | 'warm' | 'far') => {
        const source = phase === 'far' ? distant : near;
        const connections0 = forwarder!.connections;
        const r = side === 'skopeo' ? await skopeoSync(source, upstream, upstreamLog, d.dest) : await wharfSync(upstream, upstreamLog, d);
        ({ cold, warm, far })[phase][side].push(r);
        const u = r.upstream;
        log(
          `${phase === 'far' ? `warm, ${settings.rttMs} ms away,` : phase} ${side.padEnd(6)}: ${fmt(r.seconds, 2)} s` +
            (side === 'wharf' ? ` (sync-now → finished seen ${fmt(r.wallSeconds, 2)} s; run reports ${fmt((r.reportedBytes ?? 0) / MiB, 1)} MiB)` : '') +
            `, CPU ${fmt(r.syncCpuSeconds, 2)} s, peak RSS ${fmt(r.peakRssMiB)} MiB; upstream: ${u.requests} requests, ${u.manifestRequests} manifest, ` +
            `${u.blobGets} blob GETs, ${fmt(u.blobBytes / MiB, 1)} MiB; ` +
            (phase === 'far' ? `${forwarder!.connections - connections0} connections through the forwarder; ` : '') +
            `cores: other ${fmt(r.cpu.otherCores, 2)}`,
        );
      };
      for (const side of order) await once(side, 'cold');
      await verifyTags(d.dest, SKOPEO_REPO, undefined, fixture);
      await verifyTags(d.wharf, WHARF_REPO, BASIC, fixture);
      if (rep === 0) {
        // The bytes too, for one shared and one tag's own layer.
        const m = (await (await fetch(`${upstream.url}/v2/${UPSTREAM_REPO}/manifests/${[...fixture.manifests.keys()].at(-1)}`, { headers: { Accept: MANIFEST_ACCEPT } })).json()) as { layers: Array<{ digest: string; size: number }> };
        for (const l of [m.layers[0]!, m.layers.at(-1)!]) await verifyBlob(`${d.wharf.url}/v2/${WHARF_REPO}/blobs/${l.digest}`, BASIC, l.digest, l.size);
      }
      for (let w = 0; w < settings.warmRuns; w++) for (const side of w % 2 === 0 ? order : [...order].reverse()) await once(side, 'warm');
      for (let w = 0; w < settings.warmRuns; w++) {
        const secs = await bareHeads(near, fixture);
        heads.push(secs);
        log(`${settings.tags} bare HEADs against the upstream, 8 at a time: ${fmt(secs, 3)} s`);
      }
      // Both sides warm: the same upstream again, through the forwarder. Only the mirror's source
      // changes (no credentials to move), so Wharf's local tags are those the warm runs left.
      const put = await apiRequest(d.wharf.url, BASIC, 'PUT', `/repository/${WHARF_REPO}/mirror`, { external_reference: `${distant}/${UPSTREAM_REPO}` });
      if (put.status !== 201) throw new Error(`PUT mirror on ${d.wharf.label}: ${put.status} ${put.text.slice(0, 500)}`);
      const source = (await d.mirror.get()).external_reference;
      if (source !== `${distant}/${UPSTREAM_REPO}`) throw new Error(`${d.wharf.label}: the mirror's external_reference is ${source} after the PUT`);
      for (let w = 0; w < settings.rttRuns; w++) for (const side of w % 2 === 0 ? order : [...order].reverse()) await once(side, 'far');
      await verifyTags(d.dest, SKOPEO_REPO, undefined, fixture);
      await verifyTags(d.wharf, WHARF_REPO, BASIC, fixture);
      for (let w = 0; w < settings.rttRuns; w++) {
        const secs = await bareHeads(distant, fixture);
        farHeads.push(secs);
        log(`${settings.tags} bare HEADs through the forwarder (${settings.rttMs} ms), 8 at a time: ${fmt(secs, 3)} s`);
      }
      for (const s of [d.wharf, d.dest]) {
        await s.stop();
        servers.splice(servers.indexOf(s), 1);
        await rm(s.dataDir, { recursive: true, force: true });
      }
    }

    // Summary: Wharf / skopeo.
    const row = (metric: string, runs: Record<Side, SyncRun[]>, pick: (r: SyncRun) => number, unit: string, digits: number, extra: Partial<Row> = {}): Row => {
      const w = undisturbed(runs.wharf);
      const s = undisturbed(runs.skopeo);
      return {
        metric,
        wharf: median(w.map(pick)),
        dist: median(s.map(pick)),
        wharfRange: range(runs.wharf.map(pick)),
        distRange: range(runs.skopeo.map(pick)),
        used: [w.length, s.length],
        runs: runs.wharf.length,
        unit,
        digits,
        ...extra,
      };
    };
    const worst = (runs: SyncRun[], pick: (r: SyncRun) => number) => Math.max(...runs.map(pick));
    const perTag = (r: SyncRun) => r.upstream.manifestRequests / settings.tags;

    const coldTime = row(`cold sync, ${settings.tags} tags, ${fmt(repoMiB)} MiB`, cold, (r) => r.seconds, 's', 2, { target: `≤ ${TARGETS.coldRatio.toFixed(1)}×` });
    coldTime.pass = coldTime.wharf / coldTime.dist <= TARGETS.coldRatio;
    /** The rows of a set of warm runs; `floor` the bare HEADs' seconds measured beside them. */
    const warmRows = (metric: string, runs: Record<Side, SyncRun[]>, floor: number[]): Row[] => {
      const time = row(metric, runs, (r) => r.seconds, 's', 2, { target: `≤ ${TARGETS.warmRatio.toFixed(1)}× (HEADs ${fmt(median(floor), 2)} s)` });
      time.pass = time.wharf / time.dist <= TARGETS.warmRatio;
      const bytes = row('  upstream blob bytes', runs, (r) => r.upstream.blobBytes / MiB, 'MiB', 1, { noRatio: true, target: `Wharf = ${TARGETS.warmBlobBytes}` });
      bytes.wharf = worst(runs.wharf, (r) => r.upstream.blobBytes / MiB);
      bytes.pass = worst(runs.wharf, (r) => r.upstream.blobBytes) === TARGETS.warmBlobBytes;
      const manifests = row('  upstream manifest requests per tag', runs, perTag, '', 2, { noRatio: true, target: `Wharf ≤ ${TARGETS.warmManifestRequestsPerTag}` });
      manifests.wharf = worst(runs.wharf, perTag);
      manifests.pass = manifests.wharf <= TARGETS.warmManifestRequestsPerTag;
      return [
        time,
        row('  from sync-now until the API shows it done', runs, (r) => r.wallSeconds, 's', 2),
        row('  CPU of the syncing side', runs, (r) => r.syncCpuSeconds, 's', 2),
        bytes,
        manifests,
        row('  upstream requests in all', runs, (r) => r.upstream.requests, '', 0),
      ];
    };
    const rows: Row[] = [
      coldTime,
      row('  from sync-now until the API shows it done', cold, (r) => r.wallSeconds, 's', 2),
      row('  CPU of the syncing side', cold, (r) => r.syncCpuSeconds, 's', 2),
      row('  upstream blob GETs', cold, (r) => r.upstream.blobGets, '', 0, { noRatio: true }),
      row('  upstream blob bytes', cold, (r) => r.upstream.blobBytes / MiB, 'MiB', 0),
      row('  peak RSS (Wharf; destination Distribution)', cold, (r) => r.peakRssMiB, 'MiB', 0, { noRatio: true }),
      ...warmRows('warm re-sync, nothing changed', warm, heads),
      ...warmRows(`warm re-sync, upstream ${settings.rttMs} ms away`, far, farHeads),
    ];
    const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
    const lines = renderTable(
      [
        `Repository mirroring: Wharf vs skopeo sync — medians of ${settings.repeats} cold, ${settings.repeats * settings.warmRuns} warm and ${settings.repeats * settings.rttRuns} warm ` +
          `with the upstream ${settings.rttMs} ms away runs each, ${date} UTC`,
        `${machine.nproc} CPUs ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}; ${skopeoVersion} into ${distVersion}`,
        `${settings.tags} tags, ${settings.baseLayers} shared layers of ${settings.baseMiB} MiB + one of ${settings.uniqueKiB} KiB per tag; Wharf: SQLite, mirror.poll_interval ${settings.pollIntervalS}s; ` +
          'Wharf time = the run from claim to release (last_run), skopeo = its wall time',
      ],
      rows,
      ['Wharf', 'skopeo sync'],
    );
    lines.push(
      '',
      `${settings.tags} HEADs alone (8 at a time, kept-alive connections, nothing else): median ${fmt(median(heads), 3)} s, ${fmt(Math.min(...heads), 3)}–${fmt(Math.max(...heads), 3)} s over ${heads.length} rounds.`,
      `Wharf's warm runs, upstream: ${warm.wharf.map((r) => `${r.upstream.requests} requests (${r.upstream.manifestRequests} manifest, ${r.upstream.blobGets} blob GETs, ${r.upstream.blobBytes} bytes)`).join('; ')}`,
      `${settings.tags} HEADs through the forwarder (${settings.rttMs} ms round trip, 8 at a time, connections opened in the round): median ${fmt(median(farHeads), 3)} s, ` +
        `${fmt(Math.min(...farHeads), 3)}–${fmt(Math.max(...farHeads), 3)} s over ${farHeads.length} rounds.`,
      `Wharf's warm runs with the upstream ${settings.rttMs} ms away, upstream: ${far.wharf.map((r) => `${r.upstream.requests} requests (${r.upstream.manifestRequests} manifest, ${r.upstream.blobGets} blob GETs, ${r.upstream.blobBytes} bytes)`).join('; ')}`,
      `Wharf's runs reported moving ${cold.wharf.map((r) => fmt((r.reportedBytes ?? 0) / MiB, 1)).join(', ')} MiB cold, ${warm.wharf.map((r) => String(r.reportedBytes ?? 0)).join(', ')} bytes warm ` +
        `and ${far.wharf.map((r) => String(r.reportedBytes ?? 0)).join(', ')} bytes warm with the upstream ${settings.rttMs} ms away.`,
    );
    const all = [...cold.wharf, ...cold.skopeo, ...warm.wharf, ...warm.skopeo, ...far.wharf, ...far.skopeo];
    const disturbed = all.filter((r) => r.cpu.otherCores >= DISTURBED_CORES).length;
    lines.push(
      `load average (1 min) before ${fmt(loadBefore, 2)}, after ${fmt(loadavg()[0]!, 2)}; total ${fmt((Date.now() - started) / 1000)} s`,
      disturbed > 0
        ? `NOTE: other processes used ≥ ${DISTURBED_CORES} cores in ${disturbed} of ${all.length} runs; medians leave those runs out where at least half remain.`
        : `Other processes stayed below ${DISTURBED_CORES} cores in every run.`,
      '',
    );
    process.stdout.write(lines.join('\n'));

    if (settings.jsonOut) {
      await writeFile(settings.jsonOut, JSON.stringify({ date: new Date().toISOString(), machine, distribution: distVersion, skopeo: skopeoVersion, settings, targets: TARGETS, rows, cold, warm, far, bareHeadSeconds: heads, bareHeadSecondsThroughForwarder: farHeads }, null, 2));
      log(`results written to ${settings.jsonOut}`);
    }
  } finally {
    await forwarder?.stop().catch(() => {});
    for (const s of [...servers].reverse()) await s.stop().catch(() => {});
    await rm(workDir, { recursive: true, force: true });
  }
}

runBench(main, log);
