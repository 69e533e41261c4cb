// In-memory parts for stores in tests and in the groups benchmark: a group's storage bootstrapped
// with its members (the in-memory WAL and snapshot files, the real MVCC over the memory engine),
// and the settings of its replica.
import { MemoryEngine } from '../engine/index.js';
import type { GroupId } from '../ids.js';
import { createSilentLogger, type Logger } from '../log.js';
import { Counter, Histogram } from '../metrics.js';
import type { NodeId } from '../raft/index.js';
import {
  KvStateMachine,
  MemoryLog,
  MemorySnapshots,
  TEST_REPLICA_CONFIG,
  firstSnapshot,
  recoverStorage,
  type GroupMember,
  type ReplicaConfig,
  type ReplicaStorage,
} from '../replica/index.js';
import type { ReplicaSettings } from './store.js';


/**
 * A new group's storage on one member: its first snapshot holds the membership (index 1, term 1),
 * as a cluster bootstrapped by `lichen serve` starts. Members are named m<id>.
 */
export async function bootstrapMemoryStorage(members: ReadonlyArray<Omit<GroupMember, 'name'>>): Promise<ReplicaStorage> {
  const wal = new MemoryLog();
  const snapshots = new MemorySnapshots();
  const engine = new MemoryEngine();
  // Client addresses are left empty: publishing them is a proposal, which the store tests want to count themselves.
  const first = firstSnapshot(members.map((m) => ({ ...m, name: `m${m.id}` })), engine.export());
  await snapshots.save(first);
  await wal.saveSnapshotMarker(first.metadata);
  await wal.save({ hardState: { term: 1, vote: 0, commit: 1 }, entries: [] });
  return recoverStorage({ wal, snapshots, machine: new KvStateMachine(engine), snapshot: first, log: wal.recover() });
}

/** Metrics nobody reads, shared by every replica of a test (thousands of replicas in the benchmark). */
const unreadMetrics: ReplicaSettings['metrics'] = {
  walFsyncSeconds: new Histogram({ name: 'wal_fsync_seconds', help: 'test', registers: [] }),
  raftLeaderChangesTotal: new Counter({ name: 'leader_changes', help: 'test', registers: [] }),
  raftProposalsTotal: new Counter({ name: 'proposals', help: 'test', labelNames: ['result'], registers: [] }),
};
const silentLogger = createSilentLogger();

/** The settings of member `memberId`'s replica of `group`, for tests (no client addresses, silent). */
export function testReplicaSettings(group: GroupId, memberId: NodeId, config: Partial<ReplicaConfig> = {}, logger: Logger = silentLogger): ReplicaSettings {
  return {
    memberId,
    clusterId: 7,
    joined: undefined,
    config: { ...TEST_REPLICA_CONFIG, ...config, name: `m${memberId}` },
    logger,
    metrics: unreadMetrics,
    publicAddresses: { client: '', http: '' },
    askMembership: () => Promise.reject(new Error(`group ${group}: no membership probes in tests`)),
    lostDataRemedy: 'Remove it and add it again.',
  };
}
