// The simulated cluster: real RawNodes driven by the virtual clock and network, each with a
// virtual disk. This file owns the Ready handling loop, which is where the write-path rule is
// enforced (persist, then send, then apply, then advance) and where crashes can strike between
// those stages.

import { isLichenError, LichenError } from '../errors.js';
import { ReadRounds } from '../replica/index.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, Snapshot } from '../raft/types.js';
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

/** A node's volatile state: everything here is lost in a crash. */
interface LiveState {
  raw: SimRawNode;
  storage: MemoryStorage;
  sm: KvStateMachine;
  /** The membership as of sm.appliedIndex. */
  conf: ConfState;
  /** Index of the last snapshot this incarnation made or restored. */
  snapshotIndex: number;
  /** Linearizable reads, batched into ReadIndex rounds by the class the server uses. */
  reads: ReadRounds;
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
  /** Leaders hold back commit indexes (RaftConfig.lazyCommitBroadcast), flushed half a tick after each tick. */
  lazyCommitBroadcast: boolean;
  snapshotEvery: number;
  compactKeep: number;
  msgBytesMax: number;
  variant: RaftVariant;
}

/** What the cluster tells its environment (clients, the membership driver). */
export interface ClusterListener {
  onApplied(node: NodeId, outcome: ApplyOutcome): void;
  onRead(node: NodeId, context: string, value: string | undefined): void;
}

/** Stages of Ready handling between which a crash may strike. */
export type CrashPoint = 'before-persist' | 'after-persist' | 'after-send' | 'after-apply';
const CRASH_POINTS: readonly CrashPoint[] = ['before-persist', 'after-persist', 'after-send', 'after-apply'];

/** Ready batches one node may produce in one step before we call it a livelock. */
const READY_ROUNDS_MAX = 64;

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
    let sm = new KvStateMachine();
    let conf: ConfState = { voters: [], learners: [] };
    if (disk.snapshot !== undefined) {
      storage.applySnapshot(disk.snapshot);
      sm = KvStateMachine.fromSnapshot(snapshotBytes(disk.snapshot.data), disk.snapshot.metadata.index);
      conf = disk.snapshot.metadata.conf;
    }
    storage.append(disk.entriesAfterSnapshot());
    storage.setHardState(disk.hardState);
    const raw = createRawNode(this.config.variant, {
      id,
      storage,
      random: this.random.fork(),
      electionTicks: this.config.electionTicks,
      heartbeatTicks: this.config.heartbeatTicks,
      applied: sm.appliedIndex,
      preVote: this.config.preVote,
      checkQuorum: this.config.checkQuorum,
      lazyCommitBroadcast: this.config.lazyCommitBroadcast,
      maxInflightMsgs: 16,
      maxMsgBytes: this.config.msgBytesMax,
    });
    // An initial voter whose disk holds nothing (first start, a crash before its first write, a wipe)
    // bootstraps, as a member with an empty data directory and --initial-cluster does.
    if (!node.joined && this.bootstrapVoters.includes(id) && disk.isEmpty()) {
      raw.bootstrap(this.bootstrapVoters);
      // A member of a new cluster waits until every other one has recorded its data directory.
      if (this.checksDataDirs) disk.dataDirs = new PeerDataDirs({ known: disk.dataDirs.entries(), awaiting: this.bootstrapVoters.filter((v) => v !== id) });
    }
    const startedAt = this.now;
    const live: LiveState = {
      raw,
      storage,
      sm,
      conf,
      snapshotIndex: sm.appliedIndex,
      reads: new ReadRounds({
        max: READS_MAX,
        // Clients give up on their own; a read they abandoned is ignored when it completes.
        timeoutMs: Infinity,
        retryMs: this.config.electionTicks * this.config.tickSteps,
        // Like performance.now() in a member, this clock starts at zero with every process.
        now: () => this.now - startedAt,
        incarnation: this.random.bytes(8),
        // Refused while an election runs: the round stays in flight and is re-issued.
        issue: (context) => this.callRaft(id, () => raw.readIndex(context)),
        appliedIndex: () => live.sm.appliedIndex,
      }),
      leaderTerm: 0,
      leaderCommit: 0,
      commitObserved: disk.hardState.commit,
      raftStarted: !this.checksDataDirs || disk.dataDirs.waitingFor().length === 0,
      links: new Set(),
    };
    node.live = live;
    if (node.started) this.stats.restarts++;
    node.started = true;
    node.removed = false;
    this.trace.string(`start${id}@${this.now};`);
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

  /** Loses everything volatile; the disk stays as it is. */
  crash(id: NodeId): void {
    const node = this.node(id);
    if (node.live === undefined) return;
    node.live = undefined;
    this.dropLinksTo(id);
    this.stats.crashes++;
    this.trace.string(`crash${id}@${this.now};`);
  }

  /** Delivers the messages due now. */
  deliver(): void {
    const { deliver, lost } = this.network.takeDue(this.now);
    for (const message of deliver) {
      const target = this.nodes.get(message.to)?.live;
      const linked = !this.checksDataDirs || this.nodes.get(message.from)?.live?.links.has(message.to) === true;
      if (target === undefined || !linked || !target.raftStarted) {
        this.reportLost(message);
        continue;
      }
      this.trace.string(`m${message.from}>${message.to}${message.type}${message.term};`);
      this.callRaft(message.to, () => target.raw.step(message));
      if (message.type === 'Snap') this.nodes.get(message.from)?.live?.raw.reportSnapshot(message.to, true);
    }
    for (const message of lost) this.reportLost(message);
  }

  /** What a real transport does when a message cannot be delivered. */
  private reportLost(message: Message): void {
    const sender = this.nodes.get(message.from)?.live;
    if (sender === undefined) return;
    if (message.type === 'Snap') sender.raw.reportSnapshot(message.to, false);
    else if (this.random.chance(0.2)) sender.raw.reportUnreachable(message.to);
  }

  /**
   * Ticks the nodes whose tick falls on this time unit (each node has its own phase). Half a tick
   * later a lazy leader flushes its commit index, as a member's short commit timer would.
   */
  tick(): void {
    const flushPhase = Math.floor(this.config.tickSteps / 2);
    for (const node of this.running()) {
      const phase = (this.now + node.id * 3) % this.config.tickSteps;
      if (phase === 0 && this.checksDataDirs) {
        // Each tick a node (re)dials the nodes it has no connection to, as the transport does.
        for (const peer of this.nodes.values()) if (peer !== node && node.live !== undefined) this.connect(node, peer);
      }
      if (node.live === undefined || !node.live.raftStarted) continue;
      if (phase === 0) {
        this.callRaft(node.id, () => node.live!.raw.tick());
        node.live!.reads.onTick();
      } else if (phase === flushPhase && this.config.lazyCommitBroadcast) this.callRaft(node.id, () => node.live!.raw.flushCommit());
    }
  }

  /**
   * Runs raft code, turning expected refusals into a return value and anything else into a
   * simulator failure with the node named.
   */
  callRaft<T>(id: NodeId, action: () => T): T | LichenError {
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
      if (error instanceof SafetyViolation) throw error;
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      throw new SafetyViolation('raft-crash', `node ${id} threw at time ${this.now}: ${text}`);
    }
  }

  /** Handles every pending Ready of every running node, in id order. */
  processReadies(): void {
    for (const node of [...this.nodes.values()]) {
      // A member waiting for its peers handles Readies too: it writes its bootstrap, as a real one does.
      for (let round = 0; node.live !== undefined && node.live.raw.hasReady(); round++) {
        if (round >= READY_ROUNDS_MAX) {
          throw new SafetyViolation('raft-crash', `node ${node.id} produced more than ${READY_ROUNDS_MAX} Ready batches in one step`);
        }
        this.handleReady(node);
      }
    }
  }

  private maybeCrash(node: SimNode, point: CrashPoint): boolean {
    if (!this.random.chance(this.readyCrashRate)) return false;
    this.stats.readyCrashes++;
    this.trace.string(`rc${node.id}${point};`);
    this.crash(node.id);
    return true;
  }

  /**
   * Handles one Ready in the order raft gives it (see Ready in src/raft/rawnode.ts): send what may
   * leave at once, persist, send what waited for that, apply, advance. A crash may strike between
   * any two stages, so a message sent before the fsync meets a crash that loses what it followed.
   */
  private handleReady(node: SimNode): void {
    const live = node.live!;
    const ready = live.raw.ready();
    const crashPoint = this.readyCrashRate > 0 ? this.random.pick(CRASH_POINTS) : undefined;
    // The planted bug: a loop that sends append responses before its fsync.
    const early = this.config.variant === 'acks-before-fsync' ? ready.messagesAfterPersist.filter((m) => m.type === 'AppResp') : [];
    const afterPersist = early.length > 0 ? ready.messagesAfterPersist.filter((m) => m.type !== 'AppResp') : ready.messagesAfterPersist;

    this.send(node, live, ready.messages);
    this.send(node, live, early);
    if (crashPoint === 'before-persist' && this.maybeCrash(node, crashPoint)) return;
    this.persist(node, live, ready);
    if (crashPoint === 'after-persist' && this.maybeCrash(node, crashPoint)) return;
    this.send(node, live, afterPersist);
    if (crashPoint === 'after-send' && this.maybeCrash(node, crashPoint)) return;
    if (ready.snapshot !== undefined && ready.snapshot.metadata.index > live.sm.appliedIndex) {
      this.restoreSnapshot(node, live, ready.snapshot);
    }
    for (const entry of ready.committedEntries) this.apply(node, live, entry);
    for (const state of ready.readStates) live.reads.onReadState(state.context, state.index);
    live.reads.onApplied(live.sm.appliedIndex);
    this.maybeSnapshot(node, live);
    if (crashPoint === 'after-apply' && this.maybeCrash(node, crashPoint)) return;
    this.callRaft(node.id, () => live.raw.advance());
  }

  private send(node: SimNode, live: LiveState, messages: Message[]): void {
    for (const message of messages) {
      this.monitor.observeSend(node.id, message, node.disk);
      // A real transport knows when a snapshot stream fails and tells raft (reportSnapshot);
      // without that the leader would wait for that follower forever.
      if (!this.network.send(message, this.now) && message.type === 'Snap') live.raw.reportSnapshot(message.to, false);
    }
  }

  private persist(node: SimNode, live: LiveState, ready: ReturnType<SimRawNode['ready']>): void {
    const disk = node.disk;
    if (ready.snapshot !== undefined) {
      const meta = ready.snapshot.metadata;
      disk.installSnapshot(ready.snapshot, this.monitor.chainForSnapshot(meta.index, meta.term));
      live.storage.applySnapshot(ready.snapshot);
      this.stats.snapshotsInstalled++;
    }
    if (ready.entries.length > 0) {
      const added = disk.append(ready.entries);
      live.storage.append(ready.entries);
      this.monitor.observeAppend(node.id, added);
    }
    if (ready.hardState !== undefined) {
      disk.setHardState(ready.hardState);
      live.storage.setHardState(ready.hardState);
      if (ready.hardState.commit > live.commitObserved) {
        this.monitor.observeCommit(node.id, ready.hardState.term, live.commitObserved, ready.hardState.commit, disk);
        live.commitObserved = ready.hardState.commit;
      }
    }
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
      this.monitor.observeApply(node.id, entry, live.sm.digest());
      this.onConfApplied(entry.index, change, conf);
      return;
    }
    const outcome = live.sm.applyCommand(entry.index, entry.data);
    this.monitor.observeApply(node.id, entry, live.sm.digest());
    if (outcome !== undefined) this.listener?.onApplied(node.id, outcome);
  }

  /** Tracks the committed membership and stops members once their removal is committed. */
  private onConfApplied(index: number, change: ConfChange, conf: ConfState): void {
    if (index <= this.committedConfIndex) return;
    this.committedConfIndex = index;
    // The bootstrap entries are not changes made during the run.
    if (index > this.bootstrapVoters.length) this.confChangesApplied++;
    this.committedConf = { voters: [...conf.voters], learners: [...conf.learners] };
    this.trace.string(`conf${index}:${change.type}:${change.nodeId};`);
    if (change.type === ConfChangeType.RemoveNode) this.pendingStops.add(change.nodeId);
  }

  /** Nodes to stop at the end of this step (their removal was committed). */
  readonly pendingStops = new Set<NodeId>();
  /** Nodes to stop at the end of this step: raft found they lost data (unchecked-wipes only). */
  private readonly lostData = new Set<NodeId>();

  stopRemoved(): void {
    for (const id of this.lostData) this.refuse(this.node(id), 'dataloss');
    this.lostData.clear();
    for (const id of this.pendingStops) {
      const node = this.node(id);
      if (this.isMember(id)) continue;
      node.live = undefined;
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
        this.monitor.observeNewLeader(node.id, status.term, node.disk);
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

  /** Starts a ReadIndex round for a client read on one node. */
  startRead(id: NodeId, context: string, key: string): LichenError | undefined {
    const live = this.node(id).live;
    if (live === undefined || !live.raftStarted) return new LichenError('Unavailable', `node ${id} is down or starting`);
    // A member waits for a leader before it starts a round; the simulated client backs off instead.
    if (live.raw.status().lead === 0) return new LichenError('Unavailable', `node ${id} knows no leader`);
    live.reads.waitFor((error) => {
      if (error === undefined) this.listener?.onRead(id, context, live.sm.read(key));
    });
    return undefined;
  }

  /** Proposes a command on one node. */
  propose(id: NodeId, data: Uint8Array): LichenError | undefined {
    const live = this.node(id).live;
    if (live === undefined || !live.raftStarted) return new LichenError('Unavailable', `node ${id} is down or starting`);
    const result = this.callRaft(id, () => live.raw.propose(data));
    return result instanceof LichenError ? result : undefined;
  }
}
