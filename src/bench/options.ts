// The settings of one benchmark run, their defaults (etcd's benchmark tool's where it has one),
// the command-line flags that set them, and the checks that reject impossible combinations
// before any connection is opened.
import { UsageError, type FlagSpec, type ParsedArgs } from '../cli/args.js';
import { CLIENT_FLAGS, resolveClientTls, TLS_FLAG_ENV } from '../cli/client-commands.js';
import type { ClientTls } from '../client/tls.js';

export const BENCH_KINDS = ['put', 'range', 'txn', 'mixed', 'watch', 'lease-keepalive', 'txn-cas'] as const;
export type BenchKind = (typeof BENCH_KINDS)[number];

export type Consistency = 'l' | 's';
export type OutputFormat = 'simple' | 'json';

export interface BenchOptions {
  kind: BenchKind;
  /** host:port of each etcd v3 gRPC endpoint; connections are spread over them in order. */
  endpoints: string[];
  /** Requests in flight at once (one sequential worker each). */
  clients: number;
  /** gRPC channels (TCP connections); client i uses channel i mod conns. */
  conns: number;
  /** Stop after this many requests. With durationMs too, whichever comes first. */
  total?: number;
  /** Stop issuing requests after this long (requests in flight still complete). */
  durationMs?: number;
  keySizeBytes: number;
  valueSizeBytes: number;
  /** Keys are drawn from [0, keySpaceSize). */
  keySpaceSize: number;
  /** Walk the key space in order instead of drawing keys at random. */
  sequentialKeys: boolean;
  /** Ranges: l = linearizable, s = serializable. */
  consistency: Consistency;
  /** Find the leader with Maintenance.Status and send every request to it. */
  targetLeader: boolean;
  /** Cap on requests per second over all clients; undefined = as fast as possible. */
  ratePerSecond?: number;
  /** Mixed: the share of requests that are ranges, 0..1. */
  readRatio: number;
  /** Write every key of the key space once before measuring (ranges then find data). */
  preload: boolean;
  /** A request that takes longer than this fails with DEADLINE_EXCEEDED. */
  requestTimeoutMs: number;
  /** Range: keys each range reads, consecutive from a random start (1: a single-key get). */
  rangeKeys: number;
  /** Watch: watchers on the whole key space, spread over `watchStreams` Watch streams. */
  watchers: number;
  watchStreams: number;
  /** Lease-keepalive: leases granted before measuring and kept alive round robin. */
  leases: number;
  /** TLS towards the endpoints (etcd's benchmark takes --cacert, --cert, --key too); cleartext when absent. */
  tls?: ClientTls;
}

export const BENCH_DEFAULTS = {
  endpoints: ['127.0.0.1:2379'],
  clients: 1,
  conns: 1,
  total: 10_000,
  keySizeBytes: 8,
  valueSizeBytes: 8,
  keySpaceSize: 1,
  readRatio: 0.5,
  requestTimeoutMs: 10_000,
  rangeKeys: 1,
  watchers: 1_000,
  watchStreams: 10,
  leases: 10_000,
} as const;

/** Guards against typos like --clients 1000000 that would only exhaust memory. */
export const CLIENTS_MAX = 10_000;
export const CONNS_MAX = 1_000;
/** etcd refuses requests above 1.5 MiB by default; we stay within that. */
export const VALUE_SIZE_MAX_BYTES = 1_500_000;
export const KEY_SIZE_MAX_BYTES = 1_024;
/** The whole key space fits in one range response: PRELOAD_KEYS_MAX keys would not (16 MiB). */
export const RANGE_KEYS_MAX = 100_000;
/** Lichen's and etcd's own caps on watchers per process are higher; the tool's memory is the limit. */
export const WATCHERS_MAX = 100_000;
export const LEASES_MAX = 1_000_000;
/** Preloading writes every key once; beyond this the preload would dominate the run. */
export const PRELOAD_KEYS_MAX = 1_000_000;
export const DURATION_MAX_SECONDS = 24 * 3600;

export const BENCH_FLAGS: readonly FlagSpec[] = [
  { name: 'endpoints', type: 'string', valueName: 'host:port,...', description: 'gRPC endpoints (default: LICHEN_ENDPOINTS, else 127.0.0.1:2379)' },
  { name: 'clients', type: 'integer', min: 1, description: 'Concurrent requests in flight (default 1)' },
  { name: 'conns', type: 'integer', min: 1, description: 'gRPC channels; clients are spread over them (default 1)' },
  { name: 'total', type: 'integer', min: 1, description: 'Number of requests (default 10000 unless --duration)' },
  { name: 'duration', type: 'string', valueName: 'seconds', description: 'Run for this long instead of a request count, e.g. 10 or 2.5s' },
  { name: 'key-size', type: 'integer', min: 1, description: 'Key size in bytes (default 8)' },
  { name: 'val-size', type: 'integer', min: 0, description: 'Value size in bytes (default 8)' },
  { name: 'key-space-size', type: 'integer', min: 1, description: 'Keys are drawn from this many distinct keys (default 1)' },
  { name: 'sequential-keys', type: 'boolean', description: 'Use keys in order instead of at random' },
  { name: 'consistency', type: 'string', choices: ['l', 's'], valueName: 'l|s', description: 'Range consistency: l linearizable, s serializable (default l)' },
  { name: 'target-leader', type: 'boolean', description: 'Send every request to the leader (found with Maintenance.Status)' },
  { name: 'rate', type: 'integer', min: 0, valueName: 'req/s', description: 'Cap on requests per second, 0 = no cap (default 0)' },
  { name: 'read-ratio', type: 'string', valueName: '0..1', description: 'mixed: share of requests that are ranges (default 0.5)' },
  { name: 'range-keys', type: 'integer', min: 1, description: 'range: keys per range, consecutive from a random key (default 1)' },
  { name: 'watchers', type: 'integer', min: 1, description: 'watch: watchers on the key space (default 1000)' },
  { name: 'streams', type: 'integer', min: 1, description: 'watch: Watch streams the watchers are spread over (default 10)' },
  { name: 'leases', type: 'integer', min: 1, description: 'lease-keepalive: leases granted first, then kept alive round robin (default 10000)' },
  { name: 'preload', type: 'boolean', description: 'Write the whole key space before measuring (default: on for range and mixed)' },
  { name: 'request-timeout-ms', type: 'integer', min: 1, valueName: 'ms', description: 'Per-request deadline (default 10000)' },
  { name: 'progress', type: 'boolean', description: 'Print a progress line on stderr (default: only when stderr is a terminal)' },
  { name: 'write-out', short: 'w', type: 'string', choices: ['simple', 'json'], valueName: 'simple|json', description: 'Output format (default simple)' },
  // TLS as the other client commands take it: --cacert, --cert, --key, --insecure-skip-tls-verify.
  ...CLIENT_FLAGS.filter((f) => f.name in TLS_FLAG_ENV),
];

/** Accepts "10", "2.5", "10s", "500ms". */
export function parseDurationMs(raw: string, what = '--duration'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(raw);
  if (match === null) throw new UsageError(`invalid value for ${what}: "${raw}" (expected seconds, e.g. 10, 2.5s or 500ms)`);
  const amount = Number(match[1]);
  const ms = match[2] === 'ms' ? amount : amount * 1000;
  if (!(ms > 0) || ms > DURATION_MAX_SECONDS * 1000) {
    throw new UsageError(`invalid value for ${what}: "${raw}" (expected more than 0 and at most ${DURATION_MAX_SECONDS} s)`);
  }
  return ms;
}

export function parseRatio(raw: string, what: string): number {
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new UsageError(`invalid value for ${what}: "${raw}" (expected a number from 0 to 1)`);
  }
  return value;
}

/** Splits "a:1,http://b:2" into host:port strings (the scheme is dropped; https:// turns TLS on, see resolveClientTls). */
export function parseEndpoints(raw: string): string[] {
  const endpoints = raw
    .split(',')
    .map((e) => e.trim().replace(/^(https?|grpc):\/\//, '').replace(/\/+$/, ''))
    .filter((e) => e !== '');
  if (endpoints.length === 0) throw new UsageError('invalid value for --endpoints: no endpoint given');
  for (const endpoint of endpoints) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(endpoint)) {
      throw new UsageError(`invalid value for --endpoints: "${endpoint}" (expected host:port)`);
    }
  }
  return endpoints;
}

/** Flags that mean something to some benchmarks only (the others refuse them). */
export const KIND_FLAGS: Readonly<Record<string, readonly BenchKind[]>> = {
  'read-ratio': ['mixed'],
  'range-keys': ['range'],
  watchers: ['watch'],
  streams: ['watch'],
  leases: ['lease-keepalive'],
};

/** Builds the options of `lichen bench <kind>` from parsed flags and LICHEN_ENDPOINTS, applying defaults. */
export function benchOptionsFromArgs(kind: BenchKind, args: ParsedArgs, env: Record<string, string | undefined> = {}): BenchOptions {
  const flags = args.flags;
  const num = (name: string): number | undefined => (typeof flags[name] === 'number' ? (flags[name] as number) : undefined);
  const str = (name: string): string | undefined => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  const bool = (name: string): boolean | undefined => (typeof flags[name] === 'boolean' ? (flags[name] as boolean) : undefined);

  const durationRaw = str('duration');
  const durationMs = durationRaw === undefined ? undefined : parseDurationMs(durationRaw);
  const total = num('total') ?? (durationMs === undefined ? BENCH_DEFAULTS.total : undefined);
  const rate = num('rate');
  const readRatioRaw = str('read-ratio');
  for (const [flag, kinds] of Object.entries(KIND_FLAGS)) {
    if (flags[flag] !== undefined && !kinds.includes(kind)) throw new UsageError(`--${flag} applies to bench ${kinds.join(', ')} only`);
  }
  const options: BenchOptions = {
    kind,
    endpoints: parseEndpoints(str('endpoints') ?? (env.LICHEN_ENDPOINTS || BENCH_DEFAULTS.endpoints.join(','))),
    clients: num('clients') ?? BENCH_DEFAULTS.clients,
    conns: num('conns') ?? BENCH_DEFAULTS.conns,
    ...(total !== undefined ? { total } : {}),
    ...(durationMs !== undefined ? { durationMs } : {}),
    keySizeBytes: num('key-size') ?? BENCH_DEFAULTS.keySizeBytes,
    valueSizeBytes: num('val-size') ?? BENCH_DEFAULTS.valueSizeBytes,
    keySpaceSize: num('key-space-size') ?? BENCH_DEFAULTS.keySpaceSize,
    sequentialKeys: bool('sequential-keys') ?? false,
    consistency: (str('consistency') as Consistency | undefined) ?? 'l',
    targetLeader: bool('target-leader') ?? false,
    ...(rate !== undefined && rate > 0 ? { ratePerSecond: rate } : {}),
    readRatio: readRatioRaw === undefined ? BENCH_DEFAULTS.readRatio : parseRatio(readRatioRaw, '--read-ratio'),
    preload: bool('preload') ?? (kind === 'range' || kind === 'mixed'),
    requestTimeoutMs: num('request-timeout-ms') ?? BENCH_DEFAULTS.requestTimeoutMs,
    rangeKeys: num('range-keys') ?? BENCH_DEFAULTS.rangeKeys,
    watchers: num('watchers') ?? BENCH_DEFAULTS.watchers,
    watchStreams: num('streams') ?? BENCH_DEFAULTS.watchStreams,
    leases: num('leases') ?? BENCH_DEFAULTS.leases,
  };
  const tls = resolveClientTls(args, env);
  if (tls) options.tls = tls;
  validateBenchOptions(options);
  return options;
}

/** Throws a UsageError naming the first impossible setting. Also used by runBench for API callers. */
export function validateBenchOptions(options: BenchOptions): void {
  if (!BENCH_KINDS.includes(options.kind)) throw new UsageError(`unknown benchmark: ${String(options.kind)}`);
  if (options.endpoints.length === 0) throw new UsageError('at least one endpoint is needed');
  checkIntegerRange(options.clients, 1, CLIENTS_MAX, '--clients');
  checkIntegerRange(options.conns, 1, CONNS_MAX, '--conns');
  if (options.total === undefined && options.durationMs === undefined) {
    throw new UsageError('give --total or --duration (or both: whichever is reached first ends the run)');
  }
  if (options.total !== undefined) checkIntegerRange(options.total, 1, Number.MAX_SAFE_INTEGER, '--total');
  checkIntegerRange(options.keySizeBytes, 1, KEY_SIZE_MAX_BYTES, '--key-size');
  checkIntegerRange(options.valueSizeBytes, 0, VALUE_SIZE_MAX_BYTES, '--val-size');
  checkIntegerRange(options.keySpaceSize, 1, Number.MAX_SAFE_INTEGER, '--key-space-size');
  const digitsNeeded = String(options.keySpaceSize - 1).length;
  if (digitsNeeded > options.keySizeBytes) {
    throw new UsageError(
      `--key-size ${options.keySizeBytes} is too small for --key-space-size ${options.keySpaceSize} (keys are ${digitsNeeded} decimal digits)`,
    );
  }
  if (options.preload && options.keySpaceSize > PRELOAD_KEYS_MAX) {
    throw new UsageError(`--preload writes every key; --key-space-size ${options.keySpaceSize} is above ${PRELOAD_KEYS_MAX}`);
  }
  if (options.readRatio < 0 || options.readRatio > 1) throw new UsageError('--read-ratio must be between 0 and 1');
  checkIntegerRange(options.rangeKeys, 1, RANGE_KEYS_MAX, '--range-keys');
  if (options.rangeKeys > options.keySpaceSize) {
    throw new UsageError(`--range-keys ${options.rangeKeys} is more than --key-space-size ${options.keySpaceSize}: a range cannot read more keys than there are`);
  }
  checkIntegerRange(options.watchers, 1, WATCHERS_MAX, '--watchers');
  checkIntegerRange(options.watchStreams, 1, options.watchers, '--streams (at most --watchers)');
  checkIntegerRange(options.leases, 1, LEASES_MAX, '--leases');
  if (options.ratePerSecond !== undefined && !(options.ratePerSecond > 0)) throw new UsageError('--rate must be positive');
  if (options.conns > options.clients) {
    // Extra channels would sit idle; etcd's tool accepts this too, but it is almost surely a mistake.
    throw new UsageError(`--conns ${options.conns} is more than --clients ${options.clients}: the extra channels would carry nothing`);
  }
}

function checkIntegerRange(value: number, min: number, max: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`invalid value for ${what}: ${value} (expected an integer from ${min} to ${max})`);
  }
}
