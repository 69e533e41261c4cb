// The load loop shared by every benchmark: N workers, each issuing one request at a time, until
// a request count or a deadline is reached, optionally under a global rate cap. It measures
// latency into log-linear histograms, counts errors, reports progress, and notes the CPU the
// benchmark process itself used, so a run where the tool is the bottleneck can be told apart.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { LatencyHistogram } from './histogram.js';
import type { ErrorSample, ProgressSnapshot, ToolUsage } from './report.js';

/** After this many failures in a row the run stops: the target is down, more requests prove nothing. */
export const CONSECUTIVE_ERRORS_MAX = 1_000;
/** Distinct error messages remembered; further kinds are counted under "other errors". */
const ERROR_KINDS_MAX = 16;
export const PROGRESS_INTERVAL_MS = 1_000;

export interface LoadSpec {
  kind: string;
  phase: 'preload' | 'measure';
  workers: number;
  total?: number;
  durationMs?: number;
  ratePerSecond?: number;
  /** Names of the operations (e.g. ["read", "write"]); the driver keeps one histogram per name. */
  operations: readonly string[];
  /** Chooses the operation of the next request (an index into `operations`). */
  pickOperation(): number;
  /** Sends one request and settles when it is answered. */
  issue(worker: number, operation: number): Promise<unknown>;
  signal?: AbortSignal;
  onProgress?: (snapshot: ProgressSnapshot) => void;
  progressIntervalMs?: number;
  /**
   * Called (phase 'measure' only) right before the first measured request and right after the
   * last one settles, so a caller can read the servers' CPU over exactly the measured requests: a
   * benchmark's unmeasured phases (10,000 lease grants and revokes, say) are not theirs.
   */
  onMeasured?: (edge: 'start' | 'end') => void;
}

export interface LoadOutcome {
  requests: number;
  errors: number;
  errorSamples: ErrorSample[];
  elapsedSeconds: number;
  histogram: LatencyHistogram;
  byOperation: Map<string, LatencyHistogram>;
  tool: ToolUsage;
  stoppedReason?: string;
}

/**
 * Spaces request starts 1/rate apart over all workers (one shared schedule, not one per worker).
 * An idle period does not bank credit: the schedule restarts from now, so no burst follows it.
 */
export class RateLimiter {
  private nextSlotMs = -Infinity;
  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** How long the caller must wait for its slot (0: go now). Reserves the slot. */
  reserveWaitMs(): number {
    const now = this.now();
    const slot = Math.max(now, this.nextSlotMs);
    this.nextSlotMs = slot + this.intervalMs;
    return slot - now;
  }

  /** Resolves at this request's slot; undefined when it may go at once (no timer, no promise). */
  take(): Promise<void> | undefined {
    const waitMs = this.reserveWaitMs();
    return waitMs >= 1 ? new Promise((resolve) => setTimeout(resolve, waitMs)) : undefined;
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'number' || typeof code === 'string' ? `${error.message} (code ${code})` : error.message;
  }
  return String(error);
}

export async function driveLoad(spec: LoadSpec): Promise<LoadOutcome> {
  const histogram = new LatencyHistogram();
  const byOperation = new Map(spec.operations.map((name) => [name, new LatencyHistogram()]));
  const operationHistograms = spec.operations.map((name) => byOperation.get(name) as LatencyHistogram);
  const errorCounts = new Map<string, number>();
  const limiter = spec.ratePerSecond === undefined ? undefined : new RateLimiter(1000 / spec.ratePerSecond);

  let issued = 0;
  let completed = 0;
  let errors = 0;
  let consecutiveErrors = 0;
  let stoppedReason: string | undefined;
  const startMs = performance.now();
  const deadlineMs = spec.durationMs === undefined ? Infinity : startMs + spec.durationMs;
  if (spec.phase === 'measure') spec.onMeasured?.('start');
  const cpuStart = process.cpuUsage();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  const noteError = (error: unknown): void => {
    errors++;
    consecutiveErrors++;
    const message = describeError(error);
    if (errorCounts.has(message) || errorCounts.size < ERROR_KINDS_MAX) {
      errorCounts.set(message, (errorCounts.get(message) ?? 0) + 1);
    } else {
      errorCounts.set('other errors', (errorCounts.get('other errors') ?? 0) + 1);
    }
    if (consecutiveErrors >= CONSECUTIVE_ERRORS_MAX && stoppedReason === undefined) {
      stoppedReason = `stopped after ${CONSECUTIVE_ERRORS_MAX} consecutive errors (last: ${message})`;
    }
  };

  const mayStart = (): boolean => {
    if (stoppedReason !== undefined) return false;
    if (spec.signal?.aborted) {
      stoppedReason = 'interrupted';
      return false;
    }
    if (spec.total !== undefined && issued >= spec.total) return false;
    return performance.now() < deadlineMs;
  };

  const worker = async (index: number): Promise<void> => {
    while (mayStart()) {
      issued++;
      const wait = limiter?.take();
      if (wait !== undefined) {
        await wait;
        // The slot may lie past the deadline; a request started then would stretch the run.
        if (performance.now() >= deadlineMs || spec.signal?.aborted) {
          issued--;
          break;
        }
      }
      const operation = spec.pickOperation();
      const sentMs = performance.now();
      try {
        await spec.issue(index, operation);
        const micros = (performance.now() - sentMs) * 1000;
        histogram.record(micros);
        (operationHistograms[operation] as LatencyHistogram).record(micros);
        completed++;
        consecutiveErrors = 0;
      } catch (error) {
        noteError(error);
      }
    }
  };

  let timer: NodeJS.Timeout | undefined;
  if (spec.onProgress !== undefined) {
    const report = spec.onProgress;
    let lastDone = 0;
    let lastMs = startMs;
    timer = setInterval(() => {
      const now = performance.now();
      const done = completed + errors;
      const fractions: number[] = [];
      if (spec.total !== undefined) fractions.push(done / spec.total);
      if (spec.durationMs !== undefined) fractions.push((now - startMs) / spec.durationMs);
      report({
        kind: spec.kind,
        phase: spec.phase,
        done: completed,
        errors,
        elapsedSeconds: (now - startMs) / 1000,
        recentPerSecond: ((done - lastDone) * 1000) / Math.max(1, now - lastMs),
        ...(fractions.length > 0 ? { fraction: Math.max(...fractions) } : {}),
        p99Ms: histogram.percentileMicros(99) / 1000,
      });
      lastDone = done;
      lastMs = now;
    }, spec.progressIntervalMs ?? PROGRESS_INTERVAL_MS);
    timer.unref();
  }

  try {
    await Promise.all(Array.from({ length: spec.workers }, (_unused, i) => worker(i)));
  } finally {
    if (timer !== undefined) clearInterval(timer);
    loopDelay.disable();
  }
  if (spec.phase === 'measure') spec.onMeasured?.('end');

  const elapsedMs = Math.max(0.001, performance.now() - startMs);
  const cpu = process.cpuUsage(cpuStart);
  const cpuMicros = cpu.user + cpu.system;
  const samples = [...errorCounts.entries()]
    .map(([message, count]) => ({ message, count }))
    .sort((a, b) => b.count - a.count);
  return {
    requests: completed,
    errors,
    errorSamples: samples,
    elapsedSeconds: elapsedMs / 1000,
    histogram,
    byOperation,
    tool: {
      cpuUserSeconds: cpu.user / 1e6,
      cpuSystemSeconds: cpu.system / 1e6,
      cpuPercentOfOneCore: (cpuMicros / 1000 / elapsedMs) * 100,
      cpuMicrosPerRequest: completed + errors === 0 ? 0 : cpuMicros / (completed + errors),
      // The monitor reports NaN-free values only after its first sample; an instant run has none.
      eventLoopDelayP99Ms: loopDelay.count > 0 ? loopDelay.percentile(99) / 1e6 : 0,
    },
    ...(stoppedReason !== undefined ? { stoppedReason } : {}),
  };
}
