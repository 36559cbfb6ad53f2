/**
 * Push throughput with and without a storage quota, and against CNCF Distribution (Debian's
 * docker-registry 2.8), on this machine in the same run:
 *   1. 8 concurrent pushers, each pushing images of 3 new random layers of 1–4 MiB (half of them as
 *      monolithic uploads, half chunked in 1 MiB PATCHes, each after a HEAD), a config and a manifest,
 *      into (a) an organization without a quota and (b) an organization whose quota has a Warning limit
 *      at 80% and a Reject limit at 100% of a limit no run comes near, both on the same Wharf;
 *   2. the same load against Distribution, for Wharf with a quota / Distribution.
 * Reported: pushes (images) per second, MiB/s, server CPU per GiB received, per-image latency; the
 * ratio with / without quota has the target ≥ 0.95.
 *
 * Wharf runs with authentication on: quotas are set through `/api/v1`, which is served only then.
 * The organizations are created with the CLI before `wharf serve` (as proxy-bench does), the quotas
 * with the Quay-compatible API as the superuser:
 *   POST /api/v1/organization/<org>/quota {"limit_bytes": N} → 201
 *   GET  /api/v1/organization/<org>/quota → [{id, limit_bytes, limits}]
 *   POST /api/v1/organization/<org>/quota/<id>/limit {"type": "Reject", "threshold_percent": 100} → 201
 * The pushers send a Bearer token with pull,push scope from `/v2/auth`, as `docker push` does.
 * Distribution runs open (it has no accounts), so the Wharf / Distribution ratio includes Wharf's token
 * checks. A third organization with a 1 MiB quota must refuse a 2 MiB push: otherwise quotas are not
 * enforced on the push path and the ratio measures nothing (the summary says so).
 *
 * Every round measures the three targets in another order (each of the six orders twice over the
 * default 12 rounds: 6 rounds put a 5% difference within the noise on this machine), on a freshly built
 * set of images per run; runs during which other processes took ≥ 0.25 cores are left out of the medians
 * where at least half remain, as in registry-bench.ts. Run through `npm run bench` (BENCH_SUITE=quota).
 */
import { rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { verifyBlob, verifyManifest } from './lib/content.js';
import type { LoadOptions } from './lib/load.js';
import { DISTURBED_CORES, envInt, fmt, log, median, range, requireTools, undisturbed } from './lib/measure.js';
import { makePushSet, pushOne, pushRun, type PushImage, type PushRun, type PushShape } from './lib/push-load.js';
import { renderTable, type Row } from './lib/report.js';
import { beginBench, runBench, type LiveResources } from './lib/run.js';
import { startDistribution, startWharf, type Server } from './lib/servers.js';

const settings = {
  rounds: envInt('BENCH_QUOTA_ROUNDS', 12, 1, 60),
  pushers: envInt('BENCH_QUOTA_PUSHERS', 8, 1, 64),
  imagesPerPusher: envInt('BENCH_QUOTA_IMAGES', 4, 1, 1000),
  layersPerImage: envInt('BENCH_QUOTA_LAYERS', 3, 1, 32),
  minMiB: envInt('BENCH_QUOTA_LAYER_MIN_MIB', 1, 1, 512),
  maxMiB: envInt('BENCH_QUOTA_LAYER_MAX_MIB', 4, 1, 512),
  chunkKiB: envInt('BENCH_QUOTA_CHUNK_KIB', 1024, 16, 1024 * 1024),
  /** The quota of the measured organization, far above what the run pushes. */
  limitGiB: envInt('BENCH_QUOTA_LIMIT_GIB', 1024, 1, 1 << 20),
  rssSampleMs: envInt('BENCH_RSS_SAMPLE_MS', 50, 10, 1000),
  quietWaitMs: envInt('BENCH_QUIET_WAIT_MS', 3000, 0, 60_000),
  wharfCli: process.env.WHARF_BENCH_CLI,
  wharfLogLevel: process.env.WHARF_BENCH_LOG_LEVEL ?? 'warn',
  jsonOut: process.env.BENCH_QUOTA_JSON,
};
const loadOptions: LoadOptions = { quietWaitMs: settings.quietWaitMs, rssSampleMs: settings.rssSampleMs };
const shape: PushShape = { pushers: settings.pushers, imagesPerPusher: settings.imagesPerPusher, layersPerImage: settings.layersPerImage, minMiB: settings.minMiB, maxMiB: settings.maxMiB };

const TARGETS = { quotaRatio: 0.95 };
const ADMIN = { username: 'admin', password: 'bench-admin-password' };
const BASIC = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`;
const ORG = { none: 'bench-noquota', quota: 'bench-quota', tiny: 'bench-tinyquota' } as const;
const TINY_LIMIT = 1024 * 1024;

type Kind = 'none' | 'quota' | 'dist';
const KINDS: readonly Kind[] = ['none', 'quota', 'dist'];
/** All six orders of the three targets: over six rounds each target is first, middle and last twice. */
const ORDERS: ReadonlyArray<readonly Kind[]> = [
  ['none', 'quota', 'dist'],
  ['dist', 'quota', 'none'],
  ['quota', 'dist', 'none'],
  ['none', 'dist', 'quota'],
  ['dist', 'none', 'quota'],
  ['quota', 'none', 'dist'],
];
const NAMES: Record<Kind, string> = { none: 'Wharf, no quota', quota: 'Wharf, quota', dist: 'Distribution' };

interface Target {
  kind: Kind;
  server: Server;
  auth?: string;
  repo(pusher: number): string;
}

/** A `/api/v1` request as the superuser (Basic); the body parsed when it is JSON. */
async function api(s: Server, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(`${s.url}/api/v1${path}`, {
    method,
    headers: { Authorization: BASIC, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** Sets the organization's quota and its limits through the API; returns the quota as GET shows it. */
async function setQuota(s: Server, org: string, limitBytes: number, limits: Array<{ type: 'Warning' | 'Reject'; threshold_percent: number }>): Promise<unknown> {
  const missing = (r: { status: number }, what: string) =>
    r.status === 404 || r.status === 405
      ? new Error(`${what} answered ${r.status}: the quota API (POST/GET /api/v1/organization/{org}/quota, POST …/quota/{id}/limit) is not in src/http/api yet`)
      : undefined;
  const created = await api(s, 'POST', `/organization/${org}/quota`, { limit_bytes: limitBytes });
  if (created.status !== 201) throw missing(created, `POST /api/v1/organization/${org}/quota`) ?? new Error(`POST quota of ${org}: status ${created.status}: ${created.text.slice(0, 500)}`);
  const listed = await api(s, 'GET', `/organization/${org}/quota`);
  const quota = Array.isArray(listed.json) ? (listed.json[0] as { id?: unknown; limit_bytes?: unknown } | undefined) : undefined;
  if (listed.status !== 200 || !quota || quota.id === undefined) throw new Error(`GET quota of ${org}: status ${listed.status}: ${listed.text.slice(0, 500)}`);
  if (Number(quota.limit_bytes) !== limitBytes) throw new Error(`GET quota of ${org}: limit_bytes ${String(quota.limit_bytes)}, expected ${limitBytes}`);
  for (const limit of limits) {
    const r = await api(s, 'POST', `/organization/${org}/quota/${String(quota.id)}/limit`, limit);
    if (r.status !== 201) throw missing(r, `POST /api/v1/organization/${org}/quota/${String(quota.id)}/limit`) ?? new Error(`POST ${limit.type} limit of ${org}: status ${r.status}: ${r.text.slice(0, 500)}`);
  }
  const after = await api(s, 'GET', `/organization/${org}/quota`);
  const got = Array.isArray(after.json) ? (after.json[0] as { limits?: unknown[] } | undefined) : undefined;
  if (after.status !== 200 || (got?.limits?.length ?? 0) < limits.length) throw new Error(`GET quota of ${org} after adding ${limits.length} limits: ${after.text.slice(0, 500)}`);
  return got;
}

/** A Bearer token with pull,push on every repository the benchmark pushes to, as `docker push` gets one. */
async function pushToken(s: Server, repos: string[]): Promise<string> {
  const service = new URL(s.url).host;
  const scopes = repos.map((r) => `&scope=${encodeURIComponent(`repository:${r}:pull,push`)}`).join('');
  const res = await fetch(`${s.url}/v2/auth?service=${encodeURIComponent(service)}${scopes}`, { headers: { Authorization: BASIC } });
  const text = await res.text();
  const body = res.status === 200 ? (JSON.parse(text) as { token?: string; expires_in?: number }) : {};
  if (!body.token) throw new Error(`token request on ${s.label}: status ${res.status}: ${text.slice(0, 500)}`);
  if ((body.expires_in ?? 0) < 3600) throw new Error(`token request on ${s.label}: the token lives only ${body.expires_in} s (WHARF_AUTH_TOKEN_TTL not applied?)`);
  return `Bearer ${body.token}`;
}

/**
 * A 2 MiB push into the organization whose quota rejects at 1 MiB must fail; returns how it failed,
 * or undefined when it went through (quotas not enforced on the push path).
 */
async function tinyQuotaRefuses(t: Target): Promise<string | undefined> {
  const img = makePushSet({ pushers: 1, imagesPerPusher: 1, layersPerImage: 1, minMiB: 2, maxMiB: 2 }, t.repo, 'over')[0]![0]!;
  try {
    await pushOne(t.server.url, t.auth, img, settings.chunkKiB * 1024);
    return undefined;
  } catch (err) {
    return (err as Error).message.slice(0, 300);
  }
}

/** The last image pushed to a target comes back: manifest digest and its largest layer's bytes. */
async function verifyPushed(t: Target, img: PushImage): Promise<void> {
  await verifyManifest(t.server.url, img.repo, img.tag, t.auth, img.manifestDigest);
  const big = img.blobs.reduce((a, b) => (b.bytes.byteLength > a.bytes.byteLength ? b : a));
  await verifyBlob(`${t.server.url}/v2/${img.repo}/blobs/${big.digest}`, t.auth, big.digest, big.bytes.byteLength);
}

async function main(live: LiveResources): Promise<void> {
  const started = Date.now();
  await requireTools(['curl', 'getconf', 'sync'], 'scripts/bench.sh installs curl when run as root');
  if (settings.minMiB > settings.maxMiB) throw new Error('BENCH_QUOTA_LAYER_MIN_MIB is above BENCH_QUOTA_LAYER_MAX_MIB');
  const { machine, distVersion, loadBefore, workDir } = await beginBench(live, { workDirPrefix: 'wharf-quota-bench-', wharfCli: settings.wharfCli, wharfLogLevel: settings.wharfLogLevel });
  const servers: Server[] = [];
  live.servers = servers;
  try {
    const wharf = await startWharf({
      label: 'wharf',
      workDir,
      cli: settings.wharfCli,
      logLevel: settings.wharfLogLevel,
      env: { WHARF_AUTH_ENABLED: 'true', WHARF_AUTH_TOKEN_TTL: '24h' },
      setup: [
        ['user', 'create', ADMIN.username, '--password', ADMIN.password, '--superuser'],
        ...Object.values(ORG).map((org) => ['org', 'create', org, '--owner', ADMIN.username]),
      ],
    });
    servers.push(wharf);
    const dist = await startDistribution({ label: 'distribution', workDir });
    servers.push(dist);
    log(`wharf ${wharf.url} (pid ${wharf.pid}), distribution ${dist.url} (pid ${dist.pid})`);

    const limitBytes = settings.limitGiB * 1024 ** 3;
    const quota = await setQuota(wharf, ORG.quota, limitBytes, [
      { type: 'Warning', threshold_percent: 80 },
      { type: 'Reject', threshold_percent: 100 },
    ]);
    log(`quota of ${ORG.quota}: ${JSON.stringify(quota)}`);
    await setQuota(wharf, ORG.tiny, TINY_LIMIT, [{ type: 'Reject', threshold_percent: 100 }]);

    const repoOf = (org: string) => (i: number) => `${org}/p${i}`;
    const pushers = Array.from({ length: settings.pushers }, (_, i) => i);
    const token = await pushToken(wharf, [...pushers.map(repoOf(ORG.none)), ...pushers.map(repoOf(ORG.quota)), repoOf(ORG.tiny)(0)]);
    const targets: Record<Kind, Target> = {
      none: { kind: 'none', server: wharf, auth: token, repo: repoOf(ORG.none) },
      quota: { kind: 'quota', server: wharf, auth: token, repo: repoOf(ORG.quota) },
      dist: { kind: 'dist', server: dist, repo: repoOf('bench') },
    };

    const refused = await tinyQuotaRefuses({ ...targets.quota, repo: repoOf(ORG.tiny) });
    log(refused ? `a 2 MiB push into ${ORG.tiny} (1 MiB quota) was refused: ${refused}` : `WARNING: a 2 MiB push into ${ORG.tiny} (1 MiB quota, Reject at 100%) went through`);

    const chunkBytes = settings.chunkKiB * 1024;
    log('warm-up: one image per pusher into every target (creates the repositories)');
    for (const kind of KINDS) {
      const t = targets[kind];
      await pushRun({ label: kind, url: t.server.url, pid: t.server.pid, auth: t.auth }, makePushSet({ ...shape, imagesPerPusher: 1 }, t.repo, 'warmup'), chunkBytes, { ...loadOptions, quietWaitMs: 0 });
    }

    const runs: Record<Kind, PushRun[]> = { none: [], quota: [], dist: [] };
    const last: Partial<Record<Kind, PushImage>> = {};
    for (let round = 0; round < settings.rounds; round++) {
      for (const kind of ORDERS[round % ORDERS.length]!) {
        const t = targets[kind];
        const set = makePushSet(shape, t.repo, `r${round}`);
        const r = await pushRun({ label: kind, url: t.server.url, pid: t.server.pid, auth: t.auth }, set, chunkBytes, loadOptions);
        runs[kind].push(r);
        last[kind] = set[0]!.at(-1)!;
        log(
          `round ${round + 1}, ${NAMES[kind].padEnd(15)}: ${fmt(r.pushesPerSec, 1).padStart(5)} pushes/s, ${fmt(r.mibPerSec).padStart(4)} MiB/s in ${fmt(r.seconds, 2)} s, ` +
            `p50 ${fmt(r.p50ms)} ms, p99 ${fmt(r.p99ms)} ms, server ${fmt(r.serverCpuPerGiB, 2)} CPU-s/GiB, peak RSS ${fmt(r.peakRssMiB)} MiB, ` +
            `CPU cores: server ${fmt(r.cpu.serverCores, 2)}, clients ${fmt(r.cpu.clientCores, 2)}, other ${fmt(r.cpu.otherCores, 2)}`,
        );
      }
    }
    for (const kind of KINDS) await verifyPushed(targets[kind], last[kind]!);
    const quotaAfter = await api(wharf, 'GET', `/organization/${ORG.quota}/quota`);
    log(`quota of ${ORG.quota} after the load: ${quotaAfter.text.slice(0, 300)}`);

    // Summary: with / without quota, then against Distribution.
    const pushed = runs.none[0]!;
    const row = (metric: string, a: PushRun[], b: PushRun[], pick: (r: PushRun) => number, unit: string, digits: number, target?: number): Row => {
      const ua = undisturbed(a);
      const ub = undisturbed(b);
      const r: Row = {
        metric,
        wharf: median(ua.map(pick)),
        dist: median(ub.map(pick)),
        wharfRange: range(a.map(pick)),
        distRange: range(b.map(pick)),
        used: [ua.length, ub.length],
        runs: settings.rounds,
        unit,
        digits,
      };
      if (target !== undefined) {
        r.target = `≥ ${target.toFixed(2)}×`;
        r.pass = r.wharf / r.dist >= target;
      }
      return r;
    };
    const load = `${settings.pushers} pushers × ${settings.imagesPerPusher} images (${settings.layersPerImage} × ${settings.minMiB}–${settings.maxMiB} MiB)`;
    const quotaRows = [
      row(`push, ${load}`, runs.quota, runs.none, (r) => r.pushesPerSec, 'push/s', 1, TARGETS.quotaRatio),
      row('push throughput', runs.quota, runs.none, (r) => r.mibPerSec, 'MiB/s', 0, TARGETS.quotaRatio),
      row('server CPU per GiB pushed', runs.quota, runs.none, (r) => r.serverCpuPerGiB, 's', 2),
      row('push latency per image, p50', runs.quota, runs.none, (r) => r.p50ms, 'ms', 0),
      row('push latency per image, p99', runs.quota, runs.none, (r) => r.p99ms, 'ms', 0),
    ];
    const distRows = [
      row('push/s, Wharf with quota', runs.quota, runs.dist, (r) => r.pushesPerSec, 'push/s', 1),
      row('push/s, Wharf without quota', runs.none, runs.dist, (r) => r.pushesPerSec, 'push/s', 1),
      row('push throughput, Wharf with quota', runs.quota, runs.dist, (r) => r.mibPerSec, 'MiB/s', 0),
      row('server CPU per GiB pushed, Wharf with quota', runs.quota, runs.dist, (r) => r.serverCpuPerGiB, 's', 2),
      row('push latency per image p50, Wharf with quota', runs.quota, runs.dist, (r) => r.p50ms, 'ms', 0),
      { ...row('peak RSS during the pushes, Wharf with quota', runs.quota, runs.dist, (r) => r.peakRssMiB, 'MiB', 0), wharf: Math.max(...runs.quota.map((r) => r.peakRssMiB)), dist: Math.max(...runs.dist.map((r) => r.peakRssMiB)), wharfRange: undefined },
    ];
    // The same rounds paired: quota / no quota within each round, where neither run was disturbed.
    const paired = runs.quota
      .map((q, i) => ({ q, n: runs.none[i]! }))
      .filter(({ q, n }) => q.cpu.otherCores < DISTURBED_CORES && n.cpu.otherCores < DISTURBED_CORES)
      .map(({ q, n }) => q.pushesPerSec / n.pushesPerSec);
    const allPaired = runs.quota.map((q, i) => q.pushesPerSec / runs.none[i]!.pushesPerSec);
    const pairedUsed = paired.length >= Math.ceil(allPaired.length / 2) ? paired : allPaired;
    const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
    const lines = [
      ...renderTable(
        [
          `Push throughput into an organization with a quota (Warning 80%, Reject 100% of ${settings.limitGiB} GiB) / without — median of ${settings.rounds} rounds, ${date} UTC`,
          `${machine.nproc} CPUs ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}`,
          `one run: ${pushed.pushes} images, ${fmt(pushed.bytes / 1024 ** 2)} MiB; half the layers monolithic, half in ${settings.chunkKiB} KiB chunks; Bearer token per request`,
        ],
        quotaRows,
        ['with quota', 'no quota'],
      ),
      `  paired per round (quota / no quota, pushes/s): median ${fmt(median(pairedUsed), 3)}×, range ${fmt(Math.min(...allPaired), 3)}–${fmt(Math.max(...allPaired), 3)}× over ${allPaired.length} rounds` +
        (pairedUsed === paired ? ` (median of the ${paired.length} undisturbed pairs)` : ' (median of all pairs: too many disturbed)'),
      refused
        ? `  quota enforced on the push path: a 2 MiB push into ${ORG.tiny} (Reject at 1 MiB) was refused`
        : `  WARNING: quotas are not enforced on the push path (a 2 MiB push into ${ORG.tiny}, Reject at 1 MiB, went through): the ratio measures no quota checks`,
      ...renderTable([`Wharf (authenticated, Bearer) vs Distribution (open) — same rounds; ${distVersion}`], distRows),
      '',
      `load average (1 min) before ${fmt(loadBefore, 2)}, after ${fmt(loadavg()[0]!, 2)}; total ${fmt((Date.now() - started) / 1000)} s`,
    ];
    const all = [...runs.none, ...runs.quota, ...runs.dist];
    const disturbed = all.filter((r) => r.cpu.otherCores >= DISTURBED_CORES).length;
    lines.push(
      disturbed > 0
        ? `NOTE: other processes used ≥ ${DISTURBED_CORES} cores in ${disturbed} of ${all.length} runs; medians leave those runs out where at least half remain.`
        : `Other processes stayed below ${DISTURBED_CORES} cores in every run.`,
      '',
    );
    process.stdout.write(lines.join('\n'));

    if (settings.jsonOut) {
      await writeFile(settings.jsonOut, JSON.stringify({ date: new Date().toISOString(), machine, distribution: distVersion, settings, targets: TARGETS, quotaRows, distRows, runs, quotaEnforced: refused ?? false }, null, 2));
      log(`results written to ${settings.jsonOut}`);
    }
  } finally {
    for (const s of [...servers].reverse()) await s.stop().catch(() => {});
    await rm(workDir, { recursive: true, force: true });
  }
}

runBench(main, log);
