// The simulated cluster: each member is a real Replica (src/replica) over the real MVCC and auth
// stores on a memory engine, with a virtual environment (clock, timers, randomness) on the
// simulator's clock, the simulator's network as its peer links, and a LogStore and SnapshotFiles
// on a virtual disk whose writes become durable only when they are synced (member-storage.ts).
// This file starts, crashes and wipes those processes, carries their messages and membership
// probes, and decides where a crash strikes inside a Ready turn: it wraps the handler the
// replica's Ready loop calls, so a crash can fall between any two of the loop's steps, partway
// through its sends and applies, and between a write and its sync.
//
// The loops run asynchronously, as in a process: the simulator's step queues work (messages,
// ticks, proposals) into the replicas, then settle() lets the microtasks run until every loop
// waits for work or for its disk. Nothing else is asynchronous, so a run stays a function of its
// seed.

import { isLichenError } from '../errors.js';
import { MemoryEngine } from '../engine/index.js';
import { createSilentLogger } from '../log.js';
import { Raft, type RaftClass, type VoteRequest } from '../raft/index.js';
import { ConfChangeType, EntryType, decodeConfChange, type ConfChange, type ConfState, type Message, type NodeId, type Ready, type Snapshot } from '../raft/index.js';
import {
  KvStateMachine,
  MemberTable,
  Replica,
  VirtualEnvironment,
  encodeJson,
  encodeSnapshotData,
  recoverJoiner,
  recoverStorage,
  type Halt,
  type MembershipView,
  type ReadyHandler,
  type ReplicaConfig,
  type ReplicaOptions,
  type ReplicaStorage,
} from '../replica/index.js';
import type { MvccStore } from '../mvcc/index.js';
import { metaGroupId, type GroupId } from '../ids.js';
import { Store, type ReplicaSettings, type StoreTransportEvents } from '../store/index.js';
import type { GroupMessage } from '../transport/index.js';
import { NodeDisk } from './disk.js';
import { PeerDataDirs } from '../server/data-dirs.js';
import { Hasher, Trace } from './hash.js';
import { SafetyMonitor, SafetyViolation } from './invariants.js';
import { SimLogStore, SimSnapshotFiles } from './member-storage.js';
import { Network, type Packet } from './network.js';
import { SimTransport } from './transport.js';
import type { Prng } from '../random.js';
import type { RaftVariant } from './options.js';

/** Where in a Ready turn a crash strikes (see ReadyHandler in src/replica/ready-loop.ts). */
export type CrashPoint =
  /** The inbox ran; nothing of the Ready handled yet. */
  | 'observe'
  /** Partway through sending the messages that may leave at once. */
  | 'send'
  /** A snapshot from the leader is durable and installed; the entries after it are not written. */
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

/** One process's incarnation: everything here is lost in a crash. */
export interface LiveState {
  replica: Replica;
  /** The store hosting the replica (`--store`), or none: the replica runs alone, with its own ticker. */
  store: Store | undefined;
  /** What this process does with the packets it receives and the reports of its transport. */
  events: StoreTransportEvents;
  /** This process's clock, timers and randomness; the cluster moves its clock one unit per step. */
  env: VirtualEnvironment;
  /** The term in which this incarnation was last seen as leader (leader-change detection). */
  leaderTerm: number;
  /** The commit index this incarnation had when last seen as leader. */
  leaderCommit: number;
  /** Its group was quiet when last seen as leader. */
  leaderQuiet: boolean;
  /** The peers this process has an established connection to (see connect()). */
  links: Set<NodeId>;
  /** The process ended (crash, removal, refusal): nothing of it may act again. */
  ended: boolean;
  /** The Ready turn in hand, from observe() to advanced(). */
  turn: { crash: CrashPoint | undefined; sends: number; installing: Snapshot['metadata'] | undefined } | undefined;
  /** Disk syncs started and not finished (only a Ready turn waits for one; see member-storage.ts). */
  syncsInFlight: number;
  /** Ready turns since the step began (a livelock guard). */
  turns: number;
}

/** Thrown inside a Ready turn of a process that crashed or ended: the turn stops there. */
class ProcessEnded extends Error {
  override readonly name = 'ProcessEnded';
}

export class SimNode {
  live: LiveState | undefined;
  /** Set once the node was started at least once (its disk is meaningful). */
  started = false;
  /** Stopped because it learned it is no member any more. */
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
  /** Time units per raft tick (a member's clock counts one millisecond per time unit). */
  tickSteps: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Leaders hold back commit indexes (ReplicaConfig.followerCommitDelayMs), flushed half a tick later. */
  lazyCommitBroadcast: boolean;
  snapshotEvery: number;
  compactKeep: number;
  msgBytesMax: number;
  /** A disk sync takes 1 to this many time units. */
  syncStepsMax: number;
  /** How long a member waits for a proposal, a read round or a leader (its --request-timeout). */
  requestTimeoutSteps: number;
  variant: RaftVariant;
  /** Each process hosts its replica in a store (src/store), as a server does: see SimOptions.store. */
  store: boolean;
}

/** Ready turns one node may take in one step before we call it a livelock. */
const READY_ROUNDS_MAX = 64;

/** Microtask rounds one settle() may take; far above what the turns above need. */
const SETTLE_ROUNDS_MAX = 100_000;

/** Microtask rounds settle() runs on once every loop waits: promise callbacks around the loops (a halt, a client's answer) land in the step that caused them. */
const SETTLE_TAIL_ROUNDS = 4;

const CLUSTER_ID = 1;

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

/** The raft core each variant runs (the others run the real one and break something else). */
const RAFT_CLASSES: Partial<Record<RaftVariant, RaftClass>> = { 'commit-by-count': CommitByCountRaft, 'double-vote': DoubleVoteRaft };

/** The metrics a replica updates, as no-ops: nobody scrapes a simulated member. */
const NO_METRICS = {
  walFsyncSeconds: { observe() {} },
  raftLeaderChangesTotal: { inc() {} },
  raftProposalsTotal: { inc() {} },
} as unknown as ReplicaOptions['metrics'];

/** Every key ("\0" as rangeEnd: to the end). */
const ALL_KEYS = new Uint8Array([0]);

/** A fingerprint of the replicated state: the revision and every live key with its metadata. */
export function stateDigest(store: MvccStore): string {
  const hash = new Hasher().number(store.currentRevision);
  for (const kv of store.range({ key: ALL_KEYS, rangeEnd: ALL_KEYS }).kvs) {
    hash.bytes(kv.key).number(kv.createRevision).number(kv.modRevision).number(kv.version).number(kv.lease).bytes(kv.value).string('|');
  }
  return hash.digest();
}

/** The client address a simulated member publishes (what a membership probe is sent to). */
function clientAddress(id: NodeId): string {
  return `node-${id}:2379`;
}

export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly monitor = new SafetyMonitor();
  readonly trace: Trace;
  /** The latest committed membership, as first applied by any node. */
  committedConf: ConfState;
  private committedConfIndex = 1;
  /** The initial voters: each one bootstraps the group on its first start (a first snapshot). */
  private readonly bootstrapVoters: NodeId[];
  /** Membership changes committed (counted once, when the first node applies each). */
  confChangesApplied = 0;
  now = 0;
  readyCrashRate = 0;
  stats = { crashes: 0, readyCrashes: 0, restarts: 0, snapshotsMade: 0, snapshotsInstalled: 0, applied: 0, wipes: 0, refusals: 0, probes: 0, removedByProbe: 0, quiescences: 0 };
  /** The first thing that went wrong inside a Ready loop; settle() reports it. */
  private failure: SafetyViolation | undefined;
  /** Membership probes on their way to a member or back (see askMembership). */
  private calls: Array<{ at: number; run: () => void }> = [];

  constructor(
    readonly config: ClusterConfig,
    readonly network: Network,
    private readonly random: Prng,
    nodeIds: NodeId[],
    initialVoters: NodeId[],
    traceSink?: (line: string) => void,
  ) {
    this.trace = new Trace(() => this.now, traceSink);
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
   * peers); a joiner on an empty disk joins again, which the cluster refuses while its id is a member
   * it had started as (join.ts). A joiner starts only once its addition committed.
   */
  start(id: NodeId): StartOutcome | Promise<StartOutcome> {
    const node = this.node(id);
    if (node.live !== undefined) return 'started';
    const disk = node.disk;
    if (node.joined && disk.joined === undefined) {
      if (!this.isMember(id)) return 'deferred';
      const via = this.joinTarget();
      if (via === undefined) return 'deferred';
      // join.ts: a member id already started in the cluster had a data directory, so this empty one is a lost one.
      if (node.wiped && this.checksDataDirs) return this.refuse(node, 'join');
      // `member add` answers once the member asked has applied the addition; the join starts then.
      if (via.live!.replica.member(id) === undefined) return 'deferred';
      disk.joined = { catchUpIndex: via.live!.replica.raftStatus().commit, members: via.live!.replica.members };
    }
    if (!node.joined && this.bootstrapVoters.includes(id) && disk.isEmpty()) this.bootstrap(node);
    // Like a process, each incarnation has its own clock (starting at zero) and random stream.
    const env = new VirtualEnvironment(this.random.nextU32());
    const live: LiveState = {
      replica: undefined as unknown as Replica,
      store: undefined,
      events: undefined as unknown as StoreTransportEvents,
      env,
      leaderTerm: 0,
      leaderCommit: 0,
      leaderQuiet: false,
      links: new Set(),
      ended: false,
      turn: undefined,
      syncsInFlight: 0,
      turns: 0,
    };
    // Without a store nothing here waits: the runs of recorded seeds stay as they were.
    if (!this.config.store) {
      this.openReplica(node, live);
      return this.launch(node, live);
    }
    return this.openStore(node, live).then(async () => {
      const outcome = this.launch(node, live);
      await live.store!.start();
      return outcome;
    });
  }

  /** The process runs: it dials its peers, and its raft starts once they know its data directory. */
  private launch(node: SimNode, live: LiveState): 'started' {
    // The transport (re)dials its peers on its own timer, set before the ticker (the replica's, set
    // when raft starts, or the store's) so that a tick sees the connections made at the same instant.
    live.env.timers.setInterval(() => this.dialPeers(node, live), this.config.tickSteps);
    node.live = live;
    if (node.started) this.stats.restarts++;
    node.started = true;
    node.removed = false;
    this.trace.event(`start${node.id}@${this.now};`);
    void live.replica.halted.then((halt) => this.onHalted(node, live, halt));
    if (!this.checksDataDirs || node.disk.dataDirs.waitingFor().length === 0) this.startRaft(node, live);
    return 'started';
  }

  /** Writes a new cluster's first snapshot (the membership, an empty store), as `lichen serve --initial-cluster` does. */
  private bootstrap(node: SimNode): void {
    const members = new MemberTable();
    for (const id of this.bootstrapVoters) {
      members.applyConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: encodeJson({ name: `n${id}`, peerAddress: `node-${id}:2380` }) });
    }
    const data = encodeSnapshotData(members, new KvStateMachine(new MemoryEngine()).export());
    const first: Snapshot = { metadata: { index: 1, term: 1, conf: { voters: [...this.bootstrapVoters], learners: [] } }, data };
    node.disk.bootstrap(first, this.monitor.chainForSnapshot(1, 1), { term: 1, vote: 0, commit: 1 });
    // A member of a new cluster waits until every other one has recorded its data directory.
    if (this.checksDataDirs) node.disk.dataDirs = new PeerDataDirs({ known: node.disk.dataDirs.entries(), awaiting: this.bootstrapVoters.filter((v) => v !== node.id) });
  }

  /** The replica alone, with its own ticker; its peer links lead straight to the network. */
  private openReplica(node: SimNode, live: LiveState): void {
    const replica = new Replica({
      ...this.replicaSettings(node, live),
      storage: this.recoverStorage(node, live),
      peers: { send: (messages) => this.send(node, live, metaGroupId, messages), updatePeer: () => {}, removePeer: () => {} },
      environment: live.env,
    });
    live.replica = replica;
    live.events = {
      onMessage: (message) => replica.receive(message),
      onBeat: () => {},
      onUnreachable: (peer) => replica.reportUnreachable(peer),
      onSnapshotSent: (_node, ok, _group, to) => replica.reportSnapshot(to, ok),
      memberNode: (_group, member) => member,
    };
  }

  /**
   * The replica hosted by a store (src/store), as a server runs it: the store's ticker, its Beats to
   * the peer processes, and quiescence of an idle group. The store's transport is the network.
   */
  private async openStore(node: SimNode, live: LiveState): Promise<void> {
    const store = new Store({
      nodeId: node.id,
      transport: (events) => {
        live.events = events;
        return new SimTransport(node.id, {
          send: (messages, group) => this.send(node, live, group, messages),
          sendBeat: (to, messages) => this.sendBeat(node, live, to, messages),
        });
      },
      openStorage: () => Promise.resolve(this.recoverStorage(node, live)),
      replicaSettings: () => this.replicaSettings(node, live),
      environment: live.env,
      tickMs: this.config.tickSteps,
      electionTicks: this.config.electionTicks,
      quiescence: true,
      logger: createSilentLogger(),
    });
    live.store = store;
    live.replica = await store.openGroup(metaGroupId);
  }

  /** The storage of one incarnation: what its disk holds, recovered as a process restarts. */
  private recoverStorage(node: SimNode, live: LiveState): ReplicaStorage {
    const disk = node.disk;
    const member = {
      id: node.id,
      disk,
      monitor: this.monitor,
      assertRunning: () => {
        if (live.ended) throw new ProcessEnded();
      },
      sync: () => this.synced(node, live),
      installing: () => live.turn?.installing,
      tookSnapshot: (index: number) => {
        this.stats.snapshotsMade++;
        this.trace.event(`snap${node.id}:${index};`);
      },
    };
    const wal = new SimLogStore(member);
    const snapshots = new SimSnapshotFiles(member);
    const machine = new KvStateMachine(new MemoryEngine());
    const image = disk.durable;
    let storage: ReplicaStorage;
    if (image.snapshot !== undefined) {
      const log = { hardState: image.hardState, entries: image.entriesAfterSnapshot() };
      storage = recoverStorage({ wal, snapshots, machine, snapshot: disk.snapshotFile(image.snapshot.metadata), log });
    } else {
      // A member that joined and has not received its first snapshot yet (src/server/state.ts).
      const members = MemberTable.fromJSON({ members: disk.joined!.members, removed: [] });
      storage = recoverJoiner({ wal, snapshots, machine, log: { hardState: image.hardState, entries: image.entriesAfterSnapshot() }, members });
    }
    return storage;
  }

  /** A replica's settings, apart from its storage, peer links and clock (the store gives those, or openReplica). */
  private replicaSettings(node: SimNode, live: LiveState): ReplicaSettings {
    const { config } = this;
    const disk = node.disk;
    const replicaConfig: ReplicaConfig = {
      name: `n${node.id}`,
      tickMs: config.tickSteps,
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      followerCommitDelayMs: config.lazyCommitBroadcast ? Math.floor(config.tickSteps / 2) : 0,
      requestTimeoutMs: config.requestTimeoutSteps,
      pendingRequestsMax: 10_000,
      maxRequestBytes: 1024 * 1024,
      snapshotEntries: config.snapshotEvery,
      snapshotCatchUpEntries: config.compactKeep,
      snapshotWalBytes: Number.MAX_SAFE_INTEGER,
      quotaBackendBytes: -1,
      authToken: 'simple',
      authTokenTtlSeconds: 300,
      unsafe: { readsWithoutReadIndex: false },
    };
    const raftClass = RAFT_CLASSES[config.variant];
    return {
      memberId: node.id,
      clusterId: CLUSTER_ID,
      joined: disk.joined,
      config: replicaConfig,
      logger: createSilentLogger(),
      metrics: NO_METRICS,
      publicAddresses: { client: clientAddress(node.id), http: '' },
      askMembership: (address) => this.askMembership(node, address),
      lostDataRemedy: 'Remove it and add it again.',
      onMemberRemoved: (id) => disk.dataDirs.forget(id),
      raft: { ...(raftClass && { raftClass }), preVote: config.preVote, checkQuorum: config.checkQuorum, maxInflightMsgs: 16, maxMsgBytes: config.msgBytesMax },
      wrapReadyHandler: (handler) => {
        const simulated = this.readyHandler(node, live, handler);
        return config.variant === 'acks-before-fsync' ? sendingAcksBeforeFsync(simulated) : simulated;
      },
    };
  }

  /** Raft runs once the member's peers know its data directory (a joiner's at once). */
  private startRaft(node: SimNode, live: LiveState): void {
    live.replica.syncPeers();
    live.replica.start();
    this.trace.event(`raft${node.id}@${this.now};`);
  }

  /** The member a joiner asks: the leader, else the running member with the lowest id. */
  private joinTarget(): SimNode | undefined {
    const leader = this.leader();
    if (leader !== undefined) return leader;
    return [...this.nodes.values()].find((n) => n.live?.replica.started === true && this.isMember(n.id));
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
    this.trace.event(`wipe${id}@${this.now};`);
  }

  /** The node stops for good: a peer knows it by another data directory, or its join was refused. */
  private refuse(node: SimNode, how: string): 'refused' {
    this.crash(node.id);
    node.superseded = true;
    this.stats.refusals++;
    this.trace.event(`refused${node.id}:${how}@${this.now};`);
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
    if (!a.live!.replica.started && a.disk.dataDirs.waitingFor().length === 0) {
      this.trace.event(`confirmed${a.id}@${this.now};`);
      this.startRaft(a, a.live!);
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
    this.trace.event(`crash${id}@${this.now};`);
  }

  /**
   * The process ends: its loop stops where it is (a write waiting for its sync never completes),
   * its timers never fire again (nobody moves its clock), and its disk keeps what was synced.
   */
  private end(node: SimNode, live: LiveState): void {
    live.ended = true;
    void (live.store?.close() ?? live.replica.stop());
    node.live = undefined;
    node.disk.loseUnsynced();
    this.dropLinksTo(node.id);
  }

  /** Delivers the messages and probe calls due now. */
  deliver(): void {
    const { deliver, lost } = this.network.takeDue(this.now);
    for (const packet of deliver) {
      const receiver = this.nodes.get(packet.to)?.live;
      const linked = !this.checksDataDirs || this.nodes.get(packet.from)?.live?.links.has(packet.to) === true;
      if (receiver === undefined || !linked || !receiver.replica.started) {
        this.reportLost(packet);
        continue;
      }
      if ('beat' in packet) {
        this.trace.event(`beat${packet.from}>${packet.to};`);
        receiver.events.onBeat(packet.from);
        for (const { group, message } of packet.beat) this.receive(receiver, packet.from, group, message);
        continue;
      }
      const { group, message } = packet;
      this.receive(receiver, packet.from, group, message);
      if (message.type === 'Snap') this.nodes.get(packet.from)?.live?.events.onSnapshotSent(packet.to, true, group, message.to);
    }
    for (const packet of lost) this.reportLost(packet);
    const due = this.calls.filter((call) => call.at <= this.now);
    this.calls = this.calls.filter((call) => call.at > this.now);
    for (const call of due) call.run();
  }

  private receive(receiver: LiveState, from: NodeId, group: GroupId, message: Message): void {
    this.trace.event(`m${message.from}>${message.to}${message.type}${message.term};`);
    receiver.events.onMessage(message, group, from);
  }

  /** What a real transport does when a packet cannot be delivered. */
  private reportLost(packet: Packet): void {
    const sender = this.nodes.get(packet.from)?.live;
    if (sender === undefined) return;
    if ('message' in packet && packet.message.type === 'Snap') sender.events.onSnapshotSent(packet.to, false, packet.group, packet.message.to);
    else if (this.random.chance(0.2)) sender.events.onUnreachable(packet.to);
  }

  /**
   * A member's membership probe (src/replica/membership.ts) over the simulated network: the call
   * and its answer each take a network delay, and fail when either end is down or cut off.
   */
  private askMembership(from: SimNode, address: string): Promise<MembershipView> {
    this.stats.probes++;
    const to = [...this.nodes.values()].find((n) => clientAddress(n.id) === address);
    const reachable = (): boolean => to?.live !== undefined && to.live.replica.started && from.live !== undefined && this.network.connected(from.id, to.id);
    const delay = (): number => this.random.between(1, this.config.tickSteps);
    return new Promise((resolve, reject) => {
      this.calls.push({
        at: this.now + delay(),
        run: () => {
          if (!reachable()) return reject(new Error(`${address} does not answer`));
          const replica = to!.live!.replica;
          const view = { appliedIndex: replica.appliedIndex, memberIds: replica.members.map((m) => m.id) };
          this.calls.push({ at: this.now + delay(), run: () => (reachable() ? resolve(view) : reject(new Error(`${address} did not answer`))) });
        },
      });
    });
  }

  /** Moves every running process's clock one time unit: its ticks, syncs and flushes fall due. */
  advanceClocks(): void {
    for (const node of this.running()) {
      const live = node.live!;
      // A process crashed by an earlier one's timer (a refused handshake) stays down.
      if (!live.ended) live.env.advance(1);
    }
  }

  /** The transport's timer: (re)dials the peers it has no connection to. */
  private dialPeers(node: SimNode, live: LiveState): void {
    if (!this.checksDataDirs) return;
    for (const peer of this.nodes.values()) if (peer !== node && !live.ended) this.connect(node, peer);
  }

  /** A replica stopped serving on its own: it learned of its removal, or it failed. */
  private onHalted(node: SimNode, live: LiveState, halt: Halt): void {
    if (live.ended) return;
    if (halt.removed) {
      // Its own configuration still has it: it learned the removal from a membership probe.
      const conf = live.replica.raftStatus().conf;
      if (conf.voters.includes(node.id) || conf.learners.includes(node.id)) this.stats.removedByProbe++;
      this.pendingStops.add(node.id);
      return;
    }
    const error = halt.error;
    if (isLichenError(error, 'DataLoss') && !this.checksDataDirs) {
      // A member that finds it lost data stops. With its data directory checked, a wiped member
      // never gets this far: there it fails the run below.
      this.lostData.add(node.id);
      return;
    }
    this.fail(node.id, error);
  }

  /** Records what broke a member (the first failure of the run is the one reported). */
  private fail(id: NodeId, error: unknown): void {
    if (error instanceof ProcessEnded || this.failure !== undefined) return;
    if (error instanceof SafetyViolation) this.failure = error;
    else {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      this.failure = new SafetyViolation('raft-crash', `node ${id} failed at time ${this.now}: ${text}`);
    }
  }

  /**
   * Lets every Ready loop run until each waits for work or for its disk, then reports the first
   * failure any of them met. The loops are asynchronous only through promises resolved here or by
   * the virtual clocks, so awaiting resolved promises is enough to run them all.
   */
  async settle(): Promise<void> {
    const running = this.running();
    for (const node of running) node.live!.turns = 0;
    let quiet = 0;
    for (let round = 0; quiet < SETTLE_TAIL_ROUNDS; round++) {
      if (this.failure !== undefined) throw this.failure;
      if (round >= SETTLE_ROUNDS_MAX) throw new SafetyViolation('raft-crash', `the Ready loops did not settle within ${SETTLE_ROUNDS_MAX} rounds`);
      // Nodes started during a step start no loop work before the next one; crashed ones have no live state.
      quiet = running.some((node) => node.live !== undefined && Cluster.busy(node.live)) ? 0 : quiet + 1;
      await Promise.resolve();
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** Whether a loop has something to do that waits for nothing outside it. */
  private static busy(live: LiveState): boolean {
    if (live.replica.stopped) return false;
    if (live.turn !== undefined) return live.syncsInFlight === 0;
    return live.replica.hasPendingWork;
  }

  /**
   * The handler the replica's Ready loop calls, around the replica's own: each call is a place a
   * crash may strike, and where the safety monitor looks (sends, applies, installed snapshots).
   */
  private readyHandler(node: SimNode, live: LiveState, handler: ReadyHandler): ReadyHandler {
    const guarded = <A extends unknown[], R>(body: (...args: A) => R) => (...args: A): R => {
      try {
        return body(...args);
      } catch (error) {
        this.fail(node.id, error);
        throw error;
      }
    };
    return {
      observe: guarded((rd: Ready) => this.observe(node, live, rd, handler)),
      send: guarded((messages) => this.sendPartway(node, live, messages, handler)),
      installSnapshot: guarded((snapshot) => this.installSnapshot(node, live, snapshot, handler)),
      persist: guarded((update) => {
        this.checkpoint(node, live, 'write');
        const persisted = handler.persist(update);
        this.checkpoint(node, live, 'unsynced');
        return persisted;
      }),
      apply: guarded((rd: Ready) => this.applyReady(node, live, rd, handler)),
      advanced: guarded(() => {
        this.checkpoint(node, live, undefined);
        handler.advanced();
        this.checkpoint(node, live, 'advanced');
        live.turn = undefined;
      }),
    };
  }

  /** Stops a turn of a process that has ended; crashes it at `point` when this turn's crash is there. */
  private checkpoint(node: SimNode, live: LiveState, point: CrashPoint | undefined): void {
    if (live.ended) throw new ProcessEnded();
    if (point === undefined || live.turn?.crash !== point) return;
    this.stats.readyCrashes++;
    this.trace.event(`rc${node.id}${point};`);
    this.crash(node.id);
    throw new ProcessEnded();
  }

  private observe(node: SimNode, live: LiveState, rd: Ready, handler: ReadyHandler): void {
    if (live.ended) throw new ProcessEnded();
    if (++live.turns > READY_ROUNDS_MAX) {
      throw new SafetyViolation('raft-crash', `node ${node.id} produced more than ${READY_ROUNDS_MAX} Ready batches in one step`);
    }
    const crash = this.random.chance(this.readyCrashRate) ? this.random.pick(CRASH_POINTS) : undefined;
    live.turn = { crash, sends: 0, installing: undefined };
    handler.observe(rd);
    this.checkpoint(node, live, 'observe');
  }

  /** The first call of a turn sends what may leave at once, the second what waited for the disk. */
  private sendPartway(node: SimNode, live: LiveState, messages: Message[], handler: ReadyHandler): void {
    this.checkpoint(node, live, undefined);
    const point = live.turn!.sends++ === 0 ? 'send' : 'send-after-persist';
    this.partway(node, live, point, messages, (message) => handler.send([message]));
  }

  /** The process's transport: every message is checked against what its sender's disk holds. */
  private send(node: SimNode, live: LiveState, group: GroupId, messages: Message[]): void {
    if (live.ended) return;
    for (const message of messages) {
      this.monitor.observeSend(node.id, message, node.disk.durable);
      // A real transport knows when a snapshot stream fails and tells raft (reportSnapshot);
      // without that the leader would wait for that follower forever.
      const sent = this.network.send({ from: node.id, to: message.to, group, message }, this.now);
      if (!sent && message.type === 'Snap') live.events.onSnapshotSent(message.to, false, group, message.to);
    }
  }

  /** A store's Beat to a peer process, with the heartbeats its groups held for it. */
  private sendBeat(node: SimNode, live: LiveState, to: NodeId, messages: GroupMessage[]): void {
    if (live.ended) return;
    for (const { message } of messages) this.monitor.observeSend(node.id, message, node.disk.durable);
    this.network.send({ from: node.id, to, beat: messages }, this.now);
  }

  /** Runs `each` over `items`, unless this turn's crash strikes at `point`: then partway through. */
  private partway<T>(node: SimNode, live: LiveState, point: CrashPoint, items: readonly T[], each: (item: T, index: number) => void): void {
    const stopAt = live.turn?.crash === point ? this.random.int(items.length + 1) : -1;
    for (let i = 0; i < items.length; i++) {
      if (i === stopAt) this.checkpoint(node, live, point);
      each(items[i]!, i);
    }
    if (stopAt === items.length) this.checkpoint(node, live, point);
  }

  /** Installs a snapshot from the leader (its marker waits for a sync), and checks the state it restores. */
  private async installSnapshot(node: SimNode, live: LiveState, snapshot: Snapshot, handler: ReadyHandler): Promise<void> {
    this.checkpoint(node, live, undefined);
    live.turn!.installing = snapshot.metadata;
    await handler.installSnapshot(snapshot);
    live.turn!.installing = undefined;
    this.checkpoint(node, live, undefined);
    this.stats.snapshotsInstalled++;
    const index = snapshot.metadata.index;
    this.monitor.observeRestore(node.id, index, stateDigest(live.replica.store));
    this.trace.event(`restore${node.id}:${index};`);
    this.checkpoint(node, live, 'install-snapshot');
  }

  /**
   * Resolves once the disk synced, 1 to syncStepsMax time units from now on the process's clock.
   * A process that crashes meanwhile never syncs: its clock stops.
   */
  private synced(node: SimNode, live: LiveState): Promise<void> {
    live.syncsInFlight++;
    return new Promise<void>((resolve) => {
      live.env.timers.setTimeout(() => {
        if (live.ended) return;
        live.syncsInFlight--;
        node.disk.sync();
        resolve();
      }, this.random.between(1, this.config.syncStepsMax));
    });
  }

  /**
   * Hands the replica its committed entries one at a time (a crash may strike between any two),
   * checking each: applied in order, the same entry and the same resulting state on every member.
   */
  private applyReady(node: SimNode, live: LiveState, rd: Ready, handler: ReadyHandler): void {
    this.checkpoint(node, live, undefined);
    const replica = live.replica;
    this.partway(node, live, 'apply', rd.committedEntries, (entry) => {
      if (entry.index !== replica.appliedIndex + 1) {
        throw new SafetyViolation('state-machine-safety', `node ${node.id} was handed entry ${entry.index} to apply after applying ${replica.appliedIndex}`);
      }
      handler.apply({ ...rd, committedEntries: [entry], readStates: [] });
      this.stats.applied++;
      this.trace.event(`a${node.id}:${entry.index};`);
      this.monitor.observeApply(node.id, entry, stateDigest(replica.store));
      if (entry.type === EntryType.ConfChange) this.onConfApplied(entry.index, decodeConfChange(entry.data), replica.raftStatus().conf);
    });
    handler.apply({ ...rd, committedEntries: [], readStates: rd.readStates });
  }

  /** Tracks the committed membership. */
  private onConfApplied(index: number, change: ConfChange, conf: ConfState): void {
    if (index <= this.committedConfIndex) return;
    this.committedConfIndex = index;
    this.confChangesApplied++;
    this.committedConf = { voters: [...conf.voters], learners: [...conf.learners] };
    this.trace.event(`conf${index}:${change.type}:${change.nodeId};`);
  }

  /** Nodes to stop at the end of this step (they learned they were removed). */
  private readonly pendingStops = new Set<NodeId>();
  /** Nodes to stop at the end of this step: raft found they lost data (unchecked-wipes only). */
  private readonly lostData = new Set<NodeId>();

  stopRemoved(): void {
    for (const id of this.lostData) this.refuse(this.node(id), 'dataloss');
    this.lostData.clear();
    for (const id of this.pendingStops) {
      const node = this.node(id);
      if (node.live === undefined) continue;
      // A member only learns it was removed from a removal some member applied.
      if (this.isMember(id)) this.fail(id, new SafetyViolation('raft-crash', `node ${id} stopped as removed while it is a member`));
      this.end(node, node.live);
      node.removed = true;
      this.trace.event(`stop${id}@${this.now};`);
    }
    this.pendingStops.clear();
    if (this.failure !== undefined) throw this.failure;
  }

  isMember(id: NodeId): boolean {
    return this.committedConf.voters.includes(id) || this.committedConf.learners.includes(id);
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
      // The role a replica observed is raft's once every loop has settled (a role changes only in
      // the loop, whose next Ready reports it at once); raft's full status costs more to build.
      if (!live.replica.isLeader()) continue;
      const status = live.replica.raftStatus();
      if (status.role !== 'leader') continue;
      this.monitor.observeLeader(node.id, status.term);
      if (live.leaderTerm !== status.term) {
        live.leaderTerm = status.term;
        // Its log as written: every loop waits for a sync or for work, so raft's log is all written.
        this.monitor.observeNewLeader(node.id, status.term, node.disk.written);
        this.trace.event(`leader${node.id}:${status.term};`);
        fresh.push(node.id);
      } else if (status.commit > live.leaderCommit) {
        committed.push(node.id);
      }
      live.leaderCommit = status.commit;
      if (live.replica.quiesced && !live.leaderQuiet) {
        this.stats.quiescences++;
        this.trace.event(`quiet${node.id}:${status.term};`);
      }
      live.leaderQuiet = live.replica.quiesced;
    }
    return { elected: fresh, committed };
  }

  /** The running node that believes it leads with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.running()) {
      if (!node.live!.replica.isLeader()) continue;
      const status = node.live!.replica.raftStatus();
      if (status.role === 'leader' && status.term > bestTerm) {
        best = node;
        bestTerm = status.term;
      }
    }
    return best;
  }

  /** The replica of a member that takes requests: it runs raft and knows a leader (else the client backs off). */
  serving(id: NodeId): Replica | undefined {
    const replica = this.node(id).live?.replica;
    return replica !== undefined && replica.started && !replica.stopped && replica.leaderId !== 0 ? replica : undefined;
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
