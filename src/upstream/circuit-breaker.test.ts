import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker, CircuitBreakers } from './circuit-breaker.js';
import { UpstreamUnavailableError } from './errors.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures and fails fast while open', () => {
    const c = clock();
    const b = new CircuitBreaker('up.example', { failureThreshold: 3, baseCooldownMs: 1000, now: c.now });
    b.acquire().failure();
    b.acquire().success(); // a success resets the count
    for (let i = 0; i < 2; i++) b.acquire().failure();
    assert.equal(b.state, 'closed');
    b.acquire().failure();
    assert.equal(b.state, 'open');
    assert.throws(() => b.acquire(), (e: unknown) => e instanceof UpstreamUnavailableError && /circuit open/.test(e.message));
    assert.deepEqual({ ...b.snapshot(), retryAt: undefined }, { host: 'up.example', state: 'open', consecutiveFailures: 3, cooldownMs: 1000, retryAt: undefined, opened: 1 });
  });

  it('lets exactly one probe through when half-open; success closes', () => {
    const c = clock();
    const b = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 1000, now: c.now });
    b.acquire().failure();
    c.advance(999);
    assert.throws(() => b.acquire(), UpstreamUnavailableError);
    c.advance(1);
    const probe = b.acquire();
    assert.equal(b.state, 'half-open');
    assert.throws(() => b.acquire(), UpstreamUnavailableError);
    probe.success();
    assert.equal(b.state, 'closed');
    b.acquire().success();
  });

  it('doubles the cool-down after a failed probe, capped, and resets it after recovery', () => {
    const c = clock();
    const b = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 1000, maxCooldownMs: 3000, now: c.now });
    b.acquire().failure();
    const cooldowns: number[] = [];
    for (let i = 0; i < 3; i++) {
      c.advance(b.snapshot().cooldownMs);
      b.acquire().failure();
      cooldowns.push(b.snapshot().cooldownMs);
    }
    assert.deepEqual(cooldowns, [2000, 3000, 3000]);
    c.advance(3000);
    b.acquire().success();
    assert.equal(b.snapshot().cooldownMs, 1000);
  });

  it('a released probe lets the next caller probe; reports after the first are ignored', () => {
    const c = clock();
    const b = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 10, now: c.now });
    b.acquire().failure();
    c.advance(10);
    const p = b.acquire();
    p.release();
    p.failure();
    assert.equal(b.state, 'half-open');
    b.acquire().success();
    assert.equal(b.state, 'closed');
  });

  it('a probe that never reports is replaced after the probe timeout', () => {
    const c = clock();
    const b = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 10, probeTimeoutMs: 100, now: c.now });
    b.acquire().failure();
    c.advance(10);
    b.acquire();
    assert.throws(() => b.acquire(), UpstreamUnavailableError);
    c.advance(100);
    b.acquire().success();
    assert.equal(b.state, 'closed');
  });

  it('an open circuit lets a caller without a fallback probe after 1 s, however long the cool-down; callers with one stay shielded', () => {
    const c = clock();
    const b = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 60_000, now: c.now });
    b.acquire().failure();
    const { retryAt } = b.snapshot();
    c.advance(999);
    assert.throws(() => b.acquire(), (e: unknown) => e instanceof UpstreamUnavailableError && /circuit open/.test(e.message));
    c.advance(1);
    const probe = b.acquire();
    assert.throws(() => b.acquire({ fallback: true }), UpstreamUnavailableError);
    probe.failure();
    // A failed extra probe leaves the cool-down and its schedule alone.
    assert.deepEqual([b.state, b.snapshot().cooldownMs, b.snapshot().retryAt], ['open', 60_000, retryAt]);
    for (let s = 0; s < 58; s++) {
      c.advance(1_000);
      assert.throws(() => b.acquire({ fallback: true }), UpstreamUnavailableError);
      b.acquire().failure();
    }
    assert.equal(b.state, 'open');
  });

  it('success of an extra probe closes the circuit and resets the grown cool-down', () => {
    const c = clock();
    const b = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 1_000, now: c.now });
    b.acquire().failure();
    for (let i = 0; i < 6; i++) {
      c.advance(b.snapshot().cooldownMs);
      b.acquire({ fallback: true }).failure();
    }
    assert.equal(b.snapshot().cooldownMs, 60_000);
    c.advance(1_000);
    assert.throws(() => b.acquire({ fallback: true }), UpstreamUnavailableError);
    b.acquire().success();
    assert.deepEqual([b.state, b.snapshot().cooldownMs, b.snapshot().consecutiveFailures], ['closed', 1_000, 0]);
    b.acquire({ fallback: true }).success();
    b.acquire().success();
  });

  it('concurrent callers without a fallback get one probe per second, even while earlier probes hang', () => {
    const c = clock();
    const b = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 60_000, now: c.now });
    b.acquire().failure();
    const granted = (): number => {
      let n = 0;
      for (let i = 0; i < 50; i++) {
        try {
          b.acquire(); // never reported: a probe stuck in a connect timeout
          n++;
        } catch (err) {
          assert.ok(err instanceof UpstreamUnavailableError);
        }
      }
      return n;
    };
    const perTick: number[] = [];
    for (let tick = 0; tick < 30; tick++) {
      c.advance(250);
      perTick.push(granted());
    }
    // Every fourth tick of 250 ms, one probe of the 50 callers; none in between.
    assert.deepEqual(perTick, Array.from({ length: 30 }, (_, i) => (i % 4 === 3 ? 1 : 0)));
  });

  it('a half-open probe in flight shields callers with a fallback until it reports; callers without one get their own after 1 s', () => {
    const c = clock();
    const b = new CircuitBreaker('h', { failureThreshold: 1, baseCooldownMs: 2_000, now: c.now });
    b.acquire().failure();
    c.advance(2_000);
    const scheduled = b.acquire({ fallback: true });
    assert.equal(b.state, 'half-open');
    assert.throws(() => b.acquire({ fallback: true }), (e: unknown) => e instanceof UpstreamUnavailableError && /a probe is in flight/.test(e.message));
    assert.throws(() => b.acquire(), UpstreamUnavailableError);
    c.advance(1_000);
    assert.throws(() => b.acquire({ fallback: true }), UpstreamUnavailableError);
    const extra = b.acquire();
    extra.failure();
    assert.equal(b.state, 'half-open');
    scheduled.failure();
    assert.deepEqual([b.state, b.snapshot().cooldownMs], ['open', 4_000]);
    // The failed probe restarts the interval too.
    c.advance(999);
    assert.throws(() => b.acquire(), UpstreamUnavailableError);
    c.advance(1);
    b.acquire().success();
    assert.equal(b.state, 'closed');
  });

  it('CircuitBreakers keeps one breaker per host and lists their states', () => {
    const all = new CircuitBreakers({ failureThreshold: 1 });
    assert.equal(all.forHost('A.example'), all.forHost('a.example'));
    all.forHost('b.example').acquire().failure();
    assert.deepEqual(all.snapshots().map((s) => [s.host, s.state]), [['a.example', 'closed'], ['b.example', 'open']]);
  });
});
