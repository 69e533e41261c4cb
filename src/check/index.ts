// Linearizability checking of recorded client histories (used by the simulator and by tests that
// drive a real cluster).
export { checkOperations } from './linearizability.js';
export { kvModel } from './kv-model.js';
export type { KvInput, KvOutput, KvOperation } from './kv-model.js';
export { SEARCH_STEPS_MAX_DEFAULT } from './types.js';
export type {
  CheckOptions,
  CheckResult,
  CheckResultKind,
  Model,
  Operation,
  Partition,
} from './types.js';
