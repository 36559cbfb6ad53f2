/**
 * Which location last held a key, for the located driver's redirects (located-driver.ts): a bounded map
 * of positive verdicts, the least recently used dropped first, each trusted for `ttlMs`.
 *
 * Why a positive verdict may be reused: a blob key in a location stays there until it is deleted, and
 * this process's deletes go through the located driver, which forgets the key. A blob deleted by GC in
 * another process is gone from the database first (its row, then its bytes), so no pull looks its key
 * up here any more. What the lifetime covers: such a blob pushed again later, whose new bytes may be in
 * another location only, and a blob replicated since to a more preferred location (served from there
 * once the verdict has expired).
 */
export interface HolderCacheOptions {
  /** Keys remembered at most (default 10,000). */
  size?: number;
  /** How long a verdict is trusted, in ms (default 60 s). */
  ttlMs?: number;
  now?: () => number;
}

export class HolderCache {
  private readonly entries = new Map<string, { location: string; at: number }>();
  private readonly size: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: HolderCacheOptions = {}) {
    this.size = opts.size ?? 10_000;
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** The location that held `key` less than `ttlMs` ago, if remembered. */
  get(key: string): string | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    if (this.now() - e.at >= this.ttlMs) return undefined;
    this.entries.set(key, e);
    return e.location;
  }

  /** Remembers that `location` holds `key` now. */
  set(key: string, location: string): void {
    if (this.size <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { location, at: this.now() });
    if (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Forgets `key` (it is being deleted). */
  forget(key: string): void {
    this.entries.delete(key);
  }
}
