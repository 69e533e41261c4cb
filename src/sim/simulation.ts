// One simulated run: a seed and options in, a verdict out. The run has three phases:
//
// 1. Faults (options.steps time units): clients issue operations while nodes crash and restart,
//    the network drops, duplicates, delays and partitions messages, and membership changes and
//    leadership transfers happen. Safety invariants are checked after every step.
// 2. Liveness: faults stop (network healed, every member up, non-members stopped). A leader must
//    be elected and a fresh write must commit within options.livenessTicksMax raft ticks.
// 3. Drain: clients finish what they have in flight; then the whole client history must pass the
//    linearizability checker.
//
// Everything random comes from one Prng seeded with options.seed, and the members' Ready loops run
// only on promises this simulator resolves (see Cluster.settle), so a run is reproducible from its
// seed and options alone; `trace` is a hash of every event, to prove it.

import { checkOperations, kvModel, type KvOperation } from '../check/index.js';
import { ConfChangeType, type NodeId } from '../raft/types.js';
import { ClientPool, writeCommand } from './clients.js';
import { Cluster, type StartOutcome } from './cluster.js';
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

/** Raft ticks a restarted wiped member may wait for its peers before the operator gives up on it. */
const WIPED_WAIT_TICKS_MAX = 100;

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
  private probe: { call: number; target: NodeId | undefined; proposedAt: number; doneAt: number | undefined } | undefined;
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
    this.followRemedy();
    this.cluster.deliver();
    this.cluster.advanceClocks();
    this.clients.step(this.now, faulty);
    if (faulty) this.changeMembership();
    await this.cluster.settle();
    this.cluster.stopRemoved();
    const leaders = this.cluster.checkLeaders();
    if (faulty) {
      for (const id of leaders.elected) this.maybeStrikeLeader(id, this.rates.newLeader);
      // Commits are frequent, so each one is a smaller chance.
      for (const id of leaders.committed) this.maybeStrikeLeader(id, this.rates.newLeader / 10);
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
    const { voters, learners } = this.cluster.committedConf;
    const members = [...voters, ...learners];
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((id) => b.includes(id));
    return members.every((id) => {
      const replica = this.cluster.node(id).live?.replica;
      if (replica === undefined || !replica.started) return false;
      const conf = replica.raftStatus().conf;
      return same(conf.voters, voters) && same(conf.learners, learners);
    });
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
      const leader = this.cluster.leader();
      if (leader === undefined || this.now - state.removalProposedAt < this.options.electionTicks * tick) continue;
      state.removalProposedAt = this.now;
      this.cluster.trace.event(`remove-wiped${id}@${this.now};`);
      leader.live!.replica.proposeConfChange(ConfChangeType.RemoveNode, id).catch(() => undefined);
    }
  }

  private partition(): void {
    const r = this.random;
    const ids = this.allIds;
    const leader = this.cluster.leader()?.id;
    let isolated: NodeId[];
    const mode = r.int(3);
    if (mode === 0 && leader !== undefined) isolated = [leader];
    else if (mode === 1) isolated = [r.pick(ids)];
    else isolated = ids.filter(() => r.chance(0.5));
    this.network.partition([isolated]);
    this.healAt = this.now + r.between(10, 100) * this.options.tickSteps;
    this.counts.partitions++;
    this.cluster.trace.event(`part${isolated.join(',')}@${this.now};`);
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
    const leader = this.cluster.leader();
    if (leader === undefined) return;
    const others = this.cluster.committedConf.voters.filter((id) => id !== leader.id);
    if (others.length === 0) return;
    const to = this.random.pick(others);
    this.counts.transfers++;
    this.cluster.trace.event(`transfer${leader.id}>${to}@${this.now};`);
    leader.live!.replica.transferLeadership(to).catch(() => undefined);
  }

  /**
   * Proposes one membership change on the leader, as an operator would: add a new member (a fresh
   * id: a removed id never rejoins) as a learner, which starts once its addition committed and
   * promotes itself once it caught up; promote a learner by hand; or remove a learner or a voter.
   */
  private changeMembership(): void {
    const r = this.random;
    if (!r.chance(this.rates.membership)) return;
    // An operator replacing a wiped member makes no other membership change meanwhile.
    if (this.wiped.size > 0) return;
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
      member = { name: `n${change.nodeId}`, peerAddress: `node-${change.nodeId}:2380` };
      // It starts once its addition committed (start() defers it until then), as `lichen serve --join` after `member add`.
      this.restartAt.set(change.nodeId, this.now + 1);
    }
    this.counts.membershipProposed++;
    this.cluster.trace.event(`cc${change.type}:${change.nodeId}@${this.now};`);
    replica.proposeConfChange(change.type, change.nodeId, member).catch(() => undefined);
  }

  /** Ends all faults: heal the network, bring every member up, stop every non-member. */
  private calmDown(): Promise<void> | undefined {
    this.network.heal();
    this.healAt = undefined;
    this.network.faults = { ...this.network.faults, dropRate: 0, duplicateRate: 0, slowRate: 0 };
    this.cluster.readyCrashRate = 0;
    this.restartAt.clear();
    const calm = () => this.cluster.trace.event(`calm@${this.now};`);
    const starting = inOrder(this.allIds, (id) => {
      const node = this.cluster.node(id);
      if (this.cluster.isMember(id) && !node.superseded) {
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

  /** Runs until a leader commits a fresh write; returns the raft ticks that took. */
  private async awaitLiveness(): Promise<number> {
    const start = this.now;
    const deadline = start + this.options.livenessTicksMax * this.options.tickSteps;
    this.probe = { call: start, target: undefined, proposedAt: -Infinity, doneAt: undefined };
    const command = writeCommand({ kind: 'put', key: '__liveness', value: 'probe' });
    while (this.probe.doneAt === undefined) {
      if (this.now > deadline) {
        const leader = this.cluster.leader();
        throw new SafetyViolation(
          'liveness',
          `no write committed within ${this.options.livenessTicksMax} ticks after faults stopped (leader: ${leader?.id ?? 'none'})`,
        );
      }
      const leader = this.cluster.leader();
      const retryDue = this.now - this.probe.proposedAt > this.options.tickSteps * this.options.electionTicks;
      const replica = leader === undefined ? undefined : this.cluster.serving(leader.id);
      if (leader !== undefined && replica !== undefined && (leader.id !== this.probe.target || retryDue)) {
        const probe = this.probe;
        probe.target = leader.id;
        probe.proposedAt = this.now;
        replica.propose(command).then(
          () => (probe.doneAt ??= this.now),
          () => undefined,
        );
      }
      if (this.cluster.trace.enabled && this.now % this.options.tickSteps === 0) this.logStatus();
      await this.step(false);
    }
    this.history().push({
      clientId: 0,
      input: { kind: 'put', key: '__liveness', value: 'probe' },
      call: start,
      output: {},
      return: this.probe.doneAt,
    });
    return Math.ceil((this.probe.doneAt - start) / this.options.tickSteps);
  }

  private logStatus(): void {
    const parts = this.cluster.running().map((node) => {
      const s = node.live!.replica.raftStatus();
      const conf = `${s.conf.voters.join(',')}/${s.conf.learners.join(',')}`;
      return `${node.id}:${s.role} t${s.term} lead=${s.lead} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} conf=${conf}`;
    });
    this.cluster.trace.note(parts.join(' | '));
  }

  private history(): KvOperation[] {
    return this.clients.history;
  }

  private async drain(): Promise<void> {
    for (let i = 0; i < DRAIN_STEPS_MAX && !this.clients.idle(); i++) await this.step(false);
    this.clients.abandonAll();
  }

  private checkHistory(): SimResult['check'] {
    const result = checkOperations(kvModel, this.history(), { searchStepsMax: this.options.checkStepsMax });
    if (result.result === 'illegal') {
      throw new SafetyViolation('linearizability', `history not linearizable:\n${result.failure!.text}`);
    }
    return result.result;
  }
}
