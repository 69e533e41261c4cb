// Real-process fault injection and checking for `lichen check`: a cluster of `lichen serve`
// processes behind fault-injecting peer proxies, workloads (register, append, watch), a seeded
// nemesis (kill, pause, partition, slow disk), the recorded history, the checks, the verdict and
// the HTML report.
export { runCheck, type CheckRunOptions } from './run.js';
export { FAULT_KINDS, SUPPORTED_FAULTS, type FaultKind, type PlannedFault, type FaultTarget } from './nemesis.js';
export { PARTITION_MODES, PeerNetwork, partitionGroups, type PartitionMode } from './network.js';
export { PeerProxy, readHelloPair, type DirectedPair } from './proxy.js';
export { History, WORKLOADS, type HistoryOp, type FaultRecord, type OpStatus, type Workload } from './history.js';
export { checkAppend, parseList } from './append.js';
export { checkWatch, type SeenEvent, type FinalWatchState } from './watch.js';
export { checkRegister, registerOperations } from './register.js';
export { buildVerdict, countOps, type Anomaly, type Verdict, type WorkloadCheck, type Counts } from './verdict.js';
export { renderReport } from './report.js';
export { Prng } from '../random.js';
