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
  /** The prefixes counted this second, busiest first. */
  cells: HeatCell[];
  /** Requests on prefixes beyond the trafficPrefixesMax counted this second: [reads, writes]. */
  other: [reads: number, writes: number];
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
 * Where a key's prefix ends: after its second '/' (a leading '/' does not count), so
 * "/registry/pods/ns/name" counts as "/registry/pods/" and "app/db/url" as "app/db/"; a key with one
 * '/' counts under what comes before and at it ("app/"); a key with none counts as itself.
 * Prefixes are at most trafficPrefixBytesMax bytes.
 */
function prefixEnd(key: Uint8Array): number {
  const limit = Math.min(key.length, trafficPrefixBytesMax);
  let end = limit;
  let slashes = 0;
  for (let i = 1; i < limit; i++) {
    if (key[i] === SLASH) {
      end = i + 1;
      if (++slashes === 2) break;
    }
  }
  return end;
}

/** The prefix a key's traffic is counted under (see prefixEnd), as text. */
export function keyPrefix(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, prefixEnd(key)).toString('utf8');
}

/** A prefix's counts in the second being counted, found by a hash of its bytes. */
interface PrefixCell {
  bytes: Uint8Array;
  reads: number;
  writes: number;
}

/**
 * FNV-1a over the first `end` bytes, so no string is made per request (measured: making the
 * prefix's string cost more than the rest of record()).
 */
function hashBytes(key: Uint8Array, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < end; i++) hash = Math.imul(hash ^ key[i]!, 0x01000193);
  return hash >>> 0;
}

function startsWith(key: Uint8Array, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (key[i] !== bytes[i]) return false;
  return true;
}

class SecondAccumulator {
  second = -1;
  reads = 0;
  writes = 0;
  readonly readLatency = new Uint32Array(LATENCY_BUCKETS);
  readonly writeLatency = new Uint32Array(LATENCY_BUCKETS);
  /** Prefixes counted this second by hash, at most prefixesMax; the rest go to `other`. */
  readonly heat = new Map<number, PrefixCell>();
  readonly other: [number, number] = [0, 0];

  reset(second: number): void {
    this.second = second;
    this.reads = 0;
    this.writes = 0;
    this.readLatency.fill(0);
    this.writeLatency.fill(0);
    this.other[0] = this.other[1] = 0;
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
    const end = prefixEnd(key);
    const hash = hashBytes(key, end);
    let cell = current.heat.get(hash);
    if (cell === undefined && current.heat.size < this.prefixesMax) {
      cell = { bytes: key.slice(0, end), reads: 0, writes: 0 };
      current.heat.set(hash, cell);
    }
    // A second prefix with the same 32-bit hash (rare) is counted with the others.
    if (cell === undefined || cell.bytes.length !== end || !startsWith(key, cell.bytes)) {
      current.other[kind === 'read' ? 0 : 1]++;
    } else if (kind === 'read') {
      cell.reads++;
    } else {
      cell.writes++;
    }
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
      this.heatColumns[current.second % this.heatSecondsMax] = this.heatColumn(current);
    }
    this.keepBusiestPrefixes(current);
    current.reset(second);
  }

  private heatColumn(current: SecondAccumulator): HeatColumn {
    const cells: HeatCell[] = [];
    for (const cell of current.heat.values()) {
      if (cell.reads + cell.writes > 0) cells.push([Buffer.from(cell.bytes).toString('utf8'), cell.reads, cell.writes]);
    }
    cells.sort((a, b) => b[1] + b[2] - (a[1] + a[2]));
    return { second: current.second, cells, other: [current.other[0], current.other[1]] };
  }

  /**
   * The next second starts with the busiest half of this second's prefixes already in place (at
   * zero), so a hot prefix keeps its place however many others come first; the other half of the
   * places go to the first new prefixes of the second. A record() never does more than a lookup.
   */
  private keepBusiestPrefixes(current: SecondAccumulator): void {
    const busiest = [...current.heat]
      .filter(([, cell]) => cell.reads + cell.writes > 0)
      .sort(([, a], [, b]) => b.reads + b.writes - (a.reads + a.writes))
      .slice(0, Math.floor(this.prefixesMax / 2));
    current.heat.clear();
    for (const [hash, cell] of busiest) current.heat.set(hash, { bytes: cell.bytes, reads: 0, writes: 0 });
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
