// One raft group's replica (replica.ts; its snapshots, lease clocks and membership duties in
// snapshots.ts, leases.ts, membership.ts): the loop that drives its raft core (ready-loop.ts), the
// client requests waiting on it (requests.ts), what its committed entries carry (envelope.ts,
// members.ts, snapshot-data.ts), and the parts it is given: clock, timers and randomness
// (environment.ts; virtual ones in virtual-environment.ts), its WAL, snapshot files and state
// machine (storage.ts; the engine-backed machine in state-machine.ts, in-memory storage for tests
// in memory-storage.ts; recovery.ts restarts from them). The server builds it from the real ones.
export type { Clock, Environment, Randomness, TimerHandle, Timers } from './environment.js';
export { ReadyLoop, type ReadyHandler } from './ready-loop.js';
export { PendingProposals, ReadRounds } from './requests.js';
export { VirtualEnvironment } from './virtual-environment.js';
export { Replica, type Applied, type Halt, type ReplicaOptions } from './replica.js';
export type { MembershipView, PeerLinks, ReplicaConfig } from './types.js';
export type { LogStore, ReplicaStorage, SnapshotFiles, SpooledSnapshot, StateMachine } from './storage.js';
export { KvStateMachine } from './state-machine.js';
export { MemoryLog, MemorySnapshots, TEST_REPLICA_CONFIG, spoolInMemory, type RecoveredLog } from './memory-storage.js';
export { MemberTable, decodeJson, encodeJson, type Member, type MemberAttributes, type MemberContext } from './members.js';
export { EnvelopeKind, decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.js';
export { decodeSnapshotData, encodeSnapshotData, encodeSnapshotReference, firstSnapshot, type GroupMember } from './snapshot-data.js';
export { quotaAdmits, quotaCost } from './quota.js';
export { recoverJoiner, recoverStorage, type RecoveryParts } from './recovery.js';
export {
  ProcessStorage,
  bootstrapGroup,
  snapshotDirName,
  ENGINE_DIR,
  ENGINE_FORMAT_KEY,
  ENGINE_FORMAT_PARTITIONED,
  SNAP_DIR,
  WAL_DIR,
  type GroupParts,
  type GroupStorage,
  type ProcessStorageOptions,
} from './process-storage.js';
