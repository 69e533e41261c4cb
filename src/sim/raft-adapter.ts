// The one place the simulator touches the raft core's construction API: building a RawNode, role
// names, and the deliberately broken variants used to prove that the simulator can fail.

import type { RaftVariant } from './options.js';
import {
  MemoryStorage,
  Raft,
  RawNode,
  decodeConfChange,
  encodeConfChange,
  type RaftClass,
  type VoteRequest,
} from '../raft/index.js';

export { MemoryStorage, decodeConfChange, encodeConfChange };

export type SimRawNode = RawNode;

export interface SimRaftConfig {
  id: number;
  storage: MemoryStorage;
  /** A number in [0, 1): the process's randomness (its VirtualEnvironment). */
  random: () => number;
  electionTicks: number;
  heartbeatTicks: number;
  applied: number;
  preVote: boolean;
  checkQuorum: boolean;
  lazyCommitBroadcast: boolean;
  maxInflightMsgs: number;
  maxMsgBytes: number;
}

/**
 * Broken on purpose (the Figure 8 bug, §5.4.2): commits whatever a quorum has replicated, even
 * entries of earlier terms, by counting replicas.
 */
class CommitByCountRaft extends Raft {
  protected override maybeCommit(): boolean {
    const index = this.tracker.quorumMatchIndex();
    if (index <= this.log.committed) return false;
    this.log.commitTo(index);
    return true;
  }
}

/** Broken on purpose (§5.2): grants its vote to every candidate whose log is up to date, every time. */
class DoubleVoteRaft extends Raft {
  protected override canGrantVote(m: VoteRequest): boolean {
    return this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
  }
}

const RAFT_CLASSES: Record<RaftVariant, RaftClass> = {
  correct: Raft,
  'commit-by-count': CommitByCountRaft,
  'double-vote': DoubleVoteRaft,
  // The raft rules are the real ones; the simulated members skip their data directory checks.
  'unchecked-wipes': Raft,
  // The raft rules are the real ones; the Ready loop's handler sends append responses too early.
  'acks-before-fsync': Raft,
};

export function createRawNode(variant: RaftVariant, config: SimRaftConfig): SimRawNode {
  return new RawNode(config, RAFT_CLASSES[variant]);
}

export function isLeaderRole(role: string): boolean {
  return role === 'leader';
}
