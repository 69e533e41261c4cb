import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyPrefix, latencyBucket, percentileMs, TrafficRecorder } from './recorder.js';

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text));

function recorderAt(startMs: number, options: { secondsMax?: number; heatSecondsMax?: number; prefixesMax?: number } = {}) {
  const clock = { ms: startMs };
  const recorder = new TrafficRecorder({ nowMs: () => clock.ms, ...options });
  return { clock, recorder };
}

test('a key counts under its first two path segments, a flat key under itself', () => {
  assert.equal(keyPrefix(bytes('/registry/pods/default/web-1')), '/registry/pods/');
  assert.equal(keyPrefix(bytes('app/db/url')), 'app/db/');
  assert.equal(keyPrefix(bytes('app/name')), 'app/');
  assert.equal(keyPrefix(bytes('/top')), '/top');
  assert.equal(keyPrefix(bytes('k0000042')), 'k0000042');
  assert.equal(keyPrefix(bytes('x'.repeat(100))), 'x'.repeat(64));
});

test('percentiles read back from the histogram are within 9% of the latencies recorded', () => {
  const histogram = new Uint32Array(101);
  const latencies = [0.2, 0.5, 1, 2, 3, 5, 8, 13, 21, 340];
  for (const ms of latencies) histogram[latencyBucket(ms)]!++;
  const near = (actual: number, expected: number) => assert.ok(Math.abs(actual / expected - 1) < 0.09, `${actual} is not within 9% of ${expected}`);
  near(percentileMs(histogram, latencies.length, 0.5), 3);
  near(percentileMs(histogram, latencies.length, 0.99), 340);
  near(percentileMs(histogram, latencies.length, 0.1), 0.2);
  assert.equal(percentileMs(new Uint32Array(101), 0, 0.5), 0);
  assert.equal(latencyBucket(0), 0);
  assert.equal(latencyBucket(1e9), 100);
});

test('each closed second becomes one sample; idle seconds are zeros; the open second is not reported', () => {
  const { clock, recorder } = recorderAt(1_000_000);
  recorder.record('write', bytes('a/b/c'), 2);
  recorder.record('write', bytes('a/b/d'), 4);
  recorder.record('read', bytes('a/b/c'), 1);
  assert.deepEqual(recorder.samplesSince(0).reads, [], 'second 1000 is still open, and none before it was observed');
  clock.ms += 3000; // seconds 1001 and 1002 are idle, 1003 is open
  const samples = recorder.samplesSince(0);
  assert.equal(samples.from, 1000);
  assert.deepEqual(samples.writes, [2, 0, 0]);
  assert.deepEqual(samples.reads, [1, 0, 0]);
  assert.ok(samples.writeP99[0]! > 3.6 && samples.writeP99[0]! < 4.4);
  assert.equal(samples.readP50[1], 0);
  assert.deepEqual(recorder.samplesSince(1001).writes, [0], 'only seconds after `since`');
});

test('one hour of samples at most: older seconds are forgotten, the ring never grows', () => {
  const { clock, recorder } = recorderAt(0, { secondsMax: 10 });
  for (let second = 0; second < 25; second++) {
    clock.ms = second * 1000;
    recorder.record('write', bytes('k'), 1);
  }
  clock.ms = 25_000;
  const samples = recorder.samplesSince(-1);
  assert.equal(samples.from, 15);
  assert.deepEqual(samples.writes, new Array(10).fill(1));
});

test('per-prefix counts per second, and only the last heatSecondsMax seconds', () => {
  const { clock, recorder } = recorderAt(5_000, { heatSecondsMax: 2 });
  recorder.record('write', bytes('/a/x/1'), 1);
  recorder.record('read', bytes('/a/x/2'), 1);
  recorder.record('read', bytes('/b/y/1'), 1);
  clock.ms = 6_000;
  assert.deepEqual(recorder.heatSince(0), [
    { second: 5, cells: [['/a/x/', 1, 1], ['/b/y/', 1, 0]], other: [0, 0] },
  ]);
  clock.ms = 9_000;
  recorder.record('write', bytes('/c/z/1'), 1);
  clock.ms = 10_000;
  assert.deepEqual(recorder.heatSince(0).map((c) => c.second), [9], 'second 5 is older than two seconds');
});

test('beyond prefixesMax a second, prefixes are counted together as other; the busiest keep their place the next second', () => {
  const { clock, recorder } = recorderAt(0, { prefixesMax: 4 });
  for (let i = 0; i < 400; i++) recorder.record('write', bytes(i % 4 === 0 ? 'hot' : `cold${i}`), 1);
  clock.ms = 1000;
  // Second 1: the hot prefix comes last, after more new prefixes than there are places.
  for (let i = 0; i < 400; i++) recorder.record('write', bytes(i % 4 === 3 ? 'hot' : `new${i}`), 1);
  clock.ms = 2000;
  const [first, second] = recorder.heatSince(-1);
  assert.deepEqual(first!.cells[0], ['hot', 0, 100]);
  assert.equal(first!.cells.length, 4);
  const total = (c: typeof first) => c!.cells.reduce((sum, [, r, w]) => sum + r + w, 0) + c!.other[0] + c!.other[1];
  assert.equal(total(first), 400, 'every request is counted once');
  assert.deepEqual(second!.cells[0], ['hot', 0, 100], 'the hot prefix kept its place although new ones came first');
  assert.equal(total(second), 400);
});

test('recording a request costs no string and a bounded amount of work (guards the put path)', () => {
  // Not a timing assertion: the work per record() must not grow with the number of prefixes.
  const { clock, recorder } = recorderAt(0, { prefixesMax: 128 });
  const keys = Array.from({ length: 10_000 }, (_, i) => bytes(`k${String(i).padStart(7, '0')}`));
  for (let i = 0; i < 100_000; i++) recorder.record('write', keys[(i * 7919) % keys.length]!, 1);
  clock.ms = 1000;
  const [column] = recorder.heatSince(-1);
  assert.equal(column!.cells.length, 128);
  assert.equal(column!.other[1] + column!.cells.reduce((sum, [, , w]) => sum + w, 0), 100_000);
});
