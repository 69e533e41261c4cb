// Smoke test of scripts/bench-storage.ts: the quick run finishes and prints one JSON object with
// every figure. No assertion on absolute numbers (they depend on the machine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const isRate = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;

test('bench:storage --quick prints one JSON object with every storage figure', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench-storage.ts', '--quick'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, `bench failed: ${run.stderr}`);
  const result = JSON.parse(run.stdout) as Record<string, any>;
  assert.equal(result.benchmark, 'storage');
  assert.equal(result.quick, true);
  assert.ok(isRate(result.rawFdatasyncPerSec));
  assert.ok(isRate(result.rawFdatasyncAsyncPerSec));
  assert.deepEqual(
    result.wal.batches.map((b: { batchEntries: number }) => b.batchEntries),
    [1, 16, 64, 256],
  );
  for (const batch of result.wal.batches) {
    assert.ok(isRate(batch.entriesPerSec) && isRate(batch.savesPerSec), JSON.stringify(batch));
    assert.equal(batch.fdatasyncsPerSave, 1, 'group commit: one flush per save');
  }
  assert.deepEqual(result.wal.groupCommit.map((g: { groups: number }) => g.groups), [1, 8]);
  for (const figure of result.wal.groupCommit) {
    assert.equal(figure.shared.fdatasyncsPerTurn, 1, `group commit across ${figure.groups} groups: one flush per turn`);
    assert.equal(figure.perGroup.fdatasyncsPerTurn, figure.groups, 'one WAL per group: one flush per group per turn');
    assert.ok(isRate(figure.shared.entriesPerSec) && isRate(figure.perGroup.entriesPerSec), JSON.stringify(figure));
  }
  for (const kind of ['lmdb', 'lmdbPartition', 'leveldb', 'leveldbPartition', 'memory']) {
    const figures = result.engines[kind];
    for (const field of ['putPerSec', 'putBatched100PerSec', 'getPerSec', 'rangePerSec', 'rangeKeysPerSec']) {
      assert.ok(isRate(figures[field]), `${kind}.${field} = ${figures[field]}`);
    }
  }
  for (const kind of ['lmdb', 'leveldb']) assert.ok(isRate(result.mvcc[kind].putPerSec) && isRate(result.mvcc[kind].getPerSec), JSON.stringify(result.mvcc));
  assert.ok(isRate(result.durationMs));
});
