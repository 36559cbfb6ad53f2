/** Small helpers shared by end-to-end tests. */
import { createHash } from 'node:crypto';

/** A copy backed by a plain ArrayBuffer, which is what fetch's BodyInit accepts. */
export const fetchBody = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

export const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Polls `probe` until it returns true; fails after `timeoutMs` with `what`. Only a readiness wait. */
export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 15_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
