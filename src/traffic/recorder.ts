// One member's request traffic, kept in memory with fixed bounds for the dashboard: per second,
// how many reads and writes it served and their latency percentiles (one hour of seconds), and
// which key prefixes they touched (the last ten minutes). Nothing here runs on a timer: a second
// is closed by the first record() or query that happens after it, so time is only what nowMs()
// says and tests drive it by hand.
import { assert } from '../errors.js';
import { trafficHeatSecondsMax, trafficPrefixBytesMax, trafficPrefixesMax, trafficSecondsMax } from '../limits.js';

export type TrafficKind = 'read' | 'write';

/**
 * Seconds of samples, column by column: entry i is the second `from + i` (Unix seconds). Latencies
 * are milliseconds, 0 for a second without requests of that kind.
 */
export interface TrafficSamples {
  from: number;
  reads: number[];
  writes: number[];
  readP50: number[];
  readP99: number[];
  writeP50: number[];
  writeP99: number[];
}

/** A prefix's reads and writes in one second. */
export type HeatCell = [prefix: string, reads: number, writes: number];

export interface HeatColumn {
  second: number;
  cells: HeatCell[];
  /**
   * More distinct prefixes than trafficPrefixesMax were seen this second: the counts are
   * Space-Saving estimates, each too high by at most the smallest count in the column.
   */
  approximate: boolean;
}

export const SAMPLE_FIELDS = ['reads', 'writes', 'readP50', 'readP99', 'writeP50', 'writeP99'] as const;

// Latency histogram of one second: bucket 0 holds latencies up to LATENCY_MIN_MS, bucket i > 0
// holds (MIN·2^((i-1)/S), MIN·2^(i/S)], so a percentile read back is within 9% (2^(1/8)) of the
// truth; 101 buckets reach 335 s.
const LATENCY_MIN_MS = 0.01;
const BUCKETS_PER_DOUBLING = 4;
const LATENCY_BUCKETS = 101;

export function latencyBucket(latencyMs: number): number {
  if (!(latencyMs > LATENCY_MIN_MS)) return 0;
  const bucket = Math.ceil(Math.log2(latencyMs / LATENCY_MIN_MS) * BUCKETS_PER_DOUBLING);
  return bucket < LATENCY_BUCKETS ? bucket : LATENCY_BUCKETS - 1;
}

/** The latency a bucket stands for: the geometric middle of its bounds. */
function bucketLatencyMs(bucket: number): number {
  return bucket === 0 ? LATENCY_MIN_MS : LATENCY_MIN_MS * 2 ** ((bucket - 0.5) / BUCKETS_PER_DOUBLING);
}

/** The q-quantile (0 < q ≤ 1) of a histogram holding `count` latencies; 0 when it is empty. */
export function percentileMs(histogram: Uint32Array, count: number, q: number): number {
  if (count === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * count));
  let seen = 0;
  for (let bucket = 0; bucket < histogram.length; bucket++) {
    seen += histogram[bucket]!;
    if (seen >= rank) return Math.round(bucketLatencyMs(bucket) * 1000) / 1000;
  }
  return bucketLatencyMs(histogram.length - 1);
}

const SLASH = 0x2f;

/**
 * The prefix a key's traffic is counted under: the key up to and including its second '/' (a
 * leading '/' does not count), so "/registry/pods/ns/name" counts as "/registry/pods/" and
 * "app/db/url" as "app/db/"; a key with one '/' counts under what comes before and at it ("app/");
 * a key with none counts as itself. Prefixes are at most trafficPrefixBytesMax bytes.
 */
export function keyPrefix(key: Uint8Array): string {
  const limit = Math.min(key.length, trafficPrefixBytesMax);
  let end = limit;
  let slashes = 0;
  for (let i = 1; i < limit; i++) {
    if (key[i] === SLASH) {
      end = i + 1;
      if (++slashes === 2) break;
    }
  }
  return Buffer.from(key.buffer, key.byteOffset, end).toString('utf8');
}

class SecondAccumulator {
  second = -1;
  reads = 0;
  writes = 0;
  readonly readLatency = new Uint32Array(LATENCY_BUCKETS);
  readonly writeLatency = new Uint32Array(LATENCY_BUCKETS);
  /** prefix → [reads, writes], at most prefixesMax entries (Space-Saving when more arrive). */
  readonly heat = new Map<string, [number, number]>();
  evictions = 0;

  reset(second: number): void {
    this.second = second;
    this.reads = 0;
    this.writes = 0;
    this.readLatency.fill(0);
    this.writeLatency.fill(0);
    this.heat.clear();
    this.evictions = 0;
  }
}

export interface TrafficRecorderOptions {
  /** Wall-clock milliseconds (Unix epoch); seconds are numbered from it. */
  nowMs: () => number;
  /** Seconds of rate and latency samples kept. Default trafficSecondsMax (one hour). */
  secondsMax?: number;
  /** Seconds of per-prefix counts kept. Default trafficHeatSecondsMax. */
  heatSecondsMax?: number;
  /** Prefixes counted per second. Default trafficPrefixesMax. */
  prefixesMax?: number;
}

export class TrafficRecorder {
  private readonly nowMs: () => number;
  private readonly secondsMax: number;
  private readonly heatSecondsMax: number;
  private readonly prefixesMax: number;
  /** Ring of closed seconds: slot s % secondsMax holds second s when slotSecond says so. */
  private readonly slotSecond: Float64Array;
  private readonly columns: Record<(typeof SAMPLE_FIELDS)[number], Float64Array>;
  private readonly heatColumns: Array<HeatColumn | undefined>;
  private readonly current = new SecondAccumulator();
  /** Seconds before this one were not observed, so they are not reported as idle. */
  private readonly startSecond: number;

  constructor(options: TrafficRecorderOptions) {
    this.nowMs = options.nowMs;
    this.secondsMax = options.secondsMax ?? trafficSecondsMax;
    this.heatSecondsMax = options.heatSecondsMax ?? trafficHeatSecondsMax;
    this.prefixesMax = options.prefixesMax ?? trafficPrefixesMax;
    assert(this.secondsMax >= 1 && this.heatSecondsMax >= 1 && this.prefixesMax >= 1, 'traffic recorder bounds must be positive');
    this.slotSecond = new Float64Array(this.secondsMax).fill(-1);
    this.columns = Object.fromEntries(SAMPLE_FIELDS.map((f) => [f, new Float64Array(this.secondsMax)])) as TrafficRecorder['columns'];
    this.heatColumns = new Array<HeatColumn | undefined>(this.heatSecondsMax);
    this.startSecond = this.nowSecond();
    this.current.reset(this.startSecond);
  }

  /** The current Unix second by the injected clock. */
  nowSecond(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  /** Counts one request that touched `key` and took `latencyMs`. Runs on every request: keep it cheap. */
  record(kind: TrafficKind, key: Uint8Array, latencyMs: number): void {
    const current = this.current;
    const second = Math.floor(this.nowMs() / 1000);
    if (second !== current.second) this.close(second);
    if (kind === 'read') {
      current.reads++;
      current.readLatency[latencyBucket(latencyMs)]!++;
    } else {
      current.writes++;
      current.writeLatency[latencyBucket(latencyMs)]!++;
    }
    const prefix = keyPrefix(key);
    let cell = current.heat.get(prefix);
    if (cell === undefined) {
      cell = current.heat.size < this.prefixesMax ? [0, 0] : this.evictSmallest();
      current.heat.set(prefix, cell);
    }
    cell[kind === 'read' ? 0 : 1]++;
  }

  /**
   * Space-Saving (Metwally et al., 2005): the new prefix takes over the counts of the smallest
   * one, so a prefix that is hot keeps its place while cold ones come and go. The scan is over
   * prefixesMax entries and happens only when a second sees more distinct prefixes than that.
   */
  private evictSmallest(): [number, number] {
    let smallestPrefix = '';
    let smallest: [number, number] | undefined;
    for (const [prefix, cell] of this.current.heat) {
      if (smallest === undefined || cell[0] + cell[1] < smallest[0] + smallest[1]) {
        smallest = cell;
        smallestPrefix = prefix;
      }
    }
    this.current.heat.delete(smallestPrefix);
    this.current.evictions++;
    return smallest!;
  }

  /** Moves the second being counted into the rings and starts counting `second`. */
  private close(second: number): void {
    const current = this.current;
    if (current.reads + current.writes > 0) {
      const slot = current.second % this.secondsMax;
      this.slotSecond[slot] = current.second;
      const c = this.columns;
      c.reads[slot] = current.reads;
      c.writes[slot] = current.writes;
      c.readP50[slot] = percentileMs(current.readLatency, current.reads, 0.5);
      c.readP99[slot] = percentileMs(current.readLatency, current.reads, 0.99);
      c.writeP50[slot] = percentileMs(current.writeLatency, current.writes, 0.5);
      c.writeP99[slot] = percentileMs(current.writeLatency, current.writes, 0.99);
      this.heatColumns[current.second % this.heatSecondsMax] = {
        second: current.second,
        cells: [...current.heat].map(([prefix, [reads, writes]]) => [prefix, reads, writes]),
        approximate: current.evictions > 0,
      };
    }
    current.reset(second);
  }

  /** Closes the counted second when the clock has moved past it; returns the current second. */
  private closePassedSecond(): number {
    const now = this.nowSecond();
    if (now !== this.current.second) this.close(now);
    return now;
  }

  /** Samples of the closed seconds after `since` (at most secondsMax of them, the newest). */
  samplesSince(since: number): TrafficSamples {
    const now = this.closePassedSecond();
    const from = Math.max(since + 1, now - this.secondsMax, this.startSecond);
    const samples: TrafficSamples = { from, reads: [], writes: [], readP50: [], readP99: [], writeP50: [], writeP99: [] };
    for (let second = from; second < now; second++) {
      const slot = second % this.secondsMax;
      const held = this.slotSecond[slot] === second;
      for (const field of SAMPLE_FIELDS) samples[field].push(held ? this.columns[field][slot]! : 0);
    }
    return samples;
  }

  /** Per-prefix counts of the closed seconds after `since` that had traffic, oldest first. */
  heatSince(since: number): HeatColumn[] {
    const now = this.closePassedSecond();
    const columns: HeatColumn[] = [];
    for (let second = Math.max(since + 1, now - this.heatSecondsMax, this.startSecond); second < now; second++) {
      const column = this.heatColumns[second % this.heatSecondsMax];
      if (column?.second === second) columns.push(column);
    }
    return columns;
  }
}
