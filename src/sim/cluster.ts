// The simulated cluster: real RawNodes, each driven by the production Ready loop
// (src/replica/ready-loop.ts) with a virtual environment (clock, timers, randomness) on the
// simulator's clock, a virtual network, and a virtual disk whose writes become durable only when
// they are synced. This file is the member around the loop (the ReadyHandler: send, persist,
// apply, snapshot) and decides where a crash strikes inside a Ready turn: between any two of the
// loop's steps, partway through its sends and applies, and between a write and its sync.
//
// The loops run asynchronously, as in a process: the simulator's step queues work (messages,
// ticks, proposals) into their inboxes, then settle() lets the microtasks run until every loop
// waits for work or for its disk. Nothing else is asynchronous, so a run stays a function of its
// seed.

import { isLichenError, LichenError } from '../errors.js';
import { ReadRounds, ReadyLoop, VirtualEnvironment, type ReadyHandler, type TimerHandle } from '../replica/index.js';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, Snapshot } from '../raft/index.js';
import { ConfChangeType, EntryType, snapshotBytes } from '../raft/types.js';
import { NodeDisk } from './disk.js';
import { PeerDataDirs } from '../server/data-dirs.js';
import { Hasher } from './hash.js';
import { SafetyMonitor, SafetyViolation } from './invariants.js';
import { KvStateMachine, type ApplyOutcome } from './kv-state-machine.js';
import { Network } from './network.js';
import type { Prng } from '../random.js';
import type { RaftVariant } from './options.js';
import {
  createRawNode,
  decodeConfChange,
  isLeaderRole,
  MemoryStorage,
  type SimRawNode,
} from './raft-adapter.js';

/** Where in a Ready turn a crash strikes (see ReadyHandler in src/replica/ready-loop.ts). */
export type CrashPoint =
  /** The inbox ran; nothing of the Ready handled yet. */
  | 'observe'
  /** Partway through sending the messages that may leave at once. */
  | 'send'
  /** A snapshot from the leader is durable; the entries after it are not written. */
  | 'install-snapshot'
  /** Before the write of the Ready's entries and hard state. */
  | 'write'
  /** Written, not synced: a crash now loses the write. */
  | 'unsynced'
  /** Partway through applying committed entries, while the write syncs. */
  | 'apply'
  /** Synced; partway through sending what waited for it. */
  | 'send-after-persist'
  /** After advance(). */
  | 'advanced';
const CRASH_POINTS: readonly CrashPoint[] = ['observe', 'send', 'install-snapshot', 'write', 'unsynced', 'apply', 'send-after-persist', 'advanced'];

/** A node's volatile state: everything here is lost in a crash. */
interface LiveState {
  raw: SimRawNode;
  storage: MemoryStorage;
  sm: KvStateMachine;
  /** The membership as of sm.appliedIndex. */
  conf: ConfState;
  /** Index of the last snapshot this incarnation made or restored. */
  snapshotIndex: number;
  /** This process's clock, timers and randomness; the cluster moves its clock one unit per step. */
  env: VirtualEnvironment;
  /** The production Ready loop; every call into `raw` that changes it runs there. */
  loop: ReadyLoop;
  /** Linearizable reads, batched into ReadIndex rounds by the class the server uses. */
  reads: ReadRounds;
  /** The leader as the Ready loop last reported it (what a member knows of its leader). */
  lead: NodeId;
  /** The term in which this incarnation was last seen as leader (leader-change detection). */
  leaderTerm: number;
  /** The commit index this incarnation had when last seen as leader. */
  leaderCommit: number;
  /** The commit index already reported to the safety monitor. */
  commitObserved: number;
  /** Whether raft runs: a new member of the initial cluster first waits for its peers (data-dirs.ts). */
  raftStarted: boolean;
  /** The peers this process has an established connection to (see connect()). */
  links: Set<NodeId>;
  /** The process ended (crash, removal, refusal): nothing of it may act again. */
  ended: boolean;
  /** The Ready turn in hand, from observe() to advanced(). */
  turn: { crash: CrashPoint | undefined; sends: number } | undefined;
  /** The turn waits for its disk to sync. */
  syncing: boolean;
  /** Ready turns since the step began (a livelock guard). */
  turns: number;
  /** The timer that will send a held-back commit index (lazyCommitBroadcast). */
  commitFlush: TimerHandle | undefined;
}

/** Thrown inside a Ready turn of a process that crashed or ended: the turn stops there. */
class ProcessEnded extends Error {
  override readonly name = 'ProcessEnded';
}

export class SimNode {
  live: LiveState | undefined;
  /** Set once the node was started at least once (its disk is meaningful). */
  started = false;
  /** Stopped because the committed membership no longer has it. */
  removed = false;
  /** Added by a membership change (it joined) rather than bootstrapped with the initial voters. */
  joined = false;
  /** Its disk was wiped since it last ran. */
  wiped = false;
  /** Stopped for good because a peer knows it by another data directory (or its join was refused). */
  superseded = false;
  /** At its last wipe: the peers whose disks had recorded its data directory (see wipe()). */
  wipedKnownBy: NodeId[] = [];
  constructor(
    readonly id: NodeId,
    public disk: NodeDisk,
  ) {}
}

/** What happened to a start: running, refused for good (a wiped member), or to be tried again later. */
export type StartOutcome = 'started' | 'refused' | 'deferred';

export interface ClusterConfig {
  /** Time units per raft tick. */
  tickSteps: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Leaders hold back commit indexes (RaftConfig.lazyCommitBroadcast), flushed half a tick later. */
  lazyCommitBroadcast: boolean;
  snapshotEvery: number;
  compactKeep: number;
  msgBytesMax: number;
  /** A disk sync takes 1 to this many time units. */
  syncStepsMax: number;
  variant: RaftVariant;
}

/** What the cluster tells its environment (clients, the membership driver). */
export interface ClusterListener {
  onApplied(node: NodeId, outcome: ApplyOutcome): void;
  onRead(node: NodeId, context: string, value: string | undefined): void;
}

/** Ready turns one node may take in one step before we call it a livelock. */
const READY_ROUNDS_MAX = 64;

/** Microtask rounds one settle() may take; far above what the turns above need. */
const SETTLE_ROUNDS_MAX = 100_000;

/** Reads waiting on one node at most (the production default). */
const READS_MAX = 10_000;

export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly monitor = new SafetyMonitor();
  readonly trace = new Hasher();
  /** The latest committed membership, as first applied by any node. */
  committedConf: ConfState;
  private committedConfIndex = 0;
  /** The initial voters: each one bootstraps the group on its first start (RawNode.bootstrap). */
  private readonly bootstrapVoters: NodeId[];
  /** Membership changes committed (counted once, when the first node applies each). */
  confChangesApplied = 0;
  now = 0;
  readyCrashRate = 0;
  stats = { crashes: 0, readyCrashes: 0, restarts: 0, snapshotsMade: 0, snapshotsInstalled: 0, applied: 0, wipes: 0, refusals: 0 };
  listener: ClusterListener | undefined;
  /** The first thing that went wrong inside a Ready loop; settle() reports it. */
  private failure: SafetyViolation | undefined;

  constructor(
    readonly config: ClusterConfig,
    readonly network: Network,
    private readonly random: Prng,
    nodeIds: NodeId[],
    initialVoters: NodeId[],
  ) {
    for (const id of nodeIds) this.addNode(id);
    this.committedConf = { voters: [...initialVoters], learners: [] };
    this.bootstrapVoters = [...initialVoters];
  }

  /** A new machine with an empty disk (not started, not a member). */
  addNode(id: NodeId): SimNode {
    const node = new SimNode(id, this.newDisk());
    this.nodes.set(id, node);
    return node;
  }

  private newDisk(): NodeDisk {
    return new NodeDisk(Buffer.from(this.random.bytes(8)).toString('hex'));
  }

  private get checksDataDirs(): boolean {
    return this.config.variant !== 'unchecked-wipes';
  }

  node(id: NodeId): SimNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no simulated node ${id}`);
    return node;
  }

  running(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.live !== undefined);
  }

  /**
   * Starts (or restarts) a node from what its disk holds, as `lichen serve` with the flags of its
   * first start would: an initial voter on an empty disk bootstraps again (and must then wait for its
   * peers); a joiner on an empty disk joins again, which the cluster refuses while its id is a member.
   */
  start(id: NodeId): StartOutcome {
    const node = this.node(id);
    if (node.live !== undefined) return 'started';
    if (node.joined && !node.started) {
      const via = this.joinTarget();
      if (via === undefined) return 'deferred';
      const conf = via.live!.raw.status().conf;
      // join.ts: a member id already in the cluster had a data directory, so this empty one is a lost one.
      if (node.wiped && this.checksDataDirs && (conf.voters.includes(id) || conf.learners.includes(id))) return this.refuse(node, 'join');
    }
    const storage = new MemoryStorage();
    const disk = node.disk;
    const log = disk.durable;
    let sm = new KvStateMachine();
    let conf: ConfState = { voters: [], learners: [] };
    if (log.snapshot !== undefined) {
      storage.applySnapshot(log.snapshot);
      sm = KvStateMachine.fromSnapshot(snapshotBytes(log.snapshot.data), log.snapshot.metadata.index);
      conf = log.snapshot.metadata.conf;
    }
    storage.append(log.entriesAfterSnapshot());
    // A commit index written without a sync can be lost while a snapshot past it is durable; the
    // member's start-up raises it to the snapshot (mergeCommit in src/server/state.ts).
    storage.setHardState({ ...log.hardState, commit: Math.max(log.hardState.commit, log.snapshotIndex()) });
    // Like a process, each incarnation has its own clock (starting at zero) and random stream.
    const env = new VirtualEnvironment(this.random.nextU32());
    const raw = createRawNode(this.config.variant, {
      id,
      storage,
      random: () => env.random.float(),
      electionTicks: this.config.electionTicks,
      heartbeatTicks: this.config.heartbeatTicks,
      applied: sm.appliedIndex,
      preVote: this.config.preVote,
      checkQuorum: this.config.checkQuorum,
      lazyCommitBroadcast: this.config.lazyCommitBroadcast,
      maxInflightMsgs: 16,
      maxMsgBytes: this.config.msgBytesMax,
    });
    // An initial voter whose disk holds nothing (first start, a crash before its first sync, a wipe)
    // bootstraps, as a member with an empty data directory and --initial-cluster does.
    if (!node.joined && this.bootstrapVoters.includes(id) && disk.isEmpty()) {
      raw.bootstrap(this.bootstrapVoters);
      // A member of a new cluster waits until every other one has recorded its data directory.
      if (this.checksDataDirs) disk.dataDirs = new PeerDataDirs({ known: disk.dataDirs.entries(), awaiting: this.bootstrapVoters.filter((v) => v !== id) });
    }
    const handler = this.readyHandler(node, () => live);
    const live: LiveState = {
      raw,
      storage,
      sm,
      conf,
      snapshotIndex: sm.appliedIndex,
      env,
      loop: new ReadyLoop(raw, this.config.variant === 'acks-before-fsync' ? sendingAcksBeforeFsync(handler) : handler),
      reads: new ReadRounds({
        max: READS_MAX,
        // Clients give up on their own; a read they abandoned is ignored when it completes.
        timeoutMs: Infinity,
        retryMs: this.config.electionTicks * this.config.tickSteps,
        now: () => env.clock.monotonicMs(),
        incarnation: env.random.bytes(8),
        // Refused while an election runs: the round stays in flight and is re-issued.
        issue: (context) => this.enqueueRaft(node, live, () => raw.readIndex(context)),
        appliedIndex: () => live.sm.appliedIndex,
      }),
      lead: 0,
      leaderTerm: 0,
      leaderCommit: 0,
      commitObserved: log.hardState.commit,
      raftStarted: !this.checksDataDirs || disk.dataDirs.waitingFor().length === 0,
      links: new Set(),
      ended: false,
      turn: undefined,
      syncing: false,
      turns: 0,
      commitFlush: undefined,
    };
    node.live = live;
    if (node.started) this.stats.restarts++;
    node.started = true;
    node.removed = false;
    this.trace.string(`start${id}@${this.now};`);
    env.timers.setInterval(() => this.onTick(node, live), this.config.tickSteps);
    live.loop.start((error) => this.onLoopFailure(node.id, error));
    return 'started';
  }

  /** The member a joiner asks: the leader, else the running member with the lowest id. */
  private joinTarget(): SimNode | undefined {
    const leader = this.leader();
    if (leader !== undefined) return leader;
    return [...this.nodes.values()].find((n) => n.live?.raftStarted === true && this.isMember(n.id));
  }

  /** Wipes a node's disk: it crashes and will restart, when started again, on an empty disk. */
  wipe(id: NodeId): void {
    const node = this.node(id);
    this.crash(id);
    // Had it ever talked to a peer, that peer would refuse it now (src/server/data-dirs.ts).
    node.wipedKnownBy = [...this.nodes.values()].filter((n) => n.id !== id && n.disk.dataDirs.entries().some(([peer]) => peer === id)).map((n) => n.id);
    node.disk = this.newDisk();
    node.started = false;
    node.wiped = true;
    this.stats.wipes++;
    this.trace.string(`wipe${id}@${this.now};`);
  }

  /** The node stops for good: a peer knows it by another data directory, or its join was refused. */
  private refuse(node: SimNode, how: string): 'refused' {
    this.crash(node.id);
    node.superseded = true;
    this.stats.refusals++;
    this.trace.string(`refused${node.id}:${how}@${this.now};`);
    return 'refused';
  }

  /**
   * The peer handshake of src/transport with the checks of src/server/data-dirs.ts: `a` dials `b`,
   * `b` admits `a` by the data directory it first saw for it (else `a` is superseded and stops),
   * `a` in turn admits `b`, and both record a new one. A message travels only on an established
   * connection. (Which members know whose address is not modelled: any node may dial any other.)
   */
  private connect(a: SimNode, b: SimNode): void {
    if (b.live === undefined || a.live!.links.has(b.id) || !this.network.connected(a.id, b.id)) return;
    if (!b.disk.dataDirs.check(a.id, a.disk.dataDirId).admit) {
      this.refuse(a, `by${b.id}`);
      return;
    }
    b.disk.dataDirs.record(a.id, a.disk.dataDirId);
    if (!a.disk.dataDirs.check(b.id, b.disk.dataDirId).admit) return;
    a.disk.dataDirs.record(b.id, b.disk.dataDirId);
    a.disk.dataDirs.acceptedBy(b.id);
    a.live!.links.add(b.id);
    if (!a.live!.raftStarted && a.disk.dataDirs.waitingFor().length === 0) {
      a.live!.raftStarted = true;
      this.trace.string(`confirmed${a.id}@${this.now};`);
    }
  }

  /** A process that ended takes its connections with it (its own go with its LiveState). */
  private dropLinksTo(id: NodeId): void {
    for (const node of this.nodes.values()) node.live?.links.delete(id);
  }

  /** Loses everything volatile, and what the disk had not synced. */
  crash(id: NodeId): void {
    const node = this.node(id);
    if (node.live === undefined) return;
    this.end(node, node.live);
    this.stats.crashes++;
    this.trace.string(`crash${id}@${this.now};`);
  }

  /**
   * The process ends: its loop stops where it is (a write waiting for its sync never completes),
   * its timers never fire again (nobody moves its clock), and its disk keeps what was synced.
   */
  private end(node: SimNode, live: LiveState): void {
    live.ended = true;
    void live.loop.stop();
    node.live = undefined;
    node.disk.loseUnsynced();
    this.dropLinksTo(node.id);
  }

  /** Delivers the messages due now into their receivers' inboxes. */
  deliver(): void {
    const { deliver, lost } = this.network.takeDue(this.now);
    for (const message of deliver) {
      const receiver = this.nodes.get(message.to);
      const target = receiver?.live;
      const linked = !this.checksDataDirs || this.nodes.get(message.from)?.live?.links.has(message.to) === true;
      if (receiver === undefined || target === undefined || !linked || !target.raftStarted) {
        this.reportLost(message);
        continue;
      }
      this.trace.string(`m${message.from}>${message.to}${message.type}${message.term};`);
      this.enqueueRaft(receiver, target, () => target.raw.step(message));
      if (message.type === 'Snap') this.report(message.from, (raw) => raw.reportSnapshot(message.to, true));
    }
    for (const message of lost) this.reportLost(message);
  }

  /** What a real transport does when a message cannot be delivered. */
  private reportLost(message: Message): void {
    if (message.type === 'Snap') this.report(message.from, (raw) => raw.reportSnapshot(message.to, false));
    else if (this.nodes.get(message.from)?.live !== undefined && this.random.chance(0.2)) {
      this.report(message.from, (raw) => raw.reportUnreachable(message.to));
    }
  }

  /** Queues a transport report into the sender's loop, if it still runs. */
  private report(id: NodeId, action: (raw: SimRawNode) => void): void {
    const sender = this.nodes.get(id);
    const live = sender?.live;
    if (sender !== undefined && live !== undefined) this.enqueueRaft(sender, live, () => action(live.raw));
  }

  /** Moves every running process's clock one time unit: its ticks, syncs and flushes fall due. */
  advanceClocks(): void {
    for (const node of this.running()) {
      const live = node.live!;
      // A process crashed by an earlier one's timer (a refused handshake) stays down.
      if (!live.ended) live.env.advance(1);
    }
  }

  /**
   * A member's tick timer: it (re)dials the peers it has no connection to, as the transport does,
   * ticks raft and checks its read rounds.
   */
  private onTick(node: SimNode, live: LiveState): void {
    if (this.checksDataDirs) {
      for (const peer of this.nodes.values()) if (peer !== node && !live.ended) this.connect(node, peer);
    }
    if (live.ended || !live.raftStarted) return;
    this.enqueueRaft(node, live, () => live.raw.tick());
    live.reads.onTick();
  }

  /**
   * Queues a call into raft on the node's loop, as a member does for everything that touches its
   * RawNode. Expected refusals go to `onRefused`; anything else fails the run.
   */
  private enqueueRaft(node: SimNode, live: LiveState, action: () => void, onRefused?: (error: LichenError) => void): void {
    live.loop.enqueue(() => {
      const result = this.callRaft(node.id, action);
      if (result instanceof LichenError) onRefused?.(result);
    });
  }

  /**
   * Runs raft code, turning expected refusals into a return value and anything else into a
   * simulator failure with the node named.
   */
  private callRaft<T>(id: NodeId, action: () => T): T | LichenError {
    try {
      return action();
    } catch (error) {
      if (isLichenError(error, 'DataLoss')) {
        // A member that finds it lost data stops. With its data directory checked, a wiped member
        // never gets this far: here it would mean one took part.
        if (this.checksDataDirs) throw new SafetyViolation('raft-crash', `node ${id} at time ${this.now}: ${error.message}`);
        this.lostData.add(id);
        return error;
      }
      if (isLichenError(error)) return error;
      throw error;
    }
  }

  /** A Ready loop stopped: a crash ends its turn on purpose; anything else fails the run. */
  private onLoopFailure(id: NodeId, error: unknown): void {
    if (error instanceof ProcessEnded || this.failure !== undefined) return;
    if (error instanceof SafetyViolation) this.failure = error;
    else {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      this.failure = new SafetyViolation('raft-crash', `node ${id} threw at time ${this.now}: ${text}`);
    }
  }

  /**
   * Lets every Ready loop run until each waits for work or for its disk, then reports the first
   * failure any of them met. The loops are asynchronous only through promises resolved here or by
   * the virtual clocks, so awaiting resolved promises is enough to run them all.
   */
  async settle(): Promise<void> {
    for (const node of this.running()) node.live!.turns = 0;
    for (let round = 0; ; round++) {
      if (this.failure !== undefined) throw this.failure;
      if (!this.running().some((node) => Cluster.busy(node.live!))) return;
      if (round >= SETTLE_ROUNDS_MAX) throw new SafetyViolation('raft-crash', `the Ready loops did not settle within ${SETTLE_ROUNDS_MAX} rounds`);
      await Promise.resolve();
    }
  }

  /** Whether a loop has something to do that waits for nothing outside it. */
  private static busy(live: LiveState): boolean {
    if (live.turn !== undefined) return !live.syncing;
    return live.loop.backlog > 0 || live.raw.hasReady();
  }

  /** The member around the Ready loop: the ReadyHandler calls, each a place a crash may strike. */
  private readyHandler(node: SimNode, liveOf: () => LiveState): ReadyHandler {
    return {
      observe: (rd) => this.observe(node, liveOf(), rd),
      send: (messages) => this.send(node, liveOf(), messages),
      installSnapshot: (snapshot) => this.installSnapshot(node, liveOf(), snapshot),
      persist: (update) => this.persist(node, liveOf(), update),
      apply: (rd) => this.applyReady(node, liveOf(), rd),
      advanced: () => this.advanced(node, liveOf()),
    };
  }

  /** Stops a turn of a process that has ended; crashes it at `point` when this turn's crash is there. */
  private checkpoint(node: SimNode, live: LiveState, point: CrashPoint | undefined): void {
    if (live.ended) throw new ProcessEnded();
    if (point === undefined || live.turn?.crash !== point) return;
    this.stats.readyCrashes++;
    this.trace.string(`rc${node.id}${point};`);
    this.crash(node.id);
    throw new ProcessEnded();
  }

  private observe(node: SimNode, live: LiveState, rd: Ready): void {
    if (live.ended) throw new ProcessEnded();
    if (++live.turns > READY_ROUNDS_MAX) {
      throw new SafetyViolation('raft-crash', `node ${node.id} produced more than ${READY_ROUNDS_MAX} Ready batches in one step`);
    }
    const crash = this.random.chance(this.readyCrashRate) ? this.random.pick(CRASH_POINTS) : undefined;
    live.turn = { crash, sends: 0 };
    if (rd.softState !== undefined) live.lead = rd.softState.lead;
    this.checkpoint(node, live, 'observe');
  }

  /** Sends `messages`; the first call of a turn sends what may leave at once, the second what waited. */
  private send(node: SimNode, live: LiveState, messages: Message[]): void {
    this.checkpoint(node, live, undefined);
    const point = live.turn!.sends++ === 0 ? 'send' : 'send-after-persist';
    this.partway(node, live, point, messages, (message) => {
      this.monitor.observeSend(node.id, message, node.disk.durable);
      // A real transport knows when a snapshot stream fails and tells raft (reportSnapshot);
      // without that the leader would wait for that follower forever.
      if (!this.network.send(message, this.now) && message.type === 'Snap') this.report(node.id, (raw) => raw.reportSnapshot(message.to, false));
    });
  }

  /** Runs `each` over `items`, unless this turn's crash strikes at `point`: then partway through. */
  private partway<T>(node: SimNode, live: LiveState, point: CrashPoint, items: readonly T[], each: (item: T) => void): void {
    const stopAt = live.turn?.crash === point ? this.random.int(items.length + 1) : -1;
    for (let i = 0; i < items.length; i++) {
      if (i === stopAt) this.checkpoint(node, live, point);
      each(items[i]!);
    }
    if (stopAt === items.length) this.checkpoint(node, live, point);
  }

  /** Writes a snapshot from the leader, syncs it, and restores the state machine from it. */
  private async installSnapshot(node: SimNode, live: LiveState, snapshot: Snapshot): Promise<void> {
    this.checkpoint(node, live, undefined);
    const meta = snapshot.metadata;
    node.disk.installSnapshot(snapshot, this.monitor.chainForSnapshot(meta.index, meta.term));
    await this.synced(node, live);
    this.checkpoint(node, live, undefined);
    live.storage.applySnapshot(snapshot);
    this.stats.snapshotsInstalled++;
    if (meta.index > live.sm.appliedIndex) this.restoreSnapshot(node, live, snapshot);
    this.checkpoint(node, live, 'install-snapshot');
  }

  /** Writes a Ready's entries and hard state; resolves once they are synced (or at once if no sync is needed). */
  private persist(node: SimNode, live: LiveState, update: { hardState?: HardState; entries: Entry[]; sync: boolean }): Promise<void> {
    this.checkpoint(node, live, 'write');
    const disk = node.disk;
    if (update.entries.length > 0) this.monitor.observeAppend(node.id, disk.append(update.entries));
    const hardState = update.hardState;
    if (hardState !== undefined) {
      disk.setHardState(hardState);
      if (hardState.commit > live.commitObserved) {
        this.monitor.observeCommit(node.id, hardState.term, live.commitObserved, hardState.commit, disk.written);
        live.commitObserved = hardState.commit;
      }
    }
    this.checkpoint(node, live, 'unsynced');
    // As the WAL does, raft's storage learns the write once it is durable.
    const mirror = (): void => {
      live.storage.append(update.entries);
      if (hardState !== undefined) live.storage.setHardState(hardState);
    };
    if (!update.sync) {
      mirror();
      return Promise.resolve();
    }
    return this.synced(node, live).then(mirror);
  }

  /**
   * Resolves once the disk synced, 1 to syncStepsMax time units from now on the process's clock.
   * A process that crashes meanwhile never syncs: its clock stops.
   */
  private synced(node: SimNode, live: LiveState): Promise<void> {
    live.syncing = true;
    return new Promise<void>((resolve) => {
      live.env.timers.setTimeout(() => {
        if (live.ended) return;
        live.syncing = false;
        node.disk.sync();
        resolve();
      }, this.random.between(1, this.config.syncStepsMax));
    });
  }

  private applyReady(node: SimNode, live: LiveState, rd: Ready): void {
    this.checkpoint(node, live, undefined);
    this.partway(node, live, 'apply', rd.committedEntries, (entry) => this.apply(node, live, entry));
    for (const state of rd.readStates) live.reads.onReadState(state.context, state.index);
    live.reads.onApplied(live.sm.appliedIndex);
  }

  private advanced(node: SimNode, live: LiveState): void {
    this.checkpoint(node, live, undefined);
    this.maybeSnapshot(node, live);
    this.scheduleCommitFlush(node, live);
    this.checkpoint(node, live, 'advanced');
    live.turn = undefined;
  }

  /** A lazy leader sends its held-back commit index half a tick later, as a member's short commit timer does. */
  private scheduleCommitFlush(node: SimNode, live: LiveState): void {
    if (live.commitFlush !== undefined || !live.raw.commitUnannounced()) return;
    live.commitFlush = live.env.timers.setTimeout(() => {
      live.commitFlush = undefined;
      this.enqueueRaft(node, live, () => live.raw.flushCommit());
    }, Math.floor(this.config.tickSteps / 2));
  }

  private restoreSnapshot(node: SimNode, live: LiveState, snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    live.sm = KvStateMachine.fromSnapshot(snapshotBytes(snapshot.data), index);
    live.conf = snapshot.metadata.conf;
    live.snapshotIndex = index;
    this.monitor.observeRestore(node.id, index, live.sm.digest());
    this.trace.string(`restore${node.id}:${index};`);
  }

  private apply(node: SimNode, live: LiveState, entry: Entry): void {
    if (entry.index !== live.sm.appliedIndex + 1) {
      throw new SafetyViolation(
        'state-machine-safety',
        `node ${node.id} was handed entry ${entry.index} to apply after applying ${live.sm.appliedIndex}`,
      );
    }
    this.stats.applied++;
    this.trace.string(`a${node.id}:${entry.index};`);
    if (entry.type === EntryType.ConfChange) {
      const change = decodeConfChange(entry.data);
      const conf = this.callRaft(node.id, () => live.raw.applyConfChange(change));
      if (conf instanceof LichenError) throw new SafetyViolation('raft-crash', `applyConfChange refused a committed change: ${conf.message}`);
      live.conf = conf;
      live.sm.skip(entry.index);
      // A removed member's id is never used again (the simulator does reuse it, with the same disk).
      if (change.type === ConfChangeType.RemoveNode && change.nodeId !== node.id) node.disk.dataDirs.forget(change.nodeId);
      // A member stops once it applies its own removal (raft holds that back until the others
      // know it committed), not when another member applies it first.
      if (change.type === ConfChangeType.RemoveNode && change.nodeId === node.id) this.pendingStops.add(node.id);
      this.monitor.observeApply(node.id, entry, live.sm.digest());
      this.onConfApplied(entry.index, change, conf);
      return;
    }
    const outcome = live.sm.applyCommand(entry.index, entry.data);
    this.monitor.observeApply(node.id, entry, live.sm.digest());
    if (outcome !== undefined) this.listener?.onApplied(node.id, outcome);
  }

  /** Tracks the committed membership. */
  private onConfApplied(index: number, change: ConfChange, conf: ConfState): void {
    if (index <= this.committedConfIndex) return;
    this.committedConfIndex = index;
    // The bootstrap entries are not changes made during the run.
    if (index > this.bootstrapVoters.length) this.confChangesApplied++;
    this.committedConf = { voters: [...conf.voters], learners: [...conf.learners] };
    this.trace.string(`conf${index}:${change.type}:${change.nodeId};`);
  }

  /** Nodes to stop at the end of this step (they applied their own removal). */
  readonly pendingStops = new Set<NodeId>();
  /** Nodes to stop at the end of this step: raft found they lost data (unchecked-wipes only). */
  private readonly lostData = new Set<NodeId>();

  stopRemoved(): void {
    for (const id of this.lostData) this.refuse(this.node(id), 'dataloss');
    this.lostData.clear();
    for (const id of this.pendingStops) {
      const node = this.node(id);
      if (this.isMember(id)) continue;
      if (node.live !== undefined) this.end(node, node.live);
      node.removed = true;
      this.trace.string(`stop${id}@${this.now};`);
    }
    this.pendingStops.clear();
  }

  isMember(id: NodeId): boolean {
    return this.committedConf.voters.includes(id) || this.committedConf.learners.includes(id);
  }

  private maybeSnapshot(node: SimNode, live: LiveState): void {
    const applied = live.sm.appliedIndex;
    if (applied - live.snapshotIndex < this.config.snapshotEvery) return;
    const snapshot = live.storage.createSnapshot(applied, live.conf, live.sm.snapshotData());
    const compactIndex = Math.max(live.storage.firstIndex() - 1, applied - this.config.compactKeep);
    live.storage.compact(compactIndex);
    node.disk.saveOwnSnapshot(snapshot, compactIndex);
    live.snapshotIndex = applied;
    this.stats.snapshotsMade++;
    this.trace.string(`snap${node.id}:${applied};`);
  }

  /**
   * Election Safety and Leader Completeness, checked every step. Returns the leaders that are new
   * this step and those whose commit index advanced (moments a fault is most revealing).
   */
  checkLeaders(): { elected: NodeId[]; committed: NodeId[] } {
    const fresh: NodeId[] = [];
    const committed: NodeId[] = [];
    for (const node of this.running()) {
      const live = node.live!;
      const status = live.raw.status();
      if (!isLeaderRole(status.role)) continue;
      this.monitor.observeLeader(node.id, status.term);
      if (live.leaderTerm !== status.term) {
        live.leaderTerm = status.term;
        // Its log as written: every loop waits for a sync or for work, so raft's log is all written.
        this.monitor.observeNewLeader(node.id, status.term, node.disk.written);
        this.trace.string(`leader${node.id}:${status.term};`);
        fresh.push(node.id);
      } else if (status.commit > live.leaderCommit) {
        committed.push(node.id);
      }
      live.leaderCommit = status.commit;
    }
    return { elected: fresh, committed };
  }

  /** The running node that believes it leads with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.running()) {
      const status = node.live!.raw.status();
      if (isLeaderRole(status.role) && status.term > bestTerm) {
        best = node;
        bestTerm = status.term;
      }
    }
    return best;
  }

  /** A member takes requests once raft runs and it knows a leader (else the client backs off). */
  private serving(id: NodeId): LiveState | LichenError {
    const live = this.node(id).live;
    if (live === undefined || !live.raftStarted) return new LichenError('Unavailable', `node ${id} is down or starting`);
    if (live.lead === 0) return new LichenError('Unavailable', `node ${id} knows no leader`);
    return live;
  }

  /** Starts a ReadIndex round for a client read on one node. */
  startRead(id: NodeId, context: string, key: string): LichenError | undefined {
    const live = this.serving(id);
    if (live instanceof LichenError) return live;
    live.reads.waitFor((error) => {
      if (error === undefined) this.listener?.onRead(id, context, live.sm.read(key));
    });
    return undefined;
  }

  /**
   * Proposes a command on one node. A refusal the member can tell at once is returned; one raft
   * gives when the loop runs the proposal (a transfer under way, say) goes to `onRefused`.
   */
  propose(id: NodeId, data: Uint8Array, onRefused?: (error: LichenError) => void): LichenError | undefined {
    const live = this.serving(id);
    if (live instanceof LichenError) return live;
    this.enqueueRaft(this.node(id), live, () => live.raw.propose(data), onRefused);
    return undefined;
  }

  /** Proposes a membership change on a running node (the leader, as an operator would). */
  proposeConfChange(id: NodeId, change: ConfChange): void {
    const live = this.node(id).live;
    if (live !== undefined) this.enqueueRaft(this.node(id), live, () => live.raw.proposeConfChange(change));
  }

  /** Asks a running node (the leader) to hand its leadership to `to`. */
  transferLeader(id: NodeId, to: NodeId): void {
    const live = this.node(id).live;
    if (live !== undefined) this.enqueueRaft(this.node(id), live, () => live.raw.transferLeader(to));
  }
}

/**
 * The planted bug of the 'acks-before-fsync' variant: a Ready loop that sends the append responses
 * of a Ready with its first messages, before its write is durable, as a loop that took them out of
 * Ready.messagesAfterPersist would. Everything else is the production loop.
 */
function sendingAcksBeforeFsync(handler: ReadyHandler): ReadyHandler {
  let ready: Ready | undefined;
  const isAck = (m: Message) => m.type === 'AppResp';
  return {
    ...handler,
    observe: (rd) => {
      ready = rd;
      handler.observe(rd);
    },
    send: (messages) => {
      if (messages === ready?.messages) handler.send([...messages, ...ready.messagesAfterPersist.filter(isAck)]);
      else if (messages === ready?.messagesAfterPersist) handler.send(messages.filter((m) => !isAck(m)));
      else handler.send(messages);
    },
  };
}
