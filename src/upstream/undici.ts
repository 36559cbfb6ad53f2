/**
 * undici, loaded on first use: by the first client of an upstream registry (a proxy organization's
 * first pull, a mirror's first sync), not when Wharf starts. Most of a registry's processes may never
 * talk to an upstream, and undici (its fetch, cache and WebSocket included) costs some 15 MiB of
 * resident memory once loaded. It is a CommonJS package, so it loads synchronously.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

let loaded: typeof Undici | undefined;

export function undici(): typeof Undici {
  return (loaded ??= createRequire(import.meta.url)('undici') as typeof Undici);
}
