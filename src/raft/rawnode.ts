// RawNode: the application's handle on the raft core. Inputs are tick(), step(), propose() and the
// other requests; the output is a Ready batch that the application sends, persists and applies in
// the order its doc comment gives (the core sorts the messages by what may leave before the fsync),
// before calling advance().

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
 * One batch of work for the application. The core decides what may happen before this Ready is
 * durable and what must wait; the application carries out exactly this order:
 *
 * 1. Send `messages`. They depend on nothing in this Ready, so they may leave at once, before or
 *    while step 2 runs (thesis §10.2.1: a leader's appends travel in parallel with its own fsync,
 *    because the core counts the leader's own log toward commit only in advance()).
 * 2. Persist `snapshot` (if any), then `hardState` (if any) and `entries`, with ONE fsync when
 *    `mustSync` is true (a commit-index-only change may skip the sync, unless it passes a
 *    membership change). Mirror the same into the
 *    MemoryStorage: applySnapshot(snapshot), append(entries), setHardState(hardState).
 * 3. Only once step 2 is durable, send `messagesAfterPersist`: append responses and votes, which
 *    promise that this state survives a crash (see waitsForPersistence in raft.ts), and every
 *    message of a Ready that changes the term or the vote, or whose commit index passes a
 *    membership change.
 * 4. Apply `committedEntries` to the state machine, in order; for entries of type ConfChange call
 *    RawNode.applyConfChange(decodeConfChange(entry.data)). They are already durable on this member
 *    (the core hands out only persisted entries), so applying may overlap step 2 — except in a
 *    Ready marked `applyAfterPersist`: after step 3 when it has a snapshot (its committed entries
 *    follow it) or a membership change (the followers are sent its commit first). Serve
 *    `readStates` once the applied index reaches their index.
 * 5. Call advance(). Messages stepped in before advance() go out in the next Ready, except those
 *    takeMessagesDuringPersist() hands out earlier (while step 2 runs).
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
  /** Messages that may be sent at once, before this Ready is durable (step 1). */
  messages: Message[];
  /** Messages that may be sent only after this Ready's snapshot, entries and hard state are durable (step 3). */
  messagesAfterPersist: Message[];
  /** Confirmed linearizable reads (ReadIndex). */
  readStates: ReadState[];
  /** Whether step 2 needs an fsync (entries, snapshot, term or vote changed). */
  mustSync: boolean;
  /**
   * Whether committedEntries must wait until this Ready is durable and messagesAfterPersist have
   * left; otherwise they may be applied while it is persisted. With a snapshot (the entries follow
   * it), and with a membership change: a server answers the change as it applies it, and the
   * followers must have been sent its commit first, or a leader failing in between leaves them
   * counting votes in the old configuration (a learner promoted beside one other voter: the voter
   * cannot win alone and the learner does not campaign).
   */
  applyAfterPersist: boolean;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  /** Heard from within the last one or two election timeouts (this check-quorum round or the one before). */
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
  /** The hard state as of the last advanced Ready: term and vote durable (see takeMessagesDuringPersist). */
  private durableHardState: HardState;
  /** Committed entries above durableHardState.commit up to here hold no membership change (a cache). */
  private confFreeCommitTo = 0;

  constructor(config: RaftConfig, raftClass: RaftClass = Raft) {
    this.raft = new raftClass(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
    this.durableHardState = this.prevHardState;
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

  /**
   * One tick of the logical clock. `holdAwake`: the application has work of its own that needs
   * ticks (leases to expire, watchers to catch up), so a leader does not quiesce (see Raft.quiesced).
   */
  tick(holdAwake = false): void {
    this.raft.tick(holdAwake);
  }

  /** Whether this group is quiet: ticks do nothing until something wakes it (see Raft.quiesced). */
  get quiesced(): boolean {
    return this.raft.quiesced;
  }

  /** Ends quiescence (see Raft.wake); `leaderSilent` when the host lost touch with the leader's process. */
  wake(reason: 'work' | 'leaderSilent' = 'work'): void {
    this.raft.wake(reason);
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
    if (raft.hasMessages() || raft.readStates.length > 0 || raft.hasPendingProposals()) return true;
    if (raft.log.unstableEntries().length > 0) return true;
    return raft.log.hasNextCommittedEntries(raft.applyLimit());
  }

  ready(): Ready {
    assert(!this.outstanding, 'ready() called again before advance()');
    const raft = this.raft;
    raft.flushProposals();
    const entries = raft.log.unstableEntries();
    const snapshot = raft.log.unstableSnapshot();
    const hard = raft.hardState();
    const termOrVoteChanged = hard.term !== this.prevHardState.term || hard.vote !== this.prevHardState.vote;
    // A commit index that passes a membership change is knowledge others act on: told of it (by a
    // leader's append, or answering its handoff), a removed member applies its removal and stops
    // (see Raft.ownRemoval). Forgotten in a machine crash (a commit-only change is not synced),
    // it leaves the restarted members counting votes in the old configuration, which needs the
    // stopped member: no leader ever again if one more member is lost (seen in the analysis of
    // sim seed 5784). So such a Ready is synced, and nothing of it leaves before (membership
    // changes are rare, so this costs nothing measurable).
    const commitPassesConfChange = hard.commit > this.prevHardState.commit && raft.hasConfChangeIn(this.prevHardState.commit, hard.commit);
    const committedEntries = raft.log.nextCommittedEntries(raft.maxApplyBytes, raft.applyLimit());
    const rd: Ready = {
      entries,
      committedEntries,
      messages: raft.takeMessages(),
      messagesAfterPersist: raft.takeMessagesAfterPersist(),
      readStates: raft.takeReadStates(),
      mustSync: entries.length > 0 || snapshot !== undefined || termOrVoteChanged || commitPassesConfChange,
      applyAfterPersist: snapshot !== undefined || committedEntries.some((e) => e.type === EntryType.ConfChange),
    };
    if ((termOrVoteChanged || commitPassesConfChange) && rd.messages.length > 0) {
      // Every message carries the sender's term, and a leader's App says "I lead this term": a
      // member that crashed before its new term was durable could otherwise lead that term
      // again and write other entries at the same (index, term) that a follower already holds
      // (a lone voter elected in one step, with learners, would). The previous Ready's term and
      // vote are durable (it was advanced), so this one's change is the only one in flight.
      rd.messagesAfterPersist = rd.messages.concat(rd.messagesAfterPersist);
      rd.messages = [];
    }
    if (snapshot) rd.snapshot = snapshot;
    const soft = raft.softState();
    if (soft.lead !== this.prevSoftState.lead || soft.role !== this.prevSoftState.role) {
      rd.softState = soft;
      this.prevSoftState = soft;
    }
    if (!sameHardState(hard, this.prevHardState)) {
      rd.hardState = hard;
      this.prevHardState = hard;
    }
    this.outstanding = rd;
    return rd;
  }

  /**
   * While a Ready is outstanding (after ready(), before advance()): the messages stepped in since
   * that may leave now, before the outstanding Ready is durable, so that the application need not
   * hold what it steps in during the fsync until the next Ready. Send them at once; what stays
   * goes out in the next Ready, in its order. A follower's forwarded proposals and reads reach the
   * leader while the follower's own write is in flight (they depend on nothing it writes).
   *
   * These are the messages the core queued to leave at once (see waitsForPersistence in raft.ts),
   * in order, but only while:
   * - the term and vote are those of the last advanced Ready: a message carries the sender's term,
   *   which must be durable first (ready() holds every message of a Ready that changes them; the
   *   outstanding one may be such a Ready, and a step since may have changed them again);
   * - no committed entry above the last advanced Ready's commit index is a membership change
   *   (ready() holds every message of a Ready whose commit passes one).
   * Otherwise nothing leaves (the next Ready sorts them). Append responses and votes never leave
   * here: they promise state that only the next Ready persists. A leader's batched proposals stay
   * for the next Ready too (group commit: their appends go out together; see flushProposals).
   */
  takeMessagesDuringPersist(): Message[] {
    assert(this.outstanding, 'takeMessagesDuringPersist() without an outstanding ready()');
    const raft = this.raft;
    if (raft.msgs.length === 0) return [];
    const durable = this.durableHardState;
    if (raft.term !== durable.term || raft.vote !== durable.vote) return [];
    const commit = raft.log.committed;
    const checkedTo = Math.max(this.confFreeCommitTo, durable.commit);
    if (commit > checkedTo) {
      if (raft.hasConfChangeIn(checkedTo, commit)) return [];
      this.confFreeCommitTo = commit;
    }
    return raft.takeQueuedMessages();
  }

  /** Acknowledges the last Ready: its state is persisted, its messages sent, its entries applied. */
  advance(): void {
    const rd = this.outstanding;
    assert(rd, 'advance() without an outstanding ready()');
    this.outstanding = undefined;
    this.durableHardState = this.prevHardState;
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
        status.progress.set(id, { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive || pr.activeLastRound });
      }
    }
    return status;
  }
}
