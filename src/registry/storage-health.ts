/**
 * Whether the blob storage can serve, for `/health/instance`. Load balancers ask every few seconds,
 * several of them per process: one check runs at a time, its answer is reused for `cacheMs`, and a
 * check that takes longer than `timeoutMs` counts as down (an unreachable store must not hold the
 * health answer, nor the balancer's probe, for the length of the driver's own timeouts).
 */
import type { Logger } from '../observability/logger.js';
import type { BlobDriver } from '../storage/blob-driver.js';

export interface StorageHealthOptions {
  /** How long one check may take before the storage counts as down (default 2 s). */
  timeoutMs?: number;
  /** How long an answer is reused (default 5 s). */
  cacheMs?: number;
  log?: Logger;
}

export class StorageHealth {
  private last?: { up: boolean; failure?: string; at: number };
  private running?: Promise<{ up: boolean; failure?: string }>;

  constructor(
    private readonly storage: BlobDriver,
    private readonly opts: StorageHealthOptions = {},
  ) {}

  /** True when the storage answered a check within the timeout, at most `cacheMs` ago. */
  async up(): Promise<boolean> {
    return (await this.status()).up;
  }

  /** The same answer with the reason the storage counts as down. */
  async status(): Promise<{ up: boolean; failure?: string }> {
    const cacheMs = this.opts.cacheMs ?? 5000;
    if (this.last && Date.now() - this.last.at < cacheMs) return this.last;
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<{ up: boolean; failure?: string }> {
    const timeoutMs = this.opts.timeoutMs ?? 2000;
    const signal = AbortSignal.timeout(timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    let up: boolean;
    let failure: string | undefined;
    try {
      await Promise.race([this.storage.check(signal), timedOut]);
      up = true;
    } catch (err) {
      up = false;
      failure = (err as Error).message;
      if (this.last?.up !== false) this.opts.log?.warn({ err: (err as Error).message, storage: this.storage.name }, 'storage health check failed');
    } finally {
      clearTimeout(timer);
    }
    if (up && this.last?.up === false) this.opts.log?.info({ storage: this.storage.name }, 'storage health check passes again');
    this.last = { up, failure, at: Date.now() };
    return { up, failure };
  }
}
