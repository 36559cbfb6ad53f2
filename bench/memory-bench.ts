/**
 * Memory per process: Wharf against CNCF Distribution (Debian's docker-registry 2.8) in the same run.
 * For each server, the resident set size (RSS) of the server process:
 *   1. idle after start-up (after a few seconds with no requests),
 *   2. idle after a few pulls (a small image pushed, then its manifest and blobs pulled 20 times),
 *   3. the peak during `pushers` (8) parallel pushes of one new random layer of 256 MiB each, monolithic
 *      (POST, then PUT ?digest= streamed from a file by curl),
 *   4. the peak during the same number of chunked pushes (POST, PATCH per 16 MiB chunk, PUT ?digest=),
 *   5. idle again after the pushes.
 * RSS is sampled from /proc/<pid>/status (VmRSS every 50 ms, and the kernel's own peak VmHWM, reset at
 * the start of each push round where allowed). Targets: Wharf idle at most 100 MiB (after the pulls),
 * and at most 150 MiB at the peak of each push round.
 *
 * Wharf runs in its default configuration: SQLite, blobs on the filesystem, authentication on (the
 * pushers send a Bearer token from `/v2/auth`, as `docker push` does). With BENCH_MEMORY_S3=1 and the
 * WHARF_TEST_S3_* variables of an S3 server set (`source` the file that names the shared RADOS Gateway),
 * a second Wharf stores its blobs in that bucket under a fresh key prefix, removed afterwards.
 * Distribution runs open, on the filesystem.
 *
 * Exit status: 0 when the run completed (a MISS is reported, not failed), 1 when something broke. Run
 * through `npm run bench` (BENCH_SUITE=memory).
 */
import { rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { authHeader, makeRandomBlob, pushBlobBytes, pushBlobFile, pushBlobFileChunked, putManifest, sha256, verifyBlob, verifyManifest, type BlobFile } from './lib/content.js';
import { envInt, fmt, log, MiB, Probe, requireTools, rssKiB, waitForQuiet } from './lib/measure.js';
import { renderTable, type Row } from './lib/report.js';
import { beginBench, runBench, type LiveResources } from './lib/run.js';
import { startDistribution, startWharf, type Server } from './lib/servers.js';
import { openTestS3Driver } from '../test/helpers/s3.js';

const settings = {
  layerMiB: envInt('BENCH_MEMORY_MIB', 256, 1, 4096),
  pushers: envInt('BENCH_MEMORY_PUSHERS', 8, 1, 64),
  chunkMiB: envInt('BENCH_MEMORY_CHUNK_MIB', 16, 1, 1024),
  /** How long a server is left alone before an idle reading. */
  settleMs: envInt('BENCH_MEMORY_SETTLE_MS', 5000, 0, 120_000),
  pulls: envInt('BENCH_MEMORY_PULLS', 20, 0, 10_000),
  s3: process.env.BENCH_MEMORY_S3 === '1',
  rssSampleMs: envInt('BENCH_RSS_SAMPLE_MS', 50, 10, 1000),
  quietWaitMs: envInt('BENCH_QUIET_WAIT_MS', 3000, 0, 60_000),
  wharfCli: process.env.WHARF_BENCH_CLI,
  wharfLogLevel: process.env.WHARF_BENCH_LOG_LEVEL ?? 'warn',
  jsonOut: process.env.BENCH_MEMORY_JSON,
};

const TARGETS = { idleMiB: 100, pushPeakMiB: 150 };
const ADMIN = { username: 'admin', password: 'bench-admin-password' };
const BASIC = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`;
const ORG = 'bench-memory';

type Kind = 'wharf' | 'wharf-s3' | 'dist';

interface Measured {
  kind: Kind;
  idleStartMiB: number;
  idlePulledMiB: number;
  monolithicPeakMiB: number;
  monolithicSeconds: number;
  chunkedPeakMiB: number;
  chunkedSeconds: number;
  idleAfterMiB: number;
}

const rssMiB = (pid: number) => rssKiB(pid, 'VmRSS') / 1024;

/** A Bearer token with pull,push on the benchmark's repositories, as `docker push` gets one. */
async function pushToken(s: Server, repos: string[]): Promise<string> {
  const service = new URL(s.url).host;
  const scopes = repos.map((r) => `&scope=${encodeURIComponent(`repository:${r}:pull,push`)}`).join('');
  const res = await fetch(`${s.url}/v2/auth?service=${encodeURIComponent(service)}${scopes}`, { headers: { Authorization: BASIC } });
  const text = await res.text();
  const body = res.status === 200 ? (JSON.parse(text) as { token?: string }) : {};
  if (!body.token) throw new Error(`token request on ${s.label}: status ${res.status}: ${text.slice(0, 500)}`);
  return `Bearer ${body.token}`;
}

/** Waits `settleMs`, then reads the server's RSS. */
async function idleRss(s: Server): Promise<number> {
  await sleep(settings.settleMs);
  return rssMiB(s.pid);
}

/** A small image (a 1 MiB layer), pushed, then pulled `settings.pulls` times (manifest, config, layer). */
async function pullSome(s: Server, auth: string | undefined, repo: string): Promise<void> {
  const layer = Buffer.alloc(MiB, 7);
  layer.write(`${s.label} ${Date.now()}`);
  const layerDigest = sha256(layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.byteLength }],
    }),
  );
  const manifestDigest = sha256(manifest);
  await pushBlobBytes(s.url, repo, auth, config, configDigest);
  await pushBlobBytes(s.url, repo, auth, layer, layerDigest);
  await putManifest(s.url, repo, 'small', auth, manifest, manifestDigest);
  for (let i = 0; i < settings.pulls; i++) {
    await verifyManifest(s.url, repo, 'small', auth, manifestDigest);
    for (const [digest, size] of [
      [configDigest, config.byteLength],
      [layerDigest, layer.byteLength],
    ] as const) {
      const res = await fetch(`${s.url}/v2/${repo}/blobs/${digest}`, { headers: authHeader(auth) });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200 || body.byteLength !== size || sha256(body) !== digest) throw new Error(`GET blob ${digest} on ${s.label}: status ${res.status}, ${body.byteLength} bytes`);
    }
  }
}

/** `layers.length` pushes at once, one layer each into its own repository; the server's peak RSS meanwhile. */
async function pushRound(s: Server, auth: string | undefined, repos: string[], layers: BlobFile[], chunked: boolean): Promise<{ peakMiB: number; seconds: number }> {
  await waitForQuiet(settings.quietWaitMs);
  const probe = new Probe(s.pid, settings.rssSampleMs);
  probe.start();
  const results = await Promise.allSettled(
    layers.map((layer, i) => (chunked ? pushBlobFileChunked(s.url, repos[i]!, auth, layer, settings.chunkMiB * MiB) : pushBlobFile(s.url, repos[i]!, auth, layer))),
  );
  const { peakRssMiB, seconds } = probe.stop(0);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw new Error(`${chunked ? 'chunked' : 'monolithic'} pushes to ${s.label} failed`, { cause: failed.reason });
  // Every layer arrived whole: one full pull of the first, checked.
  await verifyBlob(`${s.url}/v2/${repos[0]}/blobs/${layers[0]!.digest}`, auth, layers[0]!.digest, layers[0]!.size);
  return { peakMiB: peakRssMiB, seconds };
}

async function measure(kind: Kind, s: Server, auth: string | undefined, layers: { monolithic: BlobFile[]; chunked: BlobFile[] }): Promise<Measured> {
  const repos = layers.monolithic.map((_, i) => `${ORG}/push-${i}`);
  const idleStartMiB = await idleRss(s);
  log(`${kind}: idle after start ${fmt(idleStartMiB, 1)} MiB`);
  await pullSome(s, auth, `${ORG}/small`);
  const idlePulledMiB = await idleRss(s);
  log(`${kind}: idle after ${settings.pulls} pulls ${fmt(idlePulledMiB, 1)} MiB`);
  const mono = await pushRound(s, auth, repos, layers.monolithic, false);
  log(`${kind}: ${layers.monolithic.length} monolithic pushes in ${fmt(mono.seconds, 1)} s, peak ${fmt(mono.peakMiB, 1)} MiB`);
  const chunked = await pushRound(s, auth, repos, layers.chunked, true);
  log(`${kind}: ${layers.chunked.length} chunked pushes in ${fmt(chunked.seconds, 1)} s, peak ${fmt(chunked.peakMiB, 1)} MiB`);
  const idleAfterMiB = await idleRss(s);
  log(`${kind}: idle after the pushes ${fmt(idleAfterMiB, 1)} MiB`);
  return {
    kind,
    idleStartMiB,
    idlePulledMiB,
    monolithicPeakMiB: mono.peakMiB,
    monolithicSeconds: mono.seconds,
    chunkedPeakMiB: chunked.peakMiB,
    chunkedSeconds: chunked.seconds,
    idleAfterMiB,
  };
}

function rows(w: Measured, d: Measured): Row[] {
  const n = settings.pushers;
  const mib = settings.layerMiB;
  const row = (metric: string, a: number, b: number, target?: number): Row => ({
    metric,
    wharf: a,
    dist: b,
    unit: 'MiB',
    digits: 0,
    ...(target === undefined ? {} : { target: `Wharf ≤ ${target} MiB`, pass: a <= target }),
  });
  return [
    row('RSS idle after start', w.idleStartMiB, d.idleStartMiB),
    row(`RSS idle after ${settings.pulls} pulls`, w.idlePulledMiB, d.idlePulledMiB, TARGETS.idleMiB),
    row(`peak RSS, ${n} × ${mib} MiB monolithic pushes`, w.monolithicPeakMiB, d.monolithicPeakMiB, TARGETS.pushPeakMiB),
    row(`peak RSS, ${n} × ${mib} MiB chunked pushes`, w.chunkedPeakMiB, d.chunkedPeakMiB, TARGETS.pushPeakMiB),
    row('RSS idle after the pushes', w.idleAfterMiB, d.idleAfterMiB),
    { metric: `push time, ${n} monolithic`, wharf: w.monolithicSeconds, dist: d.monolithicSeconds, unit: 's', digits: 1 },
    { metric: `push time, ${n} chunked (${settings.chunkMiB} MiB PATCHes)`, wharf: w.chunkedSeconds, dist: d.chunkedSeconds, unit: 's', digits: 1 },
  ];
}

async function main(live: LiveResources): Promise<void> {
  await requireTools(['curl'], 'apt-get install curl');
  const { distVersion, loadBefore, workDir } = await beginBench(live, { workDirPrefix: 'wharf-memory-bench-', wharfCli: settings.wharfCli, wharfLogLevel: settings.wharfLogLevel });
  const servers: Server[] = [];
  live.servers = servers;
  const s3 = settings.s3 ? await openTestS3Driver() : undefined;
  try {
    const kinds: Kind[] = settings.s3 ? ['wharf', 'wharf-s3', 'dist'] : ['wharf', 'dist'];
    const results = new Map<Kind, Measured>();
    for (const kind of kinds) {
      // New random layers for every round and server (a layer a server already has would cost it nothing).
      log(`${kind}: writing ${2 * settings.pushers} random layers of ${settings.layerMiB} MiB`);
      const make = (round: string) => Array.from({ length: settings.pushers }, (_, i) => makeRandomBlob(join(workDir, `${kind}-${round}-${i}.bin`), settings.layerMiB));
      const layers = { monolithic: make('mono'), chunked: make('chunked') };
      const server =
        kind === 'dist'
          ? await startDistribution({ label: 'distribution', workDir })
          : await startWharf({
              label: kind,
              workDir,
              cli: settings.wharfCli,
              logLevel: settings.wharfLogLevel,
              env: {
                WHARF_AUTH_ENABLED: 'true',
                WHARF_AUTH_TOKEN_TTL: '24h',
                ...(kind === 'wharf-s3' && s3 ? s3Env(s3.prefix) : {}),
              },
              setup: [
                ['user', 'create', ADMIN.username, '--password', ADMIN.password, '--superuser'],
                ['org', 'create', ORG, '--owner', ADMIN.username],
              ],
            });
      servers.push(server);
      log(`${kind}: ${server.url} (pid ${server.pid})`);
      // The token is fetched before the first idle reading: a login belongs to start-up, not to the pushes.
      const auth = kind === 'dist' ? undefined : await pushToken(server, [`${ORG}/small`, ...layers.monolithic.map((_, i) => `${ORG}/push-${i}`)]);
      results.set(kind, await measure(kind, server, auth, layers));
      await server.stop();
      servers.splice(servers.indexOf(server), 1);
      await rm(server.dataDir, { recursive: true, force: true });
      for (const l of [...layers.monolithic, ...layers.chunked]) await rm(l.path, { force: true });
    }

    const dist = results.get('dist')!;
    const lines = renderTable(
      [
        `Memory per process (RSS of the server), Wharf (SQLite, filesystem, authentication on) vs Distribution (filesystem) — ${distVersion}`,
        `load average before: ${fmt(loadBefore, 2)}, after: ${fmt(loadavg()[0]!, 2)}`,
      ],
      rows(results.get('wharf')!, dist),
    );
    if (results.has('wharf-s3')) {
      lines.push(...renderTable([`Wharf with blobs on S3 (${process.env.WHARF_TEST_S3_ENDPOINT}) vs Distribution (filesystem)`], rows(results.get('wharf-s3')!, dist)));
    }
    process.stdout.write(lines.join('\n') + '\n');
    if (settings.jsonOut) {
      await writeFile(settings.jsonOut, JSON.stringify({ settings, targets: TARGETS, results: Object.fromEntries(results) }, null, 2));
      log(`results written to ${settings.jsonOut}`);
    }
  } finally {
    for (const s of servers) await s.stop();
    // A failed clean-up is reported, never in place of the run's own error.
    await s3?.cleanup().catch((err: unknown) => log(`could not empty the S3 prefix ${s3.prefix}: ${(err as Error).message}`));
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Wharf's storage settings for the S3 server the tests use, under `prefix`. */
function s3Env(prefix: string): Record<string, string> {
  const e = process.env;
  return {
    WHARF_STORAGE_DRIVER: 's3',
    WHARF_STORAGE_S3_ENDPOINT: e.WHARF_TEST_S3_ENDPOINT!,
    WHARF_STORAGE_S3_BUCKET: e.WHARF_TEST_S3_BUCKET!,
    WHARF_STORAGE_S3_REGION: e.WHARF_TEST_S3_REGION ?? 'us-east-1',
    WHARF_STORAGE_S3_ACCESS_KEY_ID: e.WHARF_TEST_S3_ACCESS_KEY_ID!,
    WHARF_STORAGE_S3_SECRET_ACCESS_KEY: e.WHARF_TEST_S3_SECRET_ACCESS_KEY!,
    WHARF_STORAGE_S3_PREFIX: prefix,
  };
}

runBench(main, log);
