// What a replica restarts from: its latest snapshot, then the hard state and entries its log kept
// after it. The same steps serve a process (src/server/state.ts, over the WAL and snapshot files)
// and a test (over the in-memory twins of memory-storage.ts).
import { MemoryStorage, type Entry, type HardState, type Snapshot } from '../raft/index.js';
import { ErrorCode, LichenError } from '../errors.js';
import type { MemberTable } from './members.js';
import { decodeSnapshotData, encodeSnapshotReference } from './snapshot-data.js';
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
  const { index } = snapshot.metadata;
  const { members, engineChunks } = decodeSnapshotData(snapshot.data);
  if (machine.appliedIndex < index) {
    // The machine lags the snapshot: a snapshot received from the leader whose import the engine
    // had not synced yet (or a new group's first one). Its file is the truth.
    if (engineChunks === undefined) {
      // A member's own snapshot is taken only once the engine holds its index durably.
      throw new LichenError(
        ErrorCode.DataLoss,
        `the engine holds the state up to index ${machine.appliedIndex}, but the snapshot at index ${index} says it held at least that much: the engine lost writes it had made durable`,
      );
    }
    machine.install(engineChunks);
    machine.markApplied(index);
  }
  const raftLog = new MemoryStorage();
  // Raft keeps only the reference: the engine holds the data (at or after the snapshot's index).
  raftLog.applySnapshot({ metadata: snapshot.metadata, data: encodeSnapshotReference(members) });
  // The persisted commit can trail a snapshot installed from the leader; never go below it.
  raftLog.setHardState({ ...log.hardState, commit: Math.max(log.hardState.commit, index) });
  if (log.entries.length > 0) raftLog.append(log.entries);
  return { wal, snapshots, raftLog, machine, members, snapshotIndex: index };
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
