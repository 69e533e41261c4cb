// runBench: one etcd v3 benchmark run (put, range, txn, mixed) from options to a BenchResult.
// Channels are opened once and shared by the workers; each request allocates only its message.
import { setTimeout as sleep } from 'node:timers/promises';
import { openKvChannels, findLeaderEndpoint, type EndpointStatus, type KvChannel } from './connections.js';
import { driveLoad, type LoadOutcome } from './driver.js';
import { makeValue, rangeOfKeys, randomKeyPicker, sequentialKeyPicker, type KeyPicker } from './keys.js';
import { runLeaseKeepAliveBench, runWatchBench } from './streams.js';
import { validateBenchOptions, type BenchOptions } from './options.js';
import { histogramBars, summarizeLatency, type BenchResult, type ProgressSnapshot } from './report.js';
import { LichenError, ErrorCode } from '../errors.js';
import type { ClientTls } from '../client/tls.js';

/** Compare.CompareResult EQUAL and NOT_EQUAL, Compare.CompareTarget VERSION and MOD in rpc.proto. */
const COMPARE_EQUAL = 0;
const COMPARE_NOT_EQUAL = 3;
const COMPARE_TARGET_VERSION = 0;
const COMPARE_TARGET_MOD = 2;
/** Leader discovery retries while an election may be under way. */
const LEADER_ATTEMPTS_MAX = 20;
const LEADER_RETRY_DELAY_MS = 250;

export interface RunControls {
  signal?: AbortSignal;
  onProgress?: (snapshot: ProgressSnapshot) => void;
  progressIntervalMs?: number;
  /** See LoadSpec.onMeasured: the edges of the measured requests. */
  onMeasured?: (edge: 'start' | 'end') => void;
}

/** Finds the leader among the endpoints, retrying for a few seconds while there is none. */
export async function resolveLeader(endpoints: readonly string[], signal?: AbortSignal, tls?: ClientTls): Promise<string> {
  let lastProblem = 'no endpoint reported a leader';
  for (let attempt = 0; attempt < LEADER_ATTEMPTS_MAX; attempt++) {
    if (signal?.aborted) break;
    const { leader, statuses } = await findLeaderEndpoint(endpoints, undefined, tls);
    if (leader !== undefined) return leader;
    if (statuses.every((s) => s.error !== undefined)) throw unreachable(statuses);
    lastProblem = 'no endpoint reported a leader that is itself among the endpoints (is the leader missing from --endpoints?)';
    await sleep(LEADER_RETRY_DELAY_MS);
  }
  throw new LichenError(ErrorCode.Unavailable, `cannot find the leader: ${lastProblem}`);
}

/** The CLI's "cluster unavailable" error (exit 3): one sentence, every endpoint and why it failed. */
function unreachable(statuses: readonly EndpointStatus[]): LichenError {
  const why = statuses.map((s) => `${s.endpoint} ${s.error ?? 'answered'}`).join('; ');
  return new LichenError(ErrorCode.Unavailable, `cannot reach the cluster: ${why}`, { clusterUnavailable: true });
}

/** A benchmark of a cluster nobody answers for measures nothing: say so before starting. */
async function checkReachable(endpoints: readonly string[], tls: ClientTls | undefined): Promise<void> {
  const { statuses } = await findLeaderEndpoint(endpoints, undefined, tls);
  if (statuses.every((s) => s.error !== undefined)) throw unreachable(statuses);
}

/** The request sent for each benchmark kind, built from a key (the value is shared). */
function requestBuilders(options: BenchOptions, value: Buffer) {
  const serializable = options.consistency === 's';
  return {
    put: (key: Buffer) => ({ key, value }),
    range: (key: Buffer) => ({ key, serializable }),
    rangeOfKeys: (start: number) => ({ ...rangeOfKeys(start, options.rangeKeys, options.keySpaceSize, options.keySizeBytes), serializable }),
    // Like etcd's txn-put: one compare on the key's version (always true here, so the success
    // branch runs and every txn writes) and one put.
    txn: (key: Buffer) => ({
      compare: [{ result: COMPARE_NOT_EQUAL, target: COMPARE_TARGET_VERSION, key, version: '-1' }],
      success: [{ request_put: { key, value } }],
      failure: [],
    }),
    // Compare-and-swap: the put happens only if nobody wrote the key since it was read.
    cas: (key: Buffer, modRevision: string) => ({
      compare: [{ result: COMPARE_EQUAL, target: COMPARE_TARGET_MOD, key, mod_revision: modRevision }],
      success: [{ request_put: { key, value } }],
      failure: [],
    }),
  };
}

function settingsOf(options: BenchOptions): Record<string, string | number | boolean> {
  const settings: Record<string, string | number | boolean> = {
    clients: options.clients,
    conns: options.conns,
    keySize: options.keySizeBytes,
    valSize: options.valueSizeBytes,
    keySpaceSize: options.keySpaceSize,
    sequentialKeys: options.sequentialKeys,
    targetLeader: options.targetLeader,
  };
  if (options.total !== undefined) settings.total = options.total;
  if (options.durationMs !== undefined) settings.durationSeconds = options.durationMs / 1000;
  if (options.kind === 'range' || options.kind === 'mixed') settings.consistency = options.consistency;
  if (options.kind === 'range') settings.rangeKeys = options.rangeKeys;
  if (options.kind === 'watch') Object.assign(settings, { watchers: options.watchers, streams: options.watchStreams });
  if (options.kind === 'lease-keepalive') settings.leases = options.leases;
  if (options.kind === 'mixed') settings.readRatio = options.readRatio;
  if (options.ratePerSecond !== undefined) settings.rate = options.ratePerSecond;
  return settings;
}

/** Writes every key of the key space once, with all clients, unmeasured. */
async function preloadKeys(options: BenchOptions, channels: KvChannel[], value: Buffer, controls: RunControls): Promise<number> {
  const picker = sequentialKeyPicker(options.keySpaceSize, options.keySizeBytes);
  const outcome = await driveLoad({
    kind: options.kind,
    phase: 'preload',
    workers: Math.min(options.clients, options.keySpaceSize),
    total: options.keySpaceSize,
    operations: ['put'],
    pickOperation: () => 0,
    issue: (worker) =>
      (channels[worker % channels.length] as KvChannel).put({ key: picker.next(), value }, options.requestTimeoutMs),
    ...controls,
  });
  if (outcome.errors > 0) {
    const first = outcome.errorSamples[0]?.message ?? 'unknown error';
    throw new LichenError(ErrorCode.Unavailable, `preload failed: ${outcome.errors} of ${options.keySpaceSize} puts failed (${first})`);
  }
  return outcome.requests;
}

export async function runBench(options: BenchOptions, controls: RunControls = {}): Promise<BenchResult> {
  validateBenchOptions(options);
  const startedAt = new Date().toISOString();
  const leaderEndpoint = options.targetLeader ? await resolveLeader(options.endpoints, controls.signal, options.tls) : undefined;
  if (leaderEndpoint === undefined) await checkReachable(options.endpoints, options.tls);
  const targets = leaderEndpoint !== undefined ? [leaderEndpoint] : options.endpoints;
  const channels = openKvChannels(targets, options.conns, options.tls);
  try {
    const value = makeValue(options.valueSizeBytes);
    const preloaded = options.preload ? await preloadKeys(options, channels, value, controls) : 0;
    const picker: KeyPicker = options.sequentialKeys
      ? sequentialKeyPicker(options.keySpaceSize, options.keySizeBytes)
      : randomKeyPicker(options.keySpaceSize, options.keySizeBytes);
    const build = requestBuilders(options, value);
    const timeoutMs = options.requestTimeoutMs;
    const channelOf = (worker: number) => channels[worker % channels.length] as KvChannel;

    let outcome: LoadOutcome;
    let extra: Pick<BenchResult, 'watch' | 'cas' | 'leases'> = {};
    const common = {
      kind: options.kind,
      phase: 'measure' as const,
      workers: options.clients,
      ...(options.total !== undefined ? { total: options.total } : {}),
      ...(options.durationMs !== undefined ? { durationMs: options.durationMs } : {}),
      ...(options.ratePerSecond !== undefined ? { ratePerSecond: options.ratePerSecond } : {}),
      ...controls,
    };
    switch (options.kind) {
      case 'put':
        outcome = await driveLoad({
          ...common,
          operations: ['put'],
          pickOperation: () => 0,
          issue: (w) => channelOf(w).put(build.put(picker.next()), timeoutMs),
        });
        break;
      case 'range': {
        const starts = options.keySpaceSize - options.rangeKeys + 1;
        outcome = await driveLoad({
          ...common,
          operations: ['range'],
          pickOperation: () => 0,
          issue:
            options.rangeKeys === 1
              ? (w) => channelOf(w).range(build.range(picker.next()), timeoutMs)
              : (w) => channelOf(w).range(build.rangeOfKeys(Math.floor(Math.random() * starts)), timeoutMs),
        });
        break;
      }
      case 'txn':
        outcome = await driveLoad({
          ...common,
          operations: ['txn'],
          pickOperation: () => 0,
          issue: (w) => channelOf(w).txn(build.txn(picker.next()), timeoutMs),
        });
        break;
      case 'txn-cas': {
        const cas = { committed: 0, conflicts: 0 };
        outcome = await driveLoad({
          ...common,
          operations: ['cas'],
          pickOperation: () => 0,
          issue: async (w) => {
            const key = picker.next();
            const read = (await channelOf(w).range(build.range(key), timeoutMs)) as { kvs: Array<{ mod_revision: string }> };
            const answer = (await channelOf(w).txn(build.cas(key, read.kvs[0]?.mod_revision ?? '0'), timeoutMs)) as { succeeded: boolean };
            if (answer.succeeded) cas.committed++;
            else cas.conflicts++;
          },
        });
        extra = { cas };
        break;
      }
      case 'watch': {
        const run = await runWatchBench(options, channels, targets, common, value);
        outcome = run.outcome;
        extra = { watch: run.watch };
        break;
      }
      case 'lease-keepalive': {
        const run = await runLeaseKeepAliveBench(options, targets, common);
        outcome = run.outcome;
        extra = { leases: run.granted };
        break;
      }
      case 'mixed': {
        const readRatio = options.readRatio;
        outcome = await driveLoad({
          ...common,
          operations: ['read', 'write'],
          pickOperation: () => (Math.random() < readRatio ? 0 : 1),
          issue: (w, op) =>
            op === 0 ? channelOf(w).range(build.range(picker.next()), timeoutMs) : channelOf(w).put(build.put(picker.next()), timeoutMs),
        });
        break;
      }
    }
    return buildResult({
      kind: options.kind,
      startedAt,
      endpoints: targets,
      ...(leaderEndpoint !== undefined ? { leaderEndpoint } : {}),
      settings: settingsOf(options),
      preloadedKeys: preloaded,
      outcome,
      perOperation: options.kind === 'mixed',
      extra,
    });
  } finally {
    for (const channel of channels) channel.close();
  }
}

export interface ResultParts {
  kind: string;
  startedAt: string;
  endpoints: string[];
  leaderEndpoint?: string;
  settings: Record<string, string | number | boolean>;
  preloadedKeys: number;
  outcome: LoadOutcome;
  perOperation: boolean;
  /** The figures only some benchmarks have (watch delivery, compare-and-swap outcomes). */
  extra?: Pick<BenchResult, 'watch' | 'cas' | 'leases'>;
}

export function buildResult(parts: ResultParts): BenchResult {
  const { outcome } = parts;
  const result: BenchResult = {
    kind: parts.kind,
    startedAt: parts.startedAt,
    endpoints: parts.endpoints,
    ...(parts.leaderEndpoint !== undefined ? { leaderEndpoint: parts.leaderEndpoint } : {}),
    settings: parts.settings,
    requests: outcome.requests,
    errors: outcome.errors,
    errorSamples: outcome.errorSamples,
    elapsedSeconds: round(outcome.elapsedSeconds, 4),
    throughputPerSecond: round(outcome.requests / outcome.elapsedSeconds, 1),
    latency: summarizeLatency(outcome.histogram),
    histogram: histogramBars(outcome.histogram),
    preloadedKeys: parts.preloadedKeys,
    tool: {
      cpuUserSeconds: round(outcome.tool.cpuUserSeconds, 3),
      cpuSystemSeconds: round(outcome.tool.cpuSystemSeconds, 3),
      cpuPercentOfOneCore: round(outcome.tool.cpuPercentOfOneCore, 1),
      cpuMicrosPerRequest: round(outcome.tool.cpuMicrosPerRequest, 1),
      eventLoopDelayP99Ms: round(outcome.tool.eventLoopDelayP99Ms, 3),
    },
    ...(outcome.stoppedReason !== undefined ? { stoppedReason: outcome.stoppedReason } : {}),
    ...parts.extra,
  };
  if (parts.perOperation) {
    result.operations = Object.fromEntries([...outcome.byOperation].map(([name, h]) => [name, summarizeLatency(h)]));
  }
  return result;
}

function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}

