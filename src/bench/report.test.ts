import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { LatencyHistogram } from './histogram.js';
import { formatJson, formatProgress, formatSummary, histogramBars, summarizeLatency, type BenchResult } from './report.js';
import { progressPrinter } from './command.js';

function sampleResult(): BenchResult {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) h.record(i * 10);
  return {
    kind: 'put',
    startedAt: '2025-01-01T00:00:00.000Z',
    endpoints: ['127.0.0.1:2379'],
    leaderEndpoint: '127.0.0.1:2379',
    settings: { clients: 4, conns: 2, total: 1000 },
    requests: 1000,
    errors: 2,
    errorSamples: [{ message: 'deadline exceeded (code 4)', count: 2 }],
    elapsedSeconds: 0.5,
    throughputPerSecond: 2000,
    latency: summarizeLatency(h),
    histogram: histogramBars(h),
    preloadedKeys: 0,
    tool: { cpuUserSeconds: 0.4, cpuSystemSeconds: 0.06, cpuPercentOfOneCore: 92, cpuMicrosPerRequest: 459, eventLoopDelayP99Ms: 3 },
  };
}

test('latency summary is in milliseconds and ordered min ≤ p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ max', () => {
  const { latency } = sampleResult();
  assert.equal(latency.count, 1000);
  assert.equal(latency.minMs, 0.01);
  assert.equal(latency.maxMs, 10);
  assert.ok(Math.abs(latency.averageMs - 5.005) < 1e-9);
  assert.ok(Math.abs(latency.p50Ms - 5) <= 5 / 128);
  assert.ok(Math.abs(latency.p99Ms - 9.9) <= 9.9 / 128);
  const order = [latency.minMs, latency.p50Ms, latency.p90Ms, latency.p99Ms, latency.p999Ms, latency.maxMs];
  assert.deepEqual([...order].sort((a, b) => a - b), order);
});

test('the text summary shows throughput, the percentiles, a bar per histogram bin, errors and tool CPU', () => {
  const result = sampleResult();
  const text = formatSummary(result);
  assert.match(text, /^Benchmark: put → 127\.0\.0\.1:2379 \(leader\)$/m);
  assert.match(text, /^ {2}Requests\/sec: 2000\.0$/m);
  assert.match(text, /^ {2}Errors: {7}2$/m);
  for (const label of ['50%', '90%', '99%', '99.9%', 'max']) assert.match(text, new RegExp(`^ +${label.replace('.', '\\.')} in \\d+\\.\\d{3} ms$`, 'm'));
  const bars = text.split('\n').filter((line) => /\[ *\d+\] \|/.test(line));
  assert.equal(bars.length, result.histogram.length);
  // The fullest bin gets the longest bar.
  const longest = Math.max(...bars.map((line) => (line.split('|')[1] ?? '').length));
  assert.equal(longest, 40);
  assert.match(text, /2 × deadline exceeded \(code 4\)/);
  assert.match(text, /^Tool: 92% of one core/m);
  assert.match(text, /may be the bottleneck/);
});

test('the JSON output is one line holding one object with the documented fields', () => {
  const line = formatJson(sampleResult());
  assert.equal(line.split('\n').length, 2);
  assert.equal(line.at(-1), '\n');
  const parsed = JSON.parse(line) as Record<string, unknown>;
  for (const key of ['kind', 'startedAt', 'endpoints', 'settings', 'requests', 'errors', 'elapsedSeconds', 'throughputPerSecond', 'latency', 'histogram', 'tool']) {
    assert.ok(key in parsed, key);
  }
  assert.deepEqual(Object.keys(parsed.latency as object), ['count', 'averageMs', 'stddevMs', 'minMs', 'p50Ms', 'p90Ms', 'p99Ms', 'p999Ms', 'maxMs']);
});

test('mixed results list each operation; early stops are explained', () => {
  const result = sampleResult();
  const h = new LatencyHistogram();
  h.record(1000);
  result.operations = { read: summarizeLatency(h), write: summarizeLatency(h) };
  result.stoppedReason = 'interrupted';
  const text = formatSummary(result);
  assert.match(text, /^ {2}read +1 req +avg 1\.000 ms/m);
  assert.match(text, /^ {2}write +1 req/m);
  assert.match(text, /^Stopped early: interrupted$/m);
});

test('the progress line shows phase, percentage, counts, rate and p99', () => {
  const line = formatProgress({ kind: 'range', phase: 'measure', done: 1234, errors: 1, elapsedSeconds: 2.5, recentPerSecond: 987.6, fraction: 0.25, p99Ms: 4.321 });
  assert.equal(line, 'range measure  25%  1234 req  988 req/s  p99 4.32 ms  1 err  2.5 s');
  const preload = formatProgress({ kind: 'range', phase: 'preload', done: 10, errors: 0, elapsedSeconds: 0.1, recentPerSecond: 100, p99Ms: 0 });
  assert.equal(preload, 'range preload  10 req  100 req/s  0 err  0.1 s');
});

test('on a terminal the progress line is rewritten in place and cleared at the end; otherwise one line each', () => {
  const snapshot = { kind: 'put', phase: 'measure' as const, done: 1, errors: 0, elapsedSeconds: 1, recentPerSecond: 1, p99Ms: 1 };
  const tty = new PassThrough();
  const inPlace = progressPrinter(tty, true);
  inPlace.print(snapshot);
  inPlace.finish();
  const written = String(tty.read());
  assert.ok(written.startsWith('\r\x1b[2Kput measure'));
  assert.ok(written.endsWith('\r\x1b[2K'));
  assert.ok(!written.includes('\n'));

  const pipe = new PassThrough();
  const lines = progressPrinter(pipe, false);
  lines.print(snapshot);
  lines.print(snapshot);
  lines.finish();
  assert.equal(String(pipe.read()).split('\n').length, 3);
});
