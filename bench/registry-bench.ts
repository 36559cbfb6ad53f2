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
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDistribution, type DistributionProcess } from '../test/helpers/distribution-process.js';
import { freePort, waitForHttp } from '../test/helpers/ports.js';

const MiB = 1024 * 1024;
const repoRoot = resolve(import.meta.dirname, '..');

function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}] (got "${raw}")`);
  return n;
}

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

const TARGETS = {
  blobRatio: 1.0,
  manifestRatio: 3.0,
  wharfRssMiB: 200,
};

const REPO = 'bench/big';
/** The authenticated Wharf's superuser (created on first start from WHARF_AUTH_ADMIN_PASSWORD). */
const ADMIN = { username: 'admin', password: 'bench-admin-password' };
const TAG = 'bench';
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

// ---------------------------------------------------------------------------------------------------
// Servers

interface Server {
  label: 'wharf' | 'distribution' | 'wharf-auth';
  url: string;
  /** `Authorization` for pushes and verification pulls (Basic), when the server needs credentials. */
  pushAuth?: string;
  /** `Authorization` for the manifest load (a Bearer token with pull scope), when the server needs credentials. */
  pullAuth?: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * A Wharf server on loopback. Without `auth` it runs open, as Distribution does. With `auth` it runs
 * the default configuration (accounts and Bearer tokens); its superuser's password is set so that the
 * benchmark can push with Basic, and tokens live long enough for the whole run.
 */
async function startWharfServer(workDir: string, opts: { auth: boolean }): Promise<Server> {
  const label = opts.auth ? 'wharf-auth' : 'wharf';
  const dataDir = join(workDir, `${label}-data`);
  await mkdir(dataDir);
  const port = await freePort();
  const logPath = join(workDir, `${label}.log`);
  const logFd = openSync(logPath, 'a');
  const args = settings.wharfCli ? [settings.wharfCli, 'serve'] : ['--import', 'tsx', join(repoRoot, 'src/main/cli.ts'), 'serve'];
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: {
      ...process.env,
      WHARF_HOST: '127.0.0.1',
      WHARF_PORT: String(port),
      WHARF_DATA_DIR: dataDir,
      WHARF_LOG_LEVEL: settings.wharfLogLevel,
      ...(opts.auth
        ? { WHARF_AUTH_ENABLED: 'true', WHARF_AUTH_ADMIN_USERNAME: ADMIN.username, WHARF_AUTH_ADMIN_PASSWORD: ADMIN.password, WHARF_AUTH_TOKEN_TTL: '24h' }
        : // Distribution runs without auth here; compare like with like (ignored by builds without `auth`).
          { WHARF_AUTH_ENABLED: 'false' }),
    },
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([
      waitForHttp(`${url}/v2/`),
      exited.then(() => {
        throw new Error(`${label} exited during start:\n${readFileSync(logPath, 'utf8')}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    label,
    url,
    pushAuth: opts.auth ? `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}` : undefined,
    pid: child.pid!,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

async function startDistributionServer(): Promise<Server> {
  const d: DistributionProcess = await startDistribution({ logLevel: 'warn' });
  return {
    label: 'distribution',
    url: d.url,
    pid: d.child.pid!,
    child: d.child,
    stop: () => d.stop(),
  };
}

// ---------------------------------------------------------------------------------------------------
// Content

interface Content {
  blobPath: string;
  blobDigest: string;
  blobSize: number;
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A random (incompressible) blob of `mib` MiB on disk, and an OCI image manifest that lists it as a layer. */
function makeContent(workDir: string, mib: number): Content {
  const blobPath = join(workDir, 'blob.bin');
  const fd = openSync(blobPath, 'w');
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(4 * MiB);
  let left = mib * MiB;
  while (left > 0) {
    const part = chunk.subarray(0, Math.min(left, chunk.byteLength));
    randomFillSync(part);
    hash.update(part);
    let off = 0;
    while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    left -= part.byteLength;
  }
  closeSync(fd);
  const blobDigest = `sha256:${hash.digest('hex')}`;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [blobDigest] } }));
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: blobDigest, size: mib * MiB }],
      annotations: { 'org.opencontainers.image.title': 'wharf benchmark' },
    }),
  );
  return { blobPath, blobDigest, blobSize: mib * MiB, config, configDigest, manifest, manifestDigest: sha256(manifest) };
}

// ---------------------------------------------------------------------------------------------------
// Push (OCI API: POST then PUT ?digest=, the monolithic upload both registries implement)

const authHeader = (auth: string | undefined): Record<string, string> => (auth ? { Authorization: auth } : {});

async function startUploadLocation(base: string, auth: string | undefined): Promise<URL> {
  const res = await fetch(`${base}/v2/${REPO}/blobs/uploads/`, { method: 'POST', headers: { 'Content-Length': '0', ...authHeader(auth) } });
  await res.arrayBuffer();
  const location = res.headers.get('location');
  if (res.status !== 202 || !location) throw new Error(`POST upload on ${base}: status ${res.status}, Location ${location}`);
  return new URL(location, base);
}

function withDigest(u: URL, digest: string): string {
  const copy = new URL(u);
  copy.searchParams.set('digest', digest);
  return copy.toString();
}

async function pushSmallBlob(base: string, auth: string | undefined, bytes: Buffer, digest: string): Promise<void> {
  const loc = await startUploadLocation(base, auth);
  const res = await fetch(withDigest(loc, digest), { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': 'application/octet-stream', ...authHeader(auth) } });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT blob ${digest} on ${base}: status ${res.status}: ${text.slice(0, 500)}`);
}

/** Streams the big blob from disk with curl (`-T` sends Content-Length and never buffers the file). */
async function pushBigBlob(base: string, auth: string | undefined, c: Content): Promise<void> {
  const loc = await startUploadLocation(base, auth);
  const authArgs = auth ? ['-H', `Authorization: ${auth}`] : [];
  const r = await run('curl', ['-sS', '-X', 'PUT', '-T', c.blobPath, '-H', 'Content-Type: application/octet-stream', ...authArgs, '-o', '/dev/null', '-w', '%{http_code}', withDigest(loc, c.blobDigest)]);
  if (r.code !== 0 || r.stdout.trim() !== '201') throw new Error(`PUT big blob on ${base}: curl exit ${r.code}, status ${r.stdout.trim()}: ${r.stderr}`);
}

async function pushImage(s: Server, c: Content): Promise<void> {
  await pushSmallBlob(s.url, s.pushAuth, c.config, c.configDigest);
  await pushBigBlob(s.url, s.pushAuth, c);
  const res = await fetch(`${s.url}/v2/${REPO}/manifests/${TAG}`, {
    method: 'PUT',
    body: new Uint8Array(c.manifest),
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', ...authHeader(s.pushAuth) },
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT manifest on ${s.label}: status ${res.status}: ${text.slice(0, 500)}`);
  const got = res.headers.get('docker-content-digest');
  if (got !== c.manifestDigest) throw new Error(`PUT manifest on ${s.label}: Docker-Content-Digest ${got}, expected ${c.manifestDigest}`);
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

/** Pulls the manifest and the whole blob once and checks their sha256 (curl's output hashed here). */
async function verify(s: Server, c: Content): Promise<void> {
  const res = await fetch(`${s.url}/v2/${REPO}/manifests/${TAG}`, { headers: { Accept: MANIFEST_ACCEPT, ...authHeader(s.pullAuth ?? s.pushAuth) } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200 || sha256(body) !== c.manifestDigest) {
    throw new Error(`GET manifest on ${s.label}: status ${res.status}, digest ${sha256(body)}, expected ${c.manifestDigest}`);
  }
  const hash = createHash('sha256');
  let size = 0;
  const auth = s.pullAuth ?? s.pushAuth;
  const child = spawn('curl', ['-sS', '--fail', ...(auth ? ['-H', `Authorization: ${auth}`] : []), `${s.url}/v2/${REPO}/blobs/${c.blobDigest}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    hash.update(d);
    size += d.byteLength;
  });
  const code = await new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const digest = `sha256:${hash.digest('hex')}`;
  if (code !== 0 || size !== c.blobSize || digest !== c.blobDigest) {
    throw new Error(`full pull from ${s.label}: curl exit ${code}, ${size} bytes, digest ${digest}; expected ${c.blobSize} bytes, ${c.blobDigest}. ${stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Measuring

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** CPU seconds (user + system) the command and its children used, from bash's `times`. */
  cpuSeconds: number;
}

/** Runs a command under bash so that its exact CPU time can be read afterwards (`times`). */
function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const script = '"$@"; rc=$?; echo "@@times"; times; exit $rc';
    const child = spawn('bash', ['-c', script, 'bash', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const at = stdout.lastIndexOf('@@times\n');
      const times = at >= 0 ? stdout.slice(at + 8).trim().split('\n') : [];
      stdout = at >= 0 ? stdout.slice(0, at) : stdout;
      // `times` prints the shell's user/system line, then its children's: "0m1.234s 0m0.567s".
      const secs = (times[1] ?? '').split(/\s+/).map((t) => {
        const m = /^(\d+)m([\d.]+)s$/.exec(t);
        return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
      });
      resolvePromise({ code, stdout, stderr, cpuSeconds: secs.reduce((a, b) => a + b, 0) });
    });
  });
}

let CLK_TCK = 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/**
 * Waits (bounded) until the machine is nearly idle, so that a measurement does not start in the middle
 * of someone else's compile. Returns the busy cores seen in the last 250 ms window.
 */
async function waitForQuiet(): Promise<number> {
  const deadline = Date.now() + settings.quietWaitMs;
  const ncpu = cpus().length;
  for (;;) {
    const a = machineCpu();
    await sleep(250);
    const b = machineCpu();
    const busy = ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * ncpu;
    if (busy < 0.25 || Date.now() >= deadline) return busy;
  }
}

interface PhaseCpu {
  /** CPU cores the server kept busy on average (1.0 = one core). */
  serverCores: number;
  /** The load clients (curl or wrk) and this harness. */
  clientCores: number;
  /** Everything else on the machine: other people's processes, kernel threads. Should be near 0. */
  otherCores: number;
  /** The whole machine. */
  machineCores: number;
}

/**
 * Watches the server during one measurement: samples its RSS every few ms (and resets and reads the
 * kernel's own peak, VmHWM, where allowed), and accounts CPU time of the server, the clients and the
 * rest of the machine.
 */
class Probe {
  private peakKiB = 0;
  private timer?: NodeJS.Timeout;
  private hwmReset = false;
  private t0 = 0;
  private server0 = 0;
  private machine0 = { busy: 0, total: 0 };
  private self0 = process.cpuUsage();

  constructor(private readonly pid: number) {}

  start(): void {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
      this.hwmReset = true;
    } catch {
      this.hwmReset = false;
    }
    this.peakKiB = rssKiB(this.pid, 'VmRSS');
    this.timer = setInterval(() => {
      try {
        this.peakKiB = Math.max(this.peakKiB, rssKiB(this.pid, 'VmRSS'));
      } catch {
        /* the process is gone; the measurement fails on its own */
      }
    }, settings.rssSampleMs);
    this.t0 = performance.now();
    this.server0 = processCpuSeconds(this.pid);
    this.machine0 = machineCpu();
    this.self0 = process.cpuUsage();
  }

  /** Peak RSS in MiB since start() and the CPU split; `clientCpuSeconds` as reported by `run`. */
  stop(clientCpuSeconds: number): { seconds: number; peakRssMiB: number; cpu: PhaseCpu } {
    const seconds = (performance.now() - this.t0) / 1000;
    const server = processCpuSeconds(this.pid) - this.server0;
    const machine1 = machineCpu();
    const self = process.cpuUsage(this.self0);
    clearInterval(this.timer);
    let peak = Math.max(this.peakKiB, rssKiB(this.pid, 'VmRSS'));
    if (this.hwmReset) peak = Math.max(peak, rssKiB(this.pid, 'VmHWM'));
    const ncpu = cpus().length;
    const machineCores = ((machine1.busy - this.machine0.busy) / Math.max(1, machine1.total - this.machine0.total)) * ncpu;
    const serverCores = server / seconds;
    const clientCores = (clientCpuSeconds + (self.user + self.system) / 1e6) / seconds;
    return {
      seconds,
      peakRssMiB: peak / 1024,
      cpu: { serverCores, clientCores, otherCores: Math.max(0, machineCores - serverCores - clientCores), machineCores },
    };
  }
}

interface BlobRun {
  mibPerSec: number;
  /** Server CPU seconds per GiB served: robust against other load, unlike throughput. */
  serverCpuPerGiB: number;
  seconds: number;
  peakRssMiB: number;
  cpu: PhaseCpu;
}

/**
 * `clients` curl processes start together; each pulls the blob `pulls` times over one keep-alive
 * connection, writing the bytes to /dev/null. Aggregate throughput = all bytes / wall time until the
 * last client is done. Every transfer must answer 200 with the full size.
 */
async function blobRun(s: Server, c: Content, clients: number, pulls: number): Promise<BlobRun> {
  const url = `${s.url}/v2/${REPO}/blobs/${c.blobDigest}`;
  const args = ['-sS', '-w', '%{http_code} %{size_download}\\n'];
  for (let i = 0; i < pulls; i++) args.push('-o', '/dev/null', url);
  await waitForQuiet();
  const probe = new Probe(s.pid);
  probe.start();
  const results = await Promise.all(Array.from({ length: clients }, () => run('curl', args)));
  const { seconds, peakRssMiB, cpu } = probe.stop(results.reduce((a, r) => a + r.cpuSeconds, 0));
  for (const r of results) {
    const lines = r.stdout.trim().split('\n');
    const bad = lines.filter((l) => l !== `200 ${c.blobSize}`);
    if (r.code !== 0 || lines.length !== pulls || bad.length) {
      throw new Error(`blob pull from ${s.label}: curl exit ${r.code}, transfers ${JSON.stringify(lines)} (expected ${pulls} × "200 ${c.blobSize}"): ${r.stderr}`);
    }
  }
  const bytes = clients * pulls * c.blobSize;
  return { mibPerSec: bytes / MiB / seconds, serverCpuPerGiB: (cpu.serverCores * seconds) / (bytes / 1024 ** 3), seconds, peakRssMiB, cpu };
}

interface WrkRun {
  rps: number;
  p50ms: number;
  p99ms: number;
  peakRssMiB: number;
  cpu: PhaseCpu;
}

function parseLatencyMs(text: string, pct: string): number {
  const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s)\\b`, 'm').exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

async function wrkRun(s: Server, seconds: number): Promise<WrkRun> {
  const url = `${s.url}/v2/${REPO}/manifests/${TAG}`;
  await waitForQuiet();
  const probe = new Probe(s.pid);
  probe.start();
  const authArgs = s.pullAuth ? ['-H', `Authorization: ${s.pullAuth}`] : [];
  const r = await run('wrk', [`-t${settings.wrkThreads}`, `-c${settings.wrkConnections}`, `-d${seconds}s`, '--latency', '-H', `Accept: ${MANIFEST_ACCEPT}`, ...authArgs, url]);
  const { peakRssMiB, cpu } = probe.stop(r.cpuSeconds);
  const rps = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(r.stdout)?.[1]);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout);
  const socketErrors = /Socket errors:.*/.exec(r.stdout);
  if (r.code !== 0 || !Number.isFinite(rps) || rps <= 0 || non2xx || socketErrors) {
    throw new Error(`wrk against ${s.label} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { rps, p50ms: parseLatencyMs(r.stdout, '50'), p99ms: parseLatencyMs(r.stdout, '99'), peakRssMiB, cpu };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// ---------------------------------------------------------------------------------------------------
// Report

function machineInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  return {
    nproc: cpus().length,
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: release(),
  };
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

interface Row {
  metric: string;
  wharf: number;
  dist: number;
  /** min–max over the repetitions, when there were several. */
  wharfRange?: [number, number];
  distRange?: [number, number];
  /** How many runs of each the median is taken over (undisturbed ones, see `undisturbed`). */
  used?: [number, number];
  unit: string;
  digits: number;
  target?: string;
  pass?: boolean;
}

const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];

/** Other processes may use at most this many cores during a run for it to count as undisturbed. */
const DISTURBED_CORES = 0.25;

/**
 * The runs that other processes on the machine left alone, when at least half of them were; otherwise
 * all runs (the summary then says so). A shared machine is the norm for this benchmark.
 */
function undisturbed<T extends { cpu: PhaseCpu }>(runs: T[]): T[] {
  const quiet = runs.filter((r) => r.cpu.otherCores < DISTURBED_CORES);
  return quiet.length >= Math.ceil(runs.length / 2) ? quiet : runs;
}

async function main(): Promise<void> {
  const started = Date.now();
  for (const tool of ['curl', 'wrk', 'getconf']) {
    const r = await run('sh', ['-c', `command -v ${tool}`]);
    if (r.code !== 0) throw new Error(`${tool} is not installed (scripts/bench.sh installs curl and wrk when run as root)`);
  }
  const only = process.env.BENCH_ONLY ?? '';
  if (!['', 'blob', 'manifest'].includes(only)) throw new Error(`BENCH_ONLY must be blob or manifest (got "${only}")`);
  CLK_TCK = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const distVersion = (await run(process.env.DISTRIBUTION_BIN ?? '/usr/bin/docker-registry', ['--version'])).stdout.trim();
  const machine = machineInfo();
  log(`machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}`);
  log(`wharf: ${settings.wharfCli ? `compiled (${settings.wharfCli})` : 'from src via tsx'}, log level ${settings.wharfLogLevel}; distribution: ${distVersion}`);
  const loadBefore = loadavg()[0]!;

  const workDir = await mkdtemp(join(tmpdir(), 'wharf-bench-'));
  const servers: Server[] = [];
  live.servers = servers;
  live.workDir = workDir;
  try {
    log(`writing a ${settings.blobMiB} MiB random blob`);
    const content = makeContent(workDir, settings.blobMiB);
    servers.push(await startWharfServer(workDir, { auth: false }));
    servers.push(await startDistributionServer());
    const [wharf, dist] = servers as [Server, Server];
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
      await pushImage(s, content);
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
          const r = await blobRun(s, content, cs.clients, cs.pulls);
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
    const manifest: Record<Server['label'], WrkRun[]> = { wharf: [], distribution: [], 'wharf-auth': [] };
    if (only !== 'blob') {
      for (const s of servers) {
        log(`manifest warm-up on ${s.label}`);
        await wrkRun(s, 2);
      }
      for (let rep = 0; rep < settings.repeats; rep++) {
        const pair = rep % 2 === 0 ? [wharf, dist] : [dist, wharf];
        // The authenticated Wharf goes last and first in turn, next to the open one.
        const order = wharfAuth ? (rep % 2 === 0 ? [...pair, wharfAuth] : [wharfAuth, ...pair]) : pair;
        for (const s of order) {
          const r = await wrkRun(s, settings.wrkSeconds);
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

    const W = [46, 12, 14, 8, 17, 6];
    const cell = (v: number, r: Row) => `${fmt(v, r.digits)} ${r.unit}`;
    const lines = [
      '',
      `Wharf vs Distribution — median of ${settings.repeats} runs, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      `${machine.nproc} CPUs ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}; ${distVersion}`,
      '',
      pad('metric', W[0]!) + lpad('Wharf', W[1]!) + lpad('Distribution', W[2]!) + lpad('ratio', W[3]!) + '  ' + pad('target', W[4]!) + 'result',
      '-'.repeat(W.reduce((a, b) => a + b, 2)),
    ];
    for (const r of rows) {
      lines.push(
        pad(r.metric, W[0]!) +
          lpad(cell(r.wharf, r), W[1]!) +
          lpad(cell(r.dist, r), W[2]!) +
          lpad(`${fmt(r.wharf / r.dist, 2)}×`, W[3]!) +
          '  ' +
          pad(r.target ?? '', W[4]!) +
          (r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS'),
      );
    }
    const ranged = rows.filter((r) => r.wharfRange && r.distRange && settings.repeats > 1);
    if (ranged.length) {
      lines.push('', `Spread over all runs (min–max), and how many undisturbed runs the medians use (other processes < ${DISTURBED_CORES} cores):`);
      for (const r of ranged) {
        lines.push(
          `  ${pad(r.metric, W[0]! - 2)}Wharf ${fmt(r.wharfRange![0], r.digits)}–${fmt(r.wharfRange![1], r.digits)}, ` +
            `Distribution ${fmt(r.distRange![0], r.digits)}–${fmt(r.distRange![1], r.digits)} ${r.unit}; medians of ${r.used![0]} and ${r.used![1]} of ${settings.repeats} runs`,
        );
      }
    }
    const cpuLine = (label: string, runs: Array<{ cpu: PhaseCpu }>) =>
      `  ${pad(label, W[0]! - 2)}server ${fmt(median(runs.map((r) => r.cpu.serverCores)), 2)}, clients ${fmt(median(runs.map((r) => r.cpu.clientCores)), 2)}, ` +
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

// Interrupted: stop the servers (they are not in our process group's foreground when run under npm) and leave.
const live = { servers: [] as Server[], workDir: '' };
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the servers`);
    for (const s of live.servers) s.child.kill('SIGKILL');
    if (live.workDir) rmSync(live.workDir, { recursive: true, force: true });
    process.exit(1);
  });
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
