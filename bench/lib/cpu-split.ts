/**
 * Where the CPU of a measurement went when the system under test is several processes: named groups of
 * PIDs (the registry processes, the load balancer, the database's backends), the load clients (the CPU
 * seconds the caller reports for them, e.g. from `run` or a Probe), and everything else on the machine. In cores:
 * 1.0 = one core busy for the whole measurement. A PID that exits during the measurement counts until
 * its last reading. A group given as a function is listed again at the end: a PID that appeared
 * meanwhile (a database backend for a new connection) counts with all its CPU.
 */
import { cpus } from 'node:os';
import { machineCpu, processCpuSeconds } from './measure.js';

export type CoreSplit<G extends string> = Record<G, number> & { clients: number; other: number; machine: number };

function cpuOf(pid: number): number | undefined {
  try {
    return processCpuSeconds(pid);
  } catch {
    return undefined; // gone
  }
}

export class CpuSplit<G extends string> {
  private t0 = 0;
  private start0 = new Map<number, number>();
  private machine0 = { busy: 0, total: 0 };

  constructor(private readonly groups: Record<G, readonly number[] | (() => readonly number[])>) {}

  private list(): Array<[string, readonly number[]]> {
    return Object.entries<readonly number[] | (() => readonly number[])>(this.groups).map(([g, p]) => [g, typeof p === 'function' ? p() : p]);
  }

  start(): void {
    this.start0.clear();
    for (const [, pids] of this.list()) {
      for (const pid of pids) {
        const c = cpuOf(pid);
        if (c !== undefined) this.start0.set(pid, c);
      }
    }
    this.machine0 = machineCpu();
    this.t0 = performance.now();
  }

  /** The split since start(); `clientCpuSeconds`: what the load clients used meanwhile. */
  stop(clientCpuSeconds: number): CoreSplit<G> {
    const seconds = (performance.now() - this.t0) / 1000;
    const m1 = machineCpu();
    const out = {} as Record<string, number>;
    let accounted = 0;
    for (const [group, pids] of this.list()) {
      let s = 0;
      for (const pid of pids) {
        const b = cpuOf(pid);
        if (b !== undefined) s += b - (this.start0.get(pid) ?? 0);
      }
      out[group] = s / seconds;
      accounted += s / seconds;
    }
    const machine = ((m1.busy - this.machine0.busy) / Math.max(1, m1.total - this.machine0.total)) * cpus().length;
    const clients = clientCpuSeconds / seconds;
    return { ...out, clients, other: Math.max(0, machine - accounted - clients), machine } as CoreSplit<G>;
  }
}
