// One cluster member: the raft core driven by the replica's Ready loop (src/replica/ready-loop.ts),
// which sends, persists and applies in the order the core gives, plus the client-facing
// operations built on it (proposals, linearizable reads, leases, membership, leadership transfer).
//
// Concurrency model: everything that touches the RawNode runs inside the loop. Callers enqueue
// closures (step a message, tick, propose, read) into its bounded inbox; while a Ready's fsync is
// in flight, new work accumulates there, so the next Ready carries all of it under one fsync.
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
  type Ready,
  type Snapshot,
} from '../raft/index.js';
import { AlarmType, Lessor, WatchHub, decodeCommand, encodeCommand, type Command } from '../mvcc/index.js';
import { applyCommand, createTokenProvider, type ApplyResult, type ReplicatedState, type TokenProvider } from '../auth/index.js';
import type { EngineSpace } from '../engine/index.js';
import type { Transport } from '../transport/index.js';
import { ReceivedSnapshot } from '../wal/index.js';
import { ErrorCode, LichenError, isLichenError } from '../errors.js';
import { inboxMessagesMax } from '../limits.js';
import type { Logger } from '../log.js';
import type { NodeConfig } from './config.js';
import { EnvelopeKind, decodeEnvelope, encodeEnvelope } from './envelope.js';
import { formatId } from './ids.js';
import { dataDirIdHex } from './data-dirs.js';
import { MemberTable, decodeJson, encodeJson, type Member, type MemberAttributes, type MemberContext } from './members.js';
import { PendingProposals, ReadRounds, ReadyLoop, type Environment, type TimerHandle } from '../replica/index.js';
import { decodeSnapshotData, encodeSnapshotData } from './snapshot-data.js';
import { snapshotDue } from './snapshot-policy.js';
import type { NodeState } from './state.js';
import type { LichenMetrics } from '../metrics.js';
import type { MembershipView } from './forward.js';
import { Compactor, parseCompactionRetention } from './compactor.js';
import { quotaCost } from './quota.js';
import type { TransportFactory } from './peer-transport.js';

/** Election timeouts without a leader before a member asks the others whether it was removed. */
const MEMBERSHIP_PROBE_ELECTIONS = 3;
/** Expired leases revoked per tick, so a mass expiry does not flood the log. */
const LEASE_REVOKES_PER_TICK = 64;

/** The successful outcome of an applied proposal. */
export type Applied = Extract<ApplyResult, { response: unknown }>;

/** What a conf-change entry's context carries besides the member's name and address. */
interface ConfContext extends Partial<MemberContext> {
  origin: number;
  sequence: number;
}

export class ClusterNode {
  readonly memberId: number;
  readonly clusterId: number;
  readonly hub: WatchHub;
  readonly lessor: Lessor;
  /** This member's auth tokens (simple tokens are member-local; see src/auth/tokens.ts). */
  readonly tokens: TokenProvider;
  /** What committed entries apply to (the store and auth objects, which a snapshot reloads in place). */
  private readonly replicated: ReplicatedState;

  private readonly raw: RawNode;
  private readonly transport: Transport;
  private readonly proposals: PendingProposals<Applied | void>;
  private readonly reads: ReadRounds;
  private readonly loop: ReadyLoop;
  private ticker: TimerHandle | undefined;
  /** Sends a held-back commit index to the followers (see NodeConfig.followerCommitDelayMs). */
  private commitFlush: TimerHandle | undefined;
  private stopped = false;
  /** Set once raft runs: a member of a new cluster waits for its peers first (see start()). */
  private raftStarted = false;
  /** Settles start() of a member that waits for the other initial members (see data-dirs.ts). */
  private confirmation: { resolve: () => void; reject: (error: Error) => void } | undefined;

  private lead = 0;
  private role = 'follower';
  private term = 0;
  private applied: number;
  private snapshotIndex: number;
  private confState: ConfState;
  /** A member that joined with --join promotes itself once it has caught up; this guards that. */
  private promotingSelf = false;
  private publishedAttributes = false;
  private publishAttemptAtMs = -Infinity;
  private leaderWaiters: Array<() => void> = [];
  /** Callers waiting until this member has applied an index (see waitForApplied). */
  private appliedWaiters: { index: number; wake: () => void }[] = [];
  /** Since when no leader is known, and whether a membership probe is out (maybeProbeMembership). */
  private leaderlessSinceMs: number;
  private probingMembership = false;
  /** The peers the transport dials, kept equal to the other members (syncPeers). */
  private knownPeers = new Set<number>();
  /** The WAL's size when the last snapshot released what it could (see snapshot-policy.ts). */
  private walBytesAfterCompaction = 0;
  /** Where in SNAPSHOT_SPREAD this member's next snapshot falls (see snapshot-policy.ts). */
  private snapshotSpread: number;
  /** Snapshots received from peers that raft took and that are not installed yet (their files are kept). */
  private readonly receivedSnapshots = new Set<ReceivedSnapshot>();
  /** The snapshot being collected and saved in the background, if any (close() waits for it). */
  private snapshotTask: Promise<void> | undefined;
  /** The engine's space, sampled once per tick (measuring it costs ~19 µs on lmdb). */
  private sampledSpace: EngineSpace;
  /** The quota cost of the writes applied since sampledSpace was measured. */
  private costAppliedSinceSample = 0;
  /** When this member last proposed its own NOSPACE alarm (so a tick does not repeat it). */
  private noSpaceProposedAtMs = -Infinity;
  private readonly compactor: Compactor | undefined;
  /** The commit index this member's log held when it started (see replayed()). */
  private readonly commitAtStart: number;
  /** Set when this member learns it was removed: it stops serving and says why. */
  removedReason: string | undefined;
  /** Resolves when this member stops serving on its own: removed from the cluster, or a fatal failure. */
  readonly halted: Promise<{ removed: boolean; reason: string }>;
  private resolveHalted!: (halt: { removed: boolean; reason: string }) => void;

  constructor(
    private readonly state: NodeState,
    private readonly config: NodeConfig,
    private readonly logger: Logger,
    private readonly metrics: LichenMetrics,
    private readonly publicAddresses: { client: string; http: string },
    /** Builds the peer transport around this member's handlers (tcpPeerTransport in a process). */
    createTransport: TransportFactory,
    /** Asks the member at a client address for its view of the membership (see probeMembership). */
    private readonly askMembership: (clientAddress: string) => Promise<MembershipView>,
    /** The clock, timers and randomness (src/server/environment.ts in a process). */
    private readonly environment: Environment,
  ) {
    const { clock, random } = environment;
    this.leaderlessSinceMs = clock.monotonicMs();
    this.snapshotSpread = random.float();
    this.halted = new Promise((resolve) => (this.resolveHalted = resolve));
    this.memberId = state.identity.memberId;
    this.clusterId = state.identity.clusterId;
    this.applied = state.snapshotIndex;
    this.snapshotIndex = state.snapshotIndex;
    this.confState = state.storage.initialState().confState;
    this.commitAtStart = state.storage.initialState().hardState.commit;
    this.raw = new RawNode({
      id: this.memberId,
      storage: state.storage,
      random: () => random.float(),
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      lazyCommitBroadcast: config.followerCommitDelayMs > 0,
      // Raft re-delivers every entry after the snapshot; apply skips what the engine already
      // holds but still replays membership, which lives only in the log and snapshot.
      applied: state.snapshotIndex,
    });
    this.loop = new ReadyLoop(this.raw, {
      observe: (rd) => {
        if (rd.softState) this.onSoftState(rd.softState.lead, rd.softState.role);
        if (rd.hardState) this.term = rd.hardState.term;
      },
      send: (messages) => this.transport.send(messages),
      installSnapshot: (snapshot) => this.installSnapshot(snapshot),
      persist: (update) => this.persist(update),
      apply: (rd) => this.applyCommitted(rd),
      advanced: () => {
        this.maybeSnapshot();
        this.scheduleCommitFlush();
      },
    });
    this.hub = new WatchHub(state.store);
    this.lessor = new Lessor({
      minTtlSeconds: Math.ceil((1.5 * config.electionTicks * config.tickMs) / 1000),
      revokeRetryMs: config.requestTimeoutMs,
    });
    for (const lease of state.store.leases()) this.lessor.grant(lease.ID, lease.grantedTTL, clock.wallMs());
    this.sampledSpace = state.engine.space();
    const retention = parseCompactionRetention(config.autoCompactionMode, config.autoCompactionRetention);
    this.compactor =
      retention > 0
        ? new Compactor({
            mode: config.autoCompactionMode,
            retention,
            now: () => clock.monotonicMs(),
            currentRevision: () => this.state.store.currentRevision,
            compact: async (revision) => void (await this.propose({ type: 'compact', request: { revision } })),
            log: (level, message, fields) => this.logger[level](message, fields),
          })
        : undefined;
    this.tokens = createTokenProvider(config.authToken, {
      ttlMs: config.authTokenTtlSeconds * 1000,
      now: () => clock.wallMs(),
      waitForApplied: (index) => this.waitForApplied(index, clock.monotonicMs() + this.config.requestTimeoutMs),
    });
    this.replicated = { mvcc: state.store, auth: state.auth, onAuthApplied: (index, command) => this.tokens.onApplied(index, command) };
    this.proposals = new PendingProposals({ max: config.pendingRequestsMax, timeoutMs: config.requestTimeoutMs, timers: environment.timers });
    this.reads = new ReadRounds({
      max: config.pendingRequestsMax,
      timeoutMs: config.requestTimeoutMs,
      retryMs: config.electionTicks * config.tickMs,
      now: () => clock.monotonicMs(),
      incarnation: random.bytes(8),
      issue: (context) => this.enqueue(() => this.issueReadIndex(context)),
      appliedIndex: () => this.applied,
    });
    this.transport = createTransport({
      onMessage: (m) => this.receive(m),
      onUnreachable: (peer) => this.enqueue(() => this.raw.reportUnreachable(peer)),
      onSnapshotSent: (peer, ok) => this.enqueue(() => this.raw.reportSnapshot(peer, ok)),
      admitPeer: (peer, dataDirId, direction) => this.admitPeer(peer, dataDirIdHex(dataDirId), direction),
      onSuperseded: (peer) => this.onSuperseded(peer),
    });
  }

  get store(): NodeState['store'] {
    return this.state.store;
  }

  get auth(): NodeState['auth'] {
    return this.state.auth;
  }

  get members(): Member[] {
    return this.state.members.list();
  }

  /** Ids removed from the cluster (they never rejoin). */
  get removedMemberIds(): number[] {
    return this.state.members.toJSON().removed;
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
  get inUseBytesEstimate(): number {
    return this.sampledSpace.inUseBytes + this.costAppliedSinceSample;
  }

  /** Measures the engine's space now (and keeps it as the sample). */
  measureSpace(): EngineSpace {
    this.sampledSpace = this.state.engine.space();
    this.costAppliedSinceSample = 0;
    return this.sampledSpace;
  }

  get isLearner(): boolean {
    return this.confState.learners.includes(this.memberId);
  }

  get peerAddress(): string {
    return `${this.transport.address.host}:${this.transport.address.port}`;
  }

  /** The monotonic clock, in milliseconds. */
  private now(): number {
    return this.environment.clock.monotonicMs();
  }

  raftStatus(): ReturnType<RawNode['status']> {
    return this.raw.status();
  }

  async start(): Promise<void> {
    // Peers first: the listener accepts only current members, so it must know them when it opens.
    this.syncPeers();
    await this.transport.start();
    const waitingFor = this.state.dataDirs.waitingFor();
    if (waitingFor.length > 0) {
      this.logger.info('waiting until every other member of the new cluster has recorded this data directory (see the README, "Lost data directories")', {
        waitingFor: waitingFor.map((id) => this.state.members.get(id)?.name ?? formatId(id)),
      });
      await new Promise<void>((resolve, reject) => (this.confirmation = { resolve, reject }));
    }
    this.raftStarted = true;
    this.loop.start((error) => this.fail(error));
    this.ticker = this.environment.timers.setInterval(() => this.onTick(), this.config.tickMs);
    this.logger.info('member started', {
      memberId: formatId(this.memberId),
      clusterId: formatId(this.clusterId),
      peer: this.peerAddress,
      applied: this.applied,
      members: this.state.members.list().map((m) => m.name),
    });
  }

  /**
   * Both ends of every peer connection ask this before the other side's messages are read: a peer
   * must name the data directory this member first saw for it (data-dirs.ts says why). A new one is
   * recorded durably first. An accepted dial of ours tells us the peer has recorded ours.
   */
  private async admitPeer(peer: number, dataDirId: string, direction: 'inbound' | 'outbound'): Promise<string | undefined> {
    const { dataDirs } = this.state;
    const admission = dataDirs.check(peer, dataDirId);
    if (!admission.admit) {
      this.logger.warn('refused a member that came back with another data directory; it must be removed and added again', {
        member: formatId(peer),
        name: this.state.members.get(peer)?.name,
        dataDir: dataDirId,
        known: admission.known,
      });
      return `member ${formatId(peer)} is known here by data directory ${admission.known}, not ${dataDirId}`;
    }
    if (admission.fresh) {
      dataDirs.record(peer, dataDirId);
      await this.saveDataDirs();
    }
    if (direction === 'outbound' && dataDirs.waitingFor().includes(peer)) {
      dataDirs.acceptedBy(peer);
      if (dataDirs.waitingFor().length === 0) {
        this.state.identity.confirmed = true;
        await this.state.saveIdentity();
        this.logger.info('every member of the new cluster has recorded this data directory');
        this.confirmation?.resolve();
      }
    }
    return undefined;
  }

  private saveDataDirs(): Promise<void> {
    this.state.identity.peerDataDirs = Object.fromEntries(this.state.dataDirs.entries().map(([id, dir]) => [formatId(id), dir]));
    return this.state.saveIdentity();
  }

  /** A peer knows this member by another data directory: this one was lost or replaced. */
  private onSuperseded(peer: number): void {
    if (this.removedReason !== undefined) return;
    const who = this.state.members.get(peer)?.name || formatId(peer);
    const error = new LichenError(
      ErrorCode.DataLoss,
      `member ${who} knows member "${this.config.name}" (${formatId(this.memberId)}) by another data directory than ${this.config.dataDir} ` +
        `(${this.state.identity.dataDirId}): this member's data was lost or replaced, and with it the votes and log entries it had promised, ` +
        `so it must not take part under its old identity. ${remedy(this.memberId, this.config.dataDir)}`,
    );
    if (this.confirmation && !this.raftStarted) {
      this.logger.error(error.message);
      this.removedReason = `member failed: ${error.message}`;
      this.confirmation.reject(error);
      return;
    }
    this.fail(error);
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.raftStarted) this.confirmation?.reject(new LichenError(ErrorCode.Unavailable, 'server stopped', { etcdError: 'stopped' }));
    this.environment.timers.clear(this.ticker);
    this.environment.timers.clear(this.commitFlush);
    await this.loop.stop();
    await this.snapshotTask;
    await this.transport.close();
    const closed = new LichenError(ErrorCode.Unavailable, 'server stopped', { etcdError: 'stopped' });
    this.proposals.rejectAll(closed);
    this.reads.rejectAll(closed);
    await this.state.wal.close();
    await this.state.engine.sync();
    this.state.engine.close();
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
    const result = (await this.proposeEnvelope(EnvelopeKind.Mvcc, body)) as ApplyResult;
    if ('error' in result) throw result.error;
    return result;
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
        const pending = isLichenError(error, ErrorCode.MembershipRefused) ? error.details.pendingConfIndex : undefined;
        if (typeof pending !== 'number' || this.hasUnappliedConfChange(pending) || this.now() > deadline) throw error;
        await this.waitForApplied(pending, deadline);
      }
    }
  }

  /** Whether a ConfChange entry lies between the applied index and `upTo` (inclusive). */
  private hasUnappliedConfChange(upTo: number): boolean {
    const from = Math.max(this.applied + 1, this.state.storage.firstIndex());
    if (from > upTo) return false;
    return this.state.storage.entries(from, upTo + 1).some((e) => e.type === EntryType.ConfChange);
  }

  /**
   * Resolves once this member has applied everything its log had committed when it started (its
   * membership, with the peers' client addresses, lives in the log), or after the request timeout.
   */
  replayed(): Promise<void> {
    return this.waitForApplied(this.commitAtStart, this.now() + this.config.requestTimeoutMs);
  }

  /** Resolves once this member has applied `index`, or at the deadline (whichever is first). */
  private waitForApplied(index: number, deadline: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this.environment.timers.setTimeout(resolve, Math.max(0, deadline - this.now()));
      this.appliedWaiters.push({
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
    const { sequence, result } = this.proposals.register();
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
    return this.lead === 0 ? undefined : this.state.members.get(this.lead);
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
    if (this.stopped) throw new LichenError(ErrorCode.Unavailable, 'server stopped', { etcdError: 'stopped' });
    if (!this.raftStarted) throw new LichenError(ErrorCode.Unavailable, 'server is starting (waiting for the other members of the new cluster)');
  }

  private async proposeEnvelope(kind: EnvelopeKind, body: Uint8Array): Promise<Applied | void | ApplyResult> {
    this.assertServing();
    await this.waitForLeader();
    const { sequence, result } = this.proposals.register();
    const data = encodeEnvelope({ kind, origin: this.memberId, sequence, body });
    this.enqueue(() => {
      try {
        this.raw.propose(data);
        this.metrics.raftProposalsTotal.inc({ result: 'proposed' });
      } catch (error) {
        this.metrics.raftProposalsTotal.inc({ result: 'dropped' });
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

  private receive(message: Message): void {
    const received = message.type === 'Snap' && message.snapshot.data instanceof ReceivedSnapshot ? message.snapshot.data : undefined;
    if (this.loop.backlog >= inboxMessagesMax || !this.raftStarted) return received?.discard();
    this.enqueue(() => {
      try {
        this.raw.step(message);
      } catch (error) {
        if (isLichenError(error, ErrorCode.DataLoss)) {
          this.fail(new LichenError(ErrorCode.DataLoss, `${error.message} This member lost log entries it had acknowledged. ${remedy(this.memberId, this.config.dataDir)}`));
          return;
        }
        this.logger.warn('raft: dropped a peer message', { type: message.type, from: formatId(message.from), error: String(error) });
      }
      if (received === undefined) return;
      // Raft holds a snapshot it takes until a Ready hands it out to install; the file of one it
      // did not take (older than what this member has) goes at once.
      if (this.raw.pendingSnapshot()?.data === received) this.receivedSnapshots.add(received);
      else received.discard();
    });
  }

  private enqueue(action: () => void): void {
    this.loop.enqueue(action);
  }

  private onTick(): void {
    this.enqueue(() => this.raw.tick());
    this.tokens.sweep();
    this.reads.onTick();
    this.hub.syncUnsynced();
    if (this.role === 'leader') this.revokeExpiredLeases();
    this.measureSpace();
    this.maybeRaiseNoSpace();
    this.compactor?.tick(this.role === 'leader');
    if (!this.publishedAttributes && this.lead !== 0) this.publishAttributes();
    this.maybePromoteSelf();
    this.maybeProbeMembership();
  }

  /**
   * A follower that is removed may never see its removal commit: the leader stops replicating to
   * it as soon as the change applies there. It then hears no leader and campaigns in vain. So a
   * member without a leader for several election timeouts asks the others whether it is still a
   * member, and trusts an answer only from a member that has applied at least as much of the log
   * as itself (so that member has seen this member's own addition too).
   */
  private maybeProbeMembership(): void {
    const now = this.now();
    if (this.lead !== 0 || this.removedReason) {
      this.leaderlessSinceMs = now;
      return;
    }
    const patienceMs = MEMBERSHIP_PROBE_ELECTIONS * this.config.electionTicks * this.config.tickMs;
    if (now - this.leaderlessSinceMs < patienceMs || this.probingMembership) return;
    this.probingMembership = true;
    this.leaderlessSinceMs = now;
    const others = this.state.members.list().filter((m) => m.id !== this.memberId && m.clientAddress !== '');
    void Promise.allSettled(others.map((m) => this.askMembership(m.clientAddress)))
      .then((answers) => {
        for (const answer of answers) {
          if (answer.status !== 'fulfilled' || answer.value.appliedIndex < this.applied) continue;
          if (!answer.value.memberIds.includes(this.memberId) && !this.removedReason) {
            this.onRemoved('another member reports that this member was removed');
          }
        }
      })
      .finally(() => (this.probingMembership = false));
  }

  /**
   * A member that joined as a learner asks to become a voter once it has applied everything
   * that was committed when it joined (the threshold is documented in the README): from then on
   * it is as up to date as any follower, so adding it cannot stall commits.
   */
  private maybePromoteSelf(): void {
    const joined = this.state.identity.joined;
    if (!joined || this.promotingSelf || !this.isLearner || this.lead === 0) return;
    if (this.applied < joined.catchUpIndex) return;
    this.promotingSelf = true;
    this.proposeConfChange(ConfChangeType.AddNode, this.memberId)
      .then(() => this.logger.info('promoted this learner to a voting member', { applied: this.applied }))
      .catch((error: unknown) => this.logger.warn('self-promotion did not complete; will retry', { error: String(error) }))
      .finally(() => (this.promotingSelf = false));
  }

  /** Writes a Ready's hard state and entries to the WAL, then mirrors them into raft's storage. */
  private async persist(update: { hardState?: HardState; entries: Entry[]; sync: boolean }): Promise<void> {
    const started = this.now();
    await this.state.wal.save(update);
    if (update.sync) this.metrics.walFsyncSeconds.observe((this.now() - started) / 1000);
    if (update.entries.length > 0) this.state.storage.append(update.entries);
    if (update.hardState) this.state.storage.setHardState(update.hardState);
  }

  private scheduleCommitFlush(): void {
    if (this.commitFlush || this.stopped || !this.raw.commitUnannounced()) return;
    this.commitFlush = this.environment.timers.setTimeout(() => {
      this.commitFlush = undefined;
      this.enqueue(() => this.raw.flushCommit());
    }, this.config.followerCommitDelayMs);
  }

  private applyCommitted(rd: Ready): void {
    // One engine commit for all of them: an LMDB commit per entry was about a third of the cost
    // of applying it (40 of 130 µs per put, traced).
    if (rd.committedEntries.length > 0) this.state.engine.batch(() => rd.committedEntries.forEach((entry) => this.applyEntry(entry)));
    for (const readState of rd.readStates) this.reads.onReadState(readState.context, readState.index);
    this.reads.onApplied(this.applied);
    if (this.appliedWaiters.length > 0) {
      const due = this.appliedWaiters.filter((w) => w.index <= this.applied);
      this.appliedWaiters = this.appliedWaiters.filter((w) => w.index > this.applied);
      for (const waiter of due) waiter.wake();
    }
  }

  private onSoftState(lead: number, role: string): void {
    const wasLeader = this.role === 'leader';
    if (lead !== this.lead) {
      this.metrics.raftLeaderChangesTotal.inc();
      this.logger.info('leader changed', { from: formatId(this.lead), to: formatId(lead), role });
    }
    this.lead = lead;
    this.role = role;
    if (role === 'leader' && !wasLeader) {
      // A new leader restarts every lease clock at a full TTL (as etcd does): it cannot know
      // when the old leader last heard a keep-alive.
      this.lessor.promote(this.environment.clock.wallMs());
    } else if (role !== 'leader' && wasLeader) {
      this.lessor.demote();
    }
    if (lead !== 0) {
      const waiters = this.leaderWaiters;
      this.leaderWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  private applyEntry(entry: Entry): void {
    if (entry.type === EntryType.ConfChange) {
      this.applyConfChange(entry);
    } else if (entry.data.length > 0) {
      const envelope = decodeEnvelope(entry.data);
      if (envelope.kind === EnvelopeKind.MemberAttributes) {
        this.state.members.applyAttributes(envelope.origin, decodeJson<MemberAttributes>(envelope.body));
      } else if (entry.index > this.state.store.appliedIndex) {
        const command = decodeCommand(envelope.body);
        const result = applyCommand(this.replicated, entry.index, command);
        this.afterApply(command.type === 'authorized' ? command.command : command, result);
        if (envelope.origin === this.memberId) this.proposals.resolve(envelope.sequence, result as Applied);
      }
    }
    this.applied = entry.index;
  }

  private afterApply(command: Command, result: ApplyResult): void {
    if ('error' in result) return;
    if (result.events.length > 0) this.hub.notify(result.events, result.revision);
    this.costAppliedSinceSample += quotaCost(command);
    if (command.type === 'leaseGrant') {
      const granted = result.response as { ID: number; TTL: number };
      this.lessor.grant(granted.ID, granted.TTL, this.environment.clock.wallMs());
    } else if (command.type === 'leaseRevoke') {
      this.lessor.revoke(command.id);
    } else if (command.type === 'alarmActivate' || command.type === 'alarmDeactivate') {
      const changed = (result.response as { alarms: unknown[] }).alarms.length > 0;
      if (changed) this.logger.warn(command.type === 'alarmActivate' ? 'alarm raised' : 'alarm disarmed', { alarm: command.alarm, memberId: formatId(command.memberId) });
    }
  }

  private applyConfChange(entry: Entry): void {
    const cc = decodeConfChange(entry.data);
    const context = cc.context.length > 0 ? decodeJson<ConfContext>(cc.context) : undefined;
    const refusal = this.state.members.refusal(cc);
    if (refusal) {
      // Raft's configuration stays as it is; every member refuses the same entry.
      this.logger.warn('membership change refused at apply', { change: cc.type, member: formatId(cc.nodeId), index: entry.index, reason: refusal });
      if (context && context.origin === this.memberId) {
        this.proposals.reject(context.sequence, new LichenError(ErrorCode.MemberNotFound, 'member not found', { etcdError: 'memberNotFound', reason: refusal }));
      }
      return;
    }
    this.state.members.applyConfChange(cc);
    this.confState = this.raw.applyConfChange(cc);
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId !== this.memberId) {
      this.state.dataDirs.forget(cc.nodeId);
      void this.saveDataDirs().catch((error: unknown) => this.fail(error));
    }
    this.syncPeers();
    this.logger.info('membership changed', { change: cc.type, member: formatId(cc.nodeId), voters: this.confState.voters.map(formatId) });
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

  /**
   * Makes the transport dial exactly the current members (other than this one). A member that
   * joined also keeps the members it was told of at its join until it has applied that far: the
   * leader may send it an older snapshot (the first one, say), whose membership lacks members
   * added since, the leader itself among them; dropping them would leave it unable to answer the
   * leader (or accept its connection), so it could never apply the changes that add them back.
   */
  private syncPeers(): void {
    const current = new Set<number>();
    const joined = this.state.identity.joined;
    const catchingUp = joined !== undefined && this.applied < joined.catchUpIndex ? joined.members : [];
    for (const member of [...this.state.members.list(), ...catchingUp]) {
      if (member.id === this.memberId || current.has(member.id) || this.state.members.isRemoved(member.id)) continue;
      current.add(member.id);
      this.transport.updatePeer(member.id, member.peerAddress);
    }
    for (const id of this.knownPeers) if (!current.has(id)) this.transport.removePeer(id);
    this.knownPeers = current;
  }

  private async installSnapshot(snapshot: Snapshot): Promise<void> {
    await this.state.snapshots.save(snapshot);
    await this.state.wal.saveSnapshotMarker(snapshot.metadata);
    // Received snapshots raft took earlier and replaced with this one are not needed any more.
    for (const received of this.receivedSnapshots) if (received !== snapshot.data) received.discard();
    this.receivedSnapshots.clear();
    this.state.storage.applySnapshot(snapshot);
    // A received snapshot stays in its file: the engine imports it a piece at a time.
    const { members, engineChunks } = decodeSnapshotData(snapshot.data);
    this.state.store.install(engineChunks);
    this.state.auth.reload();
    // Watchers were synced to the old state: they re-read what they missed from the new history.
    this.hub.restored();
    this.state.members = members;
    this.confState = snapshot.metadata.conf;
    this.applied = snapshot.metadata.index;
    this.snapshotIndex = snapshot.metadata.index;
    this.syncPeers();
    this.logger.info('installed a snapshot from the leader', { index: snapshot.metadata.index, term: snapshot.metadata.term });
  }

  /**
   * Snapshots the state machine and releases log entries once enough have been applied. The copy
   * is read from a consistent engine view taken now, but collected in the background a chunk per
   * event-loop turn, so writes keep flowing while a large store is copied.
   */
  private maybeSnapshot(): void {
    if (this.snapshotTask) return;
    const progress = {
      entriesSinceSnapshot: this.applied - this.snapshotIndex,
      walBytes: this.state.wal.sizeBytes,
      walBytesAfterCompaction: this.walBytesAfterCompaction,
      spread: this.snapshotSpread,
    };
    if (!snapshotDue(this.config, progress)) return;
    const index = this.applied;
    const conf = this.confState;
    const members = MemberTable.fromJSON(this.state.members.toJSON());
    const chunks = this.state.store.export()[Symbol.iterator]();
    // Pulling the first chunk now pins the engine view at `index`, before the next apply.
    const first = chunks.next();
    this.snapshotTask = this.takeSnapshot(index, conf, members, first, chunks)
      .catch((error: unknown) => this.fail(error))
      .finally(() => (this.snapshotTask = undefined));
  }

  private async takeSnapshot(
    index: number,
    conf: ConfState,
    members: MemberTable,
    first: IteratorResult<Uint8Array>,
    rest: Iterator<Uint8Array>,
  ): Promise<void> {
    const parts: Uint8Array[] = [];
    for (let chunk = first; !chunk.done; chunk = rest.next()) {
      parts.push(chunk.value);
      await this.environment.timers.nextTurn();
    }
    // A snapshot installed from the leader meanwhile supersedes this one; a closing member stops.
    if (this.stopped || index <= this.state.storage.snapshot().metadata.index) return;
    const data = encodeSnapshotData(members, parts);
    const snapshot = this.state.storage.createSnapshot(index, conf, data);
    await this.state.snapshots.save(snapshot);
    await this.state.wal.saveSnapshotMarker(snapshot.metadata);
    // The engine must hold everything up to `index` durably before the log entries go.
    await this.state.engine.sync();
    const compactTo = Math.max(this.state.storage.firstIndex() - 1, index - this.config.snapshotCatchUpEntries);
    if (compactTo > this.state.storage.firstIndex() - 1) {
      this.state.storage.compact(compactTo);
      await this.state.wal.releaseTo(compactTo);
    }
    this.snapshotIndex = Math.max(this.snapshotIndex, index);
    this.walBytesAfterCompaction = this.state.wal.sizeBytes;
    this.snapshotSpread = this.environment.random.float();
    this.logger.info('took a snapshot', { index, compactedTo: compactTo, bytes: data.length });
  }

  /**
   * Once the data in use reaches the quota, this member raises its own NOSPACE alarm through raft
   * (etcd raises it when a write crosses the quota; sampling each tick catches that within one).
   */
  private maybeRaiseNoSpace(): void {
    const quota = this.config.quotaBackendBytes;
    if (quota < 0 || this.sampledSpace.inUseBytes < quota || this.lead === 0) return;
    if (this.state.store.alarms(AlarmType.NOSPACE).some((a) => a.memberId === this.memberId)) return;
    const now = this.now();
    if (now - this.noSpaceProposedAtMs < this.config.requestTimeoutMs) return;
    this.noSpaceProposedAtMs = now;
    this.logger.warn('the data in use reached --quota-backend-bytes: raising the NOSPACE alarm', {
      inUseBytes: this.sampledSpace.inUseBytes,
      quotaBytes: quota,
    });
    this.proposeDetached(EnvelopeKind.Mvcc, encodeCommand({ type: 'alarmActivate', memberId: this.memberId, alarm: AlarmType.NOSPACE }));
  }

  private revokeExpiredLeases(): void {
    // The lessor hands out each expired lease once per retry period, so a lost revoke repeats.
    for (const id of this.lessor.expired(this.environment.clock.wallMs(), LEASE_REVOKES_PER_TICK)) {
      this.proposeDetached(EnvelopeKind.Mvcc, encodeCommand({ type: 'leaseRevoke', id }));
    }
  }

  private publishAttributes(): void {
    const self = this.state.members.get(this.memberId);
    if (!self) return;
    if (self.clientAddress === this.publicAddresses.client && self.httpAddress === this.publicAddresses.http) {
      this.publishedAttributes = true;
      return;
    }
    const now = this.now();
    if (now - this.publishAttemptAtMs < this.config.requestTimeoutMs) return;
    this.publishAttemptAtMs = now;
    const attributes: MemberAttributes = { name: this.config.name, clientAddress: this.publicAddresses.client, httpAddress: this.publicAddresses.http };
    this.proposeDetached(EnvelopeKind.MemberAttributes, encodeJson(attributes));
  }

  private fail(error: unknown): void {
    // A WAL or engine failure, or lost data, leaves this member unable to keep its promises: stop it loudly.
    if (isLichenError(error, ErrorCode.DataLoss)) this.logger.error(`fatal: ${error.message}`);
    else this.logger.error('fatal: the raft loop failed; stopping this member', { error: String((error as Error)?.stack ?? error) });
    this.removedReason = `member failed: ${(error as Error)?.message ?? String(error)}`;
    this.stopped = true;
    void this.loop.stop();
    this.environment.timers.clear(this.ticker);
    this.environment.timers.clear(this.commitFlush);
    this.rejectWaiting(new LichenError(ErrorCode.Unavailable, this.removedReason));
    this.resolveHalted({ removed: false, reason: this.removedReason });
    process.exitCode = 1;
  }
}

/** What an operator does about a member that lost its data (the README's "Lost data directories"). */
function remedy(memberId: number, dataDir: string): string {
  return (
    `To bring it back, remove it and add it again with an empty data directory: run ` +
    `\`lichen member remove ${formatId(memberId)} --endpoints <a running member's client address>\`, then delete ${dataDir} ` +
    `and start this member again with --join <a running member's client address> instead of --initial-cluster.`
  );
}
