// `lichen check` flag parsing (the command lives in src/cli/check.ts; its runs are tested in
// check.e2e.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError } from '../cli/args.js';
import { checkCommand, parseCheckDuration, parseCheckOptions, parseFaults, parseWorkloads } from '../cli/check.js';

const parse = (argv: string[]) => parseCheckOptions(parseArgs(argv, checkCommand.flags));

test('defaults: 3 members, 60 s, every workload, every supported fault, a random seed', () => {
  const options = parse([]);
  assert.equal(options.nodes, 3);
  assert.equal(options.durationMs, 60_000);
  assert.deepEqual(options.workloads, ['register', 'append', 'watch']);
  assert.deepEqual(options.faults, ['kill', 'pause', 'partition', 'slow-disk', 'full-disk', 'membership', 'wipe']);
  assert.ok(Number.isInteger(options.seed));
  assert.equal(options.unsafeReads, false);
});

test('flags set the size, duration, workloads, faults, seed and unsafe reads', () => {
  const options = parse(['--nodes', '5', '--duration', '10m', '--workload', 'register,append', '--faults', 'kill,partition', '--seed', '42', '--unsafe-reads', '--out', 'o']);
  assert.deepEqual(
    { ...options },
    { nodes: 5, durationMs: 600_000, workloads: ['register', 'append'], faults: ['kill', 'partition'], seed: 42, outDir: 'o', clients: 6, keyCount: 6, unsafeReads: true },
  );
});

test('durations: units, bare seconds, and limits', () => {
  assert.equal(parseCheckDuration('90s'), 90_000);
  assert.equal(parseCheckDuration('45'), 45_000);
  assert.equal(parseCheckDuration('1.5m'), 90_000);
  assert.equal(parseCheckDuration('1h'), 3_600_000);
  assert.throws(() => parseCheckDuration('500ms'), UsageError);
  assert.throws(() => parseCheckDuration('soon'), UsageError);
});

test('bad values are usage errors that say what is accepted', () => {
  assert.throws(() => parse(['--nodes', '4']), /3 or 5/);
  assert.throws(() => parseWorkloads('bank'), /unknown workload "bank"/);
  assert.throws(() => parseFaults('meteor'), /unknown fault "meteor"/);
  assert.throws(() => parseFaults('clock'), /not supported yet/);
  assert.deepEqual(parseFaults('none'), []);
  assert.deepEqual(parseFaults('wipe,kill'), ['wipe', 'kill']);
  assert.deepEqual(parseWorkloads('watch,watch'), ['watch']);
});
