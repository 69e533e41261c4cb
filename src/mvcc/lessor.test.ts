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
});
