/**
 * The load the benchmarks put on a server, with the same clients for every server: `curl` processes
 * that read every byte of a blob and discard it (`-o /dev/null`), and `wrk` for request rates. Each run
 * first waits (bounded) for a quiet machine and accounts CPU and RSS through a Probe.
 */
import { request } from 'node:http';
import { MiB, Probe, run, waitForQuiet, type PhaseCpu } from './measure.js';

/** How runs wait and sample; the benchmarks take these from their knobs. */
export interface LoadOptions {
  /** Longest wait for an idle machine before each run. */
  quietWaitMs: number;
  /** RSS sampling interval. */
  rssSampleMs: number;
  /** Processes of the system under test besides the server (an upstream), accounted apart. */
  extraPids?: readonly number[];
}

/** What is measured: a URL on a server process. */
export interface LoadTarget {
  label: string;
  url: string;
  pid: number;
  /** `Authorization` header value, when the server needs one. */
  auth?: string;
  /**
   * Blob pulls are answered with a redirect (to a presigned URL of the object store), which the
   * clients follow as registry clients do (`curl -L`); every transfer must follow exactly one.
   */
  redirected?: boolean;
}

export interface BlobRun {
  mibPerSec: number;
  /** Server CPU seconds per GiB served: robust against other load, unlike throughput. */
  serverCpuPerGiB: number;
  seconds: number;
  peakRssMiB: number;
  cpu: PhaseCpu;
}

/**
 * `clients` curl processes start together; each pulls the blob at `t.url` `pulls` times over one
 * keep-alive connection, writing the bytes to /dev/null. Aggregate throughput = all bytes / wall time
 * until the last client is done. Every transfer must answer 200 with `size` bytes.
 */
export async function blobRun(t: LoadTarget, size: number, clients: number, pulls: number, opts: LoadOptions): Promise<BlobRun> {
  const args = t.redirected
    ? ['-sS', '-L', '-w', '%{http_code} %{size_download} %{num_redirects}\\n']
    : ['-sS', '-w', '%{http_code} %{size_download}\\n', ...(t.auth ? ['-H', `Authorization: ${t.auth}`] : [])];
  if (t.redirected && t.auth) throw new Error(`blob pull from ${t.label}: redirected pulls with credentials are not supported here`);
  const expected = t.redirected ? `200 ${size} 1` : `200 ${size}`;
  for (let i = 0; i < pulls; i++) args.push('-o', '/dev/null', t.url);
  await waitForQuiet(opts.quietWaitMs);
  const probe = new Probe(t.pid, opts.rssSampleMs, opts.extraPids);
  probe.start();
  const results = await Promise.all(Array.from({ length: clients }, () => run('curl', args)));
  const { seconds, peakRssMiB, cpu } = probe.stop(results.reduce((a, r) => a + r.cpuSeconds, 0));
  for (const r of results) {
    const lines = r.stdout.trim().split('\n');
    const bad = lines.filter((l) => l !== expected);
    if (r.code !== 0 || lines.length !== pulls || bad.length) {
      throw new Error(`blob pull from ${t.label}: curl exit ${r.code}, transfers ${JSON.stringify(lines)} (expected ${pulls} × "${expected}"): ${r.stderr}`);
    }
  }
  const bytes = clients * pulls * size;
  return { mibPerSec: bytes / MiB / seconds, serverCpuPerGiB: (cpu.serverCores * seconds) / (bytes / 1024 ** 3), seconds, peakRssMiB, cpu };
}

export interface WrkRun {
  rps: number;
  /** Requests completed. */
  requests: number;
  p50ms: number;
  p99ms: number;
  peakRssMiB: number;
  cpu: PhaseCpu;
  /** CPU cores of `LoadOptions.extraPids` (the upstream) during the run. */
  extraCores: number;
}

export interface WrkOptions {
  threads: number;
  connections: number;
  seconds: number;
  headers: Record<string, string>;
  /** wrk's per-request timeout (its default is 2 s); a request that takes longer fails the run. */
  timeoutSeconds?: number;
}

function parseLatencyMs(text: string, pct: string): number {
  const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s)\\b`, 'm').exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** `wrk` with keep-alive against `t.url`; any non-2xx answer or socket error fails the run. */
export async function wrkRun(t: LoadTarget, w: WrkOptions, opts: LoadOptions): Promise<WrkRun> {
  await waitForQuiet(opts.quietWaitMs);
  const probe = new Probe(t.pid, opts.rssSampleMs, opts.extraPids);
  probe.start();
  const headers = { ...w.headers, ...(t.auth ? { Authorization: t.auth } : {}) };
  const headerArgs = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const r = await run('wrk', [`-t${w.threads}`, `-c${w.connections}`, `-d${w.seconds}s`, '--latency', ...(w.timeoutSeconds ? ['--timeout', `${w.timeoutSeconds}s`] : []), ...headerArgs, t.url]);
  const { peakRssMiB, cpu, extraCores } = probe.stop(r.cpuSeconds);
  const rps = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(r.stdout)?.[1]);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout);
  const socketErrors = /Socket errors:.*/.exec(r.stdout);
  if (r.code !== 0 || !Number.isFinite(rps) || rps <= 0 || non2xx || socketErrors) {
    throw new Error(`wrk against ${t.label} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  const requests = Number(/^\s*(\d+) requests in /m.exec(r.stdout)?.[1]);
  return { rps, requests, p50ms: parseLatencyMs(r.stdout, '50'), p99ms: parseLatencyMs(r.stdout, '99'), peakRssMiB, cpu, extraCores };
}

export interface TimedGet {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: number;
  /** Milliseconds from sending the request (on a new connection) to the response headers. */
  headersMs: number;
  /** … to the first body byte. */
  firstByteMs: number;
  /** … to the end of the body. */
  totalMs: number;
}

/**
 * One GET on a new connection from this process (node:http: importing undici would replace the
 * dispatcher of the global fetch), timing the response headers, the first body byte and the end; the
 * body is counted and discarded.
 */
export function timedGet(url: string): Promise<TimedGet> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const req = request(url, { method: 'GET', agent: false }, (res) => {
      const headersMs = performance.now() - t0;
      let firstByteMs = NaN;
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) firstByteMs = performance.now() - t0;
        bytes += chunk.byteLength;
      });
      res.once('error', reject);
      res.once('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, bytes, headersMs, firstByteMs, totalMs: performance.now() - t0 }));
    });
    req.once('error', reject);
    req.end();
  });
}
