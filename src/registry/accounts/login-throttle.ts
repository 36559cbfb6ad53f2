/**
 * Failed-login throttling: at most `limit` failures per key (a user name, a client address) in any
 * sliding minute. The failures are rows of the database (db/login-failure-store.ts), so the limit holds
 * across every process sharing it: behind a round-robin load balancer, a client guessing passwords meets
 * the same limit on every process rather than `limit` per process. Times are the processes' clocks.
 */
import type { LoginFailureStore } from '../../db/login-failure-store.js';

const WINDOW_MS = 60_000;

export class LoginThrottle {
  private readonly now: () => number;

  constructor(
    private readonly limit: number,
    private readonly failures: LoginFailureStore,
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Seconds until every key may try again, or 0 when none of them is throttled. */
  async retryAfter(keys: readonly string[]): Promise<number> {
    const now = this.now();
    const recent = await this.failures.since(keys, now - WINDOW_MS);
    let wait = 0;
    for (const times of recent.values()) {
      if (times.length >= this.limit) wait = Math.max(wait, Math.ceil((times[times.length - this.limit]! + WINDOW_MS - now) / 1000));
    }
    return wait;
  }

  /** Counts one failure against every key. */
  async fail(keys: readonly string[]): Promise<void> {
    const now = this.now();
    await this.failures.record(keys, now, now - WINDOW_MS);
  }
}
