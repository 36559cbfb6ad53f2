/**
 * The JavaScript heap's growth between full collections, for `wharf serve`.
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

/** Sets V8's heap growing factor to `percent` (0: V8's own heuristics, left untouched). */
export function setHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
