// Per-member traffic samples for the dashboard: request rates, latency percentiles and per-prefix
// counts per second, bounded in memory.
export {
  TrafficRecorder,
  keyPrefix,
  SAMPLE_FIELDS,
  type HeatCell,
  type HeatColumn,
  type TrafficKind,
  type TrafficRecorderOptions,
  type TrafficSamples,
} from './recorder.js';
