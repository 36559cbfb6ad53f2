/**
 * How a benchmark script runs: `main(live)` registers its servers and work directory in `live`; an
 * interrupt (SIGINT/SIGTERM) kills those servers and removes the directory; a failure is printed
 * with its cause and sets exit code 1.
 */
import { rmSync } from 'node:fs';
import type { Server } from './servers.js';

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
