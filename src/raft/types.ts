// The data types of the raft core: log entries, persistent state, snapshots and the wire messages.
// Other layers (wal, transport, sim, server) depend on these shapes, so changes here are contract
// changes: the transport codec and the WAL record format encode every field below.

import { assert } from '../errors.js';

/** A member id. Ids are positive safe integers; NONE (0) means "no node" (no vote, no leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

/** What an entry carries: a state machine command, or a membership change (see ConfChange). */
export const EntryType = { Normal: 0, ConfChange: 1 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One log entry. An entry with empty data of type Normal is the no-op a new leader appends. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** The state that must be on stable storage before the messages of the same Ready are sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** The membership of the group. Voters and learners are disjoint. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMetadata {
  /** The last log index the snapshot covers, and that entry's term. */
  index: number;
  term: number;
  /** The membership as of `index`. */
  conf: ConfState;
}

/** A state machine snapshot. `data` is opaque to raft (the server puts the engine export in it). */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: SnapshotData;
}

/**
 * Snapshot bytes, in memory or in a file the server reads in pieces: a snapshot received from a
 * peer is streamed to disk rather than held whole. Raft only carries them.
 */
export type SnapshotData = Uint8Array | SnapshotFile;

export interface SnapshotFile {
  readonly byteLength: number;
  /** `length` bytes (fewer at the end) starting at `offset`. */
  read(offset: number, length: number): Uint8Array;
}

/** The bytes of snapshot data in memory, for callers that never see a file. */
export function snapshotBytes(data: SnapshotData): Uint8Array {
  assert(data instanceof Uint8Array, 'snapshot data is in a file, not in memory');
  return data;
}

/** `length` bytes of snapshot data starting at `offset`, wherever they are. */
export function readSnapshotData(data: SnapshotData, offset: number, length: number): Uint8Array {
  return data instanceof Uint8Array ? data.subarray(offset, offset + length) : data.read(offset, length);
}

/**
 * A single-member change. Changes take effect when the entry is applied (the application calls
 * RawNode.applyConfChange), and raft allows only one unapplied change at a time.
 */
export const ConfChangeType = { AddNode: 0, AddLearner: 1, RemoveNode: 2, UpdateNode: 3 } as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to raft: the server stores the member's name and addresses here. */
  context: Uint8Array;
}

interface MessageBase {
  from: NodeId;
  to: NodeId;
  /** The sender's term. 0 only for messages that carry no term (none today). */
  term: number;
}

/**
 * Everything raft nodes send each other. Local events (tick, campaign, unreachable peer, snapshot
 * status) are RawNode methods rather than messages, so this union is exactly what the wire carries.
 */
export type Message =
  /** RequestVote (§5.2) and its PreVote twin (thesis §9.6). `transfer` marks a campaign started by
   *  TimeoutNow, which voters grant even while they still hear from a leader (thesis §3.10). */
  | (MessageBase & { type: 'Vote' | 'PreVote'; lastLogIndex: number; lastLogTerm: number; transfer: boolean })
  | (MessageBase & { type: 'VoteResp' | 'PreVoteResp'; reject: boolean })
  /** AppendEntries (§5.3). */
  | (MessageBase & { type: 'App'; prevLogIndex: number; prevLogTerm: number; entries: Entry[]; commit: number })
  /** On success `index` is the last index now matching the leader. On reject `index` is the rejected
   *  prevLogIndex, and (rejectHint, hintTerm) let the leader skip a whole term (fast backtracking). */
  | (MessageBase & { type: 'AppResp'; reject: boolean; index: number; rejectHint: number; hintTerm: number })
  /**
   * `context` is non-empty when the heartbeat also confirms leadership for a ReadIndex round.
   * `quiesce`: the leader's last heartbeat before it goes quiet (see Raft.maybeQuiesce).
   */
  | (MessageBase & { type: 'Heartbeat'; commit: number; context: Uint8Array; quiesce?: true })
  | (MessageBase & { type: 'HeartbeatResp'; context: Uint8Array })
  /** InstallSnapshot (§7). */
  | (MessageBase & { type: 'Snap'; snapshot: Snapshot })
  /** A proposal a follower forwards to its leader. */
  | (MessageBase & { type: 'Prop'; entries: Entry[] })
  /** A read a follower forwards to its leader, and the leader's answer with the read index. */
  | (MessageBase & { type: 'ReadIndex'; context: Uint8Array })
  | (MessageBase & { type: 'ReadIndexResp'; index: number; context: Uint8Array })
  /** Leadership transfer: the leader tells an up-to-date follower to campaign now (thesis §3.10). */
  | (MessageBase & { type: 'TimeoutNow' })
  /** A transfer request a follower forwards to its leader. */
  | (MessageBase & { type: 'TransferLeader'; transferee: NodeId });

export type MessageType = Message['type'];
