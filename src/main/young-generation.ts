/**
 * V8's young generation, kept at its initial size (two 1 MiB semi-spaces). Left to itself, V8 grows it
 * to its ceiling (two 16 MiB semi-spaces on 64-bit) while Wharf's modules are parsed and loaded, and
 * keeps it: about 30 MiB of resident memory per process that an idle registry never gives back. What
 * Wharf allocates per request is small and short-lived (the bytes of blobs live outside the JavaScript
 * heap), so the more frequent young collections cost little; docs/benchmarks.md ("Memory per process")
 * has the figures before and after.
 *
 * Only a flag set before the modules are parsed has this effect: main/wharf.ts, the entry of the
 * `wharf` command, calls this and only then loads the CLI. A `--semi-space-growth-factor` or
 * `--max-semi-space-size` given to node on its command line wins.
 */
import { setFlagsFromString } from 'node:v8';

export const YOUNG_GENERATION_FLAG = '--semi-space-growth-factor=1';

/** Sets YOUNG_GENERATION_FLAG unless node's own arguments (`execArgv`) size the young generation. */
export function pinYoungGeneration(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => a.startsWith('--semi-space-growth-factor') || a.startsWith('--max-semi-space-size'))) return false;
  setFlagsFromString(YOUNG_GENERATION_FLAG);
  return true;
}
