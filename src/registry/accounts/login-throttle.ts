/**
 * Failed-login throttling: at most `limit` failures per key (a user name, a client address) in any
 * sliding minute. Kept in this process's memory: with several replicas, each enforces the limit itself.
 */
const WINDOW_MS = 60_000;
const MAX_KEYS = 100_000;

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly now: () => number;

  constructor(
    private readonly limit: number,
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Seconds until every key may try again, or 0 when none of them is throttled. */
  retryAfter(keys: readonly string[]): number {
    const now = this.now();
    let wait = 0;
    for (const key of keys) {
      const times = this.recent(key, now);
      if (times.length >= this.limit) wait = Math.max(wait, Math.ceil((times[times.length - this.limit]! + WINDOW_MS - now) / 1000));
    }
    return wait;
  }

  /** Counts one failure against every key. */
  fail(keys: readonly string[]): void {
    const now = this.now();
    for (const key of keys) {
      const times = this.recent(key, now);
      times.push(now);
      this.failures.delete(key);
      this.failures.set(key, times);
    }
    while (this.failures.size > MAX_KEYS) this.failures.delete(this.failures.keys().next().value!);
  }

  private recent(key: string, now: number): number[] {
    const times = (this.failures.get(key) ?? []).filter((t) => t > now - WINDOW_MS);
    if (times.length === 0) this.failures.delete(key);
    return times;
  }
}
