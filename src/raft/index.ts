// The raft consensus core: pure and synchronous (no I/O, no timers, no clock; randomness injected).
//
// Usage: build a RawNode over a MemoryStorage; call tick() every 100 ms, step() for each peer
// message, propose()/readIndex()/proposeConfChange() for requests; whenever hasReady(), handle
// ready() in the order its doc comment gives and call advance().
//
// Deliberately unsafe variants (for the simulator): subclass Raft and override
//   protected canGrantVote(m: VoteRequest): boolean   — the vote-granting rule (§5.2, §5.4.1)
//   protected maybeCommit(): boolean                  — the commit rule (§5.3, §5.4.2)
//   protected vouchesForLeadership(m): boolean        — a follower's ReadIndex answered without a round (§6.4)
// then build `new RawNode(config, MySubclass)`. Inside an override, `this.log` (RaftLog: committed,
// commitTo, termOrZero, isUpToDate), `this.tracker` (ProgressTracker: quorumMatchIndex) and
// `this.term`, `this.vote`, `this.lead` are available. Example, a node that commits entries of
// earlier terms by counting replicas (the Figure 8 bug):
//
//   class CountingCommitRaft extends Raft {
//     protected override maybeCommit(): boolean {
//       const index = this.tracker.quorumMatchIndex();
//       if (index <= this.log.committed) return false;
//       this.log.commitTo(index);
//       return true;
//     }
//   }

export * from './types.js';
export { MemoryStorage, emptyConfState, emptyHardState, emptySnapshot, type Storage } from './storage.js';
export {
  Raft,
  type RaftConfig,
  type ReadState,
  type Role,
  type SoftState,
  type VoteRequest,
} from './raft.js';
export { RawNode, type ProgressStatus, type RaftClass, type Ready, type Status } from './rawnode.js';
export { RaftLog } from './log.js';
export { Progress, ProgressTracker, majorityOf, type ProgressState } from './progress.js';
export { applyChangeToConf, decodeConfChange, encodeConfChange, validateConfChange } from './membership.js';
