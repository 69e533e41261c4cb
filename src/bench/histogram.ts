// An HDR-style log-linear latency histogram. Values are whole microseconds. Every power of two
// above 2^SUB_BUCKET_BITS is split into 2^SUB_BUCKET_BITS equal sub-buckets, so any recorded
// value is known to within 1/128 (< 0.8 %) of itself, with a fixed, small memory cost
// (a few thousand counters) no matter how many values are recorded. Values below 2^SUB_BUCKET_BITS
// are counted exactly. Minimum, maximum, sum and sum of squares are kept exactly on the side.
//
// Why not keep every sample: a 10-minute run at 50k req/s is 30 M samples; sorting them costs
// more than the benchmark's own client work, and memory grows without bound.

/** Sub-buckets per power of two are 2^SUB_BUCKET_BITS: the relative precision is 2^-SUB_BUCKET_BITS. */
export const SUB_BUCKET_BITS = 7;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
/** Values above this (2^36 µs, about 19 hours) are counted as this value; nothing real is that slow. */
export const HISTOGRAM_VALUE_MAX_MICROS = 2 ** 36;
const TOP_EXPONENT = 36;
const BUCKET_COUNT = (TOP_EXPONENT - SUB_BUCKET_BITS + 1) * SUB_BUCKETS + SUB_BUCKETS;

/** The bucket a value falls in. Continuous: consecutive buckets cover consecutive ranges. */
export function bucketIndexOf(valueMicros: number): number {
  if (valueMicros < SUB_BUCKETS) return valueMicros;
  const highestBit = Math.floor(Math.log2(valueMicros));
  // log2 of a number just below a power of two can round up; correct it so the shifted value
  // always lands in [SUB_BUCKETS, 2 * SUB_BUCKETS).
  let shift = highestBit - SUB_BUCKET_BITS;
  let scaled = Math.floor(valueMicros / 2 ** shift);
  if (scaled >= 2 * SUB_BUCKETS) {
    shift++;
    scaled = Math.floor(valueMicros / 2 ** shift);
  } else if (scaled < SUB_BUCKETS) {
    shift--;
    scaled = Math.floor(valueMicros / 2 ** shift);
  }
  return shift * SUB_BUCKETS + scaled;
}

/** The smallest value that falls in bucket `index`. */
export function bucketLowestMicros(index: number): number {
  if (index < SUB_BUCKETS) return index;
  const shift = Math.floor(index / SUB_BUCKETS) - 1;
  const scaled = index - shift * SUB_BUCKETS;
  return scaled * 2 ** shift;
}

/** The largest value that falls in bucket `index`. */
export function bucketHighestMicros(index: number): number {
  return bucketLowestMicros(index + 1) - 1;
}

export interface HistogramBin {
  /** Inclusive lower bound, microseconds. */
  fromMicros: number;
  /** Inclusive upper bound, microseconds. */
  toMicros: number;
  count: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  private total = 0;
  private sum = 0;
  private sumOfSquares = 0;
  private min = Infinity;
  private max = 0;

  /** Records one latency in microseconds (rounded to the nearest whole microsecond). */
  record(valueMicros: number): void {
    const value = Math.min(HISTOGRAM_VALUE_MAX_MICROS, Math.max(0, Math.round(valueMicros)));
    const index = bucketIndexOf(value);
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.total++;
    this.sum += value;
    this.sumOfSquares += value * value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  /** Adds every value of `other` to this histogram (for per-worker histograms merged at the end). */
  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const count = other.counts[i] as number;
      if (count > 0) this.counts[i] = (this.counts[i] as number) + count;
    }
    this.total += other.total;
    this.sum += other.sum;
    this.sumOfSquares += other.sumOfSquares;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  get count(): number {
    return this.total;
  }
  get minMicros(): number {
    return this.total === 0 ? 0 : this.min;
  }
  get maxMicros(): number {
    return this.max;
  }
  get meanMicros(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }
  get stddevMicros(): number {
    if (this.total === 0) return 0;
    const mean = this.meanMicros;
    return Math.sqrt(Math.max(0, this.sumOfSquares / this.total - mean * mean));
  }

  /**
   * The value at or below which `percentile` % of the recorded values lie, reported as the top of
   * its bucket (as HdrHistogram does), clamped to the exact min and max. 0 when empty.
   */
  percentileMicros(percentile: number): number {
    if (this.total === 0) return 0;
    if (percentile <= 0) return this.min;
    if (percentile >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((percentile / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, bucketHighestMicros(i)));
    }
    return this.max;
  }

  /**
   * Groups the counts into at most `binsMax` bins spaced evenly on a log scale between the min
   * and the max, for a text bar chart. Log spacing because latency tails are long: linear bins put
   * nearly everything in the first bar.
   */
  bins(binsMax: number): HistogramBin[] {
    if (this.total === 0) return [];
    const low = Math.max(1, this.min);
    const high = Math.max(low, this.max);
    const binCount = Math.max(1, Math.min(binsMax, high - low + 1));
    const ratio = (high + 1) / low;
    const edges: number[] = [];
    for (let b = 1; b < binCount; b++) edges.push(Math.round(low * ratio ** (b / binCount)));
    edges.push(high + 1);
    const bins: HistogramBin[] = [];
    let from = this.min;
    for (const edge of edges) {
      if (edge <= from) continue;
      bins.push({ fromMicros: from, toMicros: edge - 1, count: 0 });
      from = edge;
    }
    // Each bucket's counts go to the bin holding the bucket's lowest value (clamped to the min),
    // so the bins add up to the total exactly.
    let binIndex = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const count = this.counts[i] as number;
      if (count === 0) continue;
      const value = Math.max(this.min, bucketLowestMicros(i));
      while (binIndex < bins.length - 1 && value > (bins[binIndex] as HistogramBin).toMicros) binIndex++;
      (bins[binIndex] as HistogramBin).count += count;
    }
    return bins;
  }
}
