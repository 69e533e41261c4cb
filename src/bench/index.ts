// The benchmark tool's public surface: the `lichen bench …` commands for the CLI table, and
// runBench / runHttpPutBench for scripts (scripts/bench-compare.ts).
export { BENCH_COMMANDS, benchRangeCommand } from './command.js';
export { runBench, resolveLeader, type RunControls } from './run.js';
export { runHttpPutBench, type HttpPutOptions } from './http-put.js';
export {
  BENCH_DEFAULTS,
  BENCH_FLAGS,
  BENCH_KINDS,
  benchOptionsFromArgs,
  validateBenchOptions,
  type BenchKind,
  type BenchOptions,
  type Consistency,
} from './options.js';
export { findLeaderEndpoint, endpointStatus, type EndpointStatus } from './connections.js';
export { formatJson, formatSummary, type BenchResult, type LatencySummary } from './report.js';
export { LatencyHistogram } from './histogram.js';
