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

  it('CircuitBreakers keeps one breaker per host and lists their states', () => {
    const all = new CircuitBreakers({ failureThreshold: 1 });
    assert.equal(all.forHost('A.example'), all.forHost('a.example'));
    all.forHost('b.example').acquire().failure();
    assert.deepEqual(all.snapshots().map((s) => [s.host, s.state]), [['a.example', 'closed'], ['b.example', 'open']]);
  });
});
