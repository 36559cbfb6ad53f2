/**
 * A circuit breaker per upstream host, so that a dead upstream costs a client microseconds instead of a
 * connect timeout per request.
 *
 *   closed ──N consecutive failures──▶ open ──cool-down elapsed──▶ half-open ──probe succeeds──▶ closed
 *                                       ▲                              │
 *                                       └──────probe fails (cool-down doubles, capped)─────────┘
 *
 * Only failures that say the upstream is unwell count (connection errors, timeouts, 5xx); a 404 or 401
 * is a healthy upstream answering. While open, `acquire()` throws UpstreamUnavailableError synchronously,
 * before any I/O. In half-open exactly one probe runs; others fail fast until it reports.
 *
 * That shield is for callers with a fallback (a cached copy they may serve instead). A caller without
 * one would otherwise be refused for the whole cool-down, up to `maxCooldownMs` after the upstream is
 * back. So while the circuit is not closed, such a caller gets an extra probe whenever no probe of
 * either kind has started for `probeIntervalMs` (1 s), even while another is in flight (a probe stuck
 * in a connect timeout holds nobody back longer than that): however many callers wait, extra probes
 * start at most once per interval. An extra probe that succeeds closes the circuit; one that fails
 * leaves the cool-down and its schedule as they are.
 */
import { UpstreamUnavailableError } from './errors.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit; default 5. */
  failureThreshold?: number;
  /** First cool-down; default 2 s. Doubles after each failed probe. */
  baseCooldownMs?: number;
  /** Cap of the cool-down; default 60 s. */
  maxCooldownMs?: number;
  /** A probe that has not reported after this long lets another probe through; default 60 s. */
  probeTimeoutMs?: number;
  /** How often callers without a fallback may probe a circuit that is not closed; default 1 s. */
  probeIntervalMs?: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

export interface AcquireOptions {
  /**
   * The caller can answer without the upstream (a cached copy it may serve): an open circuit then
   * refuses it for the whole cool-down. Default false: the caller gets a probe when none has started
   * for `probeIntervalMs`.
   */
  fallback?: boolean;
}

export interface CircuitSnapshot {
  host: string;
  state: CircuitState;
  consecutiveFailures: number;
  /** Cool-down the circuit will wait (or is waiting) when open. */
  cooldownMs: number;
  /** When an open circuit lets the next probe through (epoch ms), if open. */
  retryAt: number | undefined;
  /** How many times the circuit has opened. */
  opened: number;
}

/** The right to make one call; report its outcome exactly once (later reports are ignored). */
export interface CircuitPermit {
  /** The upstream answered (any status that is not a failure). */
  success(): void;
  /** Connection error, timeout or 5xx. */
  failure(): void;
  /** Outcome says nothing about the upstream (caller aborted, SSRF refusal). */
  release(): void;
}

/** What a permit is: a call of a closed circuit, the half-open probe, or an extra probe (see above). */
type PermitRole = 'call' | 'probe' | 'extra-probe';

export class CircuitBreaker {
  private stateValue: CircuitState = 'closed';
  private failures = 0;
  private cooldown: number;
  private openedAt = 0;
  private opens = 0;
  /** When the half-open probe in flight started. */
  private probeStartedAt: number | undefined;
  /** When the last probe of either kind started (or the failure that opened the circuit happened). */
  private lastProbeAt = 0;
  private readonly threshold: number;
  private readonly baseCooldown: number;
  private readonly maxCooldown: number;
  private readonly probeTimeout: number;
  private readonly probeInterval: number;
  private readonly now: () => number;

  constructor(
    readonly host: string,
    opts: CircuitBreakerOptions = {},
  ) {
    this.threshold = Math.max(1, opts.failureThreshold ?? 5);
    this.baseCooldown = opts.baseCooldownMs ?? 2_000;
    this.maxCooldown = Math.max(this.baseCooldown, opts.maxCooldownMs ?? 60_000);
    this.probeTimeout = opts.probeTimeoutMs ?? 60_000;
    this.probeInterval = opts.probeIntervalMs ?? 1_000;
    this.now = opts.now ?? Date.now;
    this.cooldown = this.baseCooldown;
  }

  get state(): CircuitState {
    return this.stateValue;
  }

  /**
   * A permit for one call, or UpstreamUnavailableError("circuit open") without any I/O. A caller
   * without a fallback is refused at most `probeIntervalMs` in a row (see the file comment).
   */
  acquire(opts: AcquireOptions = {}): CircuitPermit {
    const now = this.now();
    if (this.stateValue === 'closed') return this.permit('call');
    if (this.stateValue === 'open' && now - this.openedAt >= this.cooldown) {
      this.stateValue = 'half-open';
      this.probeStartedAt = undefined;
    }
    if (this.stateValue === 'half-open' && (this.probeStartedAt === undefined || now - this.probeStartedAt >= this.probeTimeout)) {
      this.probeStartedAt = this.lastProbeAt = now;
      return this.permit('probe');
    }
    if (!opts.fallback && now - this.lastProbeAt >= this.probeInterval) {
      this.lastProbeAt = now;
      return this.permit('extra-probe');
    }
    if (!opts.fallback) throw this.openError(this.lastProbeAt + this.probeInterval);
    throw this.openError(this.stateValue === 'open' ? this.openedAt + this.cooldown : undefined);
  }

  /** Records a failure seen outside a permit's call (e.g. a blob body that broke off mid-stream). */
  recordFailure(): void {
    this.onFailure('call');
  }

  snapshot(): CircuitSnapshot {
    return {
      host: this.host,
      state: this.stateValue,
      consecutiveFailures: this.failures,
      cooldownMs: this.cooldown,
      retryAt: this.stateValue === 'open' ? this.openedAt + this.cooldown : undefined,
      opened: this.opens,
    };
  }

  private permit(role: PermitRole): CircuitPermit {
    let done = false;
    const once = (fn: () => void) => () => {
      if (done) return;
      done = true;
      fn();
    };
    return {
      success: once(() => this.onSuccess(role)),
      failure: once(() => this.onFailure(role)),
      release: once(() => {
        if (role === 'probe' && this.stateValue === 'half-open') this.probeStartedAt = undefined;
      }),
    };
  }

  private onSuccess(role: PermitRole): void {
    this.failures = 0;
    if (role !== 'call' || this.stateValue === 'half-open') {
      this.stateValue = 'closed';
      this.cooldown = this.baseCooldown;
      this.probeStartedAt = undefined;
    }
  }

  private onFailure(role: PermitRole): void {
    this.failures++;
    if (role === 'probe' && this.stateValue === 'half-open') {
      this.cooldown = Math.min(this.cooldown * 2, this.maxCooldown);
      this.open();
    } else if (this.stateValue === 'closed' && this.failures >= this.threshold) {
      this.open();
    }
  }

  private open(): void {
    this.stateValue = 'open';
    this.openedAt = this.lastProbeAt = this.now();
    this.probeStartedAt = undefined;
    this.opens++;
  }

  private openError(retryAt: number | undefined): UpstreamUnavailableError {
    const when = retryAt === undefined ? 'a probe is in flight' : `retry after ${new Date(retryAt).toISOString()}`;
    return new UpstreamUnavailableError(`circuit open for upstream ${this.host} (${when})`);
  }
}

/** One breaker per upstream host, created on first use; the source of the circuit-state metrics. */
export class CircuitBreakers {
  private readonly byHost = new Map<string, CircuitBreaker>();

  constructor(private readonly opts: CircuitBreakerOptions = {}) {}

  forHost(host: string): CircuitBreaker {
    const key = host.toLowerCase();
    let b = this.byHost.get(key);
    if (!b) {
      b = new CircuitBreaker(key, this.opts);
      this.byHost.set(key, b);
    }
    return b;
  }

  snapshots(): CircuitSnapshot[] {
    return [...this.byHost.values()].map((b) => b.snapshot());
  }
}
