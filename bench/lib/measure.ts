/**
 * Measurement primitives shared by the benchmarks: running a client command with its exact CPU time,
 * CPU accounting of a server, its clients and the rest of the machine, RSS sampling, waiting for a
 * quiet machine, medians, and the knobs read from the environment.
 *
 * CPU accounting: /proc/<pid>/stat for the server, bash `times` for the clients, /proc/stat for the
 * machine (tick-based accounting charges softirq work to the interrupted task).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

export const MiB = 1024 * 1024;

/** An integer knob from the environment, `fallback` when unset; throws outside [min, max]. */
export function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}] (got "${raw}")`);
  return n;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** CPU seconds (user + system) the command and its children used, from bash's `times`. */
  cpuSeconds: number;
}

/** Runs a command under bash so that its exact CPU time can be read afterwards (`times`). */
export function run(cmd: string, args: string[]): Promise<RunResult> {
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

/** Throws unless every tool is on PATH. */
export async function requireTools(tools: string[], hint: string): Promise<void> {
  for (const tool of tools) {
    const r = await run('sh', ['-c', `command -v ${tool}`]);
    if (r.code !== 0) throw new Error(`${tool} is not installed (${hint})`);
  }
}

let CLK_TCK = 100;

/** Reads the kernel's clock tick (call once before measuring). */
export async function initClock(): Promise<void> {
  CLK_TCK = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

export function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/**
 * Waits at most `maxWaitMs` until the machine is nearly idle (< 0.25 busy cores), so that a measurement
 * does not start in the middle of someone else's compile. Returns the busy cores of the last 250 ms.
 */
export async function waitForQuiet(maxWaitMs: number): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  const ncpu = cpus().length;
  for (;;) {
    const a = machineCpu();
    await sleep(250);
    const b = machineCpu();
    const busy = ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * ncpu;
    if (busy < 0.25 || Date.now() >= deadline) return busy;
  }
}

export interface PhaseCpu {
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
 * Watches a server during one measurement: samples its RSS every `sampleMs` (and resets and reads the
 * kernel's own peak, VmHWM, where allowed), and accounts CPU time of the server, the clients and the
 * rest of the machine. `extraPids` are processes of the system under test other than the server
 * itself (an upstream registry): their CPU counts neither as the clients' nor as other processes'.
 */
export class Probe {
  private peakKiB = 0;
  private timer?: NodeJS.Timeout;
  private hwmReset = false;
  private t0 = 0;
  private server0 = 0;
  private extra0 = new Map<number, number>();
  private machine0 = { busy: 0, total: 0 };
  private self0 = process.cpuUsage();

  constructor(
    private readonly pid: number,
    private readonly sampleMs = 50,
    private readonly extraPids: readonly number[] = [],
  ) {}

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
    }, this.sampleMs);
    this.t0 = performance.now();
    this.server0 = processCpuSeconds(this.pid);
    this.extra0 = this.extraCpu();
    this.machine0 = machineCpu();
    this.self0 = process.cpuUsage();
  }

  /** Peak RSS in MiB since start() and the CPU split; `clientCpuSeconds` as reported by `run`. */
  stop(clientCpuSeconds: number): { seconds: number; peakRssMiB: number; cpu: PhaseCpu; extraCores: number } {
    const seconds = (performance.now() - this.t0) / 1000;
    const server = processCpuSeconds(this.pid) - this.server0;
    const extra1 = this.extraCpu();
    // A PID that came or went during the measurement (a database backend) counts for neither end.
    let extra = 0;
    for (const [pid, cpu] of extra1) if (this.extra0.has(pid)) extra += cpu - this.extra0.get(pid)!;
    const machine1 = machineCpu();
    const self = process.cpuUsage(this.self0);
    clearInterval(this.timer);
    let peak = Math.max(this.peakKiB, rssKiB(this.pid, 'VmRSS'));
    if (this.hwmReset) peak = Math.max(peak, rssKiB(this.pid, 'VmHWM'));
    const ncpu = cpus().length;
    const machineCores = ((machine1.busy - this.machine0.busy) / Math.max(1, machine1.total - this.machine0.total)) * ncpu;
    const serverCores = server / seconds;
    const extraCores = extra / seconds;
    const clientCores = (clientCpuSeconds + (self.user + self.system) / 1e6) / seconds;
    return {
      seconds,
      peakRssMiB: peak / 1024,
      extraCores,
      cpu: { serverCores, clientCores, otherCores: Math.max(0, machineCores - serverCores - clientCores - extraCores), machineCores },
    };
  }

  private extraCpu(): Map<number, number> {
    const out = new Map<number, number>();
    for (const pid of this.extraPids) {
      try {
        out.set(pid, processCpuSeconds(pid));
      } catch {
        /* gone */
      }
    }
    return out;
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];

/** Other processes may use at most this many cores during a run for it to count as undisturbed. */
export const DISTURBED_CORES = 0.25;

/**
 * The runs that other processes on the machine left alone, when at least half of them were; otherwise
 * all runs (the summary then says so). A shared machine is the norm for these benchmarks.
 */
export function undisturbed<T extends { cpu: Pick<PhaseCpu, 'otherCores'> }>(runs: T[]): T[] {
  const quiet = runs.filter((r) => r.cpu.otherCores < DISTURBED_CORES);
  return quiet.length >= Math.ceil(runs.length / 2) ? quiet : runs;
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
}

export function machineInfo(): MachineInfo {
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

export const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const pad = (s: string, n: number) => s.padEnd(n);
export const lpad = (s: string, n: number) => s.padStart(n);

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
