// One process hosting replicas of many raft groups, keyed by group id (as undici's Agent keeps
// one dispatcher per origin): it opens each group's replica from an injected storage factory,
// ticks all of them from one timer, carries every group's traffic over one transport (messages
// travel with their group id), and sends each peer process one Beat frame per tick with the
// heartbeats of all groups for it.
//
// Process identity and replica identity are separate: the store is node `nodeId`; a replica is
// member `m` of group `g`, and memberNode(g, m) names the node that hosts it (default: the member
// id is the node id, as in a cluster of one group, where each member is one process).
//
// Quiescence: the raft core decides when an idle group goes quiet (Raft.quiesced); the store only
// stops ticking it and stands in for its heartbeats with liveness: every tick it sends each peer
// node a Beat (empty when no group has a heartbeat for it), and when it has not heard from a node
// for an election timeout it wakes the quiet groups that depend on that node: the followers of a
// leader hosted there (which then campaign, with PreVote and CheckQuorum as always), and the
// leaders of followers hosted there (which then must hear from a quorum again).
import { assert } from '../errors.js';
import { formatId, type GroupId } from '../ids.js';
import type { Logger } from '../log.js';
import type { Message, NodeId } from '../raft/index.js';
import { Replica, type Environment, type GroupMember, type PeerLinks, type ReplicaOptions, type ReplicaStorage, type TimerHandle } from '../replica/index.js';
import type { GroupMessage, Transport, TransportOptions } from '../transport/index.js';

/** What the store's transport reports to it (the host adds its own handshake concerns). */
export type StoreTransportEvents = Required<Pick<TransportOptions, 'onMessage' | 'onBeat' | 'onUnreachable' | 'onSnapshotSent' | 'memberNode'>>;

/** A replica's settings, apart from what the store gives it (storage, peer links, clock, ticks). */
export type ReplicaSettings = Omit<ReplicaOptions, 'storage' | 'peers' | 'environment' | 'host'>;

export interface StoreOptions {
  /** This process's node id. */
  nodeId: NodeId;
  /** Builds the process's one transport around the store's handlers. */
  transport: (events: StoreTransportEvents) => Transport;
  /**
   * Opens a group's storage (its log view, snapshot files and state machine). With `members`, a
   * group this process holds nothing of is created with them as its voters.
   */
  openStorage: (group: GroupId, members?: readonly GroupMember[]) => Promise<ReplicaStorage>;
  /** Deletes what a removed group kept (its replica closed); without it, removeGroup only closes the replica. */
  removeStorage?: (group: GroupId) => Promise<void>;
  /** The settings of the replica of `group` opened on `storage`. */
  replicaSettings: (group: GroupId, storage: ReplicaStorage) => ReplicaSettings;
  /** Which node hosts member `member` of `group`. Default: member ids are node ids. */
  memberNode?: (group: GroupId, member: NodeId) => NodeId;
  environment: Environment;
  /** The tick of every hosted replica (their ReplicaConfig.tickMs). */
  tickMs: number;
  /** Ticks without word from a node before the quiet groups that depend on it wake (their electionTicks). */
  electionTicks: number;
  /** Whether idle groups may quiesce (default true). */
  quiescence?: boolean;
  logger: Logger;
}

/** What the store counts, for tests and the benchmark. */
export interface StoreStats {
  ticks: number;
  /** Replica ticks handed out (a quiet replica gets none). */
  replicaTicks: number;
  beatsSent: number;
  /** Messages for a group this store does not host. */
  unknownGroupDrops: number;
  /** Quiet groups woken because a node they depend on went silent. */
  livenessWakes: number;
}

/** A peer node: where it listens, and how many hosted members live there (it is dropped at zero). */
interface PeerNode {
  address: string;
  members: number;
  /**
   * This store's ticks since a frame last arrived from it (or since it is known). Counted in ticks,
   * not read off the clock, as raft counts its election timeout: a pause of this process (a long
   * garbage collection, a busy machine) delays its ticks too, and the timer that fires first when
   * the process resumes must not take the frames still waiting in its sockets for silence.
   */
  silentTicks: number;
}

export class Store {
  readonly nodeId: NodeId;
  readonly transport: Transport;
  readonly stats: StoreStats = { ticks: 0, replicaTicks: 0, beatsSent: 0, unknownGroupDrops: 0, livenessWakes: 0 };
  private readonly replicas = new Map<GroupId, Replica>();
  /**
   * The replicas the ticker visits: all but the quiet ones without duties of their own. A replica
   * joins again when anything happens to it (Replica host.onActivity). Visiting only these keeps
   * the idle cost of a store from growing with the groups it hosts (a pass over 30,000 quiet
   * replicas every tick was three quarters of an idle process's busy time).
   */
  private readonly awake = new Set<Replica>();
  /** Per hosted group: its peer members and the node of each. */
  private readonly groupPeers = new Map<GroupId, Map<NodeId, NodeId>>();
  private readonly nodes = new Map<NodeId, PeerNode>();
  /** Heartbeats and heartbeat responses waiting for the next tick's Beat, per node. */
  private pendingBeats = new Map<NodeId, GroupMessage[]>();
  private readonly memberNode: (group: GroupId, member: NodeId) => NodeId;
  private ticker: TimerHandle | undefined;
  private closing: Promise<void> | undefined;
  /** Set when a hosted replica stopped on a failure (see sendBeats). */
  private replicaFailed = false;

  constructor(private readonly options: StoreOptions) {
    assert(options.tickMs > 0 && options.electionTicks > 0, 'store: tickMs and electionTicks must be positive');
    this.nodeId = options.nodeId;
    this.memberNode = options.memberNode ?? ((_group, member) => member);
    this.transport = options.transport({
      onMessage: (m, group, fromNode) => this.onMessage(m, group, fromNode),
      onBeat: (fromNode) => this.heard(fromNode),
      onUnreachable: (node) => this.onUnreachable(node),
      onSnapshotSent: (_node, ok, group, to) => this.replicas.get(group)?.reportSnapshot(to, ok),
      // Only hosted groups have members here: a message for another group is dropped as forged.
      memberNode: (group, member) => (this.replicas.has(group) ? this.memberNode(group, member) : undefined),
    });
  }

  /** The replica of `group`, if this store hosts it. */
  replica(group: GroupId): Replica | undefined {
    return this.replicas.get(group);
  }

  get groups(): GroupId[] {
    return [...this.replicas.keys()];
  }

  /**
   * Opens the replica of `group` from its storage; with `members`, creates the group first if this
   * process holds nothing of it (every member is created with the same list, so they agree on the
   * group's first snapshot). The caller points its peer links at the members (replica.syncPeers())
   * and starts it (replica.start()) when it should take part.
   */
  async openGroup(group: GroupId, members?: readonly GroupMember[]): Promise<Replica> {
    assert(!this.replicas.has(group) && this.closing === undefined, `store: group ${group} is open already, or the store is closing`);
    const storage = await this.options.openStorage(group, members);
    const replica: Replica = new Replica({
      ...this.options.replicaSettings(group, storage),
      storage,
      peers: this.links(group),
      environment: this.options.environment,
      host: { quiescence: this.options.quiescence ?? true, onActivity: () => this.awake.add(replica) },
    });
    this.replicas.set(group, replica);
    this.awake.add(replica);
    void replica.halted.then((halt) => {
      if (!halt.removed) this.replicaFailed = true;
    });
    return replica;
  }

  /**
   * Stops and closes the replica of `group`, forgets the group, and deletes what its storage kept
   * (removeStorage). Only this member's copy goes: the group's other members are removed on their
   * own stores (there is no membership change across groups yet).
   */
  async removeGroup(group: GroupId): Promise<void> {
    const replica = this.replicas.get(group);
    assert(replica !== undefined && this.closing === undefined, `store: group ${group} is not open, or the store is closing`);
    this.replicas.delete(group);
    this.awake.delete(replica);
    // Heartbeats it held for the next Beat would speak for a replica (and a log) no longer here.
    for (const [node, beat] of this.pendingBeats) this.pendingBeats.set(node, beat.filter((m) => m.group !== group));
    for (const node of this.groupPeers.get(group)!.values()) this.releaseNode(node);
    this.groupPeers.delete(group);
    await replica.close();
    await this.options.removeStorage?.(group);
  }

  /** Starts the transport (listening) and the ticker; resolves with the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    const address = await this.transport.start();
    this.ticker = this.options.environment.timers.setInterval(() => this.tick(), this.options.tickMs);
    return address;
  }

  /**
   * Stops the ticker and closes the transport, and touches no storage: what a process does with a
   * replica that failed (a full disk, say), whose storage stays as the failure left it.
   */
  async closeNetwork(): Promise<void> {
    this.options.environment.timers.clear(this.ticker);
    await this.transport.close();
  }

  /** Stops the ticker and every replica, closes the transport, then lets go of every replica's storage. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.options.environment.timers.clear(this.ticker);
      await Promise.all([...this.replicas.values()].map((replica) => replica.stop()));
      await this.transport.close();
      // All at once: their engine flushes join (see LmdbEngine.sync); one by one, each waited for
      // a flush of its own.
      await Promise.all([...this.replicas.values()].map((replica) => replica.close()));
    })());
  }

  // ---- The ticker ---------------------------------------------------------------------------

  private tick(): void {
    this.stats.ticks++;
    this.sendBeats();
    for (const replica of this.awake) {
      if (replica.stopped) {
        this.awake.delete(replica);
        continue;
      }
      if (!replica.started) continue;
      if (replica.quiesced && !replica.needsTicks()) {
        this.awake.delete(replica);
        continue;
      }
      this.stats.replicaTicks++;
      replica.tick();
    }
    this.wakeDependentsOfSilentNodes();
  }

  /**
   * One Beat per peer node per tick, with the heartbeats the groups produced since the last one
   * (a tick's heartbeats leave with the next tick's beat: the cadence stays one per tick), or
   * empty: then it only says this process is alive.
   */
  private sendBeats(): void {
    const pending = this.pendingBeats;
    this.pendingBeats = new Map();
    // A replica that stopped on its own (it failed) cannot lead or answer any more: while the beats
    // went on, the quiet followers of a group it led would never wake to replace it. Falling
    // silent makes every other store wake what depended on this process.
    if (this.replicaFailed) return;
    for (const node of this.nodes.keys()) {
      this.transport.sendBeat(node, pending.get(node) ?? []);
      this.stats.beatsSent++;
    }
  }

  private wakeDependentsOfSilentNodes(): void {
    const silent = new Set<NodeId>();
    for (const [id, node] of this.nodes) if (++node.silentTicks >= this.options.electionTicks) silent.add(id);
    if (silent.size === 0) return;
    for (const [group, replica] of this.replicas) {
      if (!replica.quiesced || !replica.started || replica.stopped) continue;
      const peers = this.groupPeers.get(group)!;
      if (replica.isLeader()) {
        if (![...peers.values()].some((node) => silent.has(node))) continue;
        replica.wake('work');
      } else {
        const leaderNode = replica.leaderId === 0 ? undefined : this.memberNode(group, replica.leaderId);
        if (leaderNode === undefined || !silent.has(leaderNode)) continue;
        replica.wake('leaderSilent');
      }
      this.stats.livenessWakes++;
    }
  }

  // ---- Traffic ------------------------------------------------------------------------------

  private heard(node: NodeId): void {
    const peer = this.nodes.get(node);
    if (peer) peer.silentTicks = 0;
  }

  private onMessage(m: Message, group: GroupId, fromNode: NodeId): void {
    this.heard(fromNode);
    const replica = this.replicas.get(group);
    if (replica === undefined) {
      this.stats.unknownGroupDrops++;
      return;
    }
    replica.receive(m);
  }

  /** A node cannot be reached: every hosted group's raft slows down towards its members there. */
  private onUnreachable(node: NodeId): void {
    for (const [group, peers] of this.groupPeers) {
      const replica = this.replicas.get(group);
      for (const [member, host] of peers) if (host === node) replica?.reportUnreachable(member);
    }
  }

  /** The peer links of one group: its messages go out through the store's one transport. */
  private links(group: GroupId): PeerLinks {
    const peers = new Map<NodeId, NodeId>();
    this.groupPeers.set(group, peers);
    return {
      send: (messages) => this.send(group, messages),
      updatePeer: (member, address) => {
        const node = this.memberNode(group, member);
        if (node === this.nodeId) return;
        const previous = peers.get(member);
        if (previous !== undefined && previous !== node) this.releaseNode(previous);
        if (previous !== node) peers.set(member, node);
        this.holdNode(node, address, previous !== node);
      },
      removePeer: (member) => {
        const node = peers.get(member);
        if (node === undefined) return;
        peers.delete(member);
        this.releaseNode(node);
      },
    };
  }

  /**
   * Plain heartbeats and their responses wait for the next Beat; everything else leaves at once,
   * including the heartbeats of a read round or a leader's handoff (they carry a context), since a
   * client waits on them.
   */
  private send(group: GroupId, messages: Message[]): void {
    const now: Message[] = [];
    for (const m of messages) {
      if ((m.type === 'Heartbeat' || m.type === 'HeartbeatResp') && m.context.length === 0) {
        const node = this.memberNode(group, m.to);
        let beat = this.pendingBeats.get(node);
        if (beat === undefined) this.pendingBeats.set(node, (beat = []));
        beat.push({ group, message: m });
      } else {
        now.push(m);
      }
    }
    if (now.length > 0) this.transport.send(now, group);
  }

  /** One more hosted member lives on `node` (or its address changed): the transport dials it. */
  private holdNode(node: NodeId, address: string, newMember: boolean): void {
    const peer = this.nodes.get(node);
    if (peer === undefined) {
      this.nodes.set(node, { address, members: 1, silentTicks: 0 });
      this.transport.addPeer(node, address);
      return;
    }
    if (newMember) peer.members++;
    if (peer.address !== address) {
      peer.address = address;
      this.transport.updatePeer(node, address);
    }
  }

  private releaseNode(node: NodeId): void {
    const peer = this.nodes.get(node);
    if (peer === undefined || --peer.members > 0) return;
    this.nodes.delete(node);
    this.pendingBeats.delete(node);
    this.transport.removePeer(node);
    this.options.logger.debug('store: no hosted group has a member on this node any more', { node: formatId(node) });
  }
}
