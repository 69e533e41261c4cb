// The Raft state machine (Ongaro & Ousterhout 2014; Ongaro's thesis 2014), in the shape of
// etcd-io/raft: a synchronous object driven by tick(), step(message) and local requests, which
// queues outgoing messages and exposes its log; RawNode turns that into Ready batches.
//
// Roles are swapped handlers: becomeFollower / becomeCandidate / becomePreCandidate / becomeLeader
// set `stepRole` and `tickRole`. Each role's step function is an exhaustive switch over the
// message union. Messages from other terms are sorted out once, in step(), before the role sees them.
//
// The two rules the simulator wants to break on purpose are protected methods: canGrantVote (the
// vote-granting rule, §5.2 + §5.4.1) and maybeCommit (the commit rule, §5.3 + §5.4.2). Subclass Raft,
// override one of them, and pass the subclass to `new RawNode(config, Subclass)`.

import { LichenError, assert, isLichenError } from '../errors.js';
import {
  raftAppendBatchBytesMax,
  raftApplyBytesMax,
  raftInflightMessagesMax,
  raftPendingReadsMax,
  raftUncommittedBytesMax,
} from '../limits.js';
import { RaftLog } from './log.js';
import { applyChangeToConf, decodeConfChange, validateConfChange } from './membership.js';
import type { Progress } from './progress.js';
import { ProgressTracker, majorityOf } from './progress.js';
import { ReadOnlyQueue, decodeRoundContext, encodeRoundContext, type PendingRead } from './readindex.js';
import { entryBytes, type Storage } from './storage.js';
import {
  ConfChangeType,
  EntryType,
  NONE,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type NodeId,
} from './types.js';

export interface RaftConfig {
  /** This member's id (positive). */
  id: NodeId;
  /** What is persisted; the core only reads it. */
  storage: Storage;
  /** The only source of randomness (election timeouts); returns a number in [0, 1). */
  random: () => number;
  /** Ticks without hearing from a leader before a follower campaigns. Default 10. */
  electionTicks?: number;
  /** Ticks between leader heartbeats. Default 1. */
  heartbeatTicks?: number;
  /** The last applied index when restarting (entries after it are delivered again). */
  applied?: number;
  /** Appends in flight per follower in replicate state. Default raftInflightMessagesMax (limits.ts). */
  maxInflightMsgs?: number;
  /** Bytes of entries (entryBytes) per App message (at least one entry is always sent). Default raftAppendBatchBytesMax. */
  maxMsgBytes?: number;
  /**
   * Bytes of proposals appended by this leader and not yet applied; beyond it propose throws
   * Overloaded (a single proposal is always accepted when nothing is pending). Default raftUncommittedBytesMax.
   */
  maxUncommittedBytes?: number;
  /** Bytes of committed entries per Ready (at least one entry). Default raftApplyBytesMax. */
  maxApplyBytes?: number;
  /** Reads waiting for leadership confirmation; beyond it readIndex throws Overloaded. Default raftPendingReadsMax. */
  maxPendingReads?: number;
  /** Run a pre-election before campaigning (thesis §9.6). Default true. */
  preVote?: boolean;
  /** A leader steps down without a recent quorum; followers keep a leader lease (thesis §6.2, §9.6). Default true. */
  checkQuorum?: boolean;
  /**
   * When the commit index advances, tell followers only in appends that carry new entries, in
   * heartbeats, or when the application calls flushCommit(); etcd instead sends every follower an
   * append at once. At low load this saves a message round per write (and a wake-up of every
   * follower); followers learn each commit one append later. Except the follower an entry was
   * proposed through: its client waits until that follower applies the entry, so it is told at
   * once when the entry commits. Safety does not depend on it. Default false.
   */
  lazyCommitBroadcast?: boolean;
  /**
   * An idle leader may quiesce its group (see Raft.quiesced). Only for a host that wakes a group
   * when it loses touch with the process of its leader or of a follower (src/store does): without
   * that, nothing would notice a quiet leader's death. Default false.
   */
  quiescence?: boolean;
}

export type Role = 'follower' | 'candidate' | 'precandidate' | 'leader';

export interface SoftState {
  lead: NodeId;
  role: Role;
}

export interface ReadState {
  /** Once the application has applied this index, it may serve the read identified by `context`. */
  index: number;
  context: Uint8Array;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A message as the core writes it: `from` is always this node; `term` defaults to the current term. */
type Outgoing = DistributiveOmit<Message, 'from' | 'term'> & { term?: number };
export type VoteRequest = Extract<Message, { type: 'Vote' | 'PreVote' }>;
type AppendMessage = Extract<Message, { type: 'App' }>;
type AppendResponse = Extract<Message, { type: 'AppResp' }>;
type HeartbeatMessage = Extract<Message, { type: 'Heartbeat' }>;
type HeartbeatResponse = Extract<Message, { type: 'HeartbeatResp' }>;
type SnapshotMessage = Extract<Message, { type: 'Snap' }>;
type ProposalInput = Pick<Entry, 'type' | 'data'>;


/**
 * The context of the heartbeats a leader sends while it hands off before its own removal (see
 * Raft.ownRemoval). One byte, so it is never mistaken for a ReadIndex round (eight bytes).
 */
const HANDOFF_CONTEXT = Uint8Array.of(0x68);

function isHandoffContext(context: Uint8Array): boolean {
  return context.length === 1 && context[0] === HANDOFF_CONTEXT[0];
}

function unavailable(message: string, lead: NodeId): LichenError {
  return new LichenError('Unavailable', message, { leaderId: lead });
}

/**
 * Whether a message of this type promises something about its sender's durable state, and so may
 * leave only once that state is on stable storage (thesis §3.8: a server persists its term and
 * vote "before responding to RPCs", and new log entries "before they are counted towards the
 * entries' commitment"). etcd-io/raft keeps the same messages apart (msgsAfterAppend).
 *
 * - AppResp: "I hold the log up to `index`" (or, answering a snapshot, "I hold the snapshot"); the
 *   leader counts it toward commit. Sent before the fsync, a crash could lose an entry a quorum was
 *   counted for. Rejections and the answer to a stale leader claim nothing durable but are rare, so
 *   they wait too rather than have a rule of their own.
 * - VoteResp: a granted vote is the promise §5.2 rests on; one that leaves before the vote is
 *   durable lets a restarted voter vote twice in one term (two leaders).
 * - PreVoteResp: grants nothing durable, but is judged against this Ready's log and term; it waits
 *   as etcd's does, at no cost (a pre-vote Ready rarely has anything to persist).
 * - Vote: the candidate counts its own vote at once (etcd instead steps a vote to itself after the
 *   append), so its requests wait until that vote and the new term are durable: no answer can then
 *   be counted before the candidate's own vote could survive a crash.
 *
 * Everything else claims nothing durable and leaves at once: a leader's App, Snap, Heartbeat and
 * TimeoutNow (thesis §10.2.1: the leader's own log counts toward commit only once persisted, see
 * onPersisted; its term was made durable before its Vote requests left), PreVote, HeartbeatResp (an
 * acknowledgement of a leader's term, whose loss in a crash elects nobody), and the forwarded Prop,
 * ReadIndex, ReadIndexResp and TransferLeader. RawNode.ready() adds one rule the type alone cannot
 * say: in a Ready that changes the term or the vote, every message waits (see there).
 */
function waitsForPersistence(type: MessageType): boolean {
  switch (type) {
    case 'AppResp':
    case 'VoteResp':
    case 'PreVoteResp':
    case 'Vote':
      return true;
    case 'App':
    case 'Snap':
    case 'Heartbeat':
    case 'TimeoutNow':
    case 'PreVote':
    case 'HeartbeatResp':
    case 'Prop':
    case 'ReadIndex':
    case 'ReadIndexResp':
    case 'TransferLeader':
      return false;
  }
}

function assertNever(m: never): never {
  throw new Error(`unhandled message ${JSON.stringify(m)}`);
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  /** Outgoing messages not yet handed out in a Ready that may leave at once (Ready.messages). */
  msgs: Message[] = [];
  /**
   * Outgoing messages not yet handed out in a Ready that may leave only once this member's state
   * is durable (Ready.messagesAfterPersist; see waitsForPersistence).
   */
  msgsAfterPersist: Message[] = [];
  /** Confirmed reads not yet handed out in a Ready. */
  readStates: ReadState[] = [];
  /** The member leadership is being transferred to (thesis §3.10), or NONE. */
  leadTransferee: NodeId = NONE;
  /** The log index of the latest membership change this leader appended; see membership.ts. */
  pendingConfIndex = 0;
  /** Payload bytes this leader appended and has not yet applied (proposal back-pressure). */
  uncommittedBytes = 0;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /**
   * Quiescence (CockroachDB's idea, for a process hosting thousands of groups): a leader whose
   * followers all hold its whole log and know its commit index, and that has no work in flight,
   * sends a last heartbeat marked `quiesce` and then stops heartbeating; a follower that holds the
   * same log stops its election timer. Ticks do nothing while quiesced. Any proposal, read,
   * transfer or incoming message wakes the group (see step and wake); so does the host, when it
   * stops hearing from the process that hosts the leader (or, for a leader, a follower): the host
   * stands in for the heartbeats with one liveness beat per process (src/store).
   */
  quiesced = false;
  /** Set for the duration of tick(holdAwake): the application has work that needs ticks. */
  private holdAwake = false;

  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly lazyCommitBroadcast: boolean;
  readonly quiescence: boolean;
  readonly maxMsgBytes: number;
  readonly maxUncommittedBytes: number;
  readonly maxApplyBytes: number;
  protected readonly random: () => number;

  private stepRole: (m: Message) => void = (m) => this.stepFollower(m);
  private tickRole: () => void = () => this.tickElection();
  private readonly readOnly: ReadOnlyQueue;
  /** Reads received before this leader committed an entry of its term (thesis §6.4 step 1). */
  private waitingReads: Array<{ from: NodeId; context: Uint8Array }> = [];
  /** Proposals appended since the last Ready; their appends go out together (batching). */
  private proposalsPending = false;
  /**
   * Leader: per follower, the last index of the entries it forwarded (Prop) that have not
   * committed yet. That follower is told the commit at once, lazyCommitBroadcast or not, since its
   * client waits for it to apply them. One number per follower. (Created when first needed, as
   * handoffAcks: a process hosting thousands of idle groups pays for every empty Map.)
   */
  private forwardedUpTo: Map<NodeId, number> | undefined;
  /**
   * The index of the committed entry that removes this member, while this member holds it back
   * from its application (see applyLimit), else 0.
   *
   * Removing the leader (thesis §4.2.2). A change takes effect where it is applied (etcd's rule,
   * see membership.ts), so the other voters count votes in the old configuration until they learn
   * that the change committed. A leader that applied its own removal at once stepped down, and its
   * server stopped the member, before telling anyone: the others still needed its vote in the old
   * configuration, and with one more member down no quorum was left at all (simulator seeds 9451,
   * 11744 and 15574: no leader for 200+ ticks after faults stopped). So a member applies the entry
   * that removes it only once the others know it committed: as leader, once a quorum of the
   * remaining voters has answered a heartbeat that told them (sendHandoff); otherwise (a leader
   * that stepped down meanwhile, or a restarted member) once a leader tells it a commit index that
   * covers the entry, since that leader knows. Until then it accepts no proposals, but it still
   * votes, acknowledges appends, and may campaign (see hasUnappliedConfChanges).
   */
  private ownRemoval = 0;
  /** Leader: the committed entries already searched for this member's removal. */
  private ownRemovalScannedTo = 0;
  /** Leader: the remaining voters that answered a heartbeat telling them of ownRemoval. */
  private handoffAcks: Set<NodeId> | undefined;

  constructor(config: RaftConfig) {
    assert(Number.isSafeInteger(config.id) && config.id > 0, `raft id ${config.id} must be a positive integer`);
    this.id = config.id;
    this.random = config.random;
    this.electionTicks = config.electionTicks ?? 10;
    this.heartbeatTicks = config.heartbeatTicks ?? 1;
    assert(this.heartbeatTicks >= 1, 'heartbeatTicks must be at least 1');
    assert(this.electionTicks > this.heartbeatTicks, 'electionTicks must exceed heartbeatTicks');
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.lazyCommitBroadcast = config.lazyCommitBroadcast ?? false;
    this.quiescence = config.quiescence ?? false;
    this.maxMsgBytes = config.maxMsgBytes ?? raftAppendBatchBytesMax;
    this.maxUncommittedBytes = config.maxUncommittedBytes ?? raftUncommittedBytesMax;
    this.maxApplyBytes = config.maxApplyBytes ?? raftApplyBytesMax;
    const maxInflight = config.maxInflightMsgs ?? raftInflightMessagesMax;
    assert(maxInflight >= 1, 'maxInflightMsgs must be at least 1');
    this.readOnly = new ReadOnlyQueue(config.maxPendingReads ?? raftPendingReadsMax);

    this.log = new RaftLog(config.storage);
    const { hardState, confState } = config.storage.initialState();
    this.tracker = new ProgressTracker(maxInflight);
    this.tracker.setConf(confState, this.log.lastIndex() + 1, false);
    this.loadHardState(hardState);
    if (config.applied !== undefined && config.applied > 0) this.log.appliedTo(config.applied);
    // A member restarted between learning that its removal committed and applying it does not
    // know whether the others know: it waits for a leader to say so (see ownRemoval).
    this.ownRemoval = this.findOwnRemoval(this.log.applied + 1, this.log.committed);
    // Elected later (see hasUnappliedConfChanges), it must not find the same removal again once the
    // handoff has let it go.
    this.ownRemovalScannedTo = this.log.committed;
    this.becomeFollower(this.term, NONE);
  }

  private loadHardState(hs: HardState): void {
    if (hs.term === 0 && hs.vote === NONE && hs.commit === 0) return;
    assert(hs.commit >= this.log.committed, `hard state commit ${hs.commit} below the snapshot's ${this.log.committed}`);
    // A commit index beyond the log means the log lost entries after it was written: DataLoss.
    this.log.commitTo(hs.commit);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---------------------------------------------------------------- state that leaves the core

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  isLearner(): boolean {
    return this.tracker.learners.has(this.id);
  }

  /** Whether this node may campaign: only voters of the current configuration (not learners, not removed nodes). */
  promotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  /** Whether messages wait to be handed out in a Ready (either kind). */
  hasMessages(): boolean {
    return this.msgs.length > 0 || this.msgsAfterPersist.length > 0;
  }

  /** The messages that may leave at once; call takeMessagesAfterPersist() right after. */
  takeMessages(): Message[] {
    this.flushProposals();
    return this.takeQueuedMessages();
  }

  /**
   * The messages queued so far that may leave at once, without the appends of proposals batched
   * since the last Ready (they go out together in the next one; see flushProposals). For
   * RawNode.takeMessagesDuringPersist, which decides when they may leave.
   */
  takeQueuedMessages(): Message[] {
    const out = this.msgs;
    this.msgs = [];
    // The heartbeats of every open ReadIndex round are now on their way: later reads need a new round.
    this.readOnly.seal();
    return out;
  }

  /** The messages that may leave only once this member's state as of now is durable. */
  takeMessagesAfterPersist(): Message[] {
    const out = this.msgsAfterPersist;
    this.msgsAfterPersist = [];
    return out;
  }

  takeReadStates(): ReadState[] {
    const out = this.readStates;
    this.readStates = [];
    return out;
  }

  /** The highest index the application may apply now (see ownRemoval). */
  applyLimit(): number {
    return this.ownRemoval > 0 ? this.ownRemoval - 1 : Infinity;
  }

  /** Called by RawNode.advance(): the Ready's snapshot and entries are on stable storage. */
  onPersisted(lastEntry: { index: number; term: number } | undefined, snapshotIndex: number | undefined): void {
    if (snapshotIndex !== undefined) {
      this.log.stableSnapTo(snapshotIndex);
      if (snapshotIndex > this.log.applied && snapshotIndex <= this.log.committed) this.log.appliedTo(snapshotIndex);
    }
    if (lastEntry) this.log.stableTo(lastEntry.index, lastEntry.term);
    // Thesis §10.2.1: the leader's own log counts toward commit only once it is persisted.
    if (this.role === 'leader') {
      const self = this.tracker.progress.get(this.id);
      if (self && self.maybeUpdate(this.log.persistedIndex())) this.commitAndAnnounce();
    }
  }

  /** Called by RawNode.advance(): the Ready's committed entries were applied. */
  onApplied(index: number, payloadBytes: number): void {
    if (index > this.log.applied) this.log.appliedTo(index);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - payloadBytes);
  }

  // ---------------------------------------------------------------- role transitions

  private send(m: Outgoing): void {
    if (m.to === this.id) return;
    (waitsForPersistence(m.type) ? this.msgsAfterPersist : this.msgs).push({ ...m, from: this.id, term: m.term ?? this.term } as Message);
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.random();
    assert(r >= 0 && r < 1, `random() returned ${r}, outside [0, 1)`);
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(r * this.electionTicks);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.quiesced = false;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.tracker.clearVotes();
    this.tracker.resetProgress(this.log.lastIndex() + 1, this.id, this.log.persistedIndex());
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.clear();
    this.handoffAcks = undefined;
    this.waitingReads = [];
    this.proposalsPending = false;
    this.forwardedUpTo = undefined;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.stepRole = (m) => this.stepFollower(m);
    this.tickRole = () => this.tickElection();
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // A pre-election neither increments the term nor changes the vote (thesis §9.6).
    this.stepRole = (m) => this.stepCandidate(m);
    this.tickRole = () => this.tickElection();
    this.tracker.clearVotes();
    this.lead = NONE;
    this.role = 'precandidate';
  }

  becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a candidate');
    this.stepRole = (m) => this.stepCandidate(m);
    this.tickRole = () => this.tickElection();
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomeLeader(): void {
    assert(this.role !== 'follower', 'a follower cannot become leader without an election');
    this.stepRole = (m) => this.stepLeader(m);
    this.tickRole = () => this.tickHeartbeat();
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.tracker.progress.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // §5.4.2 / thesis §6.4: a new leader appends a no-op so that an entry of its term gets committed,
    // which commits everything before it and lets it serve reads.
    this.appendEntries([{ type: EntryType.Normal, data: new Uint8Array(0) }]);
    // Ongaro's fix: no membership change until an entry of this term is committed (and applied).
    this.pendingConfIndex = this.log.lastIndex();
  }

  // ---------------------------------------------------------------- ticks

  /** `holdAwake`: the application has work of its own that needs ticks (a leader then does not quiesce). */
  tick(holdAwake = false): void {
    if (this.quiesced) return;
    this.holdAwake = holdAwake;
    this.tickRole();
    this.holdAwake = false;
  }

  /**
   * Ends quiescence. `leaderSilent`: the host has not heard from the leader's process for an
   * election timeout, which stands in for the heartbeats a quiesced leader does not send: the
   * follower's timer resumes as if an election timeout had passed without a heartbeat (so it
   * neither keeps a leader lease nor waits another full timeout), and it campaigns within the
   * randomized part of the timeout, with PreVote as usual. Otherwise the timers restart, and a
   * leader must hear from a quorum again within an election timeout (CheckQuorum) before it can
   * count anyone as recently active: what it heard before it went quiet is not fresh.
   */
  wake(reason: 'work' | 'leaderSilent' = 'work'): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.heartbeatElapsed = this.heartbeatTicks;
    if (this.role === 'leader') {
      this.electionElapsed = 0;
      for (const [id, pr] of this.tracker.progress) {
        pr.recentActive = id === this.id;
        pr.activeLastRound = false;
      }
    } else {
      this.electionElapsed = reason === 'leaderSilent' ? this.electionTicks : 0;
      // Every follower of the group wakes at about the same moment: fresh draws keep them from
      // campaigning in lockstep.
      this.resetRandomizedElectionTimeout();
    }
  }

  /**
   * Whether this leader may go quiet (see quiesced): nothing in flight (no proposal, read round,
   * transfer, own removal or unapplied entry), and every follower answered within this election
   * timeout, holds the whole log in the replicate state and was told the commit index.
   */
  private mayQuiesce(): boolean {
    if (!this.quiescence || this.holdAwake || this.leadTransferee !== NONE || this.ownRemoval > 0 || this.proposalsPending) return false;
    if (this.readOnly.size > 0 || this.waitingReads.length > 0) return false;
    const last = this.log.lastIndex();
    if (this.log.committed !== last || this.log.applied !== last || this.pendingConfIndex > last) return false;
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      if (!pr.recentActive || pr.state !== 'replicate' || pr.match !== last || pr.commitSent < last) return false;
    }
    return true;
  }

  private quiesce(): void {
    this.quiesced = true;
    for (const id of this.tracker.progress.keys()) {
      if (id !== this.id) this.send({ type: 'Heartbeat', to: id, commit: this.log.committed, context: new Uint8Array(0), quiesce: true });
    }
  }

  /** A follower agrees to go quiet when it holds exactly the leader's log, all of it committed. */
  private maybeFollowQuiesce(m: HeartbeatMessage): void {
    if (m.quiesce && this.log.lastIndex() === m.commit && this.log.committed === m.commit && this.log.lastTerm() === this.term) this.quiesced = true;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      // Thesis §6.2: a leader that has not heard from a quorum within an election timeout steps down,
      // so clients stop sending it requests it cannot commit.
      if (this.checkQuorum && !this.tracker.quorumActive(this.id)) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      // Thesis §3.10: a transfer that did not finish within an election timeout is aborted.
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      if (this.mayQuiesce()) return this.quiesce();
      this.bcastHeartbeat();
      if (this.ownRemoval > 0) this.sendHandoff();
    }
  }

  // ---------------------------------------------------------------- elections

  /** Starts an election now (a pre-election first when preVote is on). */
  campaign(): void {
    this.wake();
    this.hup(false);
  }

  private hup(transfer: boolean): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) return;
    // A node must apply every committed membership change before campaigning, or it might count
    // votes with a configuration the rest of the group has already left.
    if (this.hasUnappliedConfChanges()) return;
    if (this.preVote && !transfer) this.runElection('pre', false);
    else this.runElection('real', transfer);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.ownRemoval === 0) return this.hasConfChangeIn(this.log.applied, this.log.committed);
    // Its own removal, held back until the others know it committed (see ownRemoval), does not
    // count: the member holding it may have the only complete log, and then nobody else can win
    // its vote; were it unable to campaign, no leader could ever be elected (sim seed 14837, once
    // a commit index that passes a membership change was synced). Elected in the configuration it
    // still uses, it tells the others (sendHandoff) and then applies its removal.
    return this.hasConfChangeIn(this.log.applied, this.ownRemoval - 1) || this.hasConfChangeIn(this.ownRemoval, this.log.committed);
  }

  /** Whether an entry with an index in (after, to] that this log still holds is a membership change. */
  hasConfChangeIn(after: number, to: number): boolean {
    let lo = Math.max(after + 1, this.log.firstIndex());
    const hi = Math.min(to, this.log.lastIndex()) + 1;
    // Bounded: every page holds at least one entry.
    while (lo < hi) {
      const page = this.log.slice(lo, hi, this.maxMsgBytes);
      if (page.some((e) => e.type === EntryType.ConfChange)) return true;
      lo += page.length;
    }
    return false;
  }

  private runElection(kind: 'pre' | 'real', transfer: boolean): void {
    let term: number;
    if (kind === 'pre') {
      this.becomePreCandidate();
      // Thesis §9.6: ask for votes for the term we would use, without adopting it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    this.tracker.recordVote(this.id, true);
    if (this.tracker.tallyVotes().result === 'won') {
      // A single-voter group wins at once.
      if (kind === 'pre') this.runElection('real', false);
      else this.becomeLeader();
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const id of [...this.tracker.voters].sort((a, b) => a - b)) {
      if (id === this.id) continue;
      this.send({ type: kind === 'pre' ? 'PreVote' : 'Vote', to: id, term, lastLogIndex, lastLogTerm, transfer });
    }
  }

  /**
   * The vote-granting rule. §5.2: "Each server will vote for at most one candidate in a given term,
   * on a first-come-first-served basis." §5.4.1: "the voter denies its vote if its own log is more
   * up-to-date than that of the candidate." A pre-vote for a later term is granted on the log
   * check alone, since granting it changes nothing (thesis §9.6). Called only for requests whose
   * term is >= ours (older ones are rejected before).
   */
  protected canGrantVote(m: VoteRequest): boolean {
    const free =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'PreVote' && m.term > this.term);
    return free && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
  }

  private handleVoteRequest(m: VoteRequest): void {
    const respType = m.type === 'Vote' ? 'VoteResp' : 'PreVoteResp';
    if (this.canGrantVote(m)) {
      // A granted pre-vote carries the term it was asked for, so the pre-candidate can tell
      // current answers from stale ones; a real vote is for our (now equal) term.
      this.send({ type: respType, to: m.from, term: m.term, reject: false });
      if (m.type === 'Vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, reject: true });
    }
  }

  // ---------------------------------------------------------------- step

  /** Handles a message from a peer. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    // A follower's answer to a heartbeat (the quiesce heartbeat's among them) leaves a quiet leader
    // quiet; anything else is news that needs the timers.
    if (this.quiesced && !(m.type === 'HeartbeatResp' && m.context.length === 0)) this.wake();
    if (!this.stepTerm(m)) return;
    if (m.type === 'Vote' || m.type === 'PreVote') {
      this.handleVoteRequest(m);
      return;
    }
    this.stepRole(m);
    if (this.ownRemoval > 0 && this.role === 'follower' && m.from === this.lead && leaderCommit(m) >= this.ownRemoval) {
      this.ownRemoval = 0;
    }
  }

  /**
   * The term rules common to every role (§5.1: "If a server receives a request with a stale term
   * number, it rejects the request"; "If one server's current term is smaller than the other's,
   * then it updates its current term"). Returns whether the role should see the message.
   */
  private stepTerm(m: Message): boolean {
    // Forwarded requests describe no claim about terms; the receiver's role decides what to do.
    if (m.type === 'Prop' || m.type === 'ReadIndex' || m.type === 'TransferLeader') return true;
    if (m.term > this.term) {
      if (m.type === 'Vote' || m.type === 'PreVote') {
        // Thesis §9.6 (leader lease with CheckQuorum): a server that heard from a leader within the
        // minimum election timeout neither updates its term nor grants a vote, unless the campaign
        // was started by a leadership transfer.
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTicks;
        if (inLease && !m.transfer) return false;
      }
      if (m.type === 'PreVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'PreVoteResp' && !m.reject) {
        // A granted pre-vote carries the future term; we adopt it only when we win.
      } else if (m.type === 'App' || m.type === 'Heartbeat' || m.type === 'Snap' || m.type === 'ReadIndexResp') {
        // Only a leader sends these, so we know the leader of the new term.
        this.becomeFollower(m.term, m.from);
      } else if (m.type === 'Vote') {
        // §5.2 (Figure 2): a follower converts to candidate when its election timeout elapses
        // "without receiving AppendEntries RPC from current leader or granting vote to candidate".
        // So adopting a candidate's term does not restart the timer; granting the vote does (see
        // handleVoteRequest). Else a member whose log is behind, campaigning again and again
        // without pre-vote, keeps the up-to-date members from ever timing out (simulator seed
        // 100436: no leader for 330 ticks).
        const elapsed = this.electionElapsed;
        this.becomeFollower(m.term, NONE);
        this.electionElapsed = elapsed;
      } else {
        this.becomeFollower(m.term, NONE);
      }
      return true;
    }
    if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'App' || m.type === 'Heartbeat')) {
        // A stale leader (for example one that was partitioned away) would otherwise never learn the
        // new term, since with pre-vote and leases nobody else will disrupt it: tell it.
        this.send({ type: 'AppResp', to: m.from, reject: false, index: 0, rejectHint: 0, hintTerm: 0 });
      } else if (m.type === 'PreVote' || m.type === 'Vote') {
        // Reject explicitly so the (pre-)candidate learns our term (§5.1: RequestVote returns
        // currentTerm "for candidate to update itself"). Staying silent can stall elections: a
        // candidate that never hears of a higher term keeps campaigning below it (simulator seed
        // 3605: a stale voter kept raising other nodes' terms while the up-to-date candidates were
        // never told).
        this.send({ type: m.type === 'Vote' ? 'VoteResp' : 'PreVoteResp', to: m.from, reject: true });
      }
      return false;
    }
    return true;
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'App':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'Heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        this.maybeFollowQuiesce(m);
        return;
      case 'Snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'TimeoutNow':
        // Thesis §3.10: the leader asks us to start an election at once, skipping the pre-vote (the
        // voters still hear from that leader and would refuse a pre-vote).
        this.hup(true);
        return;
      case 'ReadIndexResp':
        this.readStates.push({ index: m.index, context: m.context });
        return;
      case 'Prop':
      case 'ReadIndex':
      case 'TransferLeader':
        // Forwarded to us by a node that thinks we lead; we do not forward twice (no loops).
        return;
      case 'Vote':
      case 'PreVote':
      case 'VoteResp':
      case 'PreVoteResp':
      case 'AppResp':
      case 'HeartbeatResp':
        return;
      default:
        assertNever(m);
    }
  }

  private stepCandidate(m: Message): void {
    const myResponse = this.role === 'precandidate' ? 'PreVoteResp' : 'VoteResp';
    switch (m.type) {
      case 'App':
        // §5.2: "If the AppendEntries RPC is from another server claiming to be leader whose term is
        // at least as large as the candidate's current term, then the candidate ... returns to
        // follower state."
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'Heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'Snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'VoteResp':
      case 'PreVoteResp': {
        if (m.type !== myResponse) return;
        this.tracker.recordVote(m.from, !m.reject);
        const { result } = this.tracker.tallyVotes();
        if (result === 'won') {
          if (this.role === 'precandidate') {
            this.runElection('real', false);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case 'Prop':
      case 'ReadIndex':
      case 'TransferLeader':
      case 'TimeoutNow':
      case 'ReadIndexResp':
      case 'Vote':
      case 'PreVote':
      case 'AppResp':
      case 'HeartbeatResp':
        return;
      default:
        assertNever(m);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'Prop':
        this.handleForwardedProposal(m.from, m.entries);
        return;
      case 'ReadIndex':
        try {
          if (this.vouchesForLeadership(m)) this.answerRead({ index: this.log.committed, context: m.context, from: m.from });
          else this.handleReadIndexRequest(m.from, m.context);
        } catch (error) {
          if (!isLichenError(error)) throw error;
          // Overloaded: the follower's read times out and is retried.
        }
        return;
      case 'TransferLeader':
        if (this.tracker.progress.has(m.transferee)) this.handleTransferLeader(m.transferee);
        return;
      case 'AppResp':
        this.handleAppendResponse(m);
        return;
      case 'HeartbeatResp':
        this.handleHeartbeatResponse(m);
        return;
      case 'App':
      case 'Heartbeat':
      case 'Snap':
        // Another leader in our own term would violate Election Safety (§5.2); nothing sensible to do.
        return;
      case 'Vote':
      case 'PreVote':
      case 'VoteResp':
      case 'PreVoteResp':
      case 'ReadIndexResp':
      case 'TimeoutNow':
        return;
      default:
        assertNever(m);
    }
  }

  // ---------------------------------------------------------------- follower side of replication

  private handleAppendEntries(m: AppendMessage): void {
    if (m.prevLogIndex < this.log.committed) {
      // Everything up to our commit index matches the leader (Leader Completeness); say so.
      this.send({ type: 'AppResp', to: m.from, reject: false, index: this.log.committed, rejectHint: 0, hintTerm: 0 });
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevLogIndex, m.prevLogTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: 'AppResp', to: m.from, reject: false, index: lastNew, rejectHint: 0, hintTerm: 0 });
      return;
    }
    // §5.3: "If a follower's log is inconsistent with the leader's, the AppendEntries consistency
    // check will fail". We answer with the largest index whose term is <= prevLogTerm, so the
    // leader can skip every entry of a conflicting term in one round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.prevLogIndex, this.log.lastIndex()), m.prevLogTerm);
    this.send({
      type: 'AppResp',
      to: m.from,
      reject: true,
      index: m.prevLogIndex,
      rejectHint: hint.index,
      hintTerm: hint.term,
    });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // The leader sends min(our match, its commit), so this never passes our matching prefix.
    this.log.commitTo(m.commit);
    this.send({ type: 'HeartbeatResp', to: m.from, context: m.context });
  }

  private handleSnapshot(m: SnapshotMessage): void {
    if (this.restore(m.snapshot)) {
      this.send({ type: 'AppResp', to: m.from, reject: false, index: this.log.lastIndex(), rejectHint: 0, hintTerm: 0 });
    } else {
      this.send({ type: 'AppResp', to: m.from, reject: false, index: this.log.committed, rejectHint: 0, hintTerm: 0 });
    }
  }

  /**
   * §7: install a snapshot only if it is newer than what we have committed. If our log already holds
   * the snapshot's last entry, just fast-forward the commit index and keep the log.
   */
  private restore(snap: import('./types.js').Snapshot): boolean {
    const { index, term, conf } = snap.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snap);
    this.tracker.setConf(conf, this.log.lastIndex() + 1, false);
    return true;
  }

  // ---------------------------------------------------------------- leader side of replication

  private appendEntries(inputs: ProposalInput[]): void {
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = inputs.map((e, i) => ({ term: this.term, index: first + i, type: e.type, data: e.data }));
    this.log.append(entries);
    // The leader's own match advances only in onPersisted (after the fsync), not here.
  }

  /**
   * The commit rule. §5.3: "A log entry is committed once the leader that created the entry has
   * replicated it on a majority of the servers." §5.4.2: "Raft never commits log entries from
   * previous terms by counting replicas. Only log entries from the leader's current term are
   * committed by counting replicas." Returns whether the commit index advanced.
   */
  protected maybeCommit(): boolean {
    return this.log.maybeCommit(this.tracker.quorumMatchIndex(), this.term);
  }

  /** The index of the first entry in [from, to] that removes this member, else 0. */
  private findOwnRemoval(from: number, to: number): number {
    let lo = Math.max(from, this.log.firstIndex());
    const hi = to + 1;
    // Bounded: every page holds at least one entry.
    while (lo < hi) {
      const page = this.log.slice(lo, hi, this.maxMsgBytes);
      for (const e of page) {
        if (e.type !== EntryType.ConfChange) continue;
        const cc = decodeConfChange(e.data);
        if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.id) return e.index;
      }
      lo += page.length;
    }
    return 0;
  }

  /** Leader: starts the handoff when an entry that removes this member has just committed. */
  private maybeStartHandoff(): void {
    if (this.ownRemoval > 0) return;
    const from = Math.max(this.ownRemovalScannedTo, this.log.applied) + 1;
    this.ownRemovalScannedTo = this.log.committed;
    this.ownRemoval = this.findOwnRemoval(from, this.log.committed);
    if (this.ownRemoval > 0) this.sendHandoff();
  }

  /**
   * Tells each remaining voter that has not confirmed it yet that ownRemoval committed: a heartbeat
   * carries the commit index to a voter that holds the entry (its answer proves it knows), an append
   * catches up the others first.
   */
  private sendHandoff(): void {
    for (const id of this.tracker.voters) {
      if (id === this.id || this.handoffAcks?.has(id)) continue;
      const pr = this.tracker.progress.get(id)!;
      if (pr.match >= this.ownRemoval) this.sendHeartbeat(id, HANDOFF_CONTEXT);
      else this.sendAppend(id);
    }
  }

  private onHandoffAck(from: NodeId): void {
    if (this.ownRemoval === 0 || !this.tracker.isVoter(from)) return;
    const acks = (this.handoffAcks ??= new Set());
    acks.add(from);
    const remaining = this.tracker.voters.size - 1;
    let told = 0;
    for (const id of acks) if (id !== this.id && this.tracker.isVoter(id)) told++;
    // A quorum of the new configuration knows: it can elect a leader without this member.
    if (told >= majorityOf(remaining)) this.ownRemoval = 0;
  }

  /** Advances the commit index if a quorum allows and tells whom it concerns; whether it moved. */
  private commitAndAnnounce(): boolean {
    const previousCommit = this.log.committed;
    if (!this.maybeCommit()) return false;
    this.onCommitAdvanced(previousCommit);
    return true;
  }

  private onCommitAdvanced(previousCommit: number): void {
    this.maybeStartHandoff();
    // Tell the followers (commit travels in appends) and serve reads that waited for this term's first commit.
    // Lazily: only appends that carry entries anyway (see lazyCommitBroadcast), except to a
    // follower whose forwarded proposals just committed: its client is waiting. A membership
    // change (or this term's first entry) is announced at once: until a follower applies it, it
    // campaigns and counts votes in the old configuration, so a leader that failed right after
    // committing it could leave survivors who cannot elect anyone (a learner promoted beside one
    // other voter: the voter cannot win alone, the learner does not campaign; a flake of
    // replaced-cluster.test.ts under load).
    const confCommitted = this.pendingConfIndex > previousCommit && this.pendingConfIndex <= this.log.committed;
    this.bcastAppend(!this.lazyCommitBroadcast || confCommitted);
    for (const [id, upTo] of this.forwardedUpTo ?? []) {
      if (upTo > this.log.committed) continue;
      this.forwardedUpTo!.delete(id);
      const pr = this.tracker.progress.get(id);
      if (pr && pr.commitSent < this.log.committed) this.sendAppend(id, true);
    }
    if (this.committedEntryInCurrentTerm()) this.releaseWaitingReads();
  }

  /**
   * Whether a follower we replicate to, and may send to now, has not been told the current commit
   * index yet. A paused one (window full, or probing) hears it with its next append or heartbeat.
   */
  commitUnannounced(): boolean {
    if (this.role !== 'leader') return false;
    for (const [id, pr] of this.tracker.progress) {
      if (id !== this.id && pr.state === 'replicate' && !pr.isPaused() && pr.commitSent < this.log.committed) return true;
    }
    return false;
  }

  /** Sends the commit index to every follower that has not been told it (see lazyCommitBroadcast). */
  flushCommit(): void {
    if (this.role !== 'leader') return;
    for (const [id, pr] of this.tracker.progress) {
      if (id !== this.id && pr.commitSent < this.log.committed) this.sendAppend(id, true);
    }
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  private bcastAppend(sendIfEmpty = true): void {
    for (const id of this.tracker.progress.keys()) {
      if (id !== this.id) this.sendAppend(id, sendIfEmpty);
    }
  }

  /**
   * Sends `to` the entries it needs next, within its flow control window; a snapshot when those
   * entries are compacted. Returns whether a message was sent.
   */
  private sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    let prevLogTerm: number;
    let entries: Entry[];
    try {
      prevLogTerm = this.log.term(pr.next - 1);
      entries = this.log.entriesFrom(pr.next, this.maxMsgBytes);
    } catch (error) {
      if (isLichenError(error, 'Compacted')) return this.sendSnapshot(to, pr);
      throw error;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'App', to, prevLogIndex: pr.next - 1, prevLogTerm, entries, commit: this.log.committed });
    pr.commitSent = this.log.committed;
    switch (pr.state) {
      case 'replicate':
        if (entries.length > 0) {
          const last = entries[entries.length - 1]!.index;
          pr.optimisticUpdate(last);
          pr.inflights.add(last);
        }
        break;
      case 'probe':
        // One probe at a time until the follower answers (or answers a heartbeat).
        pr.probeSent = true;
        break;
      case 'snapshot':
        assert(false, 'sendAppend in snapshot state');
    }
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // Do not stream snapshots to members we have not heard from lately.
    if (!pr.recentActive) return false;
    const snap = this.log.snapshot();
    assert(snap.metadata.index > 0, `member ${to} needs compacted entries but there is no snapshot`);
    this.send({ type: 'Snap', to, snapshot: snap });
    pr.becomeSnapshot(snap.metadata.index);
    return true;
  }

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (m.reject) {
      let matchHint = m.rejectHint;
      if (m.hintTerm > 0) matchHint = this.log.findConflictByTerm(m.rejectHint, m.hintTerm).index;
      if (pr.maybeDecrTo(m.index, matchHint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    switch (pr.state) {
      case 'probe':
        pr.becomeReplicate();
        break;
      case 'snapshot':
        if (pr.match + 1 >= this.log.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case 'replicate':
        pr.inflights.freeLE(m.index);
        break;
    }
    if (!this.commitAndAnnounce() && wasPaused) this.sendAppend(m.from);
    if (this.ownRemoval > 0 && pr.match >= this.ownRemoval && !this.handoffAcks?.has(m.from)) {
      this.sendHeartbeat(m.from, HANDOFF_CONTEXT);
    }
    // Fill the flow control window (bounded by its size).
    for (let i = 0; i < pr.inflights.capacity && this.sendAppend(m.from, false); i++);
    // Thesis §3.10: once the transferee has caught up, tell it to campaign.
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private bcastHeartbeat(): void {
    const seq = this.readOnly.lastSeq();
    const context = seq === undefined ? new Uint8Array(0) : encodeRoundContext(seq);
    for (const id of this.tracker.progress.keys()) {
      if (id !== this.id) this.sendHeartbeat(id, context);
    }
  }

  private sendHeartbeat(to: NodeId, context: Uint8Array): void {
    const pr = this.tracker.progress.get(to);
    // Never tell a follower a commit index beyond what it is known to hold.
    const commit = Math.min(pr?.match ?? 0, this.log.committed);
    this.send({ type: 'Heartbeat', to, commit, context });
    if (pr) pr.commitSent = Math.max(pr.commitSent, commit);
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    if (isHandoffContext(m.context)) this.onHandoffAck(m.from);
    pr.recentActive = true;
    pr.probeSent = false;
    // If appends were lost the window may be full forever; a heartbeat answer frees one slot.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    const seq = decodeRoundContext(m.context);
    if (seq === undefined) return;
    const confirmed = this.readOnly.ack(seq, m.from, (acks) => this.tracker.hasQuorum(acks, this.id));
    for (const read of confirmed) this.answerRead(read);
  }

  // ---------------------------------------------------------------- proposals

  /** Proposes a state machine command. Throws Unavailable without a leader or during a transfer. */
  propose(data: Uint8Array): void {
    this.wake();
    this.proposeEntries([{ type: EntryType.Normal, data }]);
  }

  /** Proposes a membership change (see membership.ts). Throws MembershipRefused while one is pending. */
  proposeConfChange(data: Uint8Array): void {
    this.wake();
    this.proposeEntries([{ type: EntryType.ConfChange, data }]);
  }

  private proposeEntries(inputs: ProposalInput[]): void {
    switch (this.role) {
      case 'leader':
        this.leaderAppend(inputs);
        return;
      case 'follower':
        if (this.lead === NONE) throw unavailable('proposal dropped: no leader is known', NONE);
        // Forward to the leader (entries get their term and index there).
        this.send({
          type: 'Prop',
          to: this.lead,
          entries: inputs.map((e) => ({ term: 0, index: 0, type: e.type, data: e.data })),
        });
        return;
      case 'candidate':
      case 'precandidate':
        throw unavailable('proposal dropped: an election is in progress', NONE);
    }
  }

  private handleForwardedProposal(from: NodeId, entries: Entry[]): void {
    try {
      this.leaderAppend(entries.map((e) => ({ type: e.type, data: e.data })));
      if (from !== this.id && this.tracker.progress.has(from)) (this.forwardedUpTo ??= new Map()).set(from, this.log.lastIndex());
    } catch (error) {
      // Refused (transfer in progress, overloaded, membership change pending): the follower's
      // client times out and retries, as with any lost message.
      if (!isLichenError(error)) throw error;
    }
  }

  private leaderAppend(inputs: ProposalInput[]): void {
    if (!this.tracker.progress.has(this.id) || this.ownRemoval > 0) {
      throw unavailable('proposal dropped: this leader is being removed', NONE);
    }
    if (this.leadTransferee !== NONE) {
      throw unavailable(`proposal dropped: leadership transfer to ${this.leadTransferee} in progress`, this.id);
    }
    let confChanges = 0;
    for (const e of inputs) {
      if (e.type !== EntryType.ConfChange) continue;
      confChanges++;
      this.checkConfChangeAllowed(decodeConfChange(e.data), confChanges);
    }
    let bytes = 0;
    for (const e of inputs) bytes += entryBytes(e);
    // A proposal is always accepted when nothing is uncommitted, so one large entry cannot livelock.
    if (this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > this.maxUncommittedBytes) {
      throw new LichenError('Overloaded', `too many uncommitted proposals (${this.uncommittedBytes} bytes)`, {
        uncommittedBytes: this.uncommittedBytes,
      });
    }
    this.uncommittedBytes += bytes;
    this.appendEntries(inputs);
    if (confChanges > 0) this.pendingConfIndex = this.log.lastIndex();
    // Batching: proposals accumulate until the next Ready, and then go out together in as few
    // appends as maxMsgBytes allows (see flushProposals).
    this.proposalsPending = true;
  }

  /** Whether proposals were appended whose appends have not been sent yet. */
  hasPendingProposals(): boolean {
    return this.proposalsPending;
  }

  /** Sends the appends for proposals batched since the last Ready. */
  flushProposals(): void {
    if (!this.proposalsPending) return;
    this.proposalsPending = false;
    if (this.role === 'leader') this.bcastAppend();
  }

  private checkConfChangeAllowed(cc: ConfChange, countInBatch: number): void {
    if (countInBatch > 1) throw new LichenError('MembershipRefused', 'only one membership change at a time');
    if (this.pendingConfIndex > this.log.applied) {
      // Which it is matters to the caller: a new leader's first entry means only "not yet" (the
      // replica retries once it is applied), another change is the caller's to see. Told here,
      // where the whole log is, including entries not yet persisted.
      const change = this.hasConfChangeIn(this.log.applied, this.pendingConfIndex);
      throw new LichenError(
        'MembershipRefused',
        change
          ? `another membership change (up to index ${this.pendingConfIndex}) is not yet applied`
          : `this new leader's first entry (index ${this.pendingConfIndex}) is not yet applied`,
        { pendingConfIndex: this.pendingConfIndex, applied: this.log.applied, reason: change ? 'changePending' : 'leaderStartPending' },
      );
    }
    validateConfChange(this.tracker.confState(), cc);
  }

  /**
   * Applies a committed membership change (called when the application applies the entry) and
   * returns the new membership.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const next = applyChangeToConf(this.tracker.confState(), cc);
    // A leader stops replicating to a member it removes: tell it the commit index one last time, so
    // it applies its removal (see ownRemoval) rather than wait for someone to say so.
    if (this.role === 'leader' && cc.type === ConfChangeType.RemoveNode && cc.nodeId !== this.id && this.tracker.progress.has(cc.nodeId)) {
      this.sendHeartbeat(cc.nodeId, new Uint8Array(0));
    }
    this.tracker.setConf(next, this.log.lastIndex() + 1, true);
    if (this.role === 'leader') {
      if (!this.tracker.isVoter(this.id)) {
        // A removed leader steps down; the remaining voters elect a new leader.
        this.becomeFollower(this.term, NONE);
        return next;
      }
      if (this.leadTransferee !== NONE && !this.tracker.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
      // The quorum changed: entries may now be committed, and new members need appends.
      if (!this.commitAndAnnounce()) this.bcastAppend();
    }
    return next;
  }

  // ---------------------------------------------------------------- reads

  /** Thesis §6.4 ReadIndex; the answer arrives as a ReadState (possibly on a later Ready). */
  readIndex(context: Uint8Array): void {
    this.wake();
    switch (this.role) {
      case 'leader':
        this.handleReadIndexRequest(this.id, context);
        return;
      case 'follower':
        if (this.lead === NONE) throw unavailable('read dropped: no leader is known', NONE);
        this.send({ type: 'ReadIndex', to: this.lead, context });
        return;
      case 'candidate':
      case 'precandidate':
        throw unavailable('read dropped: an election is in progress', NONE);
    }
  }

  private handleReadIndexRequest(from: NodeId, context: Uint8Array): void {
    // Thesis §6.4 step 1: until the leader has committed an entry of its term it may not know the
    // latest commit index, so reads wait for its no-op to commit.
    if (!this.committedEntryInCurrentTerm()) {
      if (this.waitingReads.length >= raftPendingReadsMax) {
        throw new LichenError('Overloaded', 'too many reads waiting for the leader to commit');
      }
      this.waitingReads.push({ from, context });
      return;
    }
    this.startRead(from, context);
  }

  /**
   * Whether a follower's ReadIndex request is itself the quorum's word that this leader still
   * leads, so it may be answered with the commit index at once, without a heartbeat round.
   *
   * A heartbeat round proves that, after the read arrived, a quorum was still in this leader's
   * term, so no later leader had been elected when the read started and none could have
   * acknowledged a write this leader does not know of. The request carries the term its sender
   * was in when it made it, which was after every read it asks for had started (the member
   * batches reads before it asks): a sender in our term had voted in no later term by then, and
   * neither had we (we still lead in it now). When the two of us are a quorum (three voters), no
   * later leader could have been elected before those reads started, and our commit index, once
   * we have committed in our term, covers every write acknowledged before them: the round would
   * prove nothing more. Otherwise (five voters, a sender of an older term, a learner, no entry of
   * our term committed yet) the read takes a round as before.
   *
   * It is the round's own argument with the request as the sender's acknowledgement, so it holds
   * where the round's does: for a request delayed in the network (its term is the one it was made
   * in, not the one it arrives in), across a leadership transfer (the transferee needs a vote of
   * ours, and we would have stepped down, or the sender's, given after it asked), and while a
   * membership change is in flight (changes are one voter at a time, so every majority of a
   * configuration one change away from ours includes one of us two).
   */
  protected vouchesForLeadership(m: Extract<Message, { type: 'ReadIndex' }>): boolean {
    return m.term === this.term && this.committedEntryInCurrentTerm() && this.tracker.hasQuorum(new Set([m.from]), this.id);
  }

  private startRead(from: NodeId, context: Uint8Array): void {
    if (this.readOnly.isFull()) throw new LichenError('Overloaded', 'too many reads waiting for a heartbeat round');
    const { newRound } = this.readOnly.add({ index: this.log.committed, context, from });
    if (this.tracker.hasQuorum(new Set(), this.id)) {
      // A single voter is its own quorum: no round trip needed.
      for (const read of this.readOnly.releaseAll()) this.answerRead(read);
      return;
    }
    if (newRound) this.bcastHeartbeat();
  }

  private releaseWaitingReads(): void {
    const waiting = this.waitingReads;
    this.waitingReads = [];
    for (const r of waiting) {
      try {
        this.startRead(r.from, r.context);
      } catch (error) {
        if (!isLichenError(error)) throw error;
      }
    }
  }

  private answerRead(read: PendingRead): void {
    if (read.from === this.id) this.readStates.push({ index: read.index, context: read.context });
    else this.send({ type: 'ReadIndexResp', to: read.from, index: read.index, context: read.context });
  }

  // ---------------------------------------------------------------- leadership transfer

  /** Thesis §3.10. On a follower, forwards the request to the leader. */
  transferLeader(to: NodeId): void {
    this.wake();
    switch (this.role) {
      case 'leader': {
        const pr = this.tracker.progress.get(to);
        if (!pr) throw new LichenError('MemberNotFound', `member ${to} is not in the group`);
        if (pr.isLearner) throw new LichenError('InvalidArgument', `member ${to} is a learner and cannot lead`);
        this.handleTransferLeader(to);
        return;
      }
      case 'follower':
        if (this.lead === NONE) throw unavailable('transfer dropped: no leader is known', NONE);
        this.send({ type: 'TransferLeader', to: this.lead, transferee: to });
        return;
      case 'candidate':
      case 'precandidate':
        throw unavailable('transfer dropped: an election is in progress', NONE);
    }
  }

  private handleTransferLeader(to: NodeId): void {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isLearner) return;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === to) return;
      this.abortLeaderTransfer();
    }
    if (to === this.id) return;
    // The transfer must finish within one election timeout (checked in tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = to;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'TimeoutNow', to });
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---------------------------------------------------------------- flow control reports

  reportUnreachable(id: NodeId): void {
    if (this.role !== 'leader') return;
    const pr = this.tracker.progress.get(id);
    // Appends in flight are probably lost: fall back to probing.
    if (pr && pr.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.role !== 'leader') return;
    const pr = this.tracker.progress.get(id);
    if (!pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    // Probe from after the snapshot (or from match after a failure), and wait for the follower's
    // answer (or a heartbeat answer) before sending more.
    pr.becomeProbe();
    pr.probeSent = true;
  }
}

/** The commit index a message from the leader says it has (0 for other messages). */
function leaderCommit(m: Message): number {
  switch (m.type) {
    case 'App':
    case 'Heartbeat':
      return m.commit;
    case 'Snap':
      return m.snapshot.metadata.index;
    default:
      return 0;
  }
}
