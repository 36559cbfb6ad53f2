/**
 * Wharf vs. CNCF Distribution (Debian's docker-registry 2.8) side by side on this machine:
 *   1. blob GET throughput of one large blob with 1 and with 8 concurrent clients (aggregate MiB/s),
 *   2. manifest GET by tag, requests per second under keep-alive load (wrk), against Wharf without
 *      authentication (as Distribution runs) and against a second Wharf with authentication on, where
 *      every request carries a pull-scoped Bearer token from Wharf's token endpoint,
 *   3. peak RSS of each server during the 8 concurrent pulls.
 * Both servers listen on 127.0.0.1 only, store blobs on the filesystem in temp directories, and Wharf
 * keeps its default SQLite database. Run through `npm run bench` (scripts/bench.sh builds Wharf first).
 *
 * The same clients measure both servers: `curl` processes that read every byte and discard it
 * (`-o /dev/null`), and `wrk`. Every measurement is repeated and the median is reported; the two
 * servers are measured alternately within each repetition so that drift on the machine hits both.
 *
 * The machine is usually shared (2 cores, other sessions compiling and testing), so each run waits
 * (bounded) for a quiet moment, accounts the CPU of server, clients and everything else, and the
 * medians leave out runs during which other processes took ≥ 0.25 cores, as long as at least half
 * of the runs remain. CPU accounting: /proc/<pid>/stat for the server, bash `times` for the clients,
 * /proc/stat for the machine (tick-based accounting charges softirq work to the interrupted task).
 *
 * Exit status: 0 when the run completed (whether targets are met or missed: this reports, it is not a
 * test), 1 when something broke (a server did not start, a push failed, a pull returned the wrong
 * bytes or status, a tool is missing).
 */
import { rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { MANIFEST_ACCEPT, authHeader, makeContent, pushImage, verifyBlob, verifyManifest, type Content } from './lib/content.js';
import { blobRun, wrkRun, type BlobRun, type LoadOptions, type WrkRun } from './lib/load.js';
import {
  DISTURBED_CORES,
  envInt,
  fmt,
  lpad,
  log,
  median,
  pad,
  range,
  requireTools,
  rssKiB,
  undisturbed,
  type PhaseCpu,
} from './lib/measure.js';
import { renderTable, type Row } from './lib/report.js';
import { beginBench, runBench, type LiveResources } from './lib/run.js';
import { startDistribution, startWharf, type Server } from './lib/servers.js';

const settings = {
  blobMiB: envInt('BENCH_BLOB_MIB', 256, 1, 4096),
  repeats: envInt('BENCH_REPEATS', 5, 1, 20),
  /** Sequential pulls per client in the single-client case, so that process start-up is amortised. */
  singleClientPulls: envInt('BENCH_SINGLE_CLIENT_PULLS', 4, 1, 32),
  concurrency: envInt('BENCH_CONCURRENCY', 8, 2, 64),
  wrkSeconds: envInt('BENCH_WRK_SECONDS', 10, 1, 60),
  wrkConnections: envInt('BENCH_WRK_CONNECTIONS', 16, 1, 1024),
  wrkThreads: envInt('BENCH_WRK_THREADS', 2, 1, 64),
  rssSampleMs: envInt('BENCH_RSS_SAMPLE_MS', 50, 10, 1000),
  /** Before each measurement, wait at most this long for the machine to be idle (other load < 0.25 cores). */
  quietWaitMs: envInt('BENCH_QUIET_WAIT_MS', 3000, 0, 60_000),
  /** Compiled CLI entry (scripts/bench.sh builds one); without it Wharf runs from src through tsx. */
  wharfCli: process.env.WHARF_BENCH_CLI,
  wharfLogLevel: process.env.WHARF_BENCH_LOG_LEVEL ?? 'warn',
  jsonOut: process.env.BENCH_JSON,
};
const loadOptions: LoadOptions = { quietWaitMs: settings.quietWaitMs, rssSampleMs: settings.rssSampleMs };

const TARGETS = {
  blobRatio: 1.0,
  manifestRatio: 3.0,
  wharfRssMiB: 200,
};

const REPO = 'bench/big';
/** The authenticated Wharf's superuser (created on first start from WHARF_AUTH_ADMIN_PASSWORD). */
const ADMIN = { username: 'admin', password: 'bench-admin-password' };
const TAG = 'bench';

type Label = 'wharf' | 'distribution' | 'wharf-auth';

/**
 * A Wharf server on loopback. Without `auth` it runs open, as Distribution does. With `auth` it runs
 * the default configuration (accounts and Bearer tokens); its superuser's password is set so that the
 * benchmark can push with Basic, and tokens live long enough for the whole run.
 */
async function startWharfServer(workDir: string, opts: { auth: boolean }): Promise<Server<Label>> {
  const server = await startWharf<Label>({
    label: opts.auth ? 'wharf-auth' : 'wharf',
    workDir,
    cli: settings.wharfCli,
    logLevel: settings.wharfLogLevel,
    env: opts.auth
      ? { WHARF_AUTH_ENABLED: 'true', WHARF_AUTH_ADMIN_USERNAME: ADMIN.username, WHARF_AUTH_ADMIN_PASSWORD: ADMIN.password, WHARF_AUTH_TOKEN_TTL: '24h' }
      : // Distribution runs without auth here; compare like with like (ignored by builds without `auth`).
        { WHARF_AUTH_ENABLED: 'false' },
  });
  if (opts.auth) server.pushAuth = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`;
  return server;
}

/**
 * A Bearer token from the server's token endpoint (`GET /v2/auth`, Basic login) with pull scope on the
 * benchmark repository, as `docker pull` gets one; the manifest load sends it on every request.
 */
async function pullToken(s: Server): Promise<string> {
  const service = new URL(s.url).host;
  const res = await fetch(`${s.url}/v2/auth?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(`repository:${REPO}:pull`)}`, { headers: authHeader(s.pushAuth) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`token request on ${s.label}: status ${res.status}: ${text.slice(0, 500)}`);
  const body = JSON.parse(text) as { token?: string; expires_in?: number };
  if (!body.token) throw new Error(`token request on ${s.label}: no token in ${text.slice(0, 500)}`);
  if ((body.expires_in ?? 0) < 3600) throw new Error(`token request on ${s.label}: the token lives only ${body.expires_in} s (WHARF_AUTH_TOKEN_TTL not applied?)`);
  const bearer = `Bearer ${body.token}`;
  // The token must work, and Wharf must refuse the same request without it (auth is really on).
  const denied = await fetch(`${s.url}/v2/${REPO}/manifests/${TAG}`, { headers: { Accept: MANIFEST_ACCEPT } });
  await denied.arrayBuffer();
  if (denied.status !== 401) throw new Error(`${s.label} answered ${denied.status} to a manifest GET without credentials; expected 401`);
  return bearer;
}

/** Pulls the manifest and the whole blob once and checks their sha256. */
async function verify(s: Server, c: Content): Promise<void> {
  const auth = s.pullAuth ?? s.pushAuth;
  await verifyManifest(s.url, REPO, TAG, auth, c.manifestDigest);
  await verifyBlob(`${s.url}/v2/${REPO}/blobs/${c.blobDigest}`, auth, c.blobDigest, c.blobSize);
}

const blobTarget = (s: Server, c: Content) => ({ label: s.label, url: `${s.url}/v2/${REPO}/blobs/${c.blobDigest}`, pid: s.pid, auth: s.pullAuth ?? s.pushAuth });
const manifestTarget = (s: Server) => ({ label: s.label, url: `${s.url}/v2/${REPO}/manifests/${TAG}`, pid: s.pid, auth: s.pullAuth });
const wrkOptions = (seconds: number) => ({ threads: settings.wrkThreads, connections: settings.wrkConnections, seconds, headers: { Accept: MANIFEST_ACCEPT } });

async function main(live: LiveResources): Promise<void> {
  const started = Date.now();
  await requireTools(['curl', 'wrk', 'getconf'], 'scripts/bench.sh installs curl and wrk when run as root');
  const only = process.env.BENCH_ONLY ?? '';
  if (!['', 'blob', 'manifest'].includes(only)) throw new Error(`BENCH_ONLY must be blob or manifest (got "${only}")`);
  const { machine, distVersion, loadBefore, workDir } = await beginBench(live, { workDirPrefix: 'wharf-bench-', wharfCli: settings.wharfCli, wharfLogLevel: settings.wharfLogLevel });
  const servers: Array<Server<Label>> = [];
  live.servers = servers;
  try {
    log(`writing a ${settings.blobMiB} MiB random blob`);
    const content = makeContent(join(workDir, 'blob.bin'), settings.blobMiB);
    servers.push(await startWharfServer(workDir, { auth: false }));
    servers.push(await startDistribution<Label>({ label: 'distribution', workDir }));
    const [wharf, dist] = servers as [Server<Label>, Server<Label>];
    log(`wharf ${wharf.url} (pid ${wharf.pid}), distribution ${dist.url} (pid ${dist.pid})`);
    // A second Wharf with authentication on (the default configuration), for the manifest load only.
    const wharfAuth = only === 'blob' ? undefined : await startWharfServer(workDir, { auth: true });
    if (wharfAuth) {
      servers.push(wharfAuth);
      log(`wharf with authentication ${wharfAuth.url} (pid ${wharfAuth.pid})`);
    }
    const startRss = { wharf: rssKiB(wharf.pid, 'VmRSS') / 1024, distribution: rssKiB(dist.pid, 'VmRSS') / 1024 };

    for (const s of servers) {
      log(`pushing to ${s.label}`);
      await pushImage(s.url, REPO, TAG, s.pushAuth, content);
    }
    for (const s of servers) {
      log(`verifying a full pull from ${s.label} (sha256 of manifest and blob)`);
      await verify(s, content);
    }
    if (wharfAuth) {
      wharfAuth.pullAuth = await pullToken(wharfAuth);
      log(`got a pull token from ${wharfAuth.label}; checking it pulls the same bytes`);
      await verify(wharfAuth, content);
    }
    const pushedRss = { wharf: rssKiB(wharf.pid, 'VmRSS') / 1024, distribution: rssKiB(dist.pid, 'VmRSS') / 1024 };

    // Blob throughput. Each repetition measures both servers, alternating which goes first.
    const conc = `c${settings.concurrency}`;
    const blob: Record<string, Record<'wharf' | 'distribution', BlobRun[]>> = {};
    const cases = [
      { key: 'c1', clients: 1, pulls: settings.singleClientPulls },
      { key: conc, clients: settings.concurrency, pulls: 1 },
    ];
    for (const cs of only === 'manifest' ? [] : cases) {
      blob[cs.key] = { wharf: [], distribution: [] };
      for (let rep = 0; rep < settings.repeats; rep++) {
        const order = rep % 2 === 0 ? [wharf, dist] : [dist, wharf];
        for (const s of order) {
          const r = await blobRun(blobTarget(s, content), content.blobSize, cs.clients, cs.pulls, loadOptions);
          blob[cs.key]![s.label as 'wharf' | 'distribution'].push(r);
          log(
            `blob GET ${cs.clients} client(s) × ${cs.pulls} pull(s), ${pad(s.label, 12)}: ${lpad(fmt(r.mibPerSec), 5)} MiB/s in ${fmt(r.seconds, 2)} s, ` +
              `server ${fmt(r.serverCpuPerGiB, 2)} CPU-s/GiB, ` +
              `peak RSS ${fmt(r.peakRssMiB)} MiB, CPU cores: server ${fmt(r.cpu.serverCores, 2)}, clients ${fmt(r.cpu.clientCores, 2)}, other ${fmt(r.cpu.otherCores, 2)}`,
          );
        }
      }
    }

    // Manifest GET by tag under wrk, after a short warm-up of each server.
    const manifest: Record<Label, WrkRun[]> = { wharf: [], distribution: [], 'wharf-auth': [] };
    if (only !== 'blob') {
      for (const s of servers) {
        log(`manifest warm-up on ${s.label}`);
        await wrkRun(manifestTarget(s), wrkOptions(2), loadOptions);
      }
      for (let rep = 0; rep < settings.repeats; rep++) {
        const pair = rep % 2 === 0 ? [wharf, dist] : [dist, wharf];
        // The authenticated Wharf goes last and first in turn, next to the open one.
        const order = wharfAuth ? (rep % 2 === 0 ? [...pair, wharfAuth] : [wharfAuth, ...pair]) : pair;
        for (const s of order) {
          const r = await wrkRun(manifestTarget(s), wrkOptions(settings.wrkSeconds), loadOptions);
          manifest[s.label].push(r);
          log(
            `manifest GET ${pad(s.label, 12)}: ${lpad(fmt(r.rps), 5)} req/s, p50 ${fmt(r.p50ms, 2)} ms, p99 ${fmt(r.p99ms, 2)} ms, peak RSS ${fmt(r.peakRssMiB)} MiB, ` +
              `CPU cores: server ${fmt(r.cpu.serverCores, 2)}, clients ${fmt(r.cpu.clientCores, 2)}, other ${fmt(r.cpu.otherCores, 2)}`,
          );
        }
      }
    }

    // Re-check after the load that the blob still comes back intact from both.
    for (const s of servers) await verify(s, content);

    // Summary.
    const rows: Row[] = [];
    const blobRow = (key: string, metric: string) => {
      const w = undisturbed(blob[key]!.wharf);
      const d = undisturbed(blob[key]!.distribution);
      const row: Row = {
        metric,
        wharf: median(w.map((r) => r.mibPerSec)),
        dist: median(d.map((r) => r.mibPerSec)),
        wharfRange: range(blob[key]!.wharf.map((r) => r.mibPerSec)),
        distRange: range(blob[key]!.distribution.map((r) => r.mibPerSec)),
        used: [w.length, d.length],
        unit: 'MiB/s',
        digits: 0,
        target: `≥ ${TARGETS.blobRatio.toFixed(1)}×`,
      };
      row.pass = row.wharf / row.dist >= TARGETS.blobRatio;
      rows.push(row);
    };
    if (only !== 'manifest') {
      blobRow('c1', `blob GET ${settings.blobMiB} MiB, 1 client`);
      blobRow(conc, `blob GET ${settings.blobMiB} MiB, ${settings.concurrency} clients`);
    }
    if (only !== 'blob') {
      const w = undisturbed(manifest.wharf);
      const d = undisturbed(manifest.distribution);
      const row: Row = {
        metric: `manifest GET by tag, wrk -t${settings.wrkThreads} -c${settings.wrkConnections}`,
        wharf: median(w.map((r) => r.rps)),
        dist: median(d.map((r) => r.rps)),
        wharfRange: range(manifest.wharf.map((r) => r.rps)),
        distRange: range(manifest.distribution.map((r) => r.rps)),
        used: [w.length, d.length],
        unit: 'req/s',
        digits: 0,
        target: `≥ ${TARGETS.manifestRatio.toFixed(1)}×`,
      };
      row.pass = row.wharf / row.dist >= TARGETS.manifestRatio;
      rows.push(row);
      const a = undisturbed(manifest['wharf-auth']);
      const authRow: Row = {
        metric: 'manifest GET by tag, authenticated (Bearer)',
        wharf: median(a.map((r) => r.rps)),
        dist: row.dist,
        wharfRange: range(manifest['wharf-auth'].map((r) => r.rps)),
        distRange: row.distRange,
        used: [a.length, d.length],
        unit: 'req/s',
        digits: 0,
        target: `≥ ${TARGETS.manifestRatio.toFixed(1)}×`,
      };
      authRow.pass = authRow.wharf / authRow.dist >= TARGETS.manifestRatio;
      rows.push(authRow);
    }
    if (only !== 'manifest') {
      for (const [key, label] of [['c1', '1 client'], [conc, `${settings.concurrency} clients`]] as const) {
        const w = blob[key]!.wharf.map((r) => r.serverCpuPerGiB);
        const d = blob[key]!.distribution.map((r) => r.serverCpuPerGiB);
        rows.push({ metric: `server CPU per GiB served, ${label}`, wharf: median(w), dist: median(d), wharfRange: range(w), distRange: range(d), used: [w.length, d.length], unit: 's', digits: 2 });
      }
      const rssW = Math.max(...blob[conc]!.wharf.map((r) => r.peakRssMiB));
      const rssD = Math.max(...blob[conc]!.distribution.map((r) => r.peakRssMiB));
      rows.push({ metric: `peak RSS during ${settings.concurrency} × ${settings.blobMiB} MiB pulls`, wharf: rssW, dist: rssD, unit: 'MiB', digits: 0, target: `Wharf < ${TARGETS.wharfRssMiB} MiB`, pass: rssW < TARGETS.wharfRssMiB });
    }
    rows.push({ metric: 'RSS after start', wharf: startRss.wharf, dist: startRss.distribution, unit: 'MiB', digits: 0 });
    rows.push({ metric: `RSS after pushing ${settings.blobMiB} MiB + verify pull`, wharf: pushedRss.wharf, dist: pushedRss.distribution, unit: 'MiB', digits: 0 });
    if (only !== 'blob') {
      rows.push({ metric: 'peak RSS during manifest GETs', wharf: Math.max(...manifest.wharf.map((r) => r.peakRssMiB)), dist: Math.max(...manifest.distribution.map((r) => r.peakRssMiB)), unit: 'MiB', digits: 0 });
      rows.push({ metric: 'manifest GET p99 latency', wharf: median(manifest.wharf.map((r) => r.p99ms)), dist: median(manifest.distribution.map((r) => r.p99ms)), unit: 'ms', digits: 2 });
      rows.push({ metric: 'manifest GET p99 latency, authenticated', wharf: median(manifest['wharf-auth'].map((r) => r.p99ms)), dist: median(manifest.distribution.map((r) => r.p99ms)), unit: 'ms', digits: 2 });
    }

    for (const r of rows) if (r.wharfRange) r.runs = settings.repeats;
    const lines = renderTable(
      [
        `Wharf vs Distribution — median of ${settings.repeats} runs, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
        `${machine.nproc} CPUs ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}; ${distVersion}`,
      ],
      rows,
    );
    const W0 = 46;
    const cpuLine = (label: string, runs: Array<{ cpu: PhaseCpu }>) =>
      `  ${pad(label, W0 - 2)}server ${fmt(median(runs.map((r) => r.cpu.serverCores)), 2)}, clients ${fmt(median(runs.map((r) => r.cpu.clientCores)), 2)}, ` +
      `other processes ${fmt(median(runs.map((r) => r.cpu.otherCores)), 2)} (of ${machine.nproc})`;
    lines.push('', 'CPU cores busy during the measurements (median; clients share the same cores):');
    if (only !== 'manifest') {
      lines.push(cpuLine('blob, 1 client, Wharf', blob.c1!.wharf), cpuLine('blob, 1 client, Distribution', blob.c1!.distribution));
      lines.push(cpuLine(`blob, ${settings.concurrency} clients, Wharf`, blob[conc]!.wharf), cpuLine(`blob, ${settings.concurrency} clients, Distribution`, blob[conc]!.distribution));
    }
    if (only !== 'blob') {
      lines.push(cpuLine('manifest, Wharf', manifest.wharf), cpuLine('manifest, Wharf authenticated', manifest['wharf-auth']), cpuLine('manifest, Distribution', manifest.distribution));
    }
    const allRuns = [...Object.values(blob).flatMap((b) => [...b.wharf, ...b.distribution]), ...manifest.wharf, ...manifest['wharf-auth'], ...manifest.distribution];
    const disturbed = allRuns.filter((r) => r.cpu.otherCores >= DISTURBED_CORES).length;
    lines.push(
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
        JSON.stringify({ date: new Date().toISOString(), machine, distribution: distVersion, settings, targets: TARGETS, rows, blob, manifest, startRss, pushedRss }, null, 2),
      );
      log(`results written to ${settings.jsonOut}`);
    }
  } finally {
    for (const s of [...servers].reverse()) await s.stop().catch(() => {});
    await rm(workDir, { recursive: true, force: true });
  }
}

runBench(main, log);
