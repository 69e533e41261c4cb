// What the leader knows about each member's log (§5.3: nextIndex and matchIndex), plus the flow
// control that keeps a slow follower from being flooded: a follower is probed with one append at a
// time until its match is known, then replicated to with a bounded window of appends in flight, or
// sent a snapshot when the entries it needs are compacted.

import { assert } from '../errors.js';
import type { ConfState, NodeId } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded window of in-flight appends, identified by their last index. */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  constructor(readonly capacity: number) {
    assert(capacity > 0, 'inflight capacity must be positive');
  }

  get count(): number {
    return this.lastIndexes.length;
  }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }

  add(lastIndex: number): void {
    assert(!this.full(), 'inflights overflow');
    this.lastIndexes.push(lastIndex);
  }

  /** Frees every append whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && this.lastIndexes[n]! <= index) n++;
    if (n > 0) this.lastIndexes.splice(0, n);
  }

  freeFirstOne(): void {
    this.lastIndexes.shift();
  }

  reset(): void {
    this.lastIndexes.length = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append was sent and we wait for its answer (or a heartbeat answer). */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** The highest commit index sent to this member, in an append or a heartbeat. */
  commitSent = 0;
  /** Heard from this member since the last check-quorum round. */
  recentActive = false;
  /**
   * Heard from this member in the check-quorum round before that. Questions about liveness
   * (may this voter be removed?) ask "heard within the last one or two election timeouts":
   * recentActive alone is false for everyone just after each reset.
   */
  activeLastRound = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, public isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, continue from the snapshot if it is known to be sent (and its ack is pending).
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** A success answer acknowledged `index`. Returns whether match advanced. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** In replicate state the leader sends optimistically and moves next past what it sent. */
  optimisticUpdate(lastIndex: number): void {
    this.next = lastIndex + 1;
  }

  /**
   * A rejection of an append whose previous index was `rejected`. `matchHint` is the leader's guess
   * of the follower's last matching index (fast backtracking). Returns false for stale rejections.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // A rejection at or below match is stale: we know the follower matches there.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the last probe (next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold back appends to this member for now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}

/** How many of `voters` make a majority: a quorum to elect, commit or decide anything among them. */
export function majorityOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** The membership and every member's progress, with the quorum arithmetic of a single config. */
export class ProgressTracker {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  /** Votes received in the current (pre-)election: true = granted. Created by the first vote (a quiet group holds none). */
  private votes: Map<NodeId, boolean> | undefined;

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  isVoter(id: NodeId): boolean {
    return this.voters.has(id);
  }

  quorum(): number {
    return majorityOf(this.voters.size);
  }

  /**
   * Sets the membership. Progress of new members starts at `next`; `newActive` marks them recently
   * active, so that a leader adding a member does not fail its next check-quorum because of it.
   */
  setConf(conf: ConfState, next: number, newActive: boolean): void {
    this.voters.clear();
    this.learners.clear();
    for (const id of conf.voters) this.voters.add(id);
    for (const id of conf.learners) {
      assert(!this.voters.has(id), `member ${id} is both voter and learner`);
      this.learners.add(id);
    }
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id);
    }
    for (const id of [...this.voters, ...this.learners]) {
      const existing = this.progress.get(id);
      if (existing) existing.isLearner = this.learners.has(id);
      else {
        const pr = new Progress(next, this.maxInflight, this.learners.has(id));
        pr.recentActive = newActive;
        this.progress.set(id, pr);
      }
    }
  }

  /** Fresh progress for every member at a term change; `self` matches up to its persisted index. */
  resetProgress(next: number, self: NodeId, selfMatch: number): void {
    for (const [id, old] of this.progress) {
      const pr = new Progress(next, this.maxInflight, old.isLearner);
      if (id === self) pr.match = selfMatch;
      this.progress.set(id, pr);
    }
  }

  /**
   * The highest index stored on a majority of voters: sort the voters' match indexes descending and
   * take the quorum-th. 0 for an empty voter set.
   */
  quorumMatchIndex(): number {
    if (this.voters.size === 0) return 0;
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    return matches[this.quorum() - 1]!;
  }

  /** Records a vote (only voters count; the first answer of each member wins). */
  recordVote(id: NodeId, granted: boolean): void {
    const votes = (this.votes ??= new Map());
    if (!votes.has(id)) votes.set(id, granted);
  }

  /** Forgets the votes of the previous (pre-)election. */
  clearVotes(): void {
    this.votes = undefined;
  }

  /** 'won' with a quorum of grants, 'lost' once a quorum can no longer be reached. */
  tallyVotes(): { granted: number; rejected: number; result: 'won' | 'lost' | 'pending' } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes?.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    if (granted >= q) return { granted, rejected, result: 'won' };
    if (this.voters.size - rejected < q) return { granted, rejected, result: 'lost' };
    return { granted, rejected, result: 'pending' };
  }

  /** Whether a quorum of voters (counting `self`) was recently active; resets the flags for the next round. */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (id === self || pr?.recentActive) active++;
    }
    for (const [id, pr] of this.progress) {
      if (id === self) continue;
      pr.activeLastRound = pr.recentActive;
      pr.recentActive = false;
    }
    return active >= this.quorum();
  }

  /** Whether `ids` (acknowledgements) together with `self` form a quorum of voters. */
  hasQuorum(ids: Set<NodeId>, self: NodeId): boolean {
    let n = 0;
    for (const id of this.voters) if (id === self || ids.has(id)) n++;
    return n >= this.quorum();
  }
}
