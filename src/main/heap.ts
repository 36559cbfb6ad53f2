/**
 * The JavaScript heap of `wharf serve`: its growth between full collections, and one compaction once
 * start-up is over.
 *
 * Node allocates a new buffer for every read from a socket, and V8 counts those bytes against the
 * limit at which its next full collection starts, until that collection. With its own heuristics, once
 * a process has been idle for a while, the limit sits about 10 MB above Wharf's live heap (about
 * 30 MB): a 256 MiB cold pull through the proxy cache then runs twenty-odd full collections, more
 * CPU than receiving, hashing, writing and sending the blob together. Letting the heap grow by its
 * live size (100%) leaves room for the buffers V8 frees in its young collections, and costs at most
 * about that much memory. See docs/benchmarks.md ("Cold pulls").
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Sets V8's heap growing factor to `percent` (0: V8's own heuristics, left untouched). */
export function setHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * One full garbage collection that compacts every page of the old generation, for `wharf serve` once
 * the application is built and before it listens (no request waits for it; 50–180 ms on a busy
 * 2-core machine).
 *
 * Start-up (loading the modules, building the schemas, the database and the application) leaves
 * about 10 MB of dead objects in the old generation: with the young generation kept at 1 MiB
 * (young-generation.ts) most of what start-up allocates is promoted before it dies. No full
 * collection runs after start-up's first few hundred milliseconds (the heap stays below V8's first
 * limit), and an ordinary one frees those objects but leaves the pages
 * they were on resident, the survivors being spread over all of them; only a compacting one moves
 * the survivors together and gives the emptied pages back. V8's memory reducer compacts like this on
 * its own once it finds the process idle, but tens of seconds later or not at all. A
 * `--compact-on-every-full-gc` given to node stays as it is.
 */
export function compactHeap(execArgv: readonly string[] = process.execArgv): void {
  const gc = (globalThis as { gc?: () => void }).gc ?? exposedGc();
  const always = execArgv.some((a) => /^--compact[-_]on[-_]every[-_]full[-_]gc/.test(a));
  if (!always) setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    if (!always) setFlagsFromString('--no-compact-on-every-full-gc');
  }
}

/**
 * V8's `gc` function without `--expose-gc` on node's command line: the flag makes V8 give it to the
 * contexts created while it is set, so one throw-away context is made for it, and the flag is cleared
 * again (no later context, nor the main one, gets a `gc` global).
 */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
