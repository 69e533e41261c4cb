import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bucketHighestMicros,
  bucketIndexOf,
  bucketLowestMicros,
  HISTOGRAM_VALUE_MAX_MICROS,
  LatencyHistogram,
  SUB_BUCKET_BITS,
} from './histogram.js';
import { seededRandom } from '../random.js';

const RELATIVE_PRECISION = 1 / 2 ** SUB_BUCKET_BITS;

function exactPercentile(sorted: number[], percentile: number): number {
  const rank = Math.max(1, Math.ceil((percentile / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

test('buckets tile the value range without gaps or overlaps', () => {
  const lastIndex = bucketIndexOf(HISTOGRAM_VALUE_MAX_MICROS);
  for (let i = 0; i < lastIndex; i++) {
    assert.equal(bucketLowestMicros(i + 1), bucketHighestMicros(i) + 1, `bucket ${i}`);
    assert.equal(bucketIndexOf(bucketLowestMicros(i)), i, `lowest of bucket ${i}`);
    assert.equal(bucketIndexOf(bucketHighestMicros(i)), i, `highest of bucket ${i}`);
  }
});

test('every bucket is narrower than the promised relative precision of its values', () => {
  for (const value of [200, 1_000, 12_345, 999_999, 2 ** 30 + 7, HISTOGRAM_VALUE_MAX_MICROS]) {
    const index = bucketIndexOf(value);
    const width = bucketHighestMicros(index) - bucketLowestMicros(index) + 1;
    assert.ok(width / value <= RELATIVE_PRECISION, `width ${width} for ${value}`);
  }
});

test('small values are counted exactly', () => {
  const h = new LatencyHistogram();
  for (let v = 1; v <= 100; v++) h.record(v);
  assert.equal(h.count, 100);
  assert.equal(h.minMicros, 1);
  assert.equal(h.maxMicros, 100);
  assert.equal(h.percentileMicros(50), 50);
  assert.equal(h.percentileMicros(90), 90);
  assert.equal(h.percentileMicros(99), 99);
  assert.equal(h.meanMicros, 50.5);
});

test('percentiles of a uniform distribution are within the precision of the exact ones', () => {
  const h = new LatencyHistogram();
  const values: number[] = [];
  for (let v = 1; v <= 100_000; v++) {
    h.record(v);
    values.push(v);
  }
  for (const p of [50, 90, 99, 99.9]) {
    const exact = exactPercentile(values, p);
    const got = h.percentileMicros(p);
    assert.ok(got >= exact && got <= exact * (1 + RELATIVE_PRECISION), `p${p}: ${got} vs ${exact}`);
  }
  assert.equal(h.percentileMicros(100), 100_000);
  assert.equal(h.percentileMicros(0), 1);
});

test('percentiles of a long-tailed (exponential) distribution are within the precision', () => {
  const random = seededRandom(42);
  const h = new LatencyHistogram();
  const values: number[] = [];
  for (let i = 0; i < 50_000; i++) {
    // Mean 2 ms, in microseconds.
    const v = Math.round(-Math.log(1 - random()) * 2_000);
    h.record(v);
    values.push(v);
  }
  values.sort((a, b) => a - b);
  for (const p of [50, 90, 99, 99.9]) {
    const exact = exactPercentile(values, p);
    const got = h.percentileMicros(p);
    assert.ok(got >= exact && got <= exact * (1 + RELATIVE_PRECISION) + 1, `p${p}: ${got} vs ${exact}`);
  }
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  assert.ok(Math.abs(h.meanMicros - mean) < 1e-6 * mean, 'the mean is exact');
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
  assert.ok(Math.abs(h.stddevMicros - Math.sqrt(variance)) < 1e-3 * Math.sqrt(variance), 'the stddev is exact');
});

test('a bimodal distribution puts p50 in the fast mode and p99 in the slow one', () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 980; i++) h.record(1_000);
  for (let i = 0; i < 20; i++) h.record(50_000);
  assert.ok(Math.abs(h.percentileMicros(50) - 1_000) <= 1_000 * RELATIVE_PRECISION);
  assert.ok(Math.abs(h.percentileMicros(99) - 50_000) <= 50_000 * RELATIVE_PRECISION);
  // The top of a bucket is clamped to the exact maximum.
  assert.equal(h.percentileMicros(99.9), 50_000);
});

test('an empty histogram reports zeros and no bins', () => {
  const h = new LatencyHistogram();
  assert.equal(h.count, 0);
  assert.equal(h.percentileMicros(99), 0);
  assert.equal(h.minMicros, 0);
  assert.equal(h.meanMicros, 0);
  assert.equal(h.stddevMicros, 0);
  assert.deepEqual(h.bins(10), []);
});

test('negative and absurdly large values are clamped into range', () => {
  const h = new LatencyHistogram();
  h.record(-5);
  h.record(HISTOGRAM_VALUE_MAX_MICROS * 10);
  assert.equal(h.minMicros, 0);
  assert.equal(h.maxMicros, HISTOGRAM_VALUE_MAX_MICROS);
  assert.equal(h.count, 2);
});

test('merging two histograms equals recording everything in one', () => {
  const random = seededRandom(7);
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  const all = new LatencyHistogram();
  for (let i = 0; i < 5_000; i++) {
    const v = Math.round(random() * 100_000);
    (i % 2 === 0 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  assert.equal(a.count, all.count);
  for (const p of [1, 50, 90, 99, 99.9]) assert.equal(a.percentileMicros(p), all.percentileMicros(p));
  assert.equal(a.minMicros, all.minMicros);
  assert.equal(a.maxMicros, all.maxMicros);
});

test('bins are log-spaced, contiguous, span min to max, and add up to the count', () => {
  const random = seededRandom(3);
  const h = new LatencyHistogram();
  for (let i = 0; i < 10_000; i++) h.record(Math.round(-Math.log(1 - random()) * 3_000) + 100);
  const bins = h.bins(12);
  assert.ok(bins.length > 1 && bins.length <= 12);
  assert.equal(bins[0]?.fromMicros, h.minMicros);
  assert.equal(bins.at(-1)?.toMicros, h.maxMicros);
  for (let i = 1; i < bins.length; i++) assert.equal(bins[i]?.fromMicros, (bins[i - 1]?.toMicros ?? 0) + 1);
  assert.equal(bins.reduce((sum, bin) => sum + bin.count, 0), h.count);
  // Log spacing: later bins are wider than earlier ones.
  const widths = bins.map((bin) => bin.toMicros - bin.fromMicros);
  assert.ok((widths.at(-1) ?? 0) > (widths[0] ?? 0) * 10);
});

test('a histogram of one repeated value has one bin holding everything', () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 10; i++) h.record(5_000);
  assert.deepEqual(h.bins(12), [{ fromMicros: 5_000, toMicros: 5_000, count: 10 }]);
});
