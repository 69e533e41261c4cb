// What a replica restarts from: its latest snapshot, then the hard state and entries its log kept
// after it. The same steps serve a process (src/server/state.ts, over the WAL and snapshot files)
// and a test (over the in-memory twins of memory-storage.ts).
import { MemoryStorage, type Entry, type HardState, type Snapshot } from '../raft/index.js';
import type { MemberTable } from './members.js';
import { decodeSnapshotData } from './snapshot-data.js';
import type { LogStore, ReplicaStorage, SnapshotFiles, StateMachine } from './storage.js';

export interface RecoveryParts {
  wal: LogStore;
  snapshots: SnapshotFiles;
  machine: StateMachine;
  /** The latest snapshot the log names. */
  snapshot: Snapshot;
  /** What the log kept: its hard state and the entries after the snapshot. */
  log: { hardState: HardState; entries: Entry[] };
}

export function recoverStorage({ wal, snapshots, machine, snapshot, log }: RecoveryParts): ReplicaStorage {
  const { members, engineChunks } = decodeSnapshotData(snapshot.data);
  if (machine.appliedIndex < snapshot.metadata.index) {
    // The machine lags the snapshot (a snapshot was received but the machine not yet replaced, or
    // its last writes were lost): the snapshot is the truth.
    machine.install(engineChunks);
  }
  const raftLog = new MemoryStorage();
  raftLog.applySnapshot(snapshot);
  // The persisted commit can trail a snapshot installed from the leader; never go below it.
  raftLog.setHardState({ ...log.hardState, commit: Math.max(log.hardState.commit, snapshot.metadata.index) });
  if (log.entries.length > 0) raftLog.append(log.entries);
  return { wal, snapshots, raftLog, machine, members, snapshotIndex: snapshot.metadata.index };
}

/**
 * What a member that joined a running cluster restarts from while it has no snapshot yet (every
 * log starts after the bootstrap snapshot, so its first one comes from the leader): the hard state
 * and entries its log kept, above all its term and vote (a voter that forgot them could vote twice
 * in one term), and the members the join answer named.
 */
export function recoverJoiner({ wal, snapshots, machine, log, members }: Omit<RecoveryParts, 'snapshot'> & { members: MemberTable }): ReplicaStorage {
  const raftLog = new MemoryStorage();
  raftLog.setHardState(log.hardState);
  if (log.entries.length > 0) raftLog.append(log.entries);
  return { wal, snapshots, raftLog, machine, members, snapshotIndex: 0 };
}
