// Auto compaction schedules on an injected clock (etcd 3.4 v3compactor semantics); no sleeping.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LichenError } from '../errors.js';
import { Compactor, REVISION_MODE_INTERVAL_MS, parseCompactionRetention, type AutoCompactionMode } from './compactor.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** A compactor on a fake clock whose store gains one revision per second (revision 1 at t=0). */
function rig(
  mode: AutoCompactionMode,
  retention: number,
  compactResult: (revision: number) => Promise<void> = async () => {},
  frozen: () => boolean = () => false,
) {
  let now = 0;
  let revision = 1;
  const compactions: { atMs: number; revision: number }[] = [];
  const compactor = new Compactor({
    mode,
    retention,
    now: () => now,
    currentRevision: () => revision,
    compact: (revision) => {
      compactions.push({ atMs: now, revision });
      return compactResult(revision);
    },
    log: () => {},
  });
  return {
    compactions,
    compactor,
    /** Ticks every second until `untilMs`, letting each compaction's promise settle. */
    async run(untilMs: number, leader: (atMs: number) => boolean = () => true): Promise<void> {
      while (now < untilMs) {
        now += SECOND;
        if (!frozen()) revision++;
        compactor.tick(leader(now));
        await new Promise(setImmediate);
      }
    },
  };
}

describe('parseCompactionRetention (etcd --auto-compaction-retention)', () => {
  it('reads hours or a duration in periodic mode, and revisions in revision mode', () => {
    assert.equal(parseCompactionRetention('periodic', '1'), HOUR);
    assert.equal(parseCompactionRetention('periodic', '0'), 0);
    assert.equal(parseCompactionRetention('periodic', '5m'), 5 * MINUTE);
    assert.equal(parseCompactionRetention('periodic', '1h30m'), 90 * MINUTE);
    assert.equal(parseCompactionRetention('periodic', '1.5h'), 90 * MINUTE);
    assert.equal(parseCompactionRetention('periodic', '90s'), 90 * SECOND);
    assert.equal(parseCompactionRetention('revision', '1000'), 1000);
  });

  it('refuses what is neither, and durations in revision mode', () => {
    for (const [mode, text] of [['periodic', 'abc'], ['periodic', '5 m'], ['periodic', '-1'], ['revision', '5m'], ['revision', '1.5']] as const) {
      assert.throws(() => parseCompactionRetention(mode, text), LichenError, `${mode} ${text}`);
    }
  });
});

describe('periodic auto compaction', () => {
  it('waits one retention, then compacts at the revision recorded a retention ago, every retention', async () => {
    const r = rig('periodic', 10 * MINUTE);
    await r.run(30 * MINUTE);
    // Revisions are recorded every minute (a tenth of the retention), the last 11 kept: at 10:00
    // the oldest is from 0:00; at 20:00 it is from 9:00 (rev 541) since the window ends at 19:00.
    assert.deepEqual(r.compactions, [
      { atMs: 10 * MINUTE, revision: 1 },
      { atMs: 20 * MINUTE, revision: 541 },
      { atMs: 30 * MINUTE, revision: 1141 },
    ]);
  });

  it('with a retention over an hour, records every 6 minutes and compacts hourly after the first retention', async () => {
    const r = rig('periodic', 2 * HOUR);
    await r.run(4 * HOUR);
    assert.deepEqual(r.compactions.map((c) => c.atMs), [2 * HOUR, 3 * HOUR, 4 * HOUR]);
    assert.equal(r.compactions[0]!.revision, 1);
    // 21 records of 6 minutes: at 3:00 the window is 0:54 to 2:54.
    assert.equal(r.compactions[1]!.revision, 1 + 54 * 60);
  });

  it('only the leader compacts; a follower keeps recording and, once leader, compacts what it recorded', async () => {
    const follower = rig('periodic', 10 * MINUTE);
    await follower.run(12 * MINUTE, () => false);
    assert.deepEqual(follower.compactions, []);
    await follower.run(13 * MINUTE, () => true);
    // Its records span 2:00..12:00 (11 kept); it has never compacted, so it is due at once.
    assert.deepEqual(follower.compactions, [{ atMs: 13 * MINUTE, revision: 1 + 2 * 60 }]);
  });

  it('never starts a second compaction while one is in flight, and retries a failure a tenth later', async () => {
    let release!: () => void;
    let calls = 0;
    const r = rig('periodic', 10 * MINUTE, () => {
      calls++;
      if (calls === 1) return new Promise<void>((resolve) => (release = resolve));
      if (calls === 2) return Promise.reject(new LichenError('Timeout', 'etcdserver: request timed out'));
      return Promise.resolve();
    });
    await r.run(15 * MINUTE);
    assert.equal(r.compactions.length, 1, 'the first compaction is still in flight');
    release(); // it completes at 15:01, the next tick
    await r.run(27 * MINUTE);
    // Due again 10 minutes after that success; the failure is retried one record (a minute) later.
    assert.deepEqual(r.compactions.map((c) => c.atMs), [10 * MINUTE, 25 * MINUTE + SECOND, 26 * MINUTE + SECOND]);
  });

  it('counts "already compacted" as done', async () => {
    const r = rig('periodic', 10 * MINUTE, () => Promise.reject(new LichenError('Compacted', 'etcdserver: mvcc: required revision has been compacted')));
    await r.run(21 * MINUTE);
    assert.deepEqual(r.compactions.map((c) => c.atMs), [10 * MINUTE, 20 * MINUTE]);
  });
});

describe('revision auto compaction', () => {
  it('every 5 minutes keeps the last N revisions, skipping a revision that is not positive or compacted last time', async () => {
    let frozen = false;
    let calls = 0;
    const r = rig('revision', 500, async () => {
      // The second attempt fails (tried again 5 minutes later); "already compacted" counts as done.
      if (++calls === 2) throw new LichenError('Timeout', 'etcdserver: request timed out');
      if (calls === 3) throw new LichenError('Compacted', 'etcdserver: mvcc: required revision has been compacted');
    }, () => frozen);
    await r.run(20 * MINUTE);
    frozen = true; // no writes from now on: current revision stays 1201
    await r.run(35 * MINUTE);
    // 5:00 gives 301 - 500 < 0: nothing. Once frozen, 1201 - 500 = 701 was compacted last time.
    assert.deepEqual(r.compactions, [
      { atMs: 2 * REVISION_MODE_INTERVAL_MS, revision: 101 },
      { atMs: 3 * REVISION_MODE_INTERVAL_MS, revision: 401 },
      { atMs: 4 * REVISION_MODE_INTERVAL_MS, revision: 701 },
    ]);
  });
});
