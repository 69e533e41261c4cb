// One raft group's replica: the raft core driven by the Ready loop (ready-loop.ts), which sends,
// persists and applies in the order the core gives, plus the operations built on it (proposals,
// linearizable reads, membership changes, leadership transfer). Its snapshots (snapshots.ts),
// lease clocks (leases.ts) and its own membership duties (membership.ts) live beside it. Its
// clock, timers, randomness, peer links, WAL, snapshot files and state machine are given to it
// (see ReplicaOptions), so the same code runs in a process (src/server builds it) and in a test
// on virtual time.
//
// Concurrency model: everything that touches the RawNode runs inside the loop. Callers enqueue
// closures (step a message, tick, propose, read) into its bounded inbox; while a Ready's fsync is
// in flight the loop steps them into the core as they come and sends only what the core lets
// leave before that fsync (a follower's forwarded proposals); the rest (new entries, the answers
// that promise them, a leader's batched proposals) waits in the core for the next Ready, which
// carries all of it under one fsync.
import {
  ConfChangeType,
  EntryType,
  RawNode,
  decodeConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftClass,
  type RaftConfig,
  type Ready,
  type Snapshot,
} from '../raft/index.js';
import { AlarmType, WatchHub, type Lessor, decodeCommand, encodeCommand, noSpaceError, isAuthCommand, type AuthCommand, type Command, type MvccCommand } from '../mvcc/index.js';
import { createTokenProvider, type ApplyResult, type TokenProvider } from '../auth/index.js';
import type { EngineSpace } from '../engine/index.js';
import { ReceivedSnapshot } from '../wal/index.js';
import { ErrorCode, LichenError, isDiskFull, isLichenError } from '../errors.js';
import { formatId } from '../ids.js';
import { inboxMessagesMax } from '../limits.js';
import type { Logger } from '../log.js';
import type { LichenMetrics } from '../metrics.js';
import type { Environment, TimerHandle } from './environment.js';
import { EnvelopeKind, decodeEnvelope, encodeEnvelope } from './envelope.js';
import { decodeJson, encodeJson, type Member, type MemberAttributes, type MemberContext } from './members.js';
import { quotaAdmits, quotaCost } from './quota.js';
import { ReadyLoop, type ReadyHandler } from './ready-loop.js';
import { PendingProposals, ReadRounds } from './requests.js';
import { ProposalResults, outcomeUnknownError } from './proposal-results.js';
import { LeaseClocks } from './leases.js';
import { Membership } from './membership.js';
import { Snapshots } from './snapshots.js';
import type { MembershipView, PeerLinks, ReplicaConfig } from './types.js';
import type { ReplicaStorage, StateMachine } from './storage.js';

/** The successful outcome of an applied proposal. */
export type Applied = Extract<ApplyResult, { response: unknown }>;

/** What a conf-change entry's context carries besides the member's name and address. */
interface ConfContext extends Partial<MemberContext> {
  origin: number;
  sequence: number;
}

export interface ReplicaOptions {
  memberId: number;
  clusterId: number;
  storage: ReplicaStorage;
  /** Set when this member joined a running cluster: it promotes itself once it has applied catchUpIndex. */
  joined: { catchUpIndex: number; members: Member[] } | undefined;
  config: ReplicaConfig;
  logger: Logger;
  /** The per-stage latency histograms are optional: nobody scrapes a simulated member. */
  metrics: Pick<LichenMetrics, 'walFsyncSeconds' | 'raftLeaderChangesTotal' | 'raftProposalsTotal'> &
    Partial<Pick<LichenMetrics, 'applySeconds' | 'backendCommitSeconds' | 'proposalCommitSeconds' | 'peerRoundTripSeconds'>>;
  /** The client and HTTP addresses this member publishes to the others. */
  publicAddresses: { client: string; http: string };
  peers: PeerLinks;
  /** Asks the member at a client address for its view of the membership (see membership.ts). */
  askMembership: (clientAddress: string) => Promise<MembershipView>;
  /** The clock, timers and randomness (src/server/environment.ts in a process). */
  environment: Environment;
  /** What an operator must do about a member that lost what it had promised (ends a DataLoss error). */
  lostDataRemedy: string;
  /** Told when another member's removal is applied (the server forgets its data directory). */
  onMemberRemoved?: (id: number) => void;
  /**
   * For a group other than the cluster's: the member's NOSPACE alarm. The space quota is the
   * member's disk, which all its groups share, so the alarm is one per member and lives in the
   * cluster's group (etcd's alarm list, which `alarm disarm` clears). A replica given this keeps
   * no alarm of its own: it refuses proposals that add data while `raised()` (any member's alarm,
   * as in etcd) or when they would pass the quota, and `raise()`s this member's alarm there.
   * Unset (the cluster's group): the replica keeps the alarm in its own state machine.
   */
  memberNoSpace?: { raised(): boolean; raise(): void };
  /**
   * The simulator's seams (src/sim); a process leaves them unset. `raft`: the core's class (a
   * deliberately broken one, to show the simulator catches it) and the raft options a process
   * leaves at their defaults, which the simulator varies per seed. `wrapReadyHandler`: wraps what
   * the Ready loop calls, so the simulator can crash the member between any two steps of a Ready
   * (or plant a loop that sends too early).
   */
  raft?: { raftClass?: RaftClass } & Pick<RaftConfig, 'preVote' | 'checkQuorum' | 'maxInflightMsgs' | 'maxMsgBytes'>;
  wrapReadyHandler?: (handler: ReadyHandler) => ReadyHandler;
  /**
   * Set by a host that ticks its replicas itself (src/store: one ticker for all of them) and may
   * let an idle group quiesce, standing in with its own liveness beats (see tick() and wake()).
   * Without it the replica runs its own ticker and never quiesces.
   */
  host?: {
    quiescence: boolean;
    /**
     * Told of anything that may need ticks again: work queued on the loop (a message, a proposal,
     * a read, a wake) or a watcher that must catch up. A host that skips its quiet replicas' ticks
     * starts ticking this one again (see needsTicks).
     */
    onActivity?: () => void;
  };
}

/** How a replica stopped serving on its own (see Replica.halted). */
export interface Halt {
  removed: boolean;
  reason: string;
  /** What stopped a member that failed (not set for a removal). */
  error?: unknown;
}

/** Wakes the waiters whose index is reached and returns the others. */
function wakeReached(waiters: Array<{ index: number; wake: () => void }>, reached: number): Array<{ index: number; wake: () => void }> {
  const due = waiters.filter((w) => w.index <= reached);
  for (const waiter of due) waiter.wake();
  return waiters.filter((w) => w.index > reached);
}

export class Replica {
  readonly memberId: number;
  readonly clusterId: number;
  readonly hub: WatchHub;
  private readonly leases: LeaseClocks;
  /** This member's auth tokens (simple tokens are member-local; see src/auth/tokens.ts). */
  readonly tokens: TokenProvider;

  private readonly raw: RawNode;
  private readonly storage: ReplicaStorage;
  private readonly config: ReplicaConfig;
  private readonly logger: Logger;
  private readonly environment: Environment;
  private readonly proposals: PendingProposals<Applied | void>;
  /** The results of the client proposals applied most recently, for snapshots sent to peers (see proposal-results.ts). */
  private results: ProposalResults;
  private readonly reads: ReadRounds;
  private readonly loop: ReadyLoop;
  private ticker: TimerHandle | undefined;
  /** Sends a held-back commit index to the followers (see ReplicaConfig.followerCommitDelayMs). */
  private commitFlush: TimerHandle | undefined;
  /** The last read round's heartbeat sent to each peer, for the round-trip histogram (see noteRoundTripProbes). */
  private readonly roundTripProbes = new Map<NodeId, { context: Uint8Array; sentAtMs: number }>();
  private isStopped = false;
  private closed = false;
  /** Set once raft runs: a member of a new cluster waits for its peers first (see start()). */
  private raftStarted = false;

  private lead = 0;
  private role = 'follower';
  private term = 0;
  private applied: number;
  private confState: ConfState;
  private leaderWaiters: Array<() => void> = [];
  /** Callers waiting until this member has applied an index (see waitForApplied). */
  private appliedWaiters: { index: number; wake: () => void }[] = [];
  /**
   * The applied index as of the last advanced Ready: what the raft core counts as applied. It
   * trails `applied` while a Ready's write is in flight (the loop applies before it advances).
   */
  private appliedAdvanced: number;
  /** Callers waiting until the core counts an index as applied (see waitForApplied). */
  private advancedWaiters: { index: number; wake: () => void }[] = [];
  private readonly membership: Membership;
  private readonly snapshots: Snapshots;
  /** The engine's space, sampled once per tick (measuring it costs ~19 µs on lmdb). */
  private sampledSpace: EngineSpace;
  /** The quota cost of the writes applied since sampledSpace was measured. */
  private costAppliedSinceSample = 0;
  /** When this member last proposed its own NOSPACE alarm (so a tick does not repeat it). */
  private noSpaceProposedAtMs = -Infinity;
  /** Work the owner runs on every tick (the server's compactor). */
  private readonly tickTasks: Array<() => void> = [];
  /** The commit index this member's log held when it started (see replayed()). */
  private readonly commitAtStart: number;
  /** Set when this member learns it was removed: it stops serving and says why. */
  removedReason: string | undefined;
  /** Resolves when this member stops serving on its own: removed from the cluster, or a fatal failure. */
  readonly halted: Promise<Halt>;
  private resolveHalted!: (halt: Halt) => void;

  constructor(private readonly options: ReplicaOptions) {
    const { storage, config, environment } = options;
    const { clock, random } = environment;
    this.storage = storage;
    this.config = config;
    this.logger = options.logger;
    this.environment = environment;
    this.membership = new Membership({
      memberId: options.memberId,
      config,
      clock,
      logger: this.logger,
      peers: options.peers,
      publicAddresses: options.publicAddresses,
      askMembership: options.askMembership,
      joined: options.joined,
      members: () => this.storage.members,
      applied: () => this.applied,
      leader: () => this.lead,
      isLearner: () => this.isLearner,
      halted: () => this.removedReason !== undefined,
      promoteSelf: () => this.proposeConfChange(ConfChangeType.AddNode, this.memberId),
      publish: (attributes) => this.proposeDetached(EnvelopeKind.MemberAttributes, encodeJson(attributes)),
      onRemoved: (how) => this.onRemoved(how),
    });
    this.snapshots = new Snapshots({
      storage,
      policy: config,
      environment,
      logger: this.logger,
      applied: () => ({ index: this.applied, conf: this.confState }),
      results: (index) => this.results.toJSON(index),
      stopped: () => this.isStopped,
      fail: (error) => this.fail(error),
    });
    this.halted = new Promise((resolve) => (this.resolveHalted = resolve));
    this.memberId = options.memberId;
    this.clusterId = options.clusterId;
    this.applied = storage.snapshotIndex;
    this.appliedAdvanced = this.applied;
    // Entries the engine already holds replay without a result (see applyEntry).
    this.results = new ProposalResults(storage.machine.appliedIndex);
    this.confState = storage.raftLog.initialState().confState;
    this.commitAtStart = storage.raftLog.initialState().hardState.commit;
    const { raftClass, ...raftOptions } = options.raft ?? {};
    this.raw = new RawNode({
      ...raftOptions,
      id: this.memberId,
      storage: storage.raftLog,
      random: () => random.float(),
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      lazyCommitBroadcast: config.followerCommitDelayMs > 0,
      quiescence: options.host?.quiescence ?? false,
      // Raft re-delivers every entry after the snapshot; apply skips what the engine already
      // holds but still replays membership, which lives only in the log and snapshot.
      applied: storage.snapshotIndex,
    }, raftClass);
    const send = (messages: Message[]) => {
      if (options.metrics.peerRoundTripSeconds) this.noteRoundTripProbes(messages);
      const snaps = messages.filter((m) => m.type === 'Snap');
      options.peers.send(snaps.length === 0 ? messages : messages.filter((m) => m.type !== 'Snap'));
      for (const snap of snaps) this.sendSnapshot(snap);
    };
    const handler: ReadyHandler = {
      observe: (rd) => {
        if (rd.softState) this.onSoftState(rd.softState.lead, rd.softState.role);
        if (rd.hardState) this.term = rd.hardState.term;
      },
      send,
      sendDuringPersist: send,
      installSnapshot: (snapshot) => this.installSnapshot(snapshot),
      persist: (update) => this.persist(update),
      apply: (rd) => this.applyCommitted(rd),
      advanced: () => {
        this.appliedAdvanced = this.applied;
        if (this.advancedWaiters.length > 0) this.advancedWaiters = wakeReached(this.advancedWaiters, this.applied);
        this.snapshots.maybeTake(this.applied, this.confState);
        this.scheduleCommitFlush();
      },
    };
    this.loop = new ReadyLoop(this.raw, options.wrapReadyHandler?.(handler) ?? handler);
    this.hub = new WatchHub(storage.machine.mvcc, { onUnsynced: () => options.host?.onActivity?.() });
    this.leases = new LeaseClocks({
      clock,
      leases: storage.machine.mvcc.leases(),
      minTtlSeconds: Math.ceil((1.5 * config.electionTicks * config.tickMs) / 1000),
      revokeRetryMs: config.requestTimeoutMs,
      revoke: (id) => this.proposeDetached(EnvelopeKind.Mvcc, encodeCommand({ type: 'leaseRevoke', id })),
    });
    this.sampledSpace = storage.machine.space();
    this.tokens = createTokenProvider(config.authToken, {
      ttlMs: config.authTokenTtlSeconds * 1000,
      now: () => clock.wallMs(),
      timers: environment.timers,
      waitForApplied: (index) => this.waitForApplied(index, clock.monotonicMs() + this.config.requestTimeoutMs),
    });
    this.proposals = new PendingProposals({
      max: config.pendingRequestsMax,
      timeoutMs: config.requestTimeoutMs,
      now: () => clock.monotonicMs(),
      // 2^48 starting points, and a process would need 2^52 proposals to leave the safe integers.
      firstSequence: 1 + Math.floor(random.float() * 2 ** 48),
    });
    this.reads = new ReadRounds({
      max: config.pendingRequestsMax,
      timeoutMs: config.requestTimeoutMs,
      retryMs: config.electionTicks * config.tickMs,
      now: () => clock.monotonicMs(),
      incarnation: random.bytes(8),
      issue: (context) => this.enqueue(() => this.issueReadIndex(context)),
      appliedIndex: () => this.applied,
    });
  }

  get store(): StateMachine['mvcc'] {
    return this.storage.machine.mvcc;
  }

  get auth(): StateMachine['auth'] {
    return this.storage.machine.auth;
  }

  /** The state machine (the store and auth objects, which a snapshot reloads in place). */
  get machine(): StateMachine {
    return this.storage.machine;
  }

  get members(): Member[] {
    return this.storage.members.list();
  }

  /** The member with this id, if it is one. */
  member(id: number): Member | undefined {
    return this.storage.members.get(id);
  }

  /** Ids removed from the cluster (they never rejoin). */
  get removedMemberIds(): number[] {
    return this.storage.members.toJSON().removed;
  }

  /** The lease clocks (run by the leader only). */
  get lessor(): Lessor {
    return this.leases.lessor;
  }

  get leaderId(): number {
    return this.lead;
  }

  get raftTerm(): number {
    return this.term;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /**
   * The data in use now, for the space quota: as measured at the last tick, plus what the writes
   * applied since then cost in etcd's estimate, so a burst of writes between two ticks cannot run
   * far past the quota before the next measurement.
   */
  private get inUseBytesEstimate(): number {
    return this.sampledSpace.inUseBytes + this.costAppliedSinceSample;
  }

  /**
   * Whether the space quota admits `command`: by the estimate, or else by a measurement taken now
   * (the estimate is as old as the last tick, and a quiet group does not tick: without this, a
   * write right after compaction freed space could be refused on a stale sample).
   */
  quotaAdmits(command: Command): boolean {
    const quota = this.config.quotaBackendBytes;
    return quotaAdmits(quota, this.inUseBytesEstimate, command) || quotaAdmits(quota, this.measureSpace().inUseBytes, command);
  }

  /** Measures the engine's space now (and keeps it as the sample). */
  measureSpace(): EngineSpace {
    this.sampledSpace = this.storage.machine.space();
    this.costAppliedSinceSample = 0;
    return this.sampledSpace;
  }

  get isLearner(): boolean {
    return this.confState.learners.includes(this.memberId);
  }

  /** Whether this replica stopped (closed, or failed). */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** Whether raft runs here (see start()). */
  get started(): boolean {
    return this.raftStarted;
  }

  /**
   * Whether the loop has work it can do now: queued actions it runs now (also while a Ready's
   * write is in flight, but not while it installs a snapshot), or a Ready to hand out (the
   * simulator runs a member until it has none; a Ready in hand is the handler's to know of).
   * Before start() the loop does not run: what was queued (a transport report) waits for it.
   */
  get hasPendingWork(): boolean {
    return this.raftStarted && !this.isStopped && ((this.loop.backlog > 0 && this.loop.runsActions) || this.raw.hasReady());
  }

  /** The monotonic clock, in milliseconds. */
  private now(): number {
    return this.environment.clock.monotonicMs();
  }

  raftStatus(): ReturnType<RawNode['status']> {
    return this.raw.status();
  }

  /**
   * Starts raft: the loop and the ticker. The owner first points the peer links at the members
   * (syncPeers) and starts its transport; a member of a new cluster starts only once its peers
   * know its data directory (src/server/data-dirs.ts).
   */
  start(): void {
    this.raftStarted = true;
    this.loop.start((error) => this.fail(error));
    if (this.options.host === undefined) this.ticker = this.environment.timers.setInterval(() => this.tick(), this.config.tickMs);
  }

  /**
   * Whether raft is quiet here (see Raft.quiesced): the host need not tick this replica unless
   * needsTicks() says its own duties need the ticks.
   */
  get quiesced(): boolean {
    return this.raw.quiesced;
  }

  /**
   * Whether this replica has work of its own that runs on ticks: client requests or read rounds
   * waiting (their timeouts and retries), leases to expire (on the leader, which runs their clocks), watchers to
   * catch up, a commit index held back, tasks of the owner (the compactor), or membership duties
   * (publishing its addresses, a joined learner's promotion). A leader with any of it does not
   * quiesce.
   */
  needsTicks(): boolean {
    return (
      this.proposals.size > 0 ||
      this.reads.size > 0 ||
      (this.role === 'leader' && this.leases.lessor.size > 0) ||
      this.hub.unsyncedCount > 0 ||
      this.commitFlush !== undefined ||
      this.tickTasks.length > 0 ||
      this.membership.needsTicks
    );
  }

  /**
   * Wakes a quiet group (see Raft.wake): `leaderSilent` when the host lost touch with the process
   * of the leader, `work` otherwise (a follower's process went silent, for a leader).
   */
  wake(reason: 'work' | 'leaderSilent'): void {
    if (this.raftStarted && !this.isStopped) this.enqueue(() => this.raw.wake(reason));
  }

  /** Runs `task` on every tick, before the membership duties (the server's compactor). */
  everyTick(task: () => void): void {
    this.tickTasks.push(task);
  }

  /** Stops the loop and the timers, and waits for a snapshot being taken; close() then lets go of storage. */
  async stop(): Promise<void> {
    if (this.isStopped) return;
    this.isStopped = true;
    this.environment.timers.clear(this.ticker);
    this.environment.timers.clear(this.commitFlush);
    this.tokens.close();
    await this.loop.stop();
    await this.snapshots.settled();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stop();
    const closed = new LichenError(ErrorCode.Unavailable, 'server stopped', { etcdError: 'stopped' });
    this.proposals.rejectAll(closed);
    this.reads.rejectAll(closed);
    await this.storage.wal.close();
    await this.storage.machine.close();
  }

  // ---- Client operations -------------------------------------------------------------------

  /** Replicates a command and resolves with its result once this member has applied it. */
  async propose(command: Command): Promise<Applied> {
    const body = encodeCommand(command);
    // The only size check a request needs before it is proposed: checkLimits() made sure at
    // start-up that any request within --max-request-bytes fits a raft entry, and any raft entry a
    // peer message and a peer frame, on every member whatever its own --max-request-bytes.
    if (body.length > this.config.maxRequestBytes) {
      throw new LichenError(ErrorCode.TooLarge, `request is larger than ${this.config.maxRequestBytes} bytes`, { etcdError: 'requestTooLarge', limitBytes: this.config.maxRequestBytes });
    }
    this.checkMemberQuota(command);
    const result = (await this.proposeEnvelope(EnvelopeKind.Mvcc, body)) as ApplyResult;
    if ('error' in result) throw result.error;
    return result;
  }

  /** etcd's quotaKVServer for a group whose alarm is the member's (see ReplicaOptions.memberNoSpace). */
  private checkMemberQuota(command: Command): void {
    const alarm = this.options.memberNoSpace;
    if (alarm === undefined || quotaCost(command) === 0) return;
    if (alarm.raised()) throw noSpaceError();
    if (!this.quotaAdmits(command)) {
      alarm.raise();
      throw noSpaceError();
    }
  }

  /** Resolves once this member has applied everything committed before the call (ReadIndex). */
  async linearizableBarrier(): Promise<void> {
    this.assertServing();
    if (this.config.unsafe.readsWithoutReadIndex) return;
    await this.waitForLeader();
    await this.reads.wait();
  }

  /**
   * Proposes a membership change and resolves once it is applied here. A new leader refuses
   * changes until its first entry is applied (Ongaro's rule); that refusal only means "not yet",
   * so we wait for the entry and try again. A refusal because another membership change is still
   * pending is the caller's to see.
   */
  async proposeConfChange(type: ConfChangeType, nodeId: number, member?: MemberContext): Promise<void> {
    const deadline = this.now() + this.config.requestTimeoutMs;
    for (;;) {
      try {
        return await this.proposeConfChangeOnce(type, nodeId, member);
      } catch (error) {
        const refused = isLichenError(error, ErrorCode.MembershipRefused) ? error : undefined;
        const pending = refused?.details.pendingConfIndex;
        if (typeof pending !== 'number' || this.hasUnappliedConfChange(pending, refused!.details.reason) || this.now() > deadline) throw error;
        // Until the core counts the entry applied, not only this member: the loop steps a proposal
        // while a Ready's write is in flight, after it applied that Ready's entries but before the
        // core hears of it (advance), so a retry then would be refused again at once, forever
        // (sim seed 100363 with --steps 2000 --membership-rate 0.03).
        await this.waitForApplied(pending, deadline, 'advanced');
      }
    }
  }

  /**
   * Whether a ConfChange entry lies between the applied index and `upTo` (inclusive). Entries this
   * member has not persisted yet (the loop steps proposals while a Ready's write is in flight) are
   * not in its raft storage: for them the core's refusal says whether a change is among its
   * unapplied entries (`reason`). Reading past the persisted log failed an assertion
   * (src/e2e/membership.test.ts: a MemberRemove right after a promotion answered INTERNAL).
   */
  private hasUnappliedConfChange(upTo: number, reason: string | undefined): boolean {
    const log = this.storage.raftLog;
    const from = Math.max(this.applied + 1, log.firstIndex());
    const persistedTo = Math.min(upTo, log.lastIndex());
    if (from <= persistedTo && log.entries(from, persistedTo + 1).some((e) => e.type === EntryType.ConfChange)) return true;
    return upTo > persistedTo && reason === 'changePending';
  }

  /**
   * Resolves once this member has applied everything its log had committed when it started (its
   * membership, with the peers' client addresses, lives in the log), or after the request timeout.
   */
  replayed(): Promise<void> {
    return this.waitForApplied(this.commitAtStart, this.now() + this.config.requestTimeoutMs);
  }

  /**
   * Resolves once this member has applied `index` (`advanced`: and its raft core counts it applied,
   * see appliedAdvanced), or at the deadline (whichever is first).
   */
  private waitForApplied(index: number, deadline: number, by: 'applied' | 'advanced' = 'applied'): Promise<void> {
    if ((by === 'applied' ? this.applied : this.appliedAdvanced) >= index) return Promise.resolve();
    const waiters = by === 'applied' ? this.appliedWaiters : this.advancedWaiters;
    return new Promise<void>((resolve) => {
      const timer = this.environment.timers.setTimeout(resolve, Math.max(0, deadline - this.now()));
      waiters.push({
        index,
        wake: () => {
          this.environment.timers.clear(timer);
          resolve();
        },
      });
    });
  }

  private async proposeConfChangeOnce(type: ConfChangeType, nodeId: number, member?: MemberContext): Promise<void> {
    this.assertServing();
    await this.waitForLeader();
    const { sequence, result } = this.proposals.register(this.applied);
    const context: ConfContext = { ...member, origin: this.memberId, sequence };
    const cc: ConfChange = { type, nodeId, context: encodeJson(context) };
    this.enqueue(() => {
      try {
        this.raw.proposeConfChange(cc);
      } catch (error) {
        this.proposals.reject(sequence, error as Error);
      }
    });
    await result;
  }

  /** Asks the leader to hand leadership to `target`; resolves when `target` leads. */
  async transferLeadership(target: number): Promise<void> {
    this.assertServing();
    if (!this.confState.voters.includes(target)) {
      // etcd answers a transferee that is no voting member with ErrBadLeaderTransferee.
      throw new LichenError(ErrorCode.MembershipRefused, `member ${formatId(target)} is not a voting member`, { etcdError: 'badLeaderTransferee' });
    }
    await this.waitForLeader();
    if (this.lead === target) return;
    const deadline = this.now() + this.config.requestTimeoutMs;
    this.enqueue(() => {
      try {
        this.raw.transferLeader(target);
      } catch (error) {
        // The leader changed since the check above; the wait below ends in Timeout. Letting the
        // error escape into the loop would stop this member.
        this.logger.warn('raft: leadership transfer refused', { target: formatId(target), error: String(error) });
      }
    });
    while (this.lead !== target) {
      if (this.now() > deadline) {
        throw new LichenError(ErrorCode.Timeout, 'leadership transfer timed out', { etcdError: 'timeoutLeaderTransfer' });
      }
      await new Promise<void>((resolve) => this.leaderWaiters.push(resolve));
    }
  }

  /** The member that leads now, if known. */
  leader(): Member | undefined {
    return this.lead === 0 ? undefined : this.storage.members.get(this.lead);
  }

  isLeader(): boolean {
    return this.role === 'leader';
  }

  /** Resolves when some leader is known, or fails after the request timeout. */
  async waitForLeader(): Promise<void> {
    const deadline = this.now() + this.config.requestTimeoutMs;
    while (this.lead === 0) {
      this.assertServing();
      const remaining = deadline - this.now();
      if (remaining <= 0) throw new LichenError(ErrorCode.Unavailable, 'no leader', { etcdError: 'noLeader' });
      await new Promise<void>((resolve) => {
        const timer = this.environment.timers.setTimeout(resolve, remaining);
        this.leaderWaiters.push(() => {
          this.environment.timers.clear(timer);
          resolve();
        });
      });
    }
  }

  /** Throws Unavailable unless this member serves: raft runs, and it was neither removed nor stopped. */
  assertServing(): void {
    if (this.removedReason) throw new LichenError(ErrorCode.Unavailable, this.removedReason);
    if (this.isStopped) throw new LichenError(ErrorCode.Unavailable, 'server stopped', { etcdError: 'stopped' });
    if (!this.raftStarted) throw new LichenError(ErrorCode.Unavailable, 'server is starting (waiting for the other members of the new cluster)');
  }

  private async proposeEnvelope(kind: EnvelopeKind, body: Uint8Array): Promise<Applied | void | ApplyResult> {
    this.assertServing();
    await this.waitForLeader();
    const { sequence, result } = this.proposals.register(this.applied);
    const data = encodeEnvelope({ kind, origin: this.memberId, sequence, body });
    this.enqueue(() => {
      try {
        this.raw.propose(data);
        this.options.metrics.raftProposalsTotal.inc({ result: 'proposed' });
      } catch (error) {
        this.options.metrics.raftProposalsTotal.inc({ result: 'dropped' });
        this.proposals.reject(sequence, error as Error);
      }
    });
    return result;
  }

  /** A proposal no client waits for (lease expiry, attribute publication). */
  private proposeDetached(kind: EnvelopeKind, body: Uint8Array): void {
    const data = encodeEnvelope({ kind, origin: this.memberId, sequence: 0, body });
    this.enqueue(() => {
      try {
        this.raw.propose(data);
      } catch {
        // No leader right now: the tick that wanted this proposal will try again.
      }
    });
  }

  /**
   * Asks raft for a read index. Raft refuses while an election is in progress or before the new
   * leader has committed in its term; that refusal must not escape into the loop (it would stop
   * the member): the round stays in flight and ReadRounds re-issues it after retryMs.
   */
  private issueReadIndex(context: Uint8Array): void {
    try {
      this.raw.readIndex(context);
    } catch (error) {
      this.logger.debug('raft: read index refused; the read round will be retried', { error: String(error) });
    }
  }

  // ---- The loop ------------------------------------------------------------------------------

  /** A message from a peer (dropped while raft does not run here, or when the inbox is full). */
  receive(message: Message): void {
    if (message.type === 'HeartbeatResp' && message.context.length > 0) this.observeRoundTrip(message.from, message.context);
    const received = message.type === 'Snap' && message.snapshot.data instanceof ReceivedSnapshot ? message.snapshot.data : undefined;
    if (this.loop.backlog >= inboxMessagesMax || !this.raftStarted) return received?.discard();
    this.enqueue(() => {
      try {
        this.raw.step(message);
      } catch (error) {
        if (isLichenError(error, ErrorCode.DataLoss)) {
          this.fail(new LichenError(ErrorCode.DataLoss, `${error.message} This member lost log entries it had acknowledged. ${this.options.lostDataRemedy}`));
          return;
        }
        // A broken invariant (a failed assertion in the core) stops the member, as anywhere else
        // in the loop; only a typed refusal means the message is merely dropped.
        if (!isLichenError(error)) throw error;
        this.logger.warn('raft: dropped a peer message', { type: message.type, from: formatId(message.from), error: String(error) });
      }
      if (received === undefined) return;
      // Raft holds a snapshot it takes until a Ready hands it out to install; the file of one it
      // did not take (older than what this member has) goes at once.
      if (this.raw.pendingSnapshot()?.data === received) this.snapshots.hold(received);
      else received.discard();
    });
  }

  /** The peer links could not deliver to `peer`: raft slows down and probes it. */
  reportUnreachable(peer: NodeId): void {
    this.enqueue(() => this.raw.reportUnreachable(peer));
  }

  /** A snapshot sent to `peer` was delivered (ok) or lost (the transport reports each send, in order). */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    this.snapshots.sent(peer);
    this.enqueue(() => this.raw.reportSnapshot(peer, ok));
  }

  /**
   * Sends a snapshot once its data is written out for the peer (in the background: a large engine
   * takes a while to stream); raft hears of a failure as of a lost send and tries again later.
   */
  private sendSnapshot(message: Extract<Message, { type: 'Snap' }>): void {
    this.snapshots.send(message, (whole) => this.options.peers.send([whole])).catch((error: unknown) => {
      this.logger.warn('could not write a snapshot for a peer', { peer: formatId(message.to), error: String(error) });
      this.enqueue(() => this.raw.reportSnapshot(message.to, false));
    });
  }

  private enqueue(action: () => void): void {
    this.options.host?.onActivity?.();
    this.loop.enqueue(action);
  }

  /** One tick: raft's clock, then the duties that run on ticks (the host calls it when there is one). */
  tick(): void {
    const holdAwake = this.needsTicks();
    this.enqueue(() => this.raw.tick(holdAwake));
    this.tokens.sweep();
    this.proposals.onTick();
    this.reads.onTick();
    this.hub.syncUnsynced();
    if (this.role === 'leader') this.leases.revokeExpired();
    this.commitEngine();
    if (this.isStopped) return; // the commit failed
    this.measureSpace();
    this.maybeRaiseNoSpace();
    for (const task of this.tickTasks) task();
    this.membership.tick();
  }

  /** Writes a Ready's hard state and entries to the WAL, then mirrors them into raft's storage. */
  private async persist(update: { hardState?: HardState; entries: Entry[]; sync: boolean }): Promise<void> {
    const started = this.now();
    await this.storage.wal.save(update);
    if (update.sync) this.options.metrics.walFsyncSeconds.observe((this.now() - started) / 1000);
    if (update.entries.length > 0) this.storage.raftLog.append(update.entries);
    if (update.hardState) this.storage.raftLog.setHardState(update.hardState);
  }

  /**
   * A heartbeat that carries a read round's context leaves at once and is answered at once (plain
   * heartbeats wait for the store's next Beat at both ends), so its round trip is the network's
   * and the peer's loop's, what etcd's prober measures. A leader serving no linearizable read
   * sends none, and then the histogram has no new samples.
   */
  private noteRoundTripProbes(messages: Message[]): void {
    for (const m of messages) {
      if (m.type === 'Heartbeat' && m.context.length > 0) this.roundTripProbes.set(m.to, { context: m.context, sentAtMs: this.now() });
    }
  }

  private observeRoundTrip(from: NodeId, context: Uint8Array): void {
    const probe = this.roundTripProbes.get(from);
    if (!probe || Buffer.compare(probe.context, context) !== 0) return;
    this.roundTripProbes.delete(from);
    this.options.metrics.peerRoundTripSeconds?.observe({ To: formatId(from) }, (this.now() - probe.sentAtMs) / 1000);
  }

  private scheduleCommitFlush(): void {
    if (this.commitFlush || this.isStopped || !this.raw.commitUnannounced()) return;
    this.commitFlush = this.environment.timers.setTimeout(() => {
      this.commitFlush = undefined;
      this.enqueue(() => this.raw.flushCommit());
    }, this.config.followerCommitDelayMs);
  }

  private applyCommitted(rd: Ready): void {
    if (rd.committedEntries.length > 0) this.applyEntries(rd.committedEntries);
    for (const readState of rd.readStates) this.reads.onReadState(readState.context, readState.index);
    this.reads.onApplied(this.applied);
    if (this.appliedWaiters.length > 0) this.appliedWaiters = wakeReached(this.appliedWaiters, this.applied);
  }

  private onSoftState(lead: number, role: string): void {
    const wasLeader = this.role === 'leader';
    if (lead !== this.lead) {
      this.options.metrics.raftLeaderChangesTotal.inc();
      this.logger.info('leader changed', { from: formatId(this.lead), to: formatId(lead), role });
    }
    this.lead = lead;
    this.role = role;
    if ((role === 'leader') !== wasLeader) this.leases.onLeadership(role === 'leader');
    if (lead !== 0) {
      const waiters = this.leaderWaiters;
      this.leaderWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /**
   * One engine write for all of them: an LMDB commit per entry was about a third of the cost of
   * applying it (40 of 130 µs per put, traced). The engine may commit it later (see commitEngine).
   */
  private applyEntries(entries: Entry[]): void {
    const handedAtMs = this.now();
    let appliedAtMs = handedAtMs;
    const { machine } = this.storage;
    machine.batch(() => {
      for (const entry of entries) this.applyEntry(entry, handedAtMs);
      appliedAtMs = this.now();
    });
    const { applySeconds, backendCommitSeconds } = this.options.metrics;
    applySeconds?.observe((appliedAtMs - handedAtMs) / 1000);
    // Nothing waits: the batch's end committed it (and whatever waited before it).
    if (machine.uncommittedOps === 0) backendCommitSeconds?.observe((this.now() - appliedAtMs) / 1000);
  }

  /** Commits the engine's waiting writes, once a tick: etcd's backend commits every 100 ms. */
  private commitEngine(): void {
    const { machine } = this.storage;
    if (machine.uncommittedOps === 0) return;
    const startedMs = this.now();
    try {
      machine.commit();
    } catch (error) {
      this.fail(error);
      return;
    }
    this.options.metrics.backendCommitSeconds?.observe((this.now() - startedMs) / 1000);
  }

  /** `handedAtMs`: when its Ready handed it to apply (the end of a local proposal's way to commit). */
  private applyEntry(entry: Entry, handedAtMs: number): void {
    if (entry.type === EntryType.ConfChange) {
      this.applyConfChange(entry);
    } else if (entry.data.length > 0) {
      const envelope = decodeEnvelope(entry.data);
      if (envelope.kind === EnvelopeKind.MemberAttributes) {
        this.storage.members.applyAttributes(envelope.origin, decodeJson<MemberAttributes>(envelope.body));
      } else if (entry.index > this.storage.machine.appliedIndex) {
        const command = decodeCommand(envelope.body);
        const result = this.storage.machine.apply(entry.index, command);
        const inner = command.type === 'authorized' ? command.command : command;
        this.afterApply(entry.index, inner, result);
        this.results.record(entry.index, envelope.origin, envelope.sequence, inner.type === 'authenticate' ? { local: true } : { command: result });
        if (envelope.origin === this.memberId) {
          const proposedAtMs = this.proposals.resolve(envelope.sequence, result as Applied);
          if (proposedAtMs !== undefined) this.options.metrics.proposalCommitSeconds?.observe((handedAtMs - proposedAtMs) / 1000);
        }
      }
    }
    this.applied = entry.index;
  }

  private afterApply(index: number, command: MvccCommand | AuthCommand, result: ApplyResult): void {
    if ('error' in result) return;
    // Tokens are member-local state that follows the auth store (see src/auth/tokens.ts).
    if (isAuthCommand(command)) this.tokens.onApplied(index, command);
    if (result.events.length > 0) this.hub.notify(result.events, result.revision);
    this.costAppliedSinceSample += quotaCost(command);
    if (command.type === 'leaseGrant' || command.type === 'leaseRevoke') {
      this.leases.onApplied(command, result.response);
    } else if (command.type === 'alarmActivate' || command.type === 'alarmDeactivate') {
      const changed = (result.response as { alarms: unknown[] }).alarms.length > 0;
      if (changed) this.logger.warn(command.type === 'alarmActivate' ? 'alarm raised' : 'alarm disarmed', { alarm: command.alarm, memberId: formatId(command.memberId) });
    }
  }

  private applyConfChange(entry: Entry): void {
    const cc = decodeConfChange(entry.data);
    const context = cc.context.length > 0 ? decodeJson<ConfContext>(cc.context) : undefined;
    const refusal = this.storage.members.refusal(cc);
    if (refusal) {
      // Raft's configuration stays as it is; every member refuses the same entry.
      this.logger.warn('membership change refused at apply', { change: cc.type, member: formatId(cc.nodeId), index: entry.index, reason: refusal });
      const error = new LichenError(ErrorCode.MemberNotFound, 'member not found', { etcdError: 'memberNotFound', reason: refusal });
      if (context) this.results.record(entry.index, context.origin, context.sequence, { conf: error });
      if (context && context.origin === this.memberId) this.proposals.reject(context.sequence, error);
      return;
    }
    this.storage.members.applyConfChange(cc);
    this.confState = this.raw.applyConfChange(cc);
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId !== this.memberId) {
      this.options.onMemberRemoved?.(cc.nodeId);
    }
    this.syncPeers();
    this.logger.info('membership changed', { change: cc.type, member: formatId(cc.nodeId), voters: this.confState.voters.map(formatId) });
    if (context) this.results.record(entry.index, context.origin, context.sequence, { conf: undefined });
    if (context && context.origin === this.memberId) this.proposals.resolve(context.sequence, undefined);
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.memberId) {
      this.onRemoved('the removal was applied here');
    }
  }

  private onRemoved(how: string): void {
    this.removedReason = 'the member has been permanently removed from the cluster';
    this.logger.error('this member was removed from the cluster; it stops serving', { memberId: formatId(this.memberId), how });
    this.rejectWaiting(new LichenError(ErrorCode.Unavailable, this.removedReason));
    this.resolveHalted({ removed: true, reason: this.removedReason });
  }

  private rejectWaiting(error: LichenError): void {
    this.proposals.rejectAll(error);
    this.reads.rejectAll(error);
  }

  /** Makes the peer links dial exactly the current members (see Membership.syncPeers). */
  syncPeers(): void {
    this.membership.syncPeers();
  }

  private async installSnapshot(snapshot: Snapshot): Promise<void> {
    const { members, results } = await this.snapshots.install(snapshot);
    this.storage.members = members;
    // Watchers were synced to the old state: they re-read what they missed from the new history.
    this.hub.restored();
    const { index } = snapshot.metadata;
    this.confState = snapshot.metadata.conf;
    this.applied = index;
    this.results = ProposalResults.fromJSON(results, index);
    this.answerCovered(index);
    this.syncPeers();
    this.logger.info('installed a snapshot from the leader', { index, term: snapshot.metadata.term });
  }

  /**
   * This member never applies the entries a snapshot it installed covers, so it answers its own
   * proposals among them from the results the snapshot carries: with the real result, or, when the
   * snapshot cannot say whether it holds a proposal, with the "request timed out" its client would
   * otherwise get only at the request timeout. Proposals the snapshot surely does not hold wait on.
   */
  private answerCovered(index: number): void {
    let answered = 0;
    let unknown = 0;
    for (const { sequence, floor } of this.proposals.waitingNow()) {
      const outcome = this.results.settle(this.memberId, sequence, floor, index);
      if (outcome === 'waiting') continue;
      if (outcome === 'unknown') unknown++;
      else answered++;
      if (outcome === 'unknown') this.proposals.reject(sequence, outcomeUnknownError(index));
      else if ('conf' in outcome) {
        if (outcome.conf) this.proposals.reject(sequence, outcome.conf);
        else this.proposals.resolve(sequence, undefined);
      } else this.proposals.resolve(sequence, outcome.command as Applied);
    }
    if (answered + unknown > 0) this.logger.info('answered own proposals the installed snapshot holds', { index, answered, unknown });
  }

  /**
   * Once the data in use reaches the quota, this member raises its own NOSPACE alarm through raft
   * (etcd raises it when a write crosses the quota; sampling each tick catches that within one).
   */
  private maybeRaiseNoSpace(): void {
    const quota = this.config.quotaBackendBytes;
    const memberAlarm = this.options.memberNoSpace;
    if (quota < 0 || this.sampledSpace.inUseBytes < quota || this.lead === 0) return;
    if (memberAlarm ? memberAlarm.raised() : this.storage.machine.mvcc.alarms(AlarmType.NOSPACE).some((a) => a.memberId === this.memberId)) return;
    const now = this.now();
    if (now - this.noSpaceProposedAtMs < this.config.requestTimeoutMs) return;
    this.noSpaceProposedAtMs = now;
    this.logger.warn('the data in use reached --quota-backend-bytes: raising the NOSPACE alarm', {
      inUseBytes: this.sampledSpace.inUseBytes,
      quotaBytes: quota,
    });
    if (memberAlarm) memberAlarm.raise();
    else this.proposeDetached(EnvelopeKind.Mvcc, encodeCommand({ type: 'alarmActivate', memberId: this.memberId, alarm: AlarmType.NOSPACE }));
  }

  /** Stops this member for good: its storage failed, or it lost what it had promised (see halted). */
  fail(error: unknown): void {
    // A WAL or engine failure, or lost data, leaves this member unable to keep its promises: stop it loudly.
    if (isLichenError(error, ErrorCode.DataLoss)) this.logger.error(`fatal: ${error.message}`);
    else if (isDiskFull(error)) this.logger.error(`fatal: ${(error as Error).message}; stopping this member (nothing past the last durable write was acknowledged)`);
    else this.logger.error('fatal: the raft loop failed; stopping this member', { error: String((error as Error)?.stack ?? error) });
    this.removedReason = `member failed: ${(error as Error)?.message ?? String(error)}`;
    this.isStopped = true;
    void this.loop.stop();
    this.environment.timers.clear(this.ticker);
    this.environment.timers.clear(this.commitFlush);
    this.rejectWaiting(new LichenError(ErrorCode.Unavailable, this.removedReason));
    this.resolveHalted({ removed: false, reason: this.removedReason, error });
  }
}
