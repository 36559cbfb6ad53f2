/**
 * How a benchmark script runs: `main(live)` registers its servers and work directory in `live`; an
 * interrupt (SIGINT/SIGTERM) kills those servers and removes the directory; a failure is printed
 * with its cause and sets exit code 1.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initClock, log, machineInfo, type MachineInfo } from './measure.js';
import { distributionVersion, type Server } from './servers.js';

export interface LiveResources {
  servers: Server[];
  workDir: string;
}

export function runBench(main: (live: LiveResources) => Promise<void>, log: (line: string) => void): void {
  const live: LiveResources = { servers: [], workDir: '' };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping the servers`);
      for (const srv of live.servers) srv.child.kill('SIGKILL');
      if (live.workDir) rmSync(live.workDir, { recursive: true, force: true });
      process.exit(1);
    });
  }
  main(live).then(
    () => {
      process.exitCode = 0;
    },
    (err: unknown) => {
      const cause = (err as Error)?.cause;
      process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}${cause ? `\ncause: ${String(cause)}` : ''}\n`);
      process.exitCode = 1;
    },
  );
}

/** What every benchmark notes before it starts: the machine, the peer's version, the load, a work directory. */
export interface BenchStart {
  machine: MachineInfo;
  distVersion: string;
  /** 1-minute load average before the run. */
  loadBefore: number;
  /** A new temporary directory, registered in `live` for removal on interrupt. */
  workDir: string;
}

export async function beginBench(live: LiveResources, opts: { workDirPrefix: string; wharfCli?: string; wharfLogLevel: string }): Promise<BenchStart> {
  await initClock();
  const distVersion = await distributionVersion();
  const machine = machineInfo();
  log(`machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}`);
  log(`wharf: ${opts.wharfCli ? `compiled (${opts.wharfCli})` : 'from src via tsx'}, log level ${opts.wharfLogLevel}; distribution: ${distVersion}`);
  const loadBefore = loadavg()[0]!;
  const workDir = await mkdtemp(join(tmpdir(), opts.workDirPrefix));
  live.workDir = workDir;
  return { machine, distVersion, loadBefore, workDir };
}
