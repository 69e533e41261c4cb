// One simulated run: a seed and options in, a verdict out. The run has three phases:
//
// 1. Faults (options.steps time units): clients issue operations while nodes crash and restart,
//    the network drops, duplicates, delays and partitions messages, and membership changes and
//    leadership transfers happen. Safety invariants are checked after every step.
// 2. Liveness: faults stop (network healed, every member up, non-members stopped). A leader must
//    be elected and a fresh write must commit within options.livenessTicksMax raft ticks.
// 3. Drain: clients finish what they have in flight; then the whole client history must pass the
//    linearizability checker (each group's keys on their own).
//
// With several groups per process (`--groups`), the membership driver changes group 1, the
// cluster's, whose members are the processes; the other groups follow it (followProcesses), and a
// member the driver removes leaves them before it leaves group 1 (advanceRemoval). One driver for
// the processes rather than one per group, because a process is what joins, crashes, gets wiped
// and leaves: a group with members on processes that left the cluster would lose its quorum for
// good, and the server has no placement of groups apart from its members yet.
//
// Everything random comes from one Prng seeded with options.seed, and the members' Ready loops run
// only on promises this simulator resolves (see Cluster.settle), so a run is reproducible from its
// seed and options alone; `trace` is a hash of every event, to prove it.

import { checkOperations, kvModel, type KvOperation } from '../check/index.js';
import { ConfChangeType, type NodeId } from '../raft/types.js';
import { majorityOf } from '../raft/progress.js';
import { ClientPool, groupOfKey, writeCommand } from './clients.js';
import { Cluster, groupTag, type StartOutcome } from './cluster.js';
import { metaGroupId, type GroupId } from '../ids.js';
import type { Replica } from '../replica/index.js';
import { SafetyViolation, type ViolationKind } from './invariants.js';
import { Network } from './network.js';
import type { SimOptions } from './options.js';
import { Prng } from '../random.js';

export interface SimResult {
  seed: number;
  ok: boolean;
  violation?: { kind: ViolationKind; message: string; time: number };
  /** Time units simulated (all phases). */
  steps: number;
  /** Operations in the checked history, and how many of them have an unknown outcome. */
  ops: number;
  unknownOps: number;
  /** Raft ticks from the end of faults until a leader committed a fresh write. */
  livenessTicks: number | undefined;
  check: 'ok' | 'illegal' | 'unknown' | 'skipped';
  faults: {
    crashes: number;
    readyCrashes: number;
    partitions: number;
    membershipProposed: number;
    membershipApplied: number;
    /** Members whose disk was wiped, and how many of those (or of their restarts) were refused. */
    wipes: number;
    wipesRefused: number;
    transfers: number;
    /** Membership probes members sent (no leader for a while), and members that learned their removal from one. */
    membershipProbes: number;
    removedByProbe: number;
    /** Times a leader's group went quiet (with --store: an idle group quiesces). */
    quiescences: number;
    /** With several groups per process: groups a running process opened as a new member, and groups removed from one. */
    groupJoins: number;
    groupLeaves: number;
    snapshotsMade: number;
    snapshotsInstalled: number;
    messagesSent: number;
    messagesDropped: number;
    messagesDuplicated: number;
  };
  /**
   * Wiped members that were never refused, and why that is sound: removed (their removal was
   * already under way, or they waited in vain for their peers) before any peer saw them again, or
   * let in because no peer had ever recorded their data directory, so they had promised nothing
   * (checked: a 'wiped-member-accepted' violation otherwise).
   */
  wipesUnrefused: { removedFirst: number; acceptedUnknown: number };
  /** Hash of every event of the run: equal seeds and options give equal traces. */
  trace: string;
}

/** What `member add` records of a new member. */
function memberInfo(id: NodeId): { name: string; peerAddress: string } {
  return { name: `n${id}`, peerAddress: `node-${id}:2380` };
}

/** Raft ticks a restarted wiped member may wait for its peers before the operator gives up on it. */
const WIPED_WAIT_TICKS_MAX = 100;

/**
 * How many times slower the clock of a leader cut off with followers runs: its heartbeats (one per
 * tick of its own) still reach them well within their election timeout, while its CheckQuorum
 * takes this many times longer to depose it.
 */
const CUT_OFF_CLOCK_SLOWDOWN = 5;

/** Drain phase limit: time units to let in-flight client operations finish. */
const DRAIN_STEPS_MAX = 3000;

/**
 * Runs one seed. `trace`, when given, receives one line per event (`--trace`), and a status line
 * per node every tick of the liveness phase (for debugging a replayed seed).
 */
export function runSimulation(options: SimOptions, trace?: (line: string) => void): Promise<SimResult> {
  return new Simulation(options, trace).run();
}

/**
 * Runs `each` over `items` in order, waiting only where one returns a promise: without a store
 * nothing waits, and the whole run stays synchronous where it was.
 */
function inOrder<T>(items: readonly T[], each: (item: T) => Promise<void> | undefined): Promise<void> | undefined {
  for (let i = 0; i < items.length; i++) {
    const pending = each(items[i]!);
    if (pending !== undefined) return pending.then(() => inOrder(items.slice(i + 1), each));
  }
  return undefined;
}

class Simulation {
  private readonly random: Prng;
  private readonly cluster: Cluster;
  private readonly clients: ClientPool;
  private readonly network: Network;
  private readonly rates: { crash: number; partition: number; membership: number; transfer: number; newLeader: number; wipe: number };
  private now = 0;
  private restartAt = new Map<NodeId, number>();
  private healAt: number | undefined;
  private counts = { partitions: 0, membershipProposed: 0, transfers: 0 };
  private readonly wipesUnrefused = { removedFirst: 0, acceptedUnknown: 0 };
  private readonly allIds: NodeId[];
  private readonly initialVoters: NodeId[];
  /**
   * A voter or learner the membership driver removes while the process hosts several groups: it
   * leaves every other group first and group 1 (which stops its process) last, as an operator drains
   * a machine before taking it out of the cluster.
   */
  private removal: { id: NodeId; removalProposedAt: number } | undefined;
  /** Per group other than 1: when a change that makes it follow the processes was last proposed. */
  private readonly followProposedAt = new Map<GroupId, number>();
  /**
   * Wiped members on their way out, as an operator follows the documented remedy: once refused
   * (or still waiting for peers long after its restart), the member is removed; then a new member
   * with a new id takes its place (the membership driver adds it later).
   */
  private readonly wiped = new Map<NodeId, { restartedAt: number; removalProposedAt: number }>();

  constructor(
    private readonly options: SimOptions,
    trace?: (line: string) => void,
  ) {
    this.random = new Prng(options.seed);
    const r = this.random;
    const faults = options.faults;
    // Each seed draws its own fault mix, so a campaign covers calm and stormy runs alike.
    const draw = (max: number) => (faults ? r.float() * max : 0);
    this.rates = {
      crash: draw(options.crashRateMax),
      partition: draw(options.partitionRateMax),
      membership: draw(options.membershipRateMax),
      transfer: draw(options.transferRateMax),
      newLeader: draw(options.newLeaderFaultRateMax),
      wipe: draw(options.wipeRateMax),
    };
    const tick = options.tickSteps;
    this.network = new Network(r.fork(), {
      dropRate: draw(options.dropRateMax),
      duplicateRate: draw(options.duplicateRateMax),
      delayMin: 1,
      delayMax: Math.max(1, Math.round(tick * (0.5 + r.float()))),
      slowRate: faults ? r.float() * 0.05 : 0,
      slowDelayMax: tick * 10,
    });
    this.allIds = Array.from({ length: options.nodes + options.spareNodes }, (_, i) => i + 1);
    const initialVoters = this.allIds.slice(0, options.nodes);
    this.cluster = new Cluster(
      {
        tickSteps: tick,
        electionTicks: options.electionTicks,
        heartbeatTicks: options.heartbeatTicks,
        preVote: r.chance(0.5),
        checkQuorum: r.chance(0.5),
        // From the seed, not the PRNG, so that every recorded seed replays the run it recorded.
        lazyCommitBroadcast: options.seed % 2 === 0,
        snapshotEvery: options.snapshotEvery,
        compactKeep: options.compactKeep,
        msgBytesMax: options.msgBytesMax,
        syncStepsMax: Math.max(1, options.syncStepsMax),
        requestTimeoutSteps: tick * 30,
        variant: options.variant,
        store: options.store,
        groups: options.groups,
      },
      this.network,
      r.fork(),
      this.allIds,
      initialVoters,
      trace,
    );
    this.cluster.readyCrashRate = draw(options.readyCrashRateMax);
    this.clients = new ClientPool(this.cluster, r.fork(), options.clients, options.keys, {
      startRate: 0.05,
      attemptTimeoutSteps: tick * 30,
      operationTimeoutSteps: tick * 150,
      refusalBackoffSteps: tick * 2,
    });
    this.initialVoters = initialVoters;
  }

  async run(): Promise<SimResult> {
    let violation: SimResult['violation'];
    let livenessTicks: number | undefined;
    let check: SimResult['check'] = 'skipped';
    try {
      // An await of nothing would still let other microtasks run first: await only a promise.
      const starting = inOrder(this.initialVoters, (id) => this.start(id));
      if (starting !== undefined) await starting;
      for (let i = 0; i < this.options.steps; i++) await this.step(true);
      const calming = this.calmDown();
      if (calming !== undefined) await calming;
      livenessTicks = await this.awaitLiveness();
      await this.drain();
      check = this.checkHistory();
    } catch (error) {
      if (!(error instanceof SafetyViolation)) throw error;
      violation = { kind: error.kind, message: error.message, time: this.now };
    }
    const stats = this.cluster.stats;
    const history = this.clients.history;
    return {
      seed: this.options.seed,
      ok: violation === undefined,
      ...(violation ? { violation } : {}),
      steps: this.now,
      ops: history.length,
      unknownOps: history.filter((o) => o.return === Infinity).length,
      livenessTicks,
      check,
      faults: {
        crashes: stats.crashes,
        readyCrashes: stats.readyCrashes,
        partitions: this.counts.partitions,
        membershipProposed: this.counts.membershipProposed,
        membershipApplied: this.cluster.confChangesApplied,
        transfers: this.counts.transfers,
        membershipProbes: stats.probes,
        removedByProbe: stats.removedByProbe,
        quiescences: stats.quiescences,
        groupJoins: stats.groupJoins,
        groupLeaves: stats.groupLeaves,
        snapshotsMade: stats.snapshotsMade,
        snapshotsInstalled: stats.snapshotsInstalled,
        wipes: stats.wipes,
        wipesRefused: stats.refusals,
        messagesSent: this.network.sent,
        messagesDropped: this.network.dropped,
        messagesDuplicated: this.network.duplicated,
      },
      wipesUnrefused: { ...this.wipesUnrefused },
      trace: this.cluster.trace.digest(),
    };
  }

  /** One time unit. `faulty` enables fault injection and new client operations. */
  private async step(faulty: boolean): Promise<void> {
    this.cluster.now = this.now;
    if (faulty) this.injectFaults();
    const restarting = this.restartDueNodes();
    if (restarting !== undefined) await restarting;
    const hosting = this.cluster.hostGroups();
    if (hosting !== undefined) await hosting;
    this.followRemedy();
    this.cluster.deliver();
    this.cluster.advanceClocks();
    this.clients.step(this.now, faulty);
    if (faulty) {
      this.changeMembership();
      this.advanceRemoval();
      this.followProcesses();
    }
    await this.cluster.settle();
    this.cluster.stopRemoved();
    const leaders = this.cluster.checkLeaders();
    if (faulty) {
      // The other groups' new leaders strike at a share of the rate: a crash of a process that led
      // every group elects as many new leaders, and each strike would beget more.
      const rate = (group: GroupId) => (group === metaGroupId ? this.rates.newLeader : this.rates.newLeader / this.options.groups);
      for (const { id, group } of leaders.elected) this.maybeStrikeLeader(id, rate(group));
      // Commits are frequent, so each one is a smaller chance.
      for (const { id, group } of leaders.committed) this.maybeStrikeLeader(id, rate(group) / 10);
    }
    this.now++;
  }

  /**
   * Isolates or crashes a leader just elected or just committing, before what it sends next
   * arrives anywhere (a partition also eats messages already in flight).
   */
  private maybeStrikeLeader(id: NodeId, rate: number): void {
    const r = this.random;
    if (!r.chance(rate)) return;
    const tick = this.options.tickSteps;
    if (r.chance(0.5)) {
      this.network.partition([[id]]);
      this.setCutOff(undefined);
      this.healAt = this.now + r.between(3, 40) * tick;
      this.counts.partitions++;
      this.cluster.trace.event(`isolate${id}@${this.now};`);
    } else {
      this.cluster.crash(id);
      this.restartAt.set(id, this.now + r.between(3, 40) * tick);
    }
  }

  private injectFaults(): void {
    const r = this.random;
    if (r.chance(this.rates.crash)) {
      const running = this.cluster.running();
      if (running.length > 0) {
        // Leaders crash more often than their share: leader changes with entries in flight are
        // where commit and election rules matter most.
        const leader = this.cluster.leader();
        const victim = leader !== undefined && r.chance(0.5) ? leader.id : r.pick(running).id;
        this.cluster.crash(victim);
        this.restartAt.set(victim, this.now + r.between(5, 100) * this.options.tickSteps / 2);
      }
    }
    if (this.healAt !== undefined && this.now >= this.healAt) {
      this.network.heal();
      this.setCutOff(undefined);
      this.healAt = undefined;
      this.cluster.trace.event(`heal@${this.now};`);
    } else if (this.healAt === undefined && r.chance(this.rates.partition)) {
      this.partition();
    }
    if (r.chance(this.rates.transfer)) this.transferLeadership();
    if (r.chance(this.rates.wipe)) this.wipe();
  }

  /**
   * Wipes the disk of one running member, which restarts later on an empty disk. One at a time: a
   * wiped member stays down until it is replaced, and two at once could leave no quorum to do that.
   */
  private wipe(): void {
    if (this.wiped.size > 0 || !this.membershipSettled()) return;
    // A voter only when the others still form a quorum without it (else nobody could remove it:
    // a real cluster that loses a quorum's disks needs its data restored, which is not this fault).
    const { voters, learners } = this.cluster.committedConf;
    const eligible = new Set([...learners, ...(voters.length >= 3 ? voters : [])]);
    const candidates = this.cluster.running().filter((n) => n.live!.replica.started && eligible.has(n.id));
    if (candidates.length === 0) return;
    const victim = this.random.pick(candidates).id;
    this.cluster.wipe(victim);
    this.restartAt.set(victim, this.now + this.random.between(5, 100) * this.options.tickSteps / 2);
    this.wiped.set(victim, { restartedAt: Infinity, removalProposedAt: -Infinity });
  }

  /**
   * Whether every member runs and has applied the committed membership. A wipe right after a
   * change would take a second member from the old configuration, whose quorum is still needed
   * until everyone knows the change committed (the removed member may already have stopped).
   */
  private membershipSettled(): boolean {
    if (!this.groupsFollow()) return false;
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((id) => b.includes(id));
    return this.cluster.groupIds.every((group) => {
      const { voters, learners } = this.cluster.committedConfOf(group);
      return [...voters, ...learners].every((id) => {
        const replica = this.cluster.replicaOf(id, group);
        if (replica === undefined || !replica.started) return false;
        const conf = replica.raftStatus().conf;
        return same(conf.voters, voters) && same(conf.learners, learners);
      });
    });
  }

  /**
   * Whether every group follows the cluster's processes: no removal under way, and each group's
   * committed membership has group 1's members, its voters among them as voters (a joiner may
   * promote itself in one group before the other).
   */
  private groupsFollow(): boolean {
    if (this.removal !== undefined) return false;
    const { voters, learners } = this.cluster.committedConf;
    return this.cluster.groupIds.every((group) => {
      const conf = this.cluster.committedConfOf(group);
      const members = [...conf.voters, ...conf.learners];
      return members.length === voters.length + learners.length && learners.every((id) => members.includes(id)) && voters.every((id) => conf.voters.includes(id));
    });
  }

  /**
   * The replica to propose the removal of `id` to, if one is due: the leader of the last group that
   * still has it, so that group 1 (whose removal stops the member's process) goes last; none while
   * that group has no leader or within an election timeout of the last proposal.
   */
  private removalTarget(id: NodeId, state: { removalProposedAt: number }): Replica | undefined {
    let group = metaGroupId;
    for (const g of this.cluster.groupIds) if (this.cluster.isMember(id, g)) group = g;
    const leader = this.cluster.leader(group);
    if (leader === undefined || this.now - state.removalProposedAt < this.options.electionTicks * this.options.tickSteps) return undefined;
    state.removalProposedAt = this.now;
    return this.cluster.replicaOf(leader.id, group);
  }

  /** Carries a removal the driver decided on through every group (see removal). */
  private advanceRemoval(): void {
    const removal = this.removal;
    if (removal === undefined) return;
    if (this.cluster.groupIds.every((group) => !this.cluster.isMember(removal.id, group))) {
      this.removal = undefined;
      return;
    }
    this.removalTarget(removal.id, removal)
      ?.proposeConfChange(ConfChangeType.RemoveNode, removal.id)
      .catch(() => undefined);
  }

  /**
   * The groups other than 1 follow the cluster's processes, one change at a time each, as an
   * operator would place them: a new member of group 1 is added to each as a learner (its process
   * then opens the group, Cluster.hostGroups), a voter of group 1 is promoted, and a member group 1
   * no longer has is removed. Removals the driver or the wipe remedy decide on go their own way
   * (removalTarget: every other group before group 1).
   */
  private followProcesses(): void {
    const { voters, learners } = this.cluster.committedConf;
    const leaving = new Set([...this.wiped.keys(), ...(this.removal === undefined ? [] : [this.removal.id])]);
    for (const group of this.cluster.groupIds) {
      if (group === metaGroupId) continue;
      const conf = this.cluster.committedConfOf(group);
      const members = [...conf.voters, ...conf.learners];
      let change: { type: ConfChangeType; nodeId: NodeId } | undefined;
      const stale = members.find((id) => !this.cluster.isMember(id) && !leaving.has(id));
      const missing = [...voters, ...learners].find((id) => !members.includes(id) && !leaving.has(id));
      const unpromoted = voters.find((id) => conf.learners.includes(id) && !leaving.has(id));
      if (stale !== undefined) change = { type: ConfChangeType.RemoveNode, nodeId: stale };
      else if (missing !== undefined) change = { type: ConfChangeType.AddLearner, nodeId: missing };
      else if (unpromoted !== undefined) change = { type: ConfChangeType.AddNode, nodeId: unpromoted };
      if (change === undefined) continue;
      const leader = this.cluster.leader(group);
      const last = this.followProposedAt.get(group) ?? -Infinity;
      if (leader === undefined || this.now - last < this.options.electionTicks * this.options.tickSteps) continue;
      this.followProposedAt.set(group, this.now);
      this.counts.membershipProposed++;
      this.cluster.trace.event(`cc${change.type}:${change.nodeId}${groupTag(group)}@${this.now};`);
      const member = change.type === ConfChangeType.AddLearner ? memberInfo(change.nodeId) : undefined;
      this.cluster.replicaOf(leader.id, group)!.proposeConfChange(change.type, change.nodeId, member).catch(() => undefined);
    }
  }

  /** The operator's remedy for a wiped member: remove it once it is refused, then replace it. */
  private followRemedy(): void {
    const tick = this.options.tickSteps;
    for (const [id, state] of this.wiped) {
      const node = this.cluster.node(id);
      if (!this.cluster.isMember(id)) {
        if (!node.superseded) this.wipesUnrefused.removedFirst++;
        this.wiped.delete(id);
        this.cluster.crash(id);
        this.cluster.trace.event(`retired${id}@${this.now};`);
        continue;
      }
      // Taking part again means its peers accepted it: it never talked to them before the wipe (or,
      // in the unchecked-wipes variant, nobody checks).
      // A joiner runs raft at once, but talks only over connections its peers admitted.
      if (node.live?.replica.started === true && node.live.links.size > 0) {
        const knew = node.wipedKnownBy.filter((peer) => node.live!.links.has(peer));
        if (this.options.variant !== 'unchecked-wipes' && knew.length > 0) {
          throw new SafetyViolation(
            'wiped-member-accepted',
            `node ${id} talks to node(s) ${knew.join(', ')} on a wiped disk although they had recorded its data directory`,
          );
        }
        this.wipesUnrefused.acceptedUnknown++;
        this.wiped.delete(id);
        continue;
      }
      // A member that never hears back from the peers it waits for is as good as refused.
      const waitedTooLong = node.live !== undefined && !node.live.replica.started && this.now - state.restartedAt > WIPED_WAIT_TICKS_MAX * tick;
      if (!node.superseded && !waitedTooLong) continue;
      const replica = this.removalTarget(id, state);
      if (replica === undefined) continue;
      this.cluster.trace.event(`remove-wiped${id}@${this.now};`);
      replica.proposeConfChange(ConfChangeType.RemoveNode, id).catch(() => undefined);
    }
  }

  private partition(): void {
    const r = this.random;
    const ids = this.allIds;
    const leader = this.cluster.leader()?.id;
    let isolated: NodeId[];
    const mode = r.int(3);
    const cutOff = mode === 0 && leader !== undefined;
    if (cutOff) isolated = this.leaderSide(leader);
    else if (mode === 1) isolated = [r.pick(ids)];
    else isolated = ids.filter(() => r.chance(0.5));
    this.network.partition([isolated]);
    this.setCutOff(cutOff && isolated.length > 1 ? { leader: isolated[0]!, side: isolated } : undefined);
    this.healAt = this.now + r.between(10, 100) * this.options.tickSteps;
    this.counts.partitions++;
    this.cluster.trace.event(`part${isolated.join(',')}${this.clients.cutOff === undefined ? '' : ':cut-off'}@${this.now};`);
  }

  /**
   * The leader and as many other voters as can be cut off while the rest still form a quorum: the
   * leader alone with three voters, the leader and one follower with five. The follower keeps the
   * cut-off leader as its leader and asks it for reads, while the majority elects another leader
   * and acknowledges writes the old one never sees: whether a read through that follower can still
   * come back stale is what the leader's answer to its ReadIndex decides (raft's
   * vouchesForLeadership).
   */
  private leaderSide(leader: NodeId): NodeId[] {
    const { voters } = this.cluster.committedConf;
    const others = voters.filter((id) => id !== leader);
    const quorum = majorityOf(voters.length);
    const side = [leader];
    while (voters.length - (side.length + 1) >= quorum) side.push(others.splice(this.random.int(others.length), 1)[0]!);
    return side;
  }

  /**
   * A leader cut off with followers (or none: the partition healed or changed). Meanwhile clients
   * read through those followers and write on the majority's side, as clients spread over the
   * members would: the reads that must not come back stale. And the leader's clock runs slow, so
   * that CheckQuorum does not depose it about when the majority elects another leader, which would
   * leave almost no time for a stale read.
   */
  private setCutOff(cutOff: { leader: NodeId; side: NodeId[] } | undefined): void {
    this.clients.cutOff = cutOff;
    this.cluster.slowClock = cutOff && { id: cutOff.leader, factor: CUT_OFF_CLOCK_SLOWDOWN };
  }

  /**
   * Starts a node, then runs `then` with the outcome. A start with a store waits for the store to
   * open; one without is synchronous, and then nothing here awaits, which keeps the microtasks of
   * the runs every recorded seed replays in their order.
   */
  private start(id: NodeId, then: (outcome: StartOutcome) => void = () => {}): Promise<void> | undefined {
    const started = this.cluster.start(id);
    if (typeof started !== 'string') return started.then(then);
    then(started);
    return undefined;
  }

  /** Crashed nodes come back after their downtime (removed and refused nodes stay down). */
  private restartDueNodes(): Promise<void> | undefined {
    const due = [...this.restartAt].filter(([, at]) => this.now >= at).map(([id]) => id);
    return inOrder(due, (id) => {
      this.restartAt.delete(id);
      const node = this.cluster.node(id);
      if (node.removed || node.superseded) return undefined;
      return this.start(id, (outcome) => {
        if (outcome === 'deferred') this.restartAt.set(id, this.now + this.options.tickSteps);
        const wiped = this.wiped.get(id);
        if (wiped !== undefined && node.live !== undefined) wiped.restartedAt = this.now;
      });
    });
  }

  private transferLeadership(): void {
    const group = this.options.groups > 1 ? this.random.pick(this.cluster.groupIds) : metaGroupId;
    const leader = this.cluster.leader(group);
    if (leader === undefined) return;
    const others = this.cluster.committedConfOf(group).voters.filter((id) => id !== leader.id);
    if (others.length === 0) return;
    const to = this.random.pick(others);
    this.counts.transfers++;
    this.cluster.trace.event(`transfer${leader.id}>${to}${groupTag(group)}@${this.now};`);
    this.cluster.replicaOf(leader.id, group)!.transferLeadership(to).catch(() => undefined);
  }

  /**
   * Proposes one membership change on the leader, as an operator would: add a new member (a fresh
   * id: a removed id never rejoins) as a learner, which starts once its addition committed and
   * promotes itself once it caught up; promote a learner by hand; or remove a learner or a voter.
   */
  private changeMembership(): void {
    const r = this.random;
    if (!r.chance(this.rates.membership)) return;
    // An operator replacing a wiped member makes no other membership change meanwhile, nor one
    // while the groups have not caught up with the last.
    if (this.wiped.size > 0 || !this.groupsFollow()) return;
    const leader = this.cluster.leader();
    if (leader === undefined) return;
    const replica = leader.live!.replica;
    const conf = replica.raftStatus().conf;
    const memberCount = conf.voters.length + conf.learners.length;
    const minVoters = Math.min(3, this.options.nodes);
    const choices: Array<{ type: ConfChangeType; nodeId: NodeId }> = [];
    if (memberCount < this.options.nodes + this.options.spareNodes) choices.push({ type: ConfChangeType.AddLearner, nodeId: Math.max(...this.allIds) + 1 });
    for (const id of conf.learners) {
      choices.push({ type: ConfChangeType.AddNode, nodeId: id });
      choices.push({ type: ConfChangeType.RemoveNode, nodeId: id });
    }
    if (conf.voters.length > minVoters) {
      for (const id of conf.voters) choices.push({ type: ConfChangeType.RemoveNode, nodeId: id });
    }
    if (choices.length === 0) return;
    const change = r.pick(choices);
    let member: { name: string; peerAddress: string } | undefined;
    if (change.type === ConfChangeType.AddLearner) {
      this.allIds.push(change.nodeId);
      this.cluster.addNode(change.nodeId).joined = true;
      member = memberInfo(change.nodeId);
      // It starts once its addition committed (start() defers it until then), as `lichen serve --join` after `member add`.
      this.restartAt.set(change.nodeId, this.now + 1);
    }
    this.counts.membershipProposed++;
    this.cluster.trace.event(`cc${change.type}:${change.nodeId}@${this.now};`);
    if (change.type === ConfChangeType.RemoveNode && this.options.groups > 1) {
      // advanceRemoval() proposes it, group by group.
      this.removal = { id: change.nodeId, removalProposedAt: -Infinity };
      return;
    }
    replica.proposeConfChange(change.type, change.nodeId, member).catch(() => undefined);
  }

  /**
   * Ends all faults: heal the network, bring every member up (also one whose addition is not
   * committed yet: raft counts it already), stop every other process.
   */
  private calmDown(): Promise<void> | undefined {
    this.network.heal();
    this.setCutOff(undefined);
    this.healAt = undefined;
    this.network.faults = { ...this.network.faults, dropRate: 0, duplicateRate: 0, slowRate: 0 };
    this.cluster.readyCrashRate = 0;
    this.restartAt.clear();
    const calm = () => this.cluster.trace.event(`calm@${this.now};`);
    const starting = inOrder(this.allIds, (id) => {
      const node = this.cluster.node(id);
      if ((this.cluster.isMember(id) || this.cluster.isAddedUncommitted(id)) && !node.superseded) {
        return this.start(id, () => {
          const wiped = this.wiped.get(id);
          if (wiped !== undefined && node.live !== undefined && wiped.restartedAt === Infinity) wiped.restartedAt = this.now;
        });
      }
      if (node.live !== undefined) this.cluster.crash(id);
      return undefined;
    });
    if (starting === undefined) return void calm();
    return starting.then(calm);
  }

  /** Runs until a leader of every group commits a fresh write; returns the raft ticks the slowest took. */
  private async awaitLiveness(): Promise<number> {
    const start = this.now;
    const deadline = start + this.options.livenessTicksMax * this.options.tickSteps;
    const probes = this.cluster.groupIds.map((group) => ({
      group,
      key: group === metaGroupId ? '__liveness' : `__liveness/${group}`,
      target: undefined as NodeId | undefined,
      proposedAt: -Infinity,
      doneAt: undefined as number | undefined,
    }));
    for (let waiting = probes; waiting.length > 0; waiting = probes.filter((p) => p.doneAt === undefined)) {
      if (this.now > deadline) {
        const { group } = waiting[0]!;
        const leader = this.cluster.leader(group);
        const where = this.options.groups > 1 ? ` in group ${group}` : '';
        throw new SafetyViolation(
          'liveness',
          `no write committed${where} within ${this.options.livenessTicksMax} ticks after faults stopped (leader: ${leader?.id ?? 'none'})`,
        );
      }
      for (const probe of waiting) {
        const leader = this.cluster.leader(probe.group);
        const retryDue = this.now - probe.proposedAt > this.options.tickSteps * this.options.electionTicks;
        const replica = leader === undefined ? undefined : this.cluster.serving(leader.id, probe.group);
        if (leader !== undefined && replica !== undefined && (leader.id !== probe.target || retryDue)) {
          probe.target = leader.id;
          probe.proposedAt = this.now;
          replica.propose(writeCommand({ kind: 'put', key: probe.key, value: 'probe' })).then(
            () => (probe.doneAt ??= this.now),
            () => undefined,
          );
        }
      }
      if (this.cluster.trace.enabled && this.now % this.options.tickSteps === 0) this.logStatus();
      await this.step(false);
    }
    for (const probe of probes) {
      this.history().push({ clientId: 0, input: { kind: 'put', key: probe.key, value: 'probe' }, call: start, output: {}, return: probe.doneAt! });
    }
    return Math.max(...probes.map((probe) => Math.ceil((probe.doneAt! - start) / this.options.tickSteps)));
  }

  private logStatus(): void {
    const parts = this.cluster.running().flatMap((node) =>
      [...node.live!.groups.values()].map(({ group, replica }) => {
        const s = replica.raftStatus();
        const conf = `${s.conf.voters.join(',')}/${s.conf.learners.join(',')}`;
        return `${node.id}${groupTag(group)}:${s.role} t${s.term} lead=${s.lead} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} conf=${conf}`;
      }),
    );
    this.cluster.trace.note(parts.join(' | '));
  }

  private history(): KvOperation[] {
    return this.clients.history;
  }

  private async drain(): Promise<void> {
    for (let i = 0; i < DRAIN_STEPS_MAX && !this.clients.idle(); i++) await this.step(false);
    this.clients.abandonAll();
  }

  /** Checks each group's history on its own (its keys are its own); 'unknown' when any check ran out of steps. */
  private checkHistory(): SimResult['check'] {
    let verdict: SimResult['check'] = 'ok';
    for (const group of this.cluster.groupIds) {
      const history = this.history().filter((operation) => groupOfKey(operation.input.key, this.options.groups) === group);
      const result = checkOperations(kvModel, history, { searchStepsMax: this.options.checkStepsMax });
      if (result.result === 'illegal') {
        const where = this.options.groups > 1 ? ` in group ${group}` : '';
        throw new SafetyViolation('linearizability', `history${where} not linearizable:\n${result.failure!.text}`);
      }
      if (result.result === 'unknown') verdict = 'unknown';
    }
    return verdict;
  }
}
