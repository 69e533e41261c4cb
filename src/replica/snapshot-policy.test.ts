import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { snapshotDue } from './snapshot-policy.js';

const policy = { snapshotEntries: 10_000, snapshotWalBytes: 64 << 20 };

describe('snapshot policy', () => {
  it('snapshots after enough entries', () => {
    assert.equal(snapshotDue(policy, { entriesSinceSnapshot: 9_999, walBytes: 0, walBytesAfterCompaction: 0 }), false);
    assert.equal(snapshotDue(policy, { entriesSinceSnapshot: 10_000, walBytes: 0, walBytesAfterCompaction: 0 }), true);
  });

  it('snapshots when the WAL has grown by the limit since the last compaction', () => {
    assert.equal(snapshotDue(policy, { entriesSinceSnapshot: 10, walBytes: 64 << 20, walBytesAfterCompaction: 0 }), true);
  });

  it('does not snapshot again while only the entries kept for followers make the WAL large', () => {
    // After a snapshot the kept entries still fill 80 MiB: a size trigger would fire on every Ready.
    const kept = 80 << 20;
    assert.equal(snapshotDue(policy, { entriesSinceSnapshot: 15, walBytes: kept + 1_000_000, walBytesAfterCompaction: kept }), false);
    assert.equal(snapshotDue(policy, { entriesSinceSnapshot: 900, walBytes: kept + (64 << 20), walBytesAfterCompaction: kept }), true);
  });

  it('waits up to a quarter longer, as far as the drawn spread says', () => {
    const at = (entriesSinceSnapshot: number, spread: number): boolean =>
      snapshotDue(policy, { entriesSinceSnapshot, walBytes: 0, walBytesAfterCompaction: 0, spread });
    assert.equal(at(10_000, 0.5), false);
    assert.equal(at(12_474, 0.99), false);
    assert.equal(at(12_475, 0.99), true);
    assert.equal(at(11_250, 0.5), true);
    const wal = (growth: number, spread: number): boolean =>
      snapshotDue(policy, { entriesSinceSnapshot: 10, walBytes: growth, walBytesAfterCompaction: 0, spread });
    assert.equal(wal(64 << 20, 0.5), false);
    assert.equal(wal(72 << 20, 0.5), true);
  });

  it('never snapshots with nothing applied since the last one', () => {
    assert.equal(snapshotDue(policy, { entriesSinceSnapshot: 0, walBytes: 1 << 30, walBytesAfterCompaction: 0 }), false);
  });
});
