// The safety properties of Raft (Figure 3 of the paper), checked incrementally while the
// simulation runs, so a violation is reported at the step that caused it:
//
// - Election Safety: at most one leader can be elected in a given term.
// - Log Matching: if two logs contain an entry with the same index and term, the logs are
//   identical in all entries up through that index. Checked over the persisted logs: every
//   persisted entry carries the chain hash of its prefix, and one registry maps (index, term) to
//   the chain hash any log may have there.
// - Leader Completeness: if a log entry is committed in a given term, that entry is present in
//   the logs of the leaders of all higher-numbered terms. Checked when a node becomes leader.
// - State Machine Safety: if a server has applied a log entry at a given index, no other server
//   will ever apply a different log entry for the same index. Checked on every apply, together
//   with a digest of the whole state machine after that index (which also covers snapshots).
// - Durability before promises (thesis §3.8: a server persists its term and vote "before
//   responding to RPCs", and new entries "before they are counted towards the entries'
//   commitment"): no message leaves a node promising state its disk does not hold yet. Checked
//   on every send, so a Ready loop that sends an acknowledgement or a vote before its fsync is
//   caught at once, not only in the rare runs where a crash then loses what it promised.
// - Exactly once: a client's proposal (an entry naming its origin process and request sequence)
//   is committed at one index at most. Raft does not deduplicate proposals and the MVCC keeps no
//   session table, so a proposal in the log twice is a write applied twice.

import { EntryType, type Entry, type Message, type NodeId } from '../raft/types.js';
import { decodeEnvelope } from '../replica/index.js';
import type { DiskEntry, LogImage } from './disk.js';
import { Hasher } from './hash.js';

export type ViolationKind =
  | 'election-safety'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'durability'
  | 'exactly-once'
  | 'linearizability'
  | 'liveness'
  | 'raft-crash'
  /** A member back on a wiped disk was let in although a peer had recorded its lost data directory. */
  | 'wiped-member-accepted';

/** A broken property. The simulation stops at the first one and reports it with its seed. */
export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
  constructor(
    readonly kind: ViolationKind,
    message: string,
  ) {
    super(`${kind}: ${message}`);
  }
}

function entryFingerprint(entry: Entry): string {
  return new Hasher().number(entry.term).number(entry.type).bytes(entry.data).digest();
}

export class SafetyMonitor {
  /** `label`: what each violation's message starts with (the group, when a process hosts several). */
  constructor(private readonly label = '') {}

  private violation(kind: ViolationKind, message: string): SafetyViolation {
    return new SafetyViolation(kind, `${this.label}${message}`);
  }

  private leaderOfTerm = new Map<number, NodeId>();
  /** `${index}:${term}` → chain hash of the prefix ending there. */
  private chainRegistry = new Map<string, string>();
  /** index → chain hash of the committed prefix ending there. */
  private committedChain = new Map<number, string>();
  /**
   * term → the highest index a node at that term had persisted as committed. The entry was
   * committed in that term or earlier, so a leader of any higher term must hold it.
   */
  private committedIndexSeenAtTerm = new Map<number, number>();
  /** index → what was applied there (entry fingerprint) and the state digest after it. */
  private applied = new Map<number, { fingerprint: string; digest: string | undefined; node: NodeId }>();
  /** `${origin}:${sequence}` of each client proposal applied → its index. */
  private proposalIndex = new Map<string, number>();
  checks = 0;

  /** Election Safety, called every step for every node that believes it leads. */
  observeLeader(id: NodeId, term: number): void {
    this.checks++;
    const known = this.leaderOfTerm.get(term);
    if (known === undefined) this.leaderOfTerm.set(term, id);
    else if (known !== id) {
      throw this.violation('election-safety', `nodes ${known} and ${id} are both leader of term ${term}`);
    }
  }

  /** The chain hash a snapshot at (index, term) stands for: the registered one, or a fresh name. */
  chainForSnapshot(index: number, term: number): string {
    const key = `${index}:${term}`;
    let chain = this.chainRegistry.get(key);
    if (chain === undefined) {
      // Only the bootstrap snapshot is made from nothing; give it a stable name.
      chain = `snapshot:${index}:${term}`;
      this.chainRegistry.set(key, chain);
    }
    return chain;
  }

  /** Log Matching, for entries just persisted on one node's disk. */
  observeAppend(id: NodeId, added: DiskEntry[]): void {
    for (const { entry, chain } of added) {
      this.checks++;
      const key = `${entry.index}:${entry.term}`;
      const known = this.chainRegistry.get(key);
      if (known === undefined) this.chainRegistry.set(key, chain);
      else if (known !== chain) {
        throw this.violation(
          'log-matching',
          `node ${id} persisted entry ${entry.index} of term ${entry.term} after a prefix that differs from another log's`,
        );
      }
    }
  }

  /**
   * Records that a node persisted `commit` as committed while at `term`. Committed prefixes must
   * agree between nodes (this is where a leader that commits too early is caught first).
   */
  observeCommit(id: NodeId, term: number, fromIndex: number, commit: number, disk: LogImage): void {
    for (let index = Math.max(fromIndex + 1, disk.firstIndex()); index <= commit; index++) {
      this.checks++;
      const chain = disk.chainAt(index);
      if (chain === undefined) continue;
      const known = this.committedChain.get(index);
      if (known === undefined) this.committedChain.set(index, chain);
      else if (known !== chain) {
        throw this.violation(
          'state-machine-safety',
          `node ${id} committed a different entry at index ${index} than another node did`,
        );
      }
    }
    const seen = this.committedIndexSeenAtTerm.get(term) ?? 0;
    if (commit > seen) this.committedIndexSeenAtTerm.set(term, commit);
  }

  /**
   * Durability before promises, for a message `id` is sending now, against what its disk has
   * synced (`disk`: what a crash would leave). An append acknowledgement says the log up to its
   * index is durable; a granted vote and a vote request say the vote is; a leader's messages say
   * its term is (a leader whose term a crash could forget could lead that term again with another
   * log).
   *
   * An acknowledgement of an older term than the disk's is not checked against the log: one Ready
   * may acknowledge an append of term t and then, from a leader of a later term, replace those
   * entries, persisting only the result. That is the run in which the node wrote the term-t log,
   * acknowledged it, and then took the later term and its leader's log: every state a crash could
   * leave is the final one, which follows the acknowledged one legitimately (etcd's raft sends such
   * a stale response too). The old leader may count it; a leader of the later term already has
   * every entry a quorum of term t could have committed (seed 19044).
   */
  observeSend(id: NodeId, message: Message, disk: LogImage): void {
    this.checks++;
    const durable = disk.hardState;
    const unvoted = (term: number, candidate: NodeId): string | undefined =>
      durable.term > term || (durable.term === term && durable.vote === candidate)
        ? undefined
        : `promised its vote in term ${term} to ${candidate} with term ${durable.term}, vote ${durable.vote} on disk`;
    let broken: string | undefined;
    switch (message.type) {
      case 'AppResp':
        if (!message.reject && message.term >= durable.term && disk.lastIndex() < message.index) {
          broken = `acknowledged index ${message.index} with ${disk.lastIndex()} on disk`;
        }
        break;
      case 'Vote':
        broken = unvoted(message.term, id);
        break;
      case 'VoteResp':
        if (!message.reject) broken = unvoted(message.term, message.to);
        break;
      case 'App':
      case 'Heartbeat':
      case 'Snap':
      case 'TimeoutNow':
        if (durable.term < message.term) broken = `sent ${message.type} of term ${message.term} with term ${durable.term} on disk`;
        break;
      default:
        break;
    }
    if (broken !== undefined) throw this.violation('durability', `node ${id} ${broken}`);
  }

  /** Leader Completeness, called when a node is first seen as leader of `term`. */
  observeNewLeader(id: NodeId, term: number, disk: LogImage): void {
    this.checks++;
    let required = 0;
    for (const [seenTerm, index] of this.committedIndexSeenAtTerm) {
      if (seenTerm < term && index > required) required = index;
    }
    if (required === 0) return;
    if (disk.lastIndex() < required) {
      throw this.violation(
        'leader-completeness',
        `node ${id} became leader of term ${term} with last index ${disk.lastIndex()}, missing committed index ${required}`,
      );
    }
    // Compare at the required index, or at the snapshot when the leader compacted past it.
    const at = Math.max(required, disk.snapshotIndex());
    const chain = disk.chainAt(at);
    const committed = this.committedChain.get(at);
    if (chain !== undefined && committed !== undefined && chain !== committed) {
      throw this.violation(
        'leader-completeness',
        `node ${id} became leader of term ${term} but its log differs from the committed log at index ${at}`,
      );
    }
  }

  /** State Machine Safety, for one applied entry; `digest` is the state after it (commands only). */
  observeApply(id: NodeId, entry: Entry, digest: string | undefined): void {
    this.checks++;
    const fingerprint = entryFingerprint(entry);
    const known = this.applied.get(entry.index);
    if (known === undefined) {
      this.applied.set(entry.index, { fingerprint, digest, node: id });
      this.observeProposal(id, entry);
      return;
    }
    // A snapshot restore records the state at an index without the entry: fill the entry in.
    if (known.fingerprint === '') known.fingerprint = fingerprint;
    else if (known.fingerprint !== fingerprint) {
      throw this.violation(
        'state-machine-safety',
        `nodes ${known.node} and ${id} applied different entries at index ${entry.index}`,
      );
    }
    if (digest !== undefined && known.digest !== undefined && digest !== known.digest) {
      throw this.violation(
        'state-machine-safety',
        `nodes ${known.node} and ${id} reached different states after applying index ${entry.index}`,
      );
    }
    if (known.digest === undefined && digest !== undefined) known.digest = digest;
  }

  /** Exactly once, for an entry applied at its index for the first time. */
  private observeProposal(id: NodeId, entry: Entry): void {
    if (entry.type !== EntryType.Normal || entry.data.length === 0) return;
    const { origin, sequence } = decodeEnvelope(entry.data);
    // Sequence 0: nobody waits for the entry (a member's attributes, which it may publish again).
    if (sequence === 0) return;
    const key = `${origin}:${sequence}`;
    const first = this.proposalIndex.get(key);
    if (first === undefined) this.proposalIndex.set(key, entry.index);
    else {
      throw this.violation(
        'exactly-once',
        `node ${id} applied the proposal of member ${origin}'s request ${sequence} at index ${entry.index}, committed before at index ${first}`,
      );
    }
  }

  /** A node restored its state machine from a snapshot at `index`: its state must match. */
  observeRestore(id: NodeId, index: number, digest: string): void {
    this.checks++;
    const known = this.applied.get(index);
    if (known === undefined) {
      this.applied.set(index, { fingerprint: '', digest, node: id });
      return;
    }
    if (known.digest !== undefined && known.digest !== digest) {
      throw this.violation(
        'state-machine-safety',
        `node ${id} restored a snapshot at index ${index} whose state differs from what node ${known.node} applied`,
      );
    }
    if (known.digest === undefined) known.digest = digest;
  }
}
