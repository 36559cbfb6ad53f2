/**
 * A short-lived verdict on whether one storage location can serve, for placing writes: the driver's
 * `check()` runs at most once per `cacheMs` (one at a time), a check slower than `timeoutMs` counts as
 * down, and an operation that found the location unavailable marks it down at once (until the next
 * check, `cacheMs` later, finds it back).
 *
 * With a confirmation (`requireConfirmation`: the located driver's identity check, see
 * registry/location-identity.ts) a location counts as up only once the confirmation passed after its
 * check: first when it was not confirmed before (down at start), then again every time it was marked
 * down, since storage that comes back may be other storage (a remounted directory, a bucket switched
 * over). Until then it counts as down, whatever the age of its last verdict.
 */
import type { BlobDriver } from './blob-driver.js';

export interface LocationHealthOptions {
  /** How long a verdict is reused (default 5 s). */
  cacheMs?: number;
  /** How long one check may take before the location counts as down (default 2 s). */
  timeoutMs?: number;
}

export interface LocationVerdict {
  up: boolean;
  /** Why the location is down. */
  failure?: string;
  /** The error that made it count as down. */
  error?: unknown;
}

export class LocationHealth {
  private last?: LocationVerdict & { at: number };
  private running?: Promise<LocationVerdict>;
  private confirm?: (signal: AbortSignal) => Promise<void>;
  private confirmed = true;

  constructor(
    private readonly driver: BlobDriver,
    private readonly opts: LocationHealthOptions = {},
  ) {}

  /** The cached verdict, or a fresh check when it is older than `cacheMs`. */
  async verdict(): Promise<LocationVerdict> {
    if (this.last && Date.now() - this.last.at < (this.opts.cacheMs ?? 5000)) return this.last;
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  async up(): Promise<boolean> {
    return (await this.verdict()).up;
  }

  /** The error of a fresh verdict (no older than `cacheMs`) that says down, else undefined; runs no check. */
  knownDown(): unknown {
    const last = this.last;
    return last !== undefined && !last.up && Date.now() - last.at < (this.opts.cacheMs ?? 5000) ? (last.error ?? new Error(last.failure)) : undefined;
  }

  /** An operation found the location unavailable: it counts as down until the next check (and confirmation). */
  markDown(err: unknown): void {
    this.last = { up: false, failure: (err as Error)?.message ?? String(err), error: err, at: Date.now() };
    if (this.confirm) this.confirmed = false;
  }

  /**
   * From now on the location counts as up only after `confirm` resolved (see the file comment);
   * `confirmed` says whether it passed already (checked at start).
   */
  requireConfirmation(confirm: (signal: AbortSignal) => Promise<void>, confirmed: boolean): void {
    this.confirm = confirm;
    this.confirmed = confirmed;
    if (!confirmed && this.last?.up) this.last = undefined;
  }

  /** True while the location must pass its check and confirmation before it is asked anything. */
  get unconfirmed(): boolean {
    return this.confirm !== undefined && !this.confirmed;
  }

  private async run(): Promise<LocationVerdict> {
    const timeoutMs = this.opts.timeoutMs ?? 2000;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    let verdict: LocationVerdict;
    try {
      const checked = async () => {
        await this.driver.check(controller.signal);
        if (this.confirm && !this.confirmed) {
          await this.confirm(controller.signal);
          this.confirmed = true;
        }
      };
      await Promise.race([checked(), timedOut]);
      verdict = { up: true };
    } catch (err) {
      verdict = { up: false, failure: (err as Error)?.message ?? String(err), error: err };
    } finally {
      clearTimeout(timer);
    }
    this.last = { ...verdict, at: Date.now() };
    return verdict;
  }
}
