// The durable parts a replica is given: its write-ahead log, its snapshot files and its state
// machine. A process passes the real ones (src/wal's Wal and SnapshotStore, and the engine-backed
// state machine of state-machine.ts); tests pass in-memory ones (memory-storage.ts) that lose what
// was not flushed when they "crash", so a replica's durability is tested without a disk.
import type { ApplyResult, AuthStore } from '../auth/index.js';
import type { EngineSpace } from '../engine/index.js';
import type { Command, MvccStore } from '../mvcc/index.js';
import type { Entry, HardState, MemoryStorage, Snapshot, SnapshotData, SnapshotMetadata } from '../raft/index.js';
import type { MemberTable } from './members.js';

/** The write-ahead log of one raft group (src/wal's Wal in a process). */
export interface LogStore {
  /**
   * Writes one Ready's hard state and entries in one record; resolves once they are durable when
   * `sync` (the default), or once written otherwise (only a commit-only hard state may skip the
   * flush). Entries at or below the last index replace that suffix of the log.
   */
  save(update: { hardState?: HardState; entries: Entry[]; sync?: boolean }): Promise<void>;
  /** Records, durably, that a snapshot up to meta.index exists (after its file is durable). */
  saveSnapshotMarker(meta: SnapshotMetadata): Promise<void>;
  /** Lets go of entries at or below `index` (covered by the snapshot marker). */
  releaseTo(index: number): Promise<void>;
  /** Bytes the log takes now (a snapshot trigger: see snapshot-policy.ts). */
  readonly sizeBytes: number;
  close(): Promise<void>;
}

/** Where a replica keeps its snapshots (src/wal's SnapshotStore in a process). */
export interface SnapshotFiles {
  /** Resolves once the snapshot is durable. */
  save(snapshot: Snapshot): Promise<void>;
  /**
   * Writes a snapshot's data for a peer, pulling `chunks` one at a time (a process writes them to
   * a file, so memory stays bounded whatever the engine holds); the transport reads it from there.
   */
  spool(chunks: Iterable<Uint8Array>): Promise<SpooledSnapshot>;
}

/** Snapshot data written for one send: kept until release() (the transport reported the send). */
export interface SpooledSnapshot {
  readonly data: SnapshotData;
  release(): void;
}

/**
 * The replicated data that committed commands change: etcd's MVCC key space with its leases and
 * alarms, and the auth store, in one engine (see KvStateMachine).
 */
export interface StateMachine {
  readonly mvcc: MvccStore;
  readonly auth: AuthStore;
  /** The index of the last entry the machine holds: replaying the log skips entries up to it. */
  readonly appliedIndex: number;
  /** Applies one committed command at raft index `index`. */
  apply(index: number, command: Command): ApplyResult;
  /**
   * Records that everything up to `index` is applied (entries that are no commands, such as
   * membership changes, leave no trace in the engine otherwise): a snapshot at `index` names
   * the engine's state, which must then say it holds `index`.
   */
  markApplied(index: number): void;
  /**
   * Runs `applies` as one engine write. The engine commits it to storage at once or keeps it,
   * with later ones, until commit() (the replica's tick) or until enough writes wait.
   */
  batch(applies: () => void): void;
  /** The engine's writes not yet committed to storage (0 when each batch commits as it ends). */
  readonly uncommittedOps: number;
  /** Commits the engine's waiting writes to storage now, in one transaction. */
  commit(): void;
  /**
   * An applied index the engine holds durably: its state as of this index (or later) survives a
   * crash of the machine. Set at open and by every sync(); the WAL may let go of entries up to it.
   */
  readonly durableIndex: number;
  /** The whole state as chunks, from a view pinned when the first chunk is pulled. */
  export(): Iterable<Uint8Array>;
  /** The whole state as chunks, from a view pinned when the first chunk is pulled that holds every apply (see MvccStore.exportApplied). */
  exportApplied(): Iterable<Uint8Array>;
  /** Replaces the whole state with a snapshot's (an export's chunks). */
  install(chunks: Iterable<Uint8Array>): void;
  space(): EngineSpace;
  /** Resolves once everything applied so far is durable (before the log lets go of it): durableIndex is then at least the applied index of the call. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Everything a replica starts from, as opened from its log and snapshot (see recoverLog). */
export interface ReplicaStorage {
  wal: LogStore;
  snapshots: SnapshotFiles;
  /** Raft's view of the log: the WAL's entries, hard state and latest snapshot, in memory. */
  raftLog: MemoryStorage;
  machine: StateMachine;
  /** The members as of the snapshot (the log's conf changes are replayed onto it). */
  members: MemberTable;
  /** The index of the snapshot the raft log starts after. */
  snapshotIndex: number;
}
