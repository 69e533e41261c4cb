// The simulated cluster: each member is a real Replica (src/replica) over the real MVCC and auth
// stores on a memory engine, with a virtual environment (clock, timers, randomness) on the
// simulator's clock, the simulator's network as its peer links, and a LogStore and SnapshotFiles
// on a virtual disk whose writes become durable only when they are synced (member-storage.ts).
// This file starts, crashes and wipes those processes, carries their messages and membership
// probes, and decides where a crash strikes inside a Ready turn: it wraps the handler the
// replica's Ready loop calls, so a crash can fall between any two of the loop's steps, partway
// through its sends and applies, and between a write and its sync.
//
// With a store (`--store`) a process hosts its replicas as a server does, one per group it is a
// member of (`--groups`): one disk whose sync covers every group's writes, one ticker, one
// transport. Group 1 is the cluster's: its members are the processes (a process starts by joining
// it and stops when removed from it); the other groups open and close on a running process as it
// joins and leaves them (hostGroups). Each group has its own safety monitor and committed membership.
//
// The loops run asynchronously, as in a process: the simulator's step queues work (messages,
// ticks, proposals) into the replicas, then settle() lets the microtasks run until every loop
// waits for work or for its disk. Nothing else is asynchronous, so a run stays a function of its
// seed.

import { assert, isLichenError } from '../errors.js';
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
import { SimEngine, SimLogStore, SimSnapshotFiles } from './member-storage.js';
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

/** One group's replica in one incarnation of a process, and what the simulator tracks of its Ready loop. */
export interface GroupLive {
  group: GroupId;
  replica: Replica;
  /** The term in which this replica was last seen as leader (leader-change detection). */
  leaderTerm: number;
  /** The commit index this replica had when last seen as leader. */
  leaderCommit: number;
  /** Its group was quiet when last seen as leader. */
  leaderQuiet: boolean;
  /** The Ready turn in hand, from observe() to advanced(). */
  turn: { crash: CrashPoint | undefined; sends: number; installing: Snapshot['metadata'] | undefined } | undefined;
  /** Disk syncs this replica waits for (only a Ready turn waits for one; see member-storage.ts). */
  syncsInFlight: number;
  /** Ready turns since the step began (a livelock guard). */
  turns: number;
  /** The group was removed from this process, which runs on: nothing of this replica may act again. */
  closed: boolean;
}

/** One process's incarnation: everything here is lost in a crash. */
export interface LiveState {
  /** The replica of group 1, the cluster's: its members are the processes (removed from it, a process stops). */
  replica: Replica;
  /** Every group's replica this process hosts, group 1 first. */
  groups: Map<GroupId, GroupLive>;
  /** The store hosting the replicas (`--store`), or none: group 1's replica runs alone, with its own ticker. */
  store: Store | undefined;
  /** What this process does with the packets it receives and the reports of its transport. */
  events: StoreTransportEvents;
  /** This process's clock, timers and randomness; the cluster moves its clock one unit per step. */
  env: VirtualEnvironment;
  /** The peers this process has an established connection to (see connect()). */
  links: Set<NodeId>;
  /** The process ended (crash, removal, refusal): nothing of it may act again. */
  ended: boolean;
  /**
   * The disk's sync in flight (what waits for it), and what waits for the next one: one fdatasync
   * at a time covers every group's writes made before it started, as the shared WAL's.
   */
  syncing: Array<() => void> | undefined;
  nextSync: Array<() => void>;
}

/** The suffix that names a group other than 1 in trace events (group 1's events read as they always did). */
export function groupTag(group: GroupId): string {
  return group === metaGroupId ? '' : `g${group}`;
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

/** A replica seen leading its group. */
export interface LeaderSeen {
  id: NodeId;
  group: GroupId;
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
  /** Raft groups each process hosts (1..groups); more than one needs `store`. */
  groups: number;
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

/**
 * Broken on purpose (§6.4): the leader answers every follower's ReadIndex at once with its commit
 * index, whatever the request's term and however many voters there are. A leader cut off from the
 * majority with one follower of five then serves that follower's reads after the majority elected
 * another leader and acknowledged writes it does not know of.
 */
class ReadsWithoutQuorumRaft extends Raft {
  protected override vouchesForLeadership(): boolean {
    return true;
  }
}

/** The raft core each variant runs (the others run the real one and break something else). */
const RAFT_CLASSES: Partial<Record<RaftVariant, RaftClass>> = {
  'commit-by-count': CommitByCountRaft,
  'double-vote': DoubleVoteRaft,
  'reads-without-quorum': ReadsWithoutQuorumRaft,
};

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
  /** The groups every process hosts (group 1, the cluster's, first). */
  readonly groupIds: GroupId[];
  /** Per group: the safety monitor of its logs, votes and applies. */
  private readonly monitors = new Map<GroupId, SafetyMonitor>();
  readonly trace: Trace;
  /** Per group: the latest committed membership, as first applied by any node, and its index. */
  private readonly confs = new Map<GroupId, { conf: ConfState; index: number }>();
  /** The initial voters: each one bootstraps the group on its first start (a first snapshot). */
  private readonly bootstrapVoters: NodeId[];
  /** Membership changes committed (counted once, when the first node applies each). */
  confChangesApplied = 0;
  now = 0;
  readyCrashRate = 0;
  stats = { crashes: 0, readyCrashes: 0, restarts: 0, snapshotsMade: 0, snapshotsInstalled: 0, applied: 0, wipes: 0, refusals: 0, probes: 0, removedByProbe: 0, quiescences: 0, groupJoins: 0, groupLeaves: 0 };
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
    assert(config.groups === 1 || config.store, 'several groups per process need a store');
    this.groupIds = Array.from({ length: config.groups }, (_, i) => metaGroupId + i);
    for (const group of this.groupIds) {
      this.monitors.set(group, new SafetyMonitor(config.groups > 1 ? `group ${group}: ` : ''));
      this.confs.set(group, { conf: { voters: [...initialVoters], learners: [] }, index: 1 });
    }
    this.bootstrapVoters = [...initialVoters];
  }

  /** The safety monitor of `group`. */
  monitor(group: GroupId): SafetyMonitor {
    return this.monitors.get(group)!;
  }

  /** The latest committed membership of group 1, whose members are the cluster's processes. */
  get committedConf(): ConfState {
    return this.confs.get(metaGroupId)!.conf;
  }

  /** The latest committed membership of `group`, as first applied by any node. */
  committedConfOf(group: GroupId): ConfState {
    return this.confs.get(group)!.conf;
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
    const disk = node.disk.group(metaGroupId);
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
    if (!node.joined && this.bootstrapVoters.includes(id) && node.disk.isEmpty()) this.bootstrap(node);
    // Like a process, each incarnation has its own clock (starting at zero) and random stream.
    const env = new VirtualEnvironment(this.random.nextU32());
    const live: LiveState = {
      replica: undefined as unknown as Replica,
      groups: new Map(),
      store: undefined,
      events: undefined as unknown as StoreTransportEvents,
      env,
      links: new Set(),
      ended: false,
      syncing: undefined,
      nextSync: [],
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
    const first = live.groups.get(metaGroupId)!;
    void live.replica.halted.then((halt) => this.onHalted(node, live, first, halt));
    for (const hosted of live.groups.values()) if (hosted !== first) this.watchHalt(node, live, hosted);
    if (!this.checksDataDirs || node.disk.dataDirs.waitingFor().length === 0) this.startRaft(node, live);
    return 'started';
  }

  /**
   * Writes a new cluster's first snapshot (the membership, an empty store), as `lichen serve
   * --initial-cluster` does, and the same for every other group (as ClusterNode.createGroup with
   * the cluster's voters).
   */
  private bootstrap(node: SimNode): void {
    const members = new MemberTable();
    for (const id of this.bootstrapVoters) {
      members.applyConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: encodeJson({ name: `n${id}`, peerAddress: `node-${id}:2380` }) });
    }
    const data = encodeSnapshotData(members, new KvStateMachine(new MemoryEngine()).export());
    const first: Snapshot = { metadata: { index: 1, term: 1, conf: { voters: [...this.bootstrapVoters], learners: [] } }, data };
    for (const group of this.groupIds) node.disk.group(group).bootstrap(first, this.monitor(group).chainForSnapshot(1, 1), { term: 1, vote: 0, commit: 1 });
    // A member of a new cluster waits until every other one has recorded its data directory.
    if (this.checksDataDirs) node.disk.dataDirs = new PeerDataDirs({ known: node.disk.dataDirs.entries(), awaiting: this.bootstrapVoters.filter((v) => v !== node.id) });
  }

  /** The replica alone, with its own ticker; its peer links lead straight to the network. */
  private openReplica(node: SimNode, live: LiveState): void {
    const hosted = this.hostGroup(live, metaGroupId);
    const replica = new Replica({
      ...this.replicaSettings(node, live, hosted),
      storage: this.recoverStorage(node, live, hosted),
      peers: { send: (messages) => this.send(node, live, metaGroupId, messages), updatePeer: () => {}, removePeer: () => {} },
      environment: live.env,
    });
    live.replica = hosted.replica = replica;
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
      openStorage: (group) => Promise.resolve(this.recoverStorage(node, live, this.hostGroup(live, group))),
      replicaSettings: (group) => this.replicaSettings(node, live, live.groups.get(group)!),
      environment: live.env,
      tickMs: this.config.tickSteps,
      electionTicks: this.config.electionTicks,
      quiescence: true,
      logger: createSilentLogger(),
    });
    live.store = store;
    live.replica = (await this.openGroup(live, metaGroupId)).replica;
    // The other groups its disk holds, as a server reopens every group its WAL holds.
    for (const group of node.disk.groupIds()) if (group !== metaGroupId) await this.openGroup(live, group);
  }

  /** Opens the replica of `group` in the process's store. */
  private async openGroup(live: LiveState, group: GroupId): Promise<GroupLive> {
    const replica = await live.store!.openGroup(group);
    const hosted = live.groups.get(group)!;
    hosted.replica = replica;
    return hosted;
  }

  /** The simulator's record of a group's replica about to open in a process. */
  private hostGroup(live: LiveState, group: GroupId): GroupLive {
    const hosted: GroupLive = {
      group,
      replica: undefined as unknown as Replica,
      leaderTerm: 0,
      leaderCommit: 0,
      leaderQuiet: false,
      turn: undefined,
      syncsInFlight: 0,
      turns: 0,
      closed: false,
    };
    live.groups.set(group, hosted);
    return hosted;
  }

  /** The storage of one incarnation: what its disk holds, recovered as a process restarts. */
  private recoverStorage(node: SimNode, live: LiveState, hosted: GroupLive): ReplicaStorage {
    const disk = node.disk.group(hosted.group);
    const member = {
      id: node.id,
      disk,
      monitor: this.monitor(hosted.group),
      assertRunning: () => {
        if (live.ended || hosted.closed) throw new ProcessEnded();
      },
      sync: () => this.synced(node, live, hosted),
      installing: () => hosted.turn?.installing,
      tookSnapshot: (index: number) => {
        this.stats.snapshotsMade++;
        this.trace.event(`snap${node.id}${groupTag(hosted.group)}:${index};`);
      },
    };
    const wal = new SimLogStore(member);
    const snapshots = new SimSnapshotFiles(member);
    const machine = new KvStateMachine(new SimEngine(member));
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
  private replicaSettings(node: SimNode, live: LiveState, hosted: GroupLive): ReplicaSettings {
    const { config } = this;
    const disk = node.disk.group(hosted.group);
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
    // As src/server/node.ts: only the cluster's group publishes client addresses and probes membership.
    const settings: ReplicaSettings = {
      memberId: node.id,
      clusterId: CLUSTER_ID,
      joined: disk.joined,
      config: replicaConfig,
      logger: createSilentLogger(),
      metrics: NO_METRICS,
      publicAddresses: { client: '', http: '' },
      askMembership: () => Promise.reject(new Error(`group ${hosted.group} has no membership probes`)),
      lostDataRemedy: 'Remove it and add it again.',
      raft: { ...(raftClass && { raftClass }), preVote: config.preVote, checkQuorum: config.checkQuorum, maxInflightMsgs: 16, maxMsgBytes: config.msgBytesMax },
      wrapReadyHandler: (handler) => {
        const simulated = this.readyHandler(node, live, hosted, handler);
        return config.variant === 'acks-before-fsync' ? sendingAcksBeforeFsync(simulated) : simulated;
      },
    };
    if (hosted.group !== metaGroupId) return settings;
    return {
      ...settings,
      publicAddresses: { client: clientAddress(node.id), http: '' },
      askMembership: (address) => this.askMembership(node, address),
      onMemberRemoved: (id) => node.disk.dataDirs.forget(id),
    };
  }

  /** Raft runs once the member's peers know its data directory (a joiner's at once). */
  private startRaft(node: SimNode, live: LiveState): void {
    for (const { replica } of live.groups.values()) {
      replica.syncPeers();
      replica.start();
    }
    this.trace.event(`raft${node.id}@${this.now};`);
  }

  /** The member a joiner asks: the leader, else the running member with the lowest id. */
  private joinTarget(): SimNode | undefined {
    const leader = this.leader();
    if (leader !== undefined) return leader;
    return [...this.nodes.values()].find((n) => n.live?.replica.started === true && this.isMember(n.id));
  }

  /** The replica a process joining `group` asks: one that runs and applied the addition of `id`, the leader's if it has. */
  private groupJoinTarget(group: GroupId, id: NodeId): Replica | undefined {
    const candidates = [this.leader(group), ...this.nodes.values()];
    for (const node of candidates) {
      const replica = node?.live?.groups.get(group)?.replica;
      if (replica !== undefined && replica.started && !replica.stopped && replica.member(id) !== undefined) return replica;
    }
    return undefined;
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
    this.trace.event(`m${message.from}>${message.to}${message.type}${message.term}${groupTag(group)};`);
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

  /**
   * A process whose clock runs slow: it moves one time unit in `factor` (its ticks, syncs and
   * flushes come that much later; it still handles every message as it arrives). Raft's safety
   * must not depend on clocks; a cut-off leader that counts its election timeout slowly keeps
   * leading its side of a partition after the majority has elected another leader.
   */
  slowClock: { id: NodeId; factor: number } | undefined;

  /** Moves every running process's clock one time unit: its ticks, syncs and flushes fall due. */
  advanceClocks(): void {
    for (const node of this.running()) {
      const live = node.live!;
      if (this.slowClock?.id === node.id && this.now % this.slowClock.factor !== 0) continue;
      // A process crashed by an earlier one's timer (a refused handshake) stays down.
      if (!live.ended) live.env.advance(1);
    }
  }

  /** The transport's timer: (re)dials the peers it has no connection to. */
  private dialPeers(node: SimNode, live: LiveState): void {
    if (!this.checksDataDirs) return;
    for (const peer of this.nodes.values()) if (peer !== node && !live.ended) this.connect(node, peer);
  }

  /** Watches a replica of a group other than 1 for a halt. */
  private watchHalt(node: SimNode, live: LiveState, hosted: GroupLive): void {
    void hosted.replica.halted.then((halt) => this.onHalted(node, live, hosted, halt));
  }

  /** A replica stopped serving on its own: it learned of its removal, or it failed. */
  private onHalted(node: SimNode, live: LiveState, hosted: GroupLive, halt: Halt): void {
    if (live.ended || hosted.closed) return;
    if (halt.removed && hosted.group !== metaGroupId) {
      // The process runs on; the group leaves it at the end of the step (stopRemoved).
      this.pendingGroupRemovals.push({ id: node.id, group: hosted.group });
      return;
    }
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
    for (const node of running) for (const hosted of node.live!.groups.values()) hosted.turns = 0;
    let quiet = 0;
    for (let round = 0; quiet < SETTLE_TAIL_ROUNDS; round++) {
      if (this.failure !== undefined) throw this.failure;
      if (round >= SETTLE_ROUNDS_MAX) throw new SafetyViolation('raft-crash', `the Ready loops did not settle within ${SETTLE_ROUNDS_MAX} rounds`);
      // Nodes started during a step start no loop work before the next one; crashed ones have no live state.
      quiet = running.some((node) => node.live !== undefined && [...node.live.groups.values()].some(Cluster.busy)) ? 0 : quiet + 1;
      await Promise.resolve();
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Whether a loop has something to do that waits for nothing outside it: a Ready turn not waiting
   * for its sync, or queued actions (which the loop also runs while it waits for one).
   */
  private static busy(hosted: GroupLive): boolean {
    if (hosted.closed || hosted.replica.stopped) return false;
    if (hosted.turn !== undefined && hosted.syncsInFlight === 0) return true;
    return hosted.replica.hasPendingWork;
  }

  /**
   * The handler the replica's Ready loop calls, around the replica's own: each call is a place a
   * crash may strike, and where the safety monitor looks (sends, applies, installed snapshots).
   */
  private readyHandler(node: SimNode, live: LiveState, hosted: GroupLive, handler: ReadyHandler): ReadyHandler {
    const guarded = <A extends unknown[], R>(body: (...args: A) => R) => (...args: A): R => {
      try {
        return body(...args);
      } catch (error) {
        this.fail(node.id, error);
        throw error;
      }
    };
    return {
      observe: guarded((rd: Ready) => this.observe(node, live, hosted, rd, handler)),
      send: guarded((messages) => this.sendPartway(node, live, hosted, messages, handler)),
      sendDuringPersist: guarded((messages: Message[]) => {
        this.checkpoint(node, live, hosted, undefined);
        handler.sendDuringPersist(messages);
      }),
      installSnapshot: guarded((snapshot) => this.installSnapshot(node, live, hosted, snapshot, handler)),
      persist: guarded((update) => {
        this.checkpoint(node, live, hosted, 'write');
        const persisted = handler.persist(update);
        this.checkpoint(node, live, hosted, 'unsynced');
        return persisted;
      }),
      apply: guarded((rd: Ready) => this.applyReady(node, live, hosted, rd, handler)),
      advanced: guarded(() => {
        this.checkpoint(node, live, hosted, undefined);
        handler.advanced();
        this.checkpoint(node, live, hosted, 'advanced');
        hosted.turn = undefined;
      }),
    };
  }

  /** Stops a turn of a process that has ended; crashes it (every group) at `point` when this turn's crash is there. */
  private checkpoint(node: SimNode, live: LiveState, hosted: GroupLive, point: CrashPoint | undefined): void {
    if (live.ended || hosted.closed) throw new ProcessEnded();
    if (point === undefined || hosted.turn?.crash !== point) return;
    this.stats.readyCrashes++;
    this.trace.event(`rc${node.id}${point};`);
    this.crash(node.id);
    throw new ProcessEnded();
  }

  private observe(node: SimNode, live: LiveState, hosted: GroupLive, rd: Ready, handler: ReadyHandler): void {
    if (live.ended || hosted.closed) throw new ProcessEnded();
    if (++hosted.turns > READY_ROUNDS_MAX) {
      throw new SafetyViolation('raft-crash', `node ${node.id}${groupTag(hosted.group)} produced more than ${READY_ROUNDS_MAX} Ready batches in one step`);
    }
    const crash = this.random.chance(this.readyCrashRate) ? this.random.pick(CRASH_POINTS) : undefined;
    hosted.turn = { crash, sends: 0, installing: undefined };
    handler.observe(rd);
    this.checkpoint(node, live, hosted, 'observe');
  }

  /** The first call of a turn sends what may leave at once, the second what waited for the disk. */
  private sendPartway(node: SimNode, live: LiveState, hosted: GroupLive, messages: Message[], handler: ReadyHandler): void {
    this.checkpoint(node, live, hosted, undefined);
    const point = hosted.turn!.sends++ === 0 ? 'send' : 'send-after-persist';
    this.partway(node, live, hosted, point, messages, (message) => handler.send([message]));
  }

  /** The process's transport: every message is checked against what its sender's disk holds. */
  private send(node: SimNode, live: LiveState, group: GroupId, messages: Message[]): void {
    if (live.ended) return;
    const monitor = this.monitor(group);
    const durable = node.disk.group(group).durable;
    for (const message of messages) {
      monitor.observeSend(node.id, message, durable);
      // A real transport knows when a snapshot stream fails and tells raft (reportSnapshot);
      // without that the leader would wait for that follower forever.
      const sent = this.network.send({ from: node.id, to: message.to, group, message }, this.now);
      if (!sent && message.type === 'Snap') live.events.onSnapshotSent(message.to, false, group, message.to);
    }
  }

  /** A store's Beat to a peer process, with the heartbeats its groups held for it. */
  private sendBeat(node: SimNode, live: LiveState, to: NodeId, messages: GroupMessage[]): void {
    if (live.ended) return;
    for (const { group, message } of messages) this.monitor(group).observeSend(node.id, message, node.disk.group(group).durable);
    this.network.send({ from: node.id, to, beat: messages }, this.now);
  }

  /** Runs `each` over `items`, unless this turn's crash strikes at `point`: then partway through. */
  private partway<T>(node: SimNode, live: LiveState, hosted: GroupLive, point: CrashPoint, items: readonly T[], each: (item: T, index: number) => void): void {
    const stopAt = hosted.turn?.crash === point ? this.random.int(items.length + 1) : -1;
    for (let i = 0; i < items.length; i++) {
      if (i === stopAt) this.checkpoint(node, live, hosted, point);
      each(items[i]!, i);
    }
    if (stopAt === items.length) this.checkpoint(node, live, hosted, point);
  }

  /** Installs a snapshot from the leader (its marker waits for a sync), and checks the state it restores. */
  private async installSnapshot(node: SimNode, live: LiveState, hosted: GroupLive, snapshot: Snapshot, handler: ReadyHandler): Promise<void> {
    this.checkpoint(node, live, hosted, undefined);
    hosted.turn!.installing = snapshot.metadata;
    await handler.installSnapshot(snapshot);
    hosted.turn!.installing = undefined;
    this.checkpoint(node, live, hosted, undefined);
    this.stats.snapshotsInstalled++;
    const index = snapshot.metadata.index;
    this.monitor(hosted.group).observeRestore(node.id, index, stateDigest(hosted.replica.store));
    this.trace.event(`restore${node.id}${groupTag(hosted.group)}:${index};`);
    this.checkpoint(node, live, hosted, 'install-snapshot');
  }

  /**
   * Resolves once the disk synced everything written so far. A sync takes 1 to syncStepsMax time
   * units on the process's clock and makes every group's writes durable; one asked for while
   * another runs waits for the next, which starts when that one ends (the shared WAL's group
   * commit). A process that crashes meanwhile never syncs: its clock stops.
   */
  private synced(node: SimNode, live: LiveState, hosted: GroupLive): Promise<void> {
    hosted.syncsInFlight++;
    return new Promise<void>((resolve) => {
      const done = () => {
        hosted.syncsInFlight--;
        resolve();
      };
      if (live.syncing === undefined) this.startSync(node, live, [done]);
      else live.nextSync.push(done);
    });
  }

  private startSync(node: SimNode, live: LiveState, waiters: Array<() => void>): void {
    live.syncing = waiters;
    live.env.timers.setTimeout(() => {
      if (live.ended) return;
      node.disk.sync();
      live.syncing = undefined;
      for (const done of waiters) done();
      if (live.nextSync.length === 0) return;
      const next = live.nextSync;
      live.nextSync = [];
      this.startSync(node, live, next);
    }, this.random.between(1, this.config.syncStepsMax));
  }

  /**
   * Hands the replica its committed entries one at a time (a crash may strike between any two),
   * checking each: applied in order, the same entry and the same resulting state on every member.
   */
  private applyReady(node: SimNode, live: LiveState, hosted: GroupLive, rd: Ready, handler: ReadyHandler): void {
    this.checkpoint(node, live, hosted, undefined);
    const { replica, group } = hosted;
    const tag = groupTag(group);
    const monitor = this.monitor(group);
    this.partway(node, live, hosted, 'apply', rd.committedEntries, (entry) => {
      if (entry.index !== replica.appliedIndex + 1) {
        throw new SafetyViolation('state-machine-safety', `node ${node.id}${tag} was handed entry ${entry.index} to apply after applying ${replica.appliedIndex}`);
      }
      handler.apply({ ...rd, committedEntries: [entry], readStates: [] });
      this.stats.applied++;
      this.trace.event(`a${node.id}${tag}:${entry.index};`);
      // An engine ahead of raft's applied index (a restart: the engine keeps what it synced) makes
      // apply skip what it holds: its state is the one after its own applied index.
      monitor.observeApply(node.id, entry, replica.store.appliedIndex <= entry.index ? stateDigest(replica.store) : undefined);
      if (entry.type === EntryType.ConfChange) this.onConfApplied(group, entry.index, decodeConfChange(entry.data), replica.raftStatus().conf);
    });
    handler.apply({ ...rd, committedEntries: [], readStates: rd.readStates });
  }

  /** Tracks each group's committed membership. */
  private onConfApplied(group: GroupId, index: number, change: ConfChange, conf: ConfState): void {
    const committed = this.confs.get(group)!;
    if (index <= committed.index) return;
    committed.index = index;
    committed.conf = { voters: [...conf.voters], learners: [...conf.learners] };
    this.confChangesApplied++;
    this.trace.event(`conf${index}:${change.type}:${change.nodeId}${groupTag(group)};`);
  }

  /** Nodes to stop at the end of this step (they learned they were removed). */
  private readonly pendingStops = new Set<NodeId>();
  /** Replicas of groups other than 1 that learned they were removed (their process runs on). */
  private pendingGroupRemovals: Array<{ id: NodeId; group: GroupId }> = [];
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
    for (const { id, group } of this.pendingGroupRemovals) {
      const live = this.node(id).live;
      if (live === undefined || !live.groups.has(group)) continue;
      if (this.isMember(id, group)) this.fail(id, new SafetyViolation('raft-crash', `node ${id} stopped as removed from group ${group} while it is a member`));
      this.closeGroup(this.node(id), live, group);
    }
    this.pendingGroupRemovals = [];
    if (this.failure !== undefined) throw this.failure;
  }

  isMember(id: NodeId, group: GroupId = metaGroupId): boolean {
    const conf = this.committedConfOf(group);
    return conf.voters.includes(id) || conf.learners.includes(id);
  }

  /**
   * Whether a running member's replica of group 1 counts `id` in its configuration although the
   * change that adds it is not committed yet: raft already counts it in its quorums, and an operator
   * who ran `member add` keeps that process up. The node's own view does not count: a removed member
   * that has not applied its removal still counts itself, and the operator stops it.
   */
  isAddedUncommitted(id: NodeId): boolean {
    if (this.isMember(id)) return false;
    for (const [nodeId, node] of this.nodes) {
      if (nodeId === id || !this.isMember(nodeId)) continue;
      const conf = node.live?.replica.raftStatus().conf;
      if (conf !== undefined && (conf.voters.includes(id) || conf.learners.includes(id))) return true;
    }
    return false;
  }

  /**
   * Each running process hosts the groups it is a member of, as an operator keeps it: a member
   * added to a group other than 1 opens it as a joiner (told the members and the catch-up index by
   * a member that applied its addition, as `member add` answers), and one removed from it removes
   * the group's replica and data (ClusterNode.removeGroup). Group 1 is the process itself (start(),
   * stopRemoved()). Resolves once the groups it opens are open.
   */
  hostGroups(): Promise<void> | undefined {
    if (this.groupIds.length === 1) return undefined;
    const opening: Array<Promise<void>> = [];
    for (const node of this.running()) {
      const live = node.live!;
      // A process whose peers have not admitted it yet (or a refused one) takes on no group.
      if (live.ended || !live.replica.started) continue;
      for (const group of this.groupIds) {
        if (group === metaGroupId) continue;
        const member = this.isMember(node.id, group);
        if (live.groups.has(group) && !member) this.closeGroup(node, live, group);
        else if (!live.groups.has(group) && member) {
          const joining = this.joinGroup(node, live, group);
          if (joining !== undefined) opening.push(joining);
        }
      }
    }
    return opening.length === 0 ? undefined : Promise.all(opening).then(() => undefined);
  }

  /** Opens `group` on a process added to it, once a member that applied the addition can tell it the group. */
  private joinGroup(node: SimNode, live: LiveState, group: GroupId): Promise<void> | undefined {
    const via = this.groupJoinTarget(group, node.id);
    if (via === undefined) return undefined;
    node.disk.group(group).joined = { catchUpIndex: via.raftStatus().commit, members: via.members };
    this.stats.groupJoins++;
    this.trace.event(`join${node.id}${groupTag(group)}@${this.now};`);
    return this.openGroup(live, group).then((hosted) => {
      this.watchHalt(node, live, hosted);
      hosted.replica.syncPeers();
      hosted.replica.start();
    });
  }

  /** A group leaves a running process: its replica closes and its data goes (ClusterNode.removeGroup). */
  private closeGroup(node: SimNode, live: LiveState, group: GroupId): void {
    const hosted = live.groups.get(group)!;
    hosted.closed = true;
    live.groups.delete(group);
    node.disk.removeGroup(group);
    this.stats.groupLeaves++;
    this.trace.event(`leave${node.id}${groupTag(group)}@${this.now};`);
    void live.store!.removeGroup(group);
  }

  /**
   * Election Safety and Leader Completeness, checked every step. Returns the leaders that are new
   * this step and those whose commit index advanced (moments a fault is most revealing).
   */
  checkLeaders(): { elected: LeaderSeen[]; committed: LeaderSeen[] } {
    const fresh: LeaderSeen[] = [];
    const committed: LeaderSeen[] = [];
    for (const node of this.running()) {
      for (const hosted of node.live!.groups.values()) {
        const { replica, group } = hosted;
        // The role a replica observed is raft's once every loop has settled (a role changes only in
        // the loop, whose next Ready reports it at once); raft's full status costs more to build.
        if (!replica.isLeader()) continue;
        const status = replica.raftStatus();
        if (status.role !== 'leader') continue;
        const monitor = this.monitor(group);
        const tag = groupTag(group);
        monitor.observeLeader(node.id, status.term);
        if (hosted.leaderTerm !== status.term) {
          hosted.leaderTerm = status.term;
          // Its log as written: every loop waits for a sync or for work, so raft's log is all written.
          monitor.observeNewLeader(node.id, status.term, node.disk.group(group).written);
          this.trace.event(`leader${node.id}${tag}:${status.term};`);
          fresh.push({ id: node.id, group });
        } else if (status.commit > hosted.leaderCommit) {
          committed.push({ id: node.id, group });
        }
        hosted.leaderCommit = status.commit;
        if (replica.quiesced && !hosted.leaderQuiet) {
          this.stats.quiescences++;
          this.trace.event(`quiet${node.id}${tag}:${status.term};`);
        }
        hosted.leaderQuiet = replica.quiesced;
      }
    }
    return { elected: fresh, committed };
  }

  /** The running node that believes it leads `group` with the highest term, if any. */
  leader(group: GroupId = metaGroupId): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.running()) {
      const replica = node.live!.groups.get(group)?.replica;
      if (replica === undefined || !replica.isLeader()) continue;
      const status = replica.raftStatus();
      if (status.role === 'leader' && status.term > bestTerm) {
        best = node;
        bestTerm = status.term;
      }
    }
    return best;
  }

  /** The replica of `group` on the running node `id`, if it hosts one. */
  replicaOf(id: NodeId, group: GroupId = metaGroupId): Replica | undefined {
    return this.node(id).live?.groups.get(group)?.replica;
  }

  /** The replica of a member that takes requests: it runs raft and knows a leader (else the client backs off). */
  serving(id: NodeId, group: GroupId = metaGroupId): Replica | undefined {
    const replica = this.replicaOf(id, group);
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
