// The nemesis: injects one fault at a time into a running process cluster on a seeded schedule,
// holds it, heals it, and records each fault's interval in the history. At the end of a run,
// stop() heals whatever is still active, so the cluster can recover before the final reads.
//
// Faults are scheduled in wall time (a real cluster has no virtual clock), but every wait is
// bounded and ends early when the run stops.
import { rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { EXIT_DISK_FULL } from '../cli/dispatch.js';
import { type MemberProcess, type ProcessCluster } from '../server/testing/process-cluster.js';
import type { FaultRecord, History } from './history.js';
import { PARTITION_MODES, partitionGroups, type PartitionMode, type PeerNetwork } from './network.js';
import type { Prng } from '../random.js';

export type FaultKind = 'kill' | 'pause' | 'partition' | 'slow-disk' | 'full-disk' | 'membership' | 'wipe' | 'clock';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'pause', 'partition', 'slow-disk', 'full-disk', 'membership', 'wipe', 'clock'];
/** Faults this build can inject (see the report for why the others are missing). */
export const SUPPORTED_FAULTS: readonly FaultKind[] = ['kill', 'pause', 'partition', 'slow-disk', 'full-disk', 'membership', 'wipe'];

/**
 * How a member restarted on a wiped data directory says it must not start (src/server): a peer
 * knows it by another data directory; its --join finds its id already started; or the members of
 * its --initial-cluster were all replaced since and refuse it.
 */
export const WIPED_MEMBER_REFUSAL = /by another data directory|has already been bootstrapped|cannot start: members of its --initial-cluster refused it/;

/** Whom a kill or pause hits. */
export type FaultTarget = 'leader' | 'random';

/** One fault of a fixed schedule (tests use one to make a run fail on purpose). */
export interface PlannedFault {
  kind: FaultKind;
  /** For partitions: the shape; for kill, pause and slow-disk: the target. */
  mode?: PartitionMode | FaultTarget;
  /** Quiet time before the fault starts. */
  afterMs: number;
  holdMs: number;
}

export interface NemesisOptions {
  faults: readonly FaultKind[];
  /** Quiet time between faults, uniformly in [min, max]. */
  quietMs: [number, number];
  /** How long a fault is held, uniformly in [min, max]. */
  holdMs: [number, number];
  /** Run exactly these faults, in order, instead of random ones. */
  plan?: readonly PlannedFault[];
  /** WAL fsync delay of a slow-disk restart, uniformly in [min, max] ms. */
  slowDiskDelayMs?: [number, number];
  /** Bytes free for a full-disk restart, uniformly in [min, max]. Default [0, FULL_DISK_BYTES_MAX]. */
  fullDiskBytes?: [number, number];
}

/**
 * The most bytes a full-disk restart leaves free by default. Every byte written counts (DiskBudget,
 * src/wal/disk.ts); a follower under the workloads of `lichen check` writes ~1 kB of WAL records a
 * second (run of 2026-12-07: 39 kB lasted over 30 s), so this fills within a few seconds, inside
 * the fault's hold and the wait of its heal.
 */
const FULL_DISK_BYTES_MAX = 8 * 1024;
/** How long the heal of a full-disk fault waits for the member to stop by itself before killing it. */
const FULL_DISK_EXIT_WAIT_MS = 15_000;

export interface NemesisDeps {
  cluster: ProcessCluster;
  network: PeerNetwork;
  history: History;
  prng: Prng;
  /** Progress lines for a human (stderr of `lichen check`). */
  log: (line: string) => void;
  /** Problems the run must report (e.g. a member that did not restart). */
  errors: string[];
}

/** How long to look for the leader before picking a random target instead. */
const LEADER_LOOKUP_MS = 3000;

export class Nemesis {
  private stopRequested = false;
  private wakeSleep: (() => void) | undefined;
  private loop: Promise<void> = Promise.resolve();
  /** Undoes the active fault; set while a fault is held. */
  private undo: (() => Promise<void>) | undefined;
  private joinerCount = 0;

  constructor(
    private readonly deps: NemesisDeps,
    private readonly options: NemesisOptions,
  ) {}

  start(): void {
    this.loop = this.run().catch((error: unknown) => {
      this.deps.errors.push(`nemesis failed: ${(error as Error)?.stack ?? String(error)}`);
    });
  }

  /**
   * Resolves when a fixed plan has run every fault and healed the last one (or stop() ended it
   * early); a random schedule never finishes by itself.
   */
  planDone(): Promise<void> {
    return this.options.plan === undefined ? new Promise(() => undefined) : this.loop;
  }

  /** Ends the schedule and heals the active fault; resolves when the cluster is whole again. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    this.wakeSleep?.();
    await this.loop;
    await this.healActive();
  }

  private async run(): Promise<void> {
    const plan = this.options.plan;
    for (let i = 0; plan === undefined || i < plan.length; i++) {
      const planned = plan?.[i];
      const quietMs = planned?.afterMs ?? this.between(this.options.quietMs);
      await this.sleep(quietMs);
      if (this.stopRequested) return;
      const kind = planned?.kind ?? this.deps.prng.pick(this.options.faults);
      await this.inject(kind, planned?.mode);
      await this.sleep(planned?.holdMs ?? this.between(this.options.holdMs));
      await this.healActive();
      if (this.stopRequested) return;
    }
  }

  private async inject(kind: FaultKind, mode: PartitionMode | FaultTarget | undefined): Promise<void> {
    switch (kind) {
      case 'kill':
        return this.kill((mode as FaultTarget | undefined) ?? this.deps.prng.pick(['leader', 'random'] as const));
      case 'pause':
        return this.pause((mode as FaultTarget | undefined) ?? this.deps.prng.pick(['leader', 'random'] as const));
      case 'partition':
        return this.partition((mode as PartitionMode | undefined) ?? this.deps.prng.pick(PARTITION_MODES));
      case 'slow-disk':
        return this.slowDisk();
      case 'full-disk':
        return this.fullDisk();
      case 'membership':
        return this.addAndRemoveMember();
      case 'wipe':
        return this.wipeDataDirectory();
      case 'clock':
        throw new Error(`the ${kind} fault is not supported by this build`);
    }
  }

  private async kill(target: FaultTarget): Promise<void> {
    const { member, why } = await this.chooseTarget(target);
    if (!member) return;
    await this.deps.cluster.kill(member);
    const record = this.begin('kill', `SIGKILL ${member.name}${why}`);
    this.undo = async () => {
      await this.relaunch(member, record);
    };
  }

  private async pause(target: FaultTarget): Promise<void> {
    const { member, why } = await this.chooseTarget(target);
    if (!member) return;
    const { cluster } = this.deps;
    cluster.pause(member);
    const record = this.begin('pause', `SIGSTOP ${member.name}${why}`);
    this.undo = async () => {
      cluster.resume(member);
      this.end(record, `SIGCONT ${member.name}`);
    };
  }

  private async partition(mode: PartitionMode): Promise<void> {
    const { network, prng } = this.deps;
    const names = this.deps.cluster.members.map((m) => m.name);
    const leader = mode === 'isolate-leader' ? (await this.findLeader())?.name : undefined;
    const { groups, links, description } = partitionGroups(mode, names, (n) => prng.int(n), leader);
    network.partition(groups, description, links);
    const record = this.begin('partition', description);
    this.undo = async () => {
      network.heal();
      this.end(record, 'healed');
    };
  }

  private async slowDisk(): Promise<void> {
    const { cluster, prng } = this.deps;
    const candidates = cluster.members.filter((m) => m.process !== undefined && !m.paused);
    if (candidates.length === 0) return;
    const member = prng.pick(candidates);
    const [min, max] = this.options.slowDiskDelayMs ?? [20, 150];
    const delayMs = prng.between(min, max);
    await cluster.kill(member);
    const record = this.begin('slow-disk', `${member.name} restarted with a ${delayMs} ms delay before every WAL fsync`);
    try {
      await cluster.launch(member, { env: { LICHEN_UNSAFE_WAL_SYNC_DELAY_MS: String(delayMs) } });
    } catch (error) {
      this.deps.errors.push(`slow-disk: ${member.name} did not restart: ${(error as Error).message}`);
    }
    this.undo = async () => {
      await cluster.kill(member);
      await this.relaunch(member, record);
    };
  }

  /**
   * Restarts a member whose WAL and snapshot files have only a few bytes left on disk
   * (LICHEN_UNSAFE_DISK_BUDGET_BYTES). It must stop by itself with EXIT_DISK_FULL (fail-stop,
   * having acknowledged nothing it could not make durable) while the others keep serving; the
   * heal frees the space (restarts it without the budget), and it catches up.
   */
  private async fullDisk(): Promise<void> {
    const { cluster, prng } = this.deps;
    const candidates = cluster.members.filter((m) => m.process !== undefined && !m.paused);
    if (candidates.length === 0) return;
    const member = prng.pick(candidates);
    const bytes = this.between(this.options.fullDiskBytes ?? [0, FULL_DISK_BYTES_MAX]);
    await cluster.kill(member);
    const record = this.begin('full-disk', `${member.name} restarted with ${bytes} bytes free for its WAL and snapshots`);
    const troubles = member.troubles?.length ?? 0;
    let exited: Promise<number | null>;
    try {
      await cluster.launch(member, { env: { LICHEN_UNSAFE_DISK_BUDGET_BYTES: String(bytes) } });
      exited = exitCodeOf(member.process!);
    } catch (error) {
      // It may find the disk full before it reports in (a torn tail to repair on open).
      const code = /exited before it started \(code (\d+)/.exec((error as Error).message)?.[1];
      exited = Promise.resolve(code === undefined ? null : Number(code));
    }
    this.undo = async () => {
      const code = await Promise.race([exited, this.wait(FULL_DISK_EXIT_WAIT_MS).then(() => 'running' as const)]);
      let outcome: string;
      if (code === EXIT_DISK_FULL) {
        // Its exit and its error line are the expected outcome, not trouble to report.
        member.troubles?.splice(troubles);
        outcome = `${member.name} stopped on the full disk (exit ${EXIT_DISK_FULL})`;
      } else if (code === 'running') {
        outcome = `${member.name} still ran after ${FULL_DISK_EXIT_WAIT_MS} ms (no write filled its disk); killed`;
        await cluster.kill(member);
      } else {
        outcome = `${member.name} exited with code ${code}, not ${EXIT_DISK_FULL}`;
        this.deps.errors.push(`full-disk: ${outcome}`);
      }
      await this.relaunch(member, record, `${outcome}; space freed, restarted`);
    };
  }

  /**
   * Grows the cluster by one member under load (a new process started with LICHEN_JOIN: it joins
   * as a learner, catches up and promotes itself), holds, then removes it again with MemberRemove
   * and stops it. The joiner advertises its own peer listener (a joining member cannot advertise
   * a proxy), so it is left out of partitions; only one fault is active at a time anyway.
   */
  private async addAndRemoveMember(): Promise<void> {
    const { cluster } = this.deps;
    const via = cluster.members.find((m) => m.process !== undefined && !m.paused);
    if (!via) return;
    const name = `j${++this.joinerCount}`;
    const joiner = await cluster.newJoiner(name);
    const listenPeer = joiner.listenPeer;
    const record = this.begin('membership', `${name} joins through ${via.name}`);
    try {
      await cluster.join(joiner, via);
    } catch (error) {
      this.deps.errors.push(`membership: ${name} did not start: ${(error as Error).message}`);
    }
    this.undo = async () => {
      let removed = 'removal failed';
      const deadline = performance.now() + 20_000;
      while (performance.now() < deadline) {
        const peers = cluster.members.filter((m) => m !== joiner && m.process !== undefined && !m.paused);
        try {
          // By peer address: a learner that has not published its attributes yet has no name.
          const list = await cluster.call<{ members: { ID: string; peerURLs: string[] }[] }>(peers[0]!, 'Cluster', 'MemberList', {}, 5000);
          const id = list.members.find((m) => m.peerURLs.some((url) => url.endsWith(`//${listenPeer}`) || url === listenPeer))?.ID;
          if (id !== undefined) await cluster.call(peers[0]!, 'Cluster', 'MemberRemove', { ID: id }, 5000);
          removed = id === undefined ? `${name} was not a member` : `removed ${name}`;
          break;
        } catch (error) {
          removed = `removal failed: ${(error as Error).message}`;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      if (removed.startsWith('removal failed')) this.deps.errors.push(`membership: ${name}: ${removed}`);
      await cluster.kill(joiner);
      cluster.members.splice(cluster.members.indexOf(joiner), 1);
      this.end(record, removed);
    };
  }

  /**
   * Deletes a member's data directory while it is down and starts it again with the flags of its
   * first start (--initial-cluster, or --join for one that joined), which must be refused with the
   * remedy rather than let it take part with an empty log. The heal is that remedy, as the README
   * documents it: MemberRemove, an empty data directory, and a start with --join.
   */
  private async wipeDataDirectory(): Promise<void> {
    const { cluster, network, prng } = this.deps;
    const candidates = cluster.members.filter((m) => m.process !== undefined && !m.paused);
    if (candidates.length < cluster.members.length || candidates.length < 3) return;
    const member = prng.pick(candidates);
    const via = (): MemberProcess => cluster.members.find((m) => m !== member && m.process !== undefined && !m.paused)!;
    const oldId = [...(await cluster.memberIds(via()))].find(([, name]) => name === member.name)?.[0];
    await cluster.wipe(member);
    const record = this.begin('wipe', `${member.name}: data directory deleted, restarted with the same flags`);
    let refusal = 'no refusal';
    const troubles = member.troubles?.length ?? 0;
    try {
      await (member.joined ? cluster.join(member, via()) : cluster.launch(member));
      this.deps.errors.push(`wipe: ${member.name} started on an empty data directory instead of refusing`);
    } catch (error) {
      refusal = WIPED_MEMBER_REFUSAL.exec((error as Error).message)?.[0] ?? 'no refusal';
      if (refusal === 'no refusal') this.deps.errors.push(`wipe: ${member.name} failed to start without the expected refusal: ${(error as Error).message}`);
      // The refusal's error line is the expected outcome, not trouble to report.
      else member.troubles?.splice(troubles);
    }
    this.undo = async () => {
      let outcome = 'remedy failed';
      const deadline = performance.now() + 30_000;
      while (performance.now() < deadline) {
        try {
          if (oldId !== undefined && (await cluster.memberIds(via())).has(oldId)) await cluster.call(via(), 'Cluster', 'MemberRemove', { ID: oldId }, 5000);
          rmSync(member.dataDir, { recursive: true, force: true });
          await cluster.join(member, via());
          // A joiner advertises its own peer listener: the proxies see it by its new id.
          const list = await cluster.call<{ members: { ID: string; peerURLs: string[] }[] }>(via(), 'Cluster', 'MemberList', {}, 5000);
          const newId = list.members.find((m) => m.peerURLs.some((url) => url.endsWith(`//${member.listenPeer}`)))?.ID;
          if (newId !== undefined) network.setMemberId(member.name, Number(newId));
          outcome = `refused (${refusal}); removed ${member.name} and added it again with --join`;
          break;
        } catch (error) {
          outcome = `remedy failed: ${(error as Error).message}`;
          await cluster.kill(member);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
      // Healed once it is a voter again: wiping another voter while it is still a learner would
      // leave the cluster without a quorum, and with it no way to remove the wiped member.
      if (!outcome.startsWith('remedy failed')) {
        outcome = (await this.untilVoter(member, via, deadline)) ? `${outcome}; a voter again` : `remedy failed: ${member.name} was added again but not promoted to a voter within 30 s`;
      }
      if (outcome.startsWith('remedy failed')) this.deps.errors.push(`wipe: ${member.name}: ${outcome}`);
      this.end(record, outcome);
    };
  }

  /** Whether the member at `member`'s peer address is listed as a voter before the deadline. */
  private async untilVoter(member: MemberProcess, via: () => MemberProcess, deadline: number): Promise<boolean> {
    const isVoter = (m: { peerURLs: string[]; isLearner: boolean }) => !m.isLearner && m.peerURLs.some((url) => url.endsWith(`//${member.listenPeer}`));
    while (performance.now() < deadline) {
      const list = await this.deps.cluster.call<{ members: { peerURLs: string[]; isLearner: boolean }[] }>(via(), 'Cluster', 'MemberList', {}, 5000).catch(() => undefined);
      if (list?.members.some(isVoter)) return true;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return false;
  }

  private async relaunch(member: MemberProcess, record: FaultRecord, healed = `restarted ${member.name}`): Promise<void> {
    try {
      await this.deps.cluster.launch(member);
      this.end(record, healed);
    } catch (error) {
      this.end(record, `${member.name} FAILED to restart`);
      this.deps.errors.push(`${member.name} did not restart after ${record.kind}: ${(error as Error).message}`);
    }
  }

  private async chooseTarget(target: FaultTarget): Promise<{ member: MemberProcess | undefined; why: string }> {
    if (target === 'leader') {
      const leader = await this.findLeader();
      if (leader) return { member: leader, why: ' (leader)' };
    }
    const candidates = this.deps.cluster.members.filter((m) => m.process !== undefined && !m.paused);
    if (candidates.length === 0) return { member: undefined, why: '' };
    return { member: this.deps.prng.pick(candidates), why: target === 'leader' ? ' (no leader found; random)' : '' };
  }

  private async findLeader(): Promise<MemberProcess | undefined> {
    const { cluster } = this.deps;
    const among = cluster.members.filter((m) => m.process !== undefined && !m.paused);
    if (among.length === 0) return undefined;
    try {
      return await cluster.waitForLeader(LEADER_LOOKUP_MS, among);
    } catch {
      return undefined;
    }
  }

  private begin(kind: string, detail: string): FaultRecord {
    const record = this.deps.history.faultStarted(kind, detail);
    this.deps.log(`${(record.startMs / 1000).toFixed(1)}s  fault  ${kind}: ${detail}`);
    return record;
  }

  private end(record: FaultRecord, detail: string): void {
    this.deps.history.faultEnded(record, detail);
    this.deps.log(`${(record.endMs! / 1000).toFixed(1)}s  heal   ${record.kind}: ${detail}`);
  }

  private async healActive(): Promise<void> {
    const undo = this.undo;
    this.undo = undefined;
    if (undo) await undo();
  }

  private between([min, max]: [number, number]): number {
    return this.deps.prng.between(min, max);
  }

  /** Waits `ms` (a bound on waiting for an event, which stop() does not cut short). */
  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms).unref());
  }

  /** Sleeps up to `ms`; stop() cuts it short. */
  private sleep(ms: number): Promise<void> {
    if (this.stopRequested) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** The exit code of `child` once it exits (null: killed by a signal). */
function exitCodeOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
