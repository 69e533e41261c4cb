// The result of a benchmark run: its JSON shape (stable: scripts and the compare tool read it),
// the human summary in the spirit of etcd's benchmark tool, and the progress line.
import type { LatencyHistogram } from './histogram.js';

export interface LatencySummary {
  count: number;
  averageMs: number;
  stddevMs: number;
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface HistogramBar {
  fromMs: number;
  toMs: number;
  count: number;
}

export interface ErrorSample {
  message: string;
  count: number;
}

export interface ToolUsage {
  /** CPU the benchmark process used while measuring. */
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  /** (user + system) / elapsed, in % of one core: near 100 means the tool itself is the bottleneck. */
  cpuPercentOfOneCore: number;
  cpuMicrosPerRequest: number;
  /** p99 of the tool's event-loop delay: high values mean latencies include the tool's own queueing. */
  eventLoopDelayP99Ms: number;
}

export interface WatchFigures {
  watchers: number;
  streams: number;
  /** Events the watchers should have received: puts acknowledged × watchers. */
  eventsExpected: number;
  eventsReceived: number;
  /** Events received per second, from the first put sent to the last event received. */
  eventsPerSecond: number;
  /** From a put's send to a watcher's receipt of its event. */
  delivery: LatencySummary;
}

export interface BenchResult {
  /** put, range, txn, mixed, or http-put. */
  kind: string;
  startedAt: string;
  /** The endpoints requests went to (only the leader's with --target-leader). */
  endpoints: string[];
  leaderEndpoint?: string;
  settings: Record<string, string | number | boolean>;
  requests: number;
  errors: number;
  errorSamples: ErrorSample[];
  elapsedSeconds: number;
  /** Successful requests per second of elapsed time. */
  throughputPerSecond: number;
  latency: LatencySummary;
  histogram: HistogramBar[];
  /** Mixed runs: reads and writes measured separately as well. */
  operations?: Record<string, LatencySummary>;
  preloadedKeys: number;
  tool: ToolUsage;
  /** Set when the run ended before its total or duration (interrupted, or the target failed). */
  stoppedReason?: string;
  /** bench watch: what the watchers received (the requests above are the puts). */
  watch?: WatchFigures;
  /** bench txn-cas: attempts whose compare held (the put happened) and attempts that lost a race. */
  cas?: { committed: number; conflicts: number };
  /** bench lease-keepalive: the leases granted (and revoked at the end). */
  leases?: number;
}

const MICROS_PER_MS = 1000;

function ms(micros: number): number {
  return Math.round(micros) / MICROS_PER_MS;
}

export function summarizeLatency(histogram: LatencyHistogram): LatencySummary {
  return {
    count: histogram.count,
    averageMs: round3(histogram.meanMicros / MICROS_PER_MS),
    stddevMs: round3(histogram.stddevMicros / MICROS_PER_MS),
    minMs: ms(histogram.minMicros),
    p50Ms: ms(histogram.percentileMicros(50)),
    p90Ms: ms(histogram.percentileMicros(90)),
    p99Ms: ms(histogram.percentileMicros(99)),
    p999Ms: ms(histogram.percentileMicros(99.9)),
    maxMs: ms(histogram.maxMicros),
  };
}

export const HISTOGRAM_BARS = 12;

export function histogramBars(histogram: LatencyHistogram, bars = HISTOGRAM_BARS): HistogramBar[] {
  return histogram.bins(bars).map((b) => ({ fromMs: ms(b.fromMicros), toMs: ms(b.toMicros), count: b.count }));
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Milliseconds with 3 significant decimals, aligned. */
function fmtMs(value: number): string {
  return `${value.toFixed(3)} ms`;
}

const BAR_WIDTH_MAX = 40;

/** The human summary printed at the end of a run. */
export function formatSummary(result: BenchResult): string {
  const lines: string[] = [];
  const l = result.latency;
  lines.push(`Benchmark: ${result.kind} → ${result.endpoints.join(',')}${result.leaderEndpoint ? ' (leader)' : ''}`);
  lines.push(`Settings: ${Object.entries(result.settings).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (result.preloadedKeys > 0) lines.push(`Preloaded keys: ${result.preloadedKeys}`);
  lines.push('', 'Summary:');
  lines.push(`  Total:        ${result.elapsedSeconds.toFixed(4)} s`);
  lines.push(`  Requests:     ${result.requests}`);
  lines.push(`  Errors:       ${result.errors}`);
  lines.push(`  Slowest:      ${fmtMs(l.maxMs)}`);
  lines.push(`  Fastest:      ${fmtMs(l.minMs)}`);
  lines.push(`  Average:      ${fmtMs(l.averageMs)}`);
  lines.push(`  Stddev:       ${fmtMs(l.stddevMs)}`);
  lines.push(`  Requests/sec: ${result.throughputPerSecond.toFixed(1)}`);

  if (result.histogram.length > 0) {
    lines.push('', 'Response time histogram (ms):');
    const most = Math.max(...result.histogram.map((b) => b.count));
    const labels = result.histogram.map((b) => `${b.fromMs.toFixed(3)} - ${b.toMs.toFixed(3)}`);
    const labelWidth = Math.max(...labels.map((s) => s.length));
    const countWidth = Math.max(...result.histogram.map((b) => String(b.count).length));
    result.histogram.forEach((bar, i) => {
      const width = most === 0 ? 0 : Math.round((bar.count / most) * BAR_WIDTH_MAX);
      const mark = bar.count > 0 && width === 0 ? '▏' : '∎'.repeat(width);
      lines.push(`  ${(labels[i] as string).padStart(labelWidth)} [${String(bar.count).padStart(countWidth)}] |${mark}`);
    });
  }

  lines.push('', 'Latency distribution:');
  for (const [label, value] of [
    ['50%', l.p50Ms],
    ['90%', l.p90Ms],
    ['99%', l.p99Ms],
    ['99.9%', l.p999Ms],
    ['max', l.maxMs],
  ] as const) {
    lines.push(`  ${label.padStart(5)} in ${fmtMs(value)}`);
  }

  if (result.operations) {
    lines.push('', 'By operation:');
    for (const [name, op] of Object.entries(result.operations)) {
      lines.push(
        `  ${name.padEnd(6)} ${String(op.count).padStart(8)} req  avg ${fmtMs(op.averageMs)}  p50 ${fmtMs(op.p50Ms)}  p99 ${fmtMs(op.p99Ms)}`,
      );
    }
  }

  if (result.watch) {
    const w = result.watch;
    lines.push('', `Watch: ${w.watchers} watchers on ${w.streams} streams`);
    lines.push(`  Events:       ${w.eventsReceived} of ${w.eventsExpected} received, ${w.eventsPerSecond} events/sec`);
    lines.push(`  Delivery:     p50 ${fmtMs(w.delivery.p50Ms)}  p99 ${fmtMs(w.delivery.p99Ms)}  max ${fmtMs(w.delivery.maxMs)} (put sent → event received)`);
  }
  if (result.cas) {
    const attempts = result.cas.committed + result.cas.conflicts;
    const share = attempts === 0 ? 0 : (result.cas.conflicts / attempts) * 100;
    lines.push('', `Compare-and-swap: ${result.cas.committed} committed, ${result.cas.conflicts} lost a race (${share.toFixed(1)}%)`);
  }
  if (result.leases !== undefined) lines.push('', `Leases: ${result.leases} granted, kept alive round robin, revoked at the end`);

  if (result.stoppedReason !== undefined) lines.push('', `Stopped early: ${result.stoppedReason}`);

  if (result.errorSamples.length > 0) {
    lines.push('', 'Errors:');
    for (const sample of result.errorSamples) lines.push(`  ${String(sample.count).padStart(8)} × ${sample.message}`);
  }

  const t = result.tool;
  lines.push(
    '',
    `Tool: ${t.cpuPercentOfOneCore.toFixed(0)}% of one core (user ${t.cpuUserSeconds.toFixed(2)} s, system ${t.cpuSystemSeconds.toFixed(2)} s, ` +
      `${t.cpuMicrosPerRequest.toFixed(0)} µs CPU/request), event-loop delay p99 ${fmtMs(t.eventLoopDelayP99Ms)}`,
  );
  if (t.cpuPercentOfOneCore >= 90) {
    lines.push('  Warning: the benchmark process is near one full core; it may be the bottleneck, not the server.');
  }
  return lines.join('\n') + '\n';
}

/** One JSON object on one line. */
export function formatJson(result: BenchResult): string {
  return JSON.stringify(result) + '\n';
}

export interface ProgressSnapshot {
  kind: string;
  phase: 'preload' | 'measure';
  done: number;
  errors: number;
  elapsedSeconds: number;
  /** Requests per second over the last interval. */
  recentPerSecond: number;
  /** Fraction done when a total or a duration is known (0..1). */
  fraction?: number;
  p99Ms: number;
}

/** A single line, meant to be rewritten in place with \r on a terminal. */
export function formatProgress(p: ProgressSnapshot): string {
  const percent = p.fraction === undefined ? '' : ` ${(Math.min(1, p.fraction) * 100).toFixed(0).padStart(3)}%`;
  const latency = p.phase === 'measure' ? `  p99 ${p.p99Ms.toFixed(2)} ms` : '';
  return (
    `${p.kind} ${p.phase}${percent}  ${p.done} req  ${p.recentPerSecond.toFixed(0)} req/s` +
    `${latency}  ${p.errors} err  ${p.elapsedSeconds.toFixed(1)} s`
  );
}
