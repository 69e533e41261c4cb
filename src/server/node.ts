// One cluster member in a process: a store (src/store) hosting the replica of the cluster's raft
// group (group 1, src/replica) on this member's data directory, over the store's peer transport,
// and the peer admission by data directory that keeps a member whose data was lost from taking
// part (data-dirs.ts). The member id is the process's node id.
import { firstSnapshot, type Environment, type GroupStorage, type MembershipView, type Replica } from '../replica/index.js';
import { Store } from '../store/index.js';
import { ErrorCode, LichenError } from '../errors.js';
import { isGroupId, metaGroupId, type GroupId } from '../ids.js';
import type { Logger } from '../log.js';
import { Counter, type LichenMetrics } from '../metrics.js';
import type { NodeConfig } from './config.js';
import { Compactor, parseCompactionRetention } from './compactor.js';
import { dataDirIdHex } from './data-dirs.js';
import { formatId } from './ids.js';
import type { TransportFactory } from './peer-transport.js';
import type { NodeState } from './state.js';
import { AlarmType } from '../mvcc/index.js';

/** What a member is built from (see ClusterNode.open). */
export interface ClusterNodeParts {
  state: NodeState;
  config: NodeConfig;
  logger: Logger;
  metrics: LichenMetrics;
  publicAddresses: { client: string; http: string };
  /** Builds the peer transport around the store's and this member's handlers (tcpPeerTransport in a process). */
  createTransport: TransportFactory;
  /** Asks the member at a client address for its view of the membership (see Replica). */
  askMembership: (clientAddress: string) => Promise<MembershipView>;
  /** The clock, timers and randomness (src/server/environment.ts in a process). */
  environment: Environment;
}

export class ClusterNode {
  /** Settles start() of a member that waits for the other initial members (see data-dirs.ts). */
  private confirmation: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private closing: Promise<void> | undefined;
  private readonly state: NodeState;
  private readonly config: NodeConfig;
  private readonly logger: Logger;

  /** Builds the store and opens the cluster group's replica on the member's storage. */
  static async open(parts: ClusterNodeParts): Promise<ClusterNode> {
    const { state, config, logger, metrics, publicAddresses, askMembership, environment } = parts;
    // The transport's handshake events reach the member, which needs the store first: it is told
    // of the member through `member` below, before the transport starts (in start()).
    let member: ClusterNode | undefined;
    /** Every hosted group's storage: a snapshot from a peer is streamed into its group's files. */
    const storages = new Map<GroupId, GroupStorage>([[metaGroupId, state.storage]]);
    // etcd's leader-change and proposal counters are the cluster's (group 1's); the other groups
    // count theirs apart, unexported (no per-group metrics yet). The disk's fsyncs are everyone's.
    const otherGroupsMetrics = {
      walFsyncSeconds: metrics.walFsyncSeconds,
      raftLeaderChangesTotal: new Counter({ name: 'group_leader_changes', help: 'groups other than 1', registers: [] }),
      raftProposalsTotal: new Counter({ name: 'group_proposals', help: 'groups other than 1', labelNames: ['result'], registers: [] }),
    };
    const store = new Store({
      nodeId: state.identity.memberId,
      transport: (events) =>
        parts.createTransport({
          ...events,
          admitPeer: (peer, dataDirId, direction) => member!.admitPeer(peer, dataDirIdHex(dataDirId), direction),
          onSuperseded: (peer) => member!.onSuperseded(peer),
          onMembershipRefused: (peer, _refusal, reason) => member!.onMembershipRefused(peer, reason),
          // The transport asks only for a group the store hosts (it drops messages of any other).
          receiveSnapshot: (m, dataBytes, group) => storages.get(group)!.snapshots.receive(m.snapshot.metadata, dataBytes, m.from),
        }),
      openStorage: async (group, members) => {
        if (group === metaGroupId) return state.storage;
        const storage = await state.disk.replicaStorage(group, members && ((machine) => firstSnapshot(members, machine.export())));
        storages.set(group, storage);
        return storage;
      },
      removeStorage: async (group) => {
        storages.delete(group);
        await state.disk.removeGroup(group);
      },
      replicaSettings: (group) => {
        const settings = {
          memberId: state.identity.memberId,
          clusterId: state.identity.clusterId,
          joined: undefined,
          config,
          logger: group === metaGroupId ? logger : logger.child({ group }),
          metrics: group === metaGroupId ? metrics : otherGroupsMetrics,
          // Only the cluster's group publishes client addresses: no client talks to another group's members yet.
          publicAddresses: { client: '', http: '' },
          askMembership: () => Promise.reject(new LichenError(ErrorCode.FailedPrecondition, `group ${group} has no membership probes`)),
          lostDataRemedy: remedy(state.identity.memberId, config.dataDir),
        };
        if (group !== metaGroupId) {
          // The quota is the member's disk: one NOSPACE alarm for all its groups, in the cluster's.
          const memberNoSpace = {
            raised: () => state.storage.machine.mvcc.alarms(AlarmType.NOSPACE).length > 0,
            raise: () => void member!.replica.propose({ type: 'alarmActivate', memberId: state.identity.memberId, alarm: AlarmType.NOSPACE }).catch(() => undefined),
          };
          return { ...settings, memberNoSpace };
        }
        return {
          ...settings,
          joined: state.identity.joined,
          publicAddresses,
          askMembership,
          onMemberRemoved: (id: number) => {
            state.dataDirs.forget(id);
            void member!.saveDataDirs().catch((error: unknown) => member!.replica.fail(error));
          },
        };
      },
      environment,
      tickMs: config.tickMs,
      electionTicks: config.electionTicks,
      logger,
    });
    const replica = await store.openGroup(metaGroupId);
    // The other groups this process hosts, as its storage holds them.
    for (const group of state.disk.groupIds()) if (group !== metaGroupId) await store.openGroup(group);
    member = new ClusterNode(parts, store, replica);
    return member;
  }

  private constructor(
    parts: ClusterNodeParts,
    private readonly store: Store,
    readonly replica: Replica,
  ) {
    const { state, config, logger, environment } = parts;
    this.state = state;
    this.config = config;
    this.logger = logger;
    const retention = parseCompactionRetention(config.autoCompactionMode, config.autoCompactionRetention);
    if (retention > 0) {
      const compactor = new Compactor({
        mode: config.autoCompactionMode,
        retention,
        now: () => environment.clock.monotonicMs(),
        currentRevision: () => state.storage.machine.mvcc.currentRevision,
        compact: async (revision) => void (await this.replica.propose({ type: 'compact', request: { revision } })),
        log: (level, message, fields) => this.logger[level](message, fields),
      });
      this.replica.everyTick(() => compactor.tick(this.replica.isLeader()));
    }
    // A member that halts on a failure (not a removal) makes the process exit with an error.
    void this.replica.halted.then((halt) => {
      if (!halt.removed) process.exitCode = 1;
    });
  }

  get peerAddress(): string {
    const { address } = this.store.transport;
    return `${address.host}:${address.port}`;
  }

  async start(): Promise<void> {
    // Peers first: the listener accepts only current members, so it must know them when it opens.
    for (const replica of this.hosted()) replica.syncPeers();
    await this.store.start();
    const waitingFor = this.state.dataDirs.waitingFor();
    if (waitingFor.length > 0) {
      this.logger.info('waiting until every other member of the new cluster has recorded this data directory (see the README, "Lost data directories")', {
        waitingFor: waitingFor.map((id) => this.replica.member(id)?.name ?? formatId(id)),
      });
      await new Promise<void>((resolve, reject) => (this.confirmation = { resolve, reject }));
    }
    for (const replica of this.hosted()) replica.start();
    this.logger.info('member started', {
      memberId: formatId(this.replica.memberId),
      clusterId: formatId(this.replica.clusterId),
      peer: this.peerAddress,
      applied: this.replica.appliedIndex,
      members: this.replica.members.map((m) => m.name),
      groups: this.store.groups.length,
    });
  }

  /** The replica of each group this member hosts (group 1, the cluster's, first). */
  private hosted(): Replica[] {
    return this.store.groups.map((group) => this.store.replica(group)!);
  }

  /** The groups this member hosts. */
  get groups(): GroupId[] {
    return this.store.groups;
  }

  /** This member's replica of `group`, if it hosts one. */
  group(group: GroupId): Replica | undefined {
    return this.store.replica(group);
  }

  /**
   * Creates raft group `group` on this member, with the cluster's current voters as its members
   * (or `memberIds` of them), and starts its replica; each of those members creates it likewise.
   * A group this member holds already is opened as it is. There is no placement or client API for
   * groups other than the cluster's yet: tests and benchmarks create them.
   */
  async createGroup(group: GroupId, memberIds?: readonly number[]): Promise<Replica> {
    this.checkGroupId(group);
    if (this.store.replica(group) !== undefined) throw new LichenError(ErrorCode.FailedPrecondition, `group ${group} is hosted here already`);
    const members = this.replica.members
      .filter((m) => (memberIds ? memberIds.includes(m.id) : !m.isLearner))
      .map(({ id, name, peerAddress }) => ({ id, name, peerAddress }));
    if (!members.some((m) => m.id === this.replica.memberId) || (memberIds && members.length !== memberIds.length)) {
      throw new LichenError(ErrorCode.InvalidArgument, `group ${group}: its members must be members of the cluster, this one among them`);
    }
    const replica = await this.store.openGroup(group, members);
    replica.syncPeers();
    if (this.replica.started) replica.start();
    return replica;
  }

  /** Removes this member's replica of `group` and deletes its data (its log records, keys and snapshots). */
  async removeGroup(group: GroupId): Promise<void> {
    this.checkGroupId(group);
    if (this.store.replica(group) === undefined) throw new LichenError(ErrorCode.NotFound, `group ${group} is not hosted here`);
    await this.store.removeGroup(group);
  }

  private checkGroupId(group: GroupId): void {
    if (!isGroupId(group) || group === metaGroupId) {
      throw new LichenError(ErrorCode.InvalidArgument, `group id ${group} must be an integer from 2 to ${0xffff_ffff} (group 1 is the cluster's)`);
    }
  }

  close(): Promise<void> {
    // A member that failed stopped already, and leaves its storage as the failure left it; its
    // listener and ticker go (an embedding process, or a test, goes on running).
    if (this.replica.stopped && !this.closing) return (this.closing = this.store.closeNetwork());
    return (this.closing ??= (async () => {
      if (!this.replica.started) this.confirmation?.reject(new LichenError(ErrorCode.Unavailable, 'server stopped', { etcdError: 'stopped' }));
      await this.store.close();
    })());
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
        name: this.replica.member(peer)?.name,
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
    const replica = this.replica;
    if (replica.removedReason !== undefined) return;
    const who = replica.member(peer)?.name || formatId(peer);
    const error = new LichenError(
      ErrorCode.DataLoss,
      `member ${who} knows member "${this.config.name}" (${formatId(replica.memberId)}) by another data directory than ${this.config.dataDir} ` +
        `(${this.state.identity.dataDirId}): this member's data was lost or replaced, and with it the votes and log entries it had promised, ` +
        `so it must not take part under its old identity. ${remedy(replica.memberId, this.config.dataDir)}`,
    );
    if (this.confirmation && !replica.started) {
      this.logger.error(error.message);
      replica.removedReason = `member failed: ${error.message}`;
      this.confirmation.reject(error);
      return;
    }
    replica.fail(error);
  }

  /**
   * The member at a peer's address refused this one because of membership. While this member waits
   * to take part in a new cluster, enough such refusals mean that the cluster its --initial-cluster
   * describes has replaced its members since: it stops with the remedy (data-dirs.ts says when).
   */
  private onMembershipRefused(peer: number, reason: string): void {
    const { replica } = this;
    const { dataDirs } = this.state;
    if (replica.started || replica.removedReason !== undefined) return;
    dataDirs.refusedBy(peer, reason);
    if (this.confirmation === undefined || !dataDirs.shutOut()) return;
    const refusals = dataDirs.refusals().map(([id, why]) => {
      const member = replica.member(id);
      return `${member?.name || formatId(id)} at ${member?.peerAddress ?? 'its address'}: ${why}`;
    });
    const error = new LichenError(
      ErrorCode.DataLoss,
      `member "${this.config.name}" (${formatId(replica.memberId)}) cannot start: members of its --initial-cluster refused it (${refusals.join('; ')}). ` +
        `Other members of the cluster answer at their addresses now, or this member is not a member there, and they are too many for the rest ` +
        `of that cluster to form a quorum: the cluster has replaced them since, and will never start with this member as it is. Its data ` +
        `directory (${this.config.dataDir}) never took part: if this member was part of the cluster before, its data was lost (the cluster may ` +
        `still list it), or it was removed. ${remedy(replica.memberId, this.config.dataDir)} (Skip the removal if \`lichen member list\` no longer ` +
        `lists ${formatId(replica.memberId)}.)`,
    );
    this.logger.error(error.message);
    replica.removedReason = `member failed: ${error.message}`;
    this.confirmation.reject(error);
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
