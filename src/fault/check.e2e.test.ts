// End-to-end runs of `lichen check`'s engine against real member processes: one that must pass
// under kill, pause and partition faults, and one that must fail because its members serve reads
// without ReadIndex while the old leader is cut off from the majority. Faults are scheduled in
// wall time (these are real processes), on fixed plans so each run injects the same faults; every
// wait inside the run is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCheck } from './run.js';

test('register and append under kill, pause and partition faults: no anomaly', { timeout: 120_000 }, async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'lichen-check-test-'));
  try {
    const verdict = await runCheck({
      nodes: 3,
      // Shorter than the plan (at least 17 s): the plan runs to its end however long restarts
      // take on a loaded machine (it used to be cut off by the duration: "only 2 faults").
      durationMs: 10_000,
      workloads: ['register', 'append'],
      faults: ['kill', 'pause', 'partition'],
      seed: 11,
      clients: 6,
      keyCount: 4,
      outDir,
      plan: [
        { kind: 'kill', mode: 'leader', afterMs: 1000, holdMs: 2500 },
        { kind: 'partition', mode: 'isolate-leader', afterMs: 1000, holdMs: 3000 },
        { kind: 'pause', mode: 'random', afterMs: 1000, holdMs: 2000 },
        { kind: 'partition', mode: 'majority-minority', afterMs: 1000, holdMs: 2500 },
        { kind: 'kill', mode: 'random', afterMs: 1000, holdMs: 2000 },
      ],
    });
    const why = JSON.stringify({ anomalies: verdict.anomalies, errors: verdict.errors, checks: verdict.checks }, null, 1);
    assert.equal(verdict.valid, true, why);
    assert.equal(verdict.linearizable, true);
    assert.deepEqual(verdict.anomalies, []);
    assert.equal(verdict.faults.length, 5, `${verdict.faults.length} of the plan's 5 faults were injected`);
    assert.deepEqual([...new Set(verdict.faults.map((f) => f.kind))].sort(), ['kill', 'partition', 'pause']);
    for (const fault of verdict.faults) assert.ok(fault.endMs !== undefined && fault.endMs > fault.startMs, `fault not healed: ${fault.detail}`);
    assert.ok(verdict.counts.byWorkload.register!.ok > 50, `too few register operations: ${JSON.stringify(verdict.counts)}`);
    assert.ok(verdict.counts.byWorkload.append!.ok > 20, `too few append operations: ${JSON.stringify(verdict.counts)}`);
    const onDisk = JSON.parse(readFileSync(join(outDir, 'verdict.json'), 'utf8'));
    assert.equal(onDisk.valid, true);
    assert.match(readFileSync(join(outDir, 'report.html'), 'utf8'), /lichen check: PASS/);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

test('the check fails when members serve reads without ReadIndex and the old leader is isolated', { timeout: 120_000 }, async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'lichen-check-test-'));
  try {
    const verdict = await runCheck({
      nodes: 3,
      durationMs: 11_000,
      workloads: ['register', 'append'],
      faults: ['partition'],
      seed: 5,
      // Three clients per member and two keys per workload: the isolated old leader's clients
      // keep reading keys the majority keeps writing.
      clients: 9,
      keyCount: 2,
      unsafeReads: true,
      outDir,
      plan: [{ kind: 'partition', mode: 'isolate-leader', afterMs: 1500, holdMs: 7000 }],
    });
    assert.equal(verdict.valid, false);
    const kinds = new Set(verdict.anomalies.map((a) => a.kind));
    assert.ok(kinds.has('stale-read') || kinds.has('not-linearizable'), `anomalies: ${[...kinds].join(', ') || 'none'}`);
    const stale = verdict.anomalies.find((a) => a.kind === 'stale-read' || a.kind === 'not-linearizable')!;
    assert.ok(stale.opIds.length > 0);
    for (const id of stale.opIds) assert.ok(verdict.anomalyOps[id], `operation ${id} of the anomaly is spelled out`);
    assert.match(verdict.faults[0]!.detail, /isolated leader/);
    const report = readFileSync(join(outDir, 'report.html'), 'utf8');
    assert.match(report, /lichen check: FAIL/);
    assert.match(report, /stroke="#c0392b"/, 'the anomaly operations are outlined in the timeline');
    assert.ok(existsSync(join(outDir, 'history.jsonl')));
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

test('a member whose data directory is wiped is refused, then removed and added again: no anomaly', { timeout: 180_000 }, async () => {
  const verdict = await runCheck({
    nodes: 3,
    durationMs: 12_000,
    workloads: ['register', 'append'],
    faults: ['wipe'],
    seed: 13,
    clients: 4,
    keyCount: 4,
    // The second wipe comes as soon as the first is healed: healed means a voter again, else
    // wiping another voter while the first is still a learner leaves no quorum to remove it.
    plan: [
      { kind: 'wipe', afterMs: 1000, holdMs: 1000 },
      { kind: 'wipe', afterMs: 0, holdMs: 1000 },
    ],
  });
  const why = JSON.stringify({ anomalies: verdict.anomalies, errors: verdict.errors, faults: verdict.faults }, null, 1);
  assert.equal(verdict.valid, true, why);
  assert.deepEqual(verdict.errors, []);
  assert.equal(verdict.faults.length, 2);
  assert.match(verdict.faults[0]!.detail, /; refused \(by another data directory\); removed n\d and added it again with --join; a voter again$/, why);
  assert.match(verdict.faults[1]!.detail, /; refused \((by another data directory|has already been bootstrapped)\); removed n\d and added it again with --join; a voter again$/, why);
});
