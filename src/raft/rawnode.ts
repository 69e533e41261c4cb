// RawNode: the application's handle on the raft core. Inputs are tick(), step(), propose() and the
// other requests; the output is a Ready batch that the application persists, sends and applies, in
// that order, before calling advance().

import { assert } from '../errors.js';
import { encodeConfChange } from './membership.js';
import { Raft, type RaftConfig, type ReadState, type Role, type SoftState } from './raft.js';
import { entryBytes } from './storage.js';
import {
  ConfChangeType,
  EntryType,
  NONE,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Snapshot,
} from './types.js';

/**
 * One batch of work for the application. Handle it in this order:
 *
 * 1. Persist `snapshot` (if any), then `hardState` (if any) and `entries`, with ONE fsync when
 *    `mustSync` is true (a commit-index-only change may skip the sync). Mirror the same into the
 *    MemoryStorage: applySnapshot(snapshot), append(entries), setHardState(hardState).
 * 2. Then send `messages`. (Thesis §10.2.1: a leader may send its appends in parallel with its own
 *    fsync, because the core counts the leader's own log toward commit only in advance(). That is
 *    safe when softState?.role — or the last known role — is 'leader' and neither term nor vote
 *    changed in this Ready; everyone else must send after the fsync.)
 * 3. Apply `committedEntries` to the state machine, in order; for entries of type ConfChange call
 *    RawNode.applyConfChange(decodeConfChange(entry.data)). Serve `readStates` once the applied
 *    index reaches their index.
 * 4. Call advance().
 */
export interface Ready {
  /** Leader and role, when they changed since the previous Ready. */
  softState?: SoftState;
  /** Term, vote and commit, when they changed since the previous Ready. */
  hardState?: HardState;
  /** Entries to append to stable storage (they may replace a conflicting suffix). */
  entries: Entry[];
  /** A snapshot to persist and install (replaces the log and the state machine). */
  snapshot?: Snapshot;
  /** Committed, persisted entries to apply, oldest first. */
  committedEntries: Entry[];
  /** Messages to send after step 1. */
  messages: Message[];
  /** Confirmed linearizable reads (ReadIndex). */
  readStates: ReadState[];
  /** Whether step 1 needs an fsync (entries, snapshot, term or vote changed). */
  mustSync: boolean;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  recentActive: boolean;
}

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  lead: NodeId;
  role: Role;
  commit: number;
  applied: number;
  lastIndex: number;
  conf: ConfState;
  /** Only on the leader. */
  progress?: Map<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
}

/**
 * The class RawNode builds its core from. The simulator passes a subclass of Raft that overrides
 * canGrantVote or maybeCommit to build deliberately unsafe nodes.
 */
export type RaftClass = new (config: RaftConfig) => Raft;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export class RawNode {
  /** The core itself, exposed for tests and the simulator's invariant checks. Treat as read-only. */
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** The Ready handed out and not yet advanced. */
  private outstanding: Ready | undefined;

  constructor(config: RaftConfig, raftClass: RaftClass = Raft) {
    this.raft = new raftClass(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Starts a brand-new group: writes one committed AddNode entry per initial voter (term 1) so that
   * every member, and every member added later, learns the initial membership from the log. Call
   * once, on empty storage, on each initial member; the entries come out in the next Ready.
   */
  bootstrap(peers: Array<NodeId | { id: NodeId; context?: Uint8Array }>): void {
    const raft = this.raft;
    assert(raft.log.lastIndex() === 0 && raft.term === 0, 'bootstrap needs empty storage');
    assert(peers.length > 0, 'bootstrap needs at least one peer');
    const changes: ConfChange[] = peers.map((p) =>
      typeof p === 'number'
        ? { type: ConfChangeType.AddNode, nodeId: p, context: new Uint8Array(0) }
        : { type: ConfChangeType.AddNode, nodeId: p.id, context: p.context ?? new Uint8Array(0) },
    );
    raft.becomeFollower(1, NONE);
    raft.log.append(
      changes.map((cc, i) => ({ term: 1, index: i + 1, type: EntryType.ConfChange, data: encodeConfChange(cc) })),
    );
    raft.log.commitTo(changes.length);
    // Apply now so the node knows its membership before the entries are applied (applying them
    // again later is a no-op).
    for (const cc of changes) raft.applyConfChange(cc);
  }

  tick(): void {
    this.raft.tick();
  }

  campaign(): void {
    this.raft.campaign();
  }

  propose(data: Uint8Array): void {
    this.raft.propose(data);
  }

  proposeConfChange(cc: ConfChange): void {
    this.raft.proposeConfChange(encodeConfChange(cc));
  }

  step(m: Message): void {
    this.raft.step(m);
  }

  readIndex(context: Uint8Array): void {
    this.raft.readIndex(context);
  }

  /** With lazyCommitBroadcast: whether some follower has not been told the current commit index. */
  commitUnannounced(): boolean {
    return this.raft.commitUnannounced();
  }

  /** With lazyCommitBroadcast: tells every follower the current commit index now. */
  flushCommit(): void {
    this.raft.flushCommit();
  }

  transferLeader(to: NodeId): void {
    this.raft.transferLeader(to);
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  /** The snapshot raft took from a leader and has not had persisted yet (it is in the next Ready). */
  pendingSnapshot(): Snapshot | undefined {
    return this.raft.log.unstableSnapshot();
  }

  /** Whether ready() has something. False while a Ready is outstanding (call advance() first). */
  hasReady(): boolean {
    if (this.outstanding) return false;
    const raft = this.raft;
    const soft = raft.softState();
    if (soft.lead !== this.prevSoftState.lead || soft.role !== this.prevSoftState.role) return true;
    if (!sameHardState(raft.hardState(), this.prevHardState)) return true;
    if (raft.log.unstableSnapshot()) return true;
    if (raft.msgs.length > 0 || raft.readStates.length > 0 || raft.hasPendingProposals()) return true;
    if (raft.log.unstableEntries().length > 0) return true;
    return raft.log.hasNextCommittedEntries();
  }

  ready(): Ready {
    assert(!this.outstanding, 'ready() called again before advance()');
    const raft = this.raft;
    raft.flushProposals();
    const entries = raft.log.unstableEntries();
    const snapshot = raft.log.unstableSnapshot();
    const rd: Ready = {
      entries,
      committedEntries: raft.log.nextCommittedEntries(raft.maxApplyBytes),
      messages: raft.takeMessages(),
      readStates: raft.takeReadStates(),
      mustSync: false,
    };
    if (snapshot) rd.snapshot = snapshot;
    const soft = raft.softState();
    if (soft.lead !== this.prevSoftState.lead || soft.role !== this.prevSoftState.role) {
      rd.softState = soft;
      this.prevSoftState = soft;
    }
    const hard = raft.hardState();
    rd.mustSync =
      entries.length > 0 ||
      snapshot !== undefined ||
      hard.term !== this.prevHardState.term ||
      hard.vote !== this.prevHardState.vote;
    if (!sameHardState(hard, this.prevHardState)) {
      rd.hardState = hard;
      this.prevHardState = hard;
    }
    this.outstanding = rd;
    return rd;
  }

  /** Acknowledges the last Ready: its state is persisted, its messages sent, its entries applied. */
  advance(): void {
    const rd = this.outstanding;
    assert(rd, 'advance() without an outstanding ready()');
    this.outstanding = undefined;
    const last = rd.entries[rd.entries.length - 1];
    this.raft.onPersisted(last ? { index: last.index, term: last.term } : undefined, rd.snapshot?.metadata.index);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) {
      let bytes = 0;
      for (const e of rd.committedEntries) bytes += entryBytes(e);
      this.raft.onApplied(lastApplied.index, bytes);
    }
  }

  status(): Status {
    const raft = this.raft;
    const status: Status = {
      id: raft.id,
      term: raft.term,
      vote: raft.vote,
      lead: raft.lead,
      role: raft.role,
      commit: raft.log.committed,
      applied: raft.log.applied,
      lastIndex: raft.log.lastIndex(),
      conf: raft.tracker.confState(),
      leadTransferee: raft.leadTransferee,
    };
    if (raft.role === 'leader') {
      status.progress = new Map();
      for (const [id, pr] of raft.tracker.progress) {
        status.progress.set(id, { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive });
      }
    }
    return status;
  }
}
