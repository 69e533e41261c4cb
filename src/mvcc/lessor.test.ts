import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lessor } from './lessor.js';

describe('Lessor (leader-side lease clocks, injected time)', () => {
  it('a follower keeps leases but never expires them and refuses keep-alives', () => {
    const lessor = new Lessor();
    lessor.grant(1, 10, 0);
    assert.deepEqual(lessor.expired(1_000_000, 10), []);
    assert.equal(lessor.remaining(1, 1_000_000), 10, 'a follower reports the granted TTL');
    assert.throws(() => lessor.renew(1, 0), { code: 'NotLeader' });
  });

  it('a new leader gives every lease a full TTL from the promotion time', () => {
    const lessor = new Lessor();
    lessor.grant(1, 10, 0);
    lessor.promote(50_000);
    assert.equal(lessor.remaining(1, 50_000), 10);
    assert.equal(lessor.remaining(1, 55_500), 4, 'remaining seconds are truncated');
    assert.deepEqual(lessor.expired(59_999, 10), []);
    assert.deepEqual(lessor.expired(60_000, 10), [1]);
  });

  it('renew restarts the clock and returns the TTL; unknown or expired leases are not found', () => {
    const lessor = new Lessor();
    lessor.promote(0);
    lessor.grant(7, 5, 0);
    assert.equal(lessor.renew(7, 4_000), 5);
    assert.deepEqual(lessor.expired(8_999, 10), []);
    assert.throws(() => lessor.renew(8, 0), { code: 'LeaseNotFound' });
    assert.throws(() => lessor.renew(7, 9_000), { code: 'LeaseNotFound' });
    assert.equal(lessor.remaining(7, 9_000), -1);
    assert.equal(lessor.remaining(8, 0), -1);
  });

  it('expired() is bounded and holds back ids whose revoke is in flight, then retries them', () => {
    const lessor = new Lessor({ revokeRetryMs: 1_000 });
    lessor.promote(0);
    for (let id = 1; id <= 5; id++) lessor.grant(id, 1, 0);
    const first = lessor.expired(1_000, 3);
    assert.equal(first.length, 3);
    const second = lessor.expired(1_000, 3);
    assert.equal(second.length, 2);
    assert.deepEqual([...first, ...second].sort(), [1, 2, 3, 4, 5]);
    assert.deepEqual(lessor.expired(1_500, 10), [], 'held back while the revoke is in flight');
    lessor.revoke(1);
    assert.deepEqual(lessor.expired(2_000, 10).sort(), [2, 3, 4, 5], 'proposed again when not revoked in time');
  });

  it('applies the minimum TTL and stops clocks on demotion', () => {
    const lessor = new Lessor({ minTtlSeconds: 3 });
    lessor.promote(0);
    lessor.grant(1, 1, 0);
    assert.equal(lessor.renew(1, 0), 3);
    lessor.demote();
    assert.deepEqual(lessor.expired(10_000, 10), []);
    lessor.reset([{ ID: 2, grantedTTL: 4 }], 0);
    assert.equal(lessor.size, 1);
    assert.equal(lessor.remaining(2, 0), 4);
  });

  it('expired() looks at no clock while none can be due: keep-alives do not bring back the per-tick scan', () => {
    const lessor = new Lessor();
    lessor.promote(0);
    for (let id = 1; id <= 1_000; id++) lessor.grant(id, 300, 0);
    // Ten seconds of 100 ms ticks, every lease kept alive round robin in between.
    let next = 0;
    for (let nowMs = 100; nowMs <= 10_000; nowMs += 100) {
      for (let i = 0; i < 100; i++) lessor.renew((next++ % 1_000) + 1, nowMs);
      assert.deepEqual(lessor.expired(nowMs, 64), []);
    }
    assert.equal(lessor.clocksExamined, 0, 'a scan of every lease each tick');
    // Leases 1–100 were last renewed at 9,100 ms: they are due 300 s later, and one scan finds them.
    assert.deepEqual(lessor.expired(309_099, 1_000), []);
    assert.deepEqual(lessor.expired(309_100, 1_000), Array.from({ length: 100 }, (_u, i) => i + 1));
    assert.equal(lessor.clocksExamined, 2_000, 'one scan per due time reached, not one per tick');
    assert.deepEqual(lessor.expired(309_100, 1_000), [], 'held back while their revokes are in flight');
    assert.equal(lessor.clocksExamined, 2_000);
  });

  it('expired() hands out exactly what a scan of every clock would, through grants, renewals, revokes, leader changes and a clock stepped back', () => {
    // The reference: every clock looked at on every call (the lessor before its due-time bound).
    type Clock = { ttl: number; expiresAtMs: number; retryAtMs: number };
    const model = new Map<number, Clock>();
    let modelPrimary = false;
    const revokeRetryMs = 700;
    const minTtlSeconds = 2;
    const lessor = new Lessor({ revokeRetryMs, minTtlSeconds });
    let seed = 17;
    const random = (n: number): number => {
      // An LCG's low bits repeat with a short period: use its high bits.
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return Math.floor((seed / 2_147_483_648) * n);
    };
    let nowMs = 0;
    let handedOut = 0;
    for (let step = 0; step < 20_000; step++) {
      nowMs += random(10) === 0 ? -random(3_000) : random(400);
      const id = 1 + random(40);
      switch (random(8)) {
        case 0:
        {
          if (model.has(id)) break;
          const ttl = 1 + random(5);
          lessor.grant(id, ttl, nowMs);
          const granted = Math.max(ttl, minTtlSeconds);
          model.set(id, { ttl: granted, expiresAtMs: modelPrimary ? nowMs + granted * 1000 : Infinity, retryAtMs: 0 });
          break;
        }
        case 1:
          lessor.revoke(id);
          model.delete(id);
          break;
        case 2: {
          const clock = model.get(id);
          const live = modelPrimary && clock !== undefined && clock.expiresAtMs > nowMs;
          if (!live) break;
          lessor.renew(id, nowMs);
          clock.expiresAtMs = nowMs + clock.ttl * 1000;
          break;
        }
        case 3:
          if (random(20) !== 0) break;
          if (random(2) === 0) {
            lessor.promote(nowMs);
            modelPrimary = true;
            for (const clock of model.values()) Object.assign(clock, { expiresAtMs: nowMs + clock.ttl * 1000, retryAtMs: 0 });
          } else {
            lessor.demote();
            modelPrimary = false;
            for (const clock of model.values()) clock.expiresAtMs = Infinity;
          }
          break;
        default: {
          const max = 1 + random(6);
          const expected: number[] = [];
          if (modelPrimary) {
            for (const [modelId, clock] of model) {
              if (expected.length >= max) break;
              if (clock.expiresAtMs > nowMs || clock.retryAtMs > nowMs) continue;
              clock.retryAtMs = nowMs + revokeRetryMs;
              expected.push(modelId);
            }
          }
          assert.deepEqual(lessor.expired(nowMs, max), expected, `step ${step} at ${nowMs} ms`);
          handedOut += expected.length;
        }
      }
    }
    assert.ok(handedOut > 500, `only ${handedOut} expiries: the walk should exercise them`);
  });
});
