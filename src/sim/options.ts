// Simulation options: one record that, with the seed, fully determines a run. The CLI parses
// them from flags and prints them back as flags so a failing seed can be replayed exactly.

/**
 * Which rules the nodes run: the real ones, or a deliberately broken variant. `unchecked-wipes`
 * runs the real raft but lets a member whose disk was wiped take part again as if nothing happened
 * (no data directory ids, see src/server/data-dirs.ts). `acks-before-fsync` runs the real replica,
 * but its Ready loop's handler sends append responses before the write is synced, as a loop that
 * took them out of Ready.messagesAfterPersist would. `reads-without-quorum` runs a raft whose
 * leader answers every follower's ReadIndex at once, without a heartbeat round or a check that
 * the follower and the leader are a quorum in the leader's term.
 */
export type RaftVariant = 'correct' | 'commit-by-count' | 'double-vote' | 'unchecked-wipes' | 'acks-before-fsync' | 'reads-without-quorum';
export const RAFT_VARIANTS: readonly RaftVariant[] = [
  'correct',
  'commit-by-count',
  'double-vote',
  'unchecked-wipes',
  'acks-before-fsync',
  'reads-without-quorum',
];

export interface SimOptions {
  seed: number;
  /** Length of the faulty phase in time units (one time unit = one simulator step). */
  steps: number;
  /** Voters the cluster starts with. */
  nodes: number;
  /** Members beyond `nodes` that membership changes may add (each with a fresh id: a removed one never rejoins). */
  spareNodes: number;
  clients: number;
  keys: number;
  /** Time units per raft tick (the message delays below are in time units too). */
  tickSteps: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Upper bounds for per-seed fault rates; each seed draws its own rates in [0, max]. */
  crashRateMax: number;
  partitionRateMax: number;
  dropRateMax: number;
  duplicateRateMax: number;
  /** Probability that a crash hits a node in the middle of handling one Ready batch. */
  readyCrashRateMax: number;
  /** A disk sync takes 1 to this many time units; the Ready loop waits for it. */
  syncStepsMax: number;
  /**
   * Probability per step that a member's disk is wiped: it crashes and restarts later on an empty
   * disk, as an operator's `rm -rf` of its data directory would leave it. It must be refused, and is
   * then removed and replaced by a new member, the documented remedy.
   */
  wipeRateMax: number;
  membershipRateMax: number;
  /**
   * Probability that a newly elected leader is isolated or crashed at once, before its first
   * appends spread. Leader changes with entries of several terms in flight are where the commit
   * and election rules matter (the Figure 8 scenario needs three of them in a row).
   */
  newLeaderFaultRateMax: number;
  transferRateMax: number;
  /** Faults off entirely: a clean run (used by the liveness baseline). */
  faults: boolean;
  /** Nodes snapshot their state machine every this many applied entries, then compact. */
  snapshotEvery: number;
  /** Entries kept behind a snapshot when compacting (0 compacts everything the snapshot covers). */
  compactKeep: number;
  /** After faults stop, a leader must be elected and a write commit within this many raft ticks. */
  livenessTicksMax: number;
  variant: RaftVariant;
  /** Payload bytes per append message (raft's maxMsgBytes); small values send one entry each. */
  msgBytesMax: number;
  /** Work budget for the linearizability check of one run (see src/check). */
  checkStepsMax: number;
  /**
   * Each process hosts its replica in a store (src/store), as `lichen serve` does: the store's one
   * ticker, its Beat frames to the peer processes (heartbeats coalesced, or an empty "alive"), and
   * quiescence of an idle group with the store's liveness waking it. Off: the replica runs alone
   * with its own ticker (the runs every recorded seed replays).
   */
  store: boolean;
  /**
   * Raft groups each process hosts (1..groups, each a replica in its store: needs `store`), with
   * one disk and one sync for all of them, per-group checks, clients whose keys are spread over the
   * groups, and the groups other than 1 following the cluster's processes as members.
   */
  groups: number;
}

export const DEFAULT_OPTIONS: Omit<SimOptions, 'seed'> = {
  steps: 3000,
  nodes: 3,
  spareNodes: 2,
  clients: 4,
  keys: 3,
  tickSteps: 10,
  electionTicks: 10,
  heartbeatTicks: 1,
  crashRateMax: 0.004,
  partitionRateMax: 0.004,
  dropRateMax: 0.1,
  duplicateRateMax: 0.05,
  readyCrashRateMax: 0.003,
  syncStepsMax: 2,
  wipeRateMax: 0.0004,
  membershipRateMax: 0.01,
  newLeaderFaultRateMax: 0.5,
  transferRateMax: 0.003,
  faults: true,
  snapshotEvery: 12,
  compactKeep: 3,
  livenessTicksMax: 200,
  variant: 'correct',
  msgBytesMax: 1024,
  checkStepsMax: 5_000_000,
  store: false,
  groups: 1,
};

/** Groups per simulated process at most (each costs a replica per process and its checks). */
export const GROUPS_MAX = 64;

/** Flag name for each option (kebab case), in the order replay commands print them. */
const FLAGS: Record<Exclude<keyof SimOptions, 'seed'>, string> = {
  steps: 'steps',
  nodes: 'nodes',
  spareNodes: 'spare-nodes',
  clients: 'clients',
  keys: 'keys',
  tickSteps: 'tick-steps',
  electionTicks: 'election-ticks',
  heartbeatTicks: 'heartbeat-ticks',
  crashRateMax: 'crash-rate',
  partitionRateMax: 'partition-rate',
  dropRateMax: 'drop-rate',
  duplicateRateMax: 'dup-rate',
  readyCrashRateMax: 'ready-crash-rate',
  syncStepsMax: 'sync-steps',
  wipeRateMax: 'wipe-rate',
  membershipRateMax: 'membership-rate',
  newLeaderFaultRateMax: 'new-leader-fault-rate',
  transferRateMax: 'transfer-rate',
  faults: 'faults',
  snapshotEvery: 'snapshot-every',
  compactKeep: 'compact-keep',
  livenessTicksMax: 'liveness-ticks',
  variant: 'variant',
  msgBytesMax: 'msg-bytes',
  checkStepsMax: 'check-steps',
  store: 'store',
  groups: 'groups',
};

/** The flags that differ from the defaults, e.g. ["--nodes", "5"]. */
export function optionsToFlags(options: Omit<SimOptions, 'seed'>): string[] {
  const flags: string[] = [];
  for (const key of Object.keys(FLAGS) as (keyof typeof FLAGS)[]) {
    if (options[key] !== DEFAULT_OPTIONS[key]) flags.push(`--${FLAGS[key]}`, String(options[key]));
  }
  return flags;
}

/** Parses one option flag; returns false when `flag` is not an option flag. */
export function applyFlag(options: Omit<SimOptions, 'seed'>, flag: string, value: string): boolean {
  const key = (Object.keys(FLAGS) as (keyof typeof FLAGS)[]).find((k) => FLAGS[k] === flag);
  if (key === undefined) return false;
  const target = options as Record<string, unknown>;
  if (key === 'variant') {
    if (!RAFT_VARIANTS.includes(value as RaftVariant)) throw new Error(`--variant must be one of ${RAFT_VARIANTS.join(', ')}`);
    target[key] = value;
  } else if (key === 'faults' || key === 'store') {
    if (value !== 'true' && value !== 'false') throw new Error(`--${flag} must be true or false`);
    target[key] = value === 'true';
  } else if (key === 'groups') {
    const number = Number(value);
    if (!Number.isSafeInteger(number) || number < 1 || number > GROUPS_MAX) throw new Error(`--groups needs an integer from 1 to ${GROUPS_MAX}, got ${value}`);
    target[key] = number;
  } else {
    const number = Number(value);
    if (!Number.isFinite(number) || number < 0) throw new Error(`--${flag} needs a non-negative number, got ${value}`);
    target[key] = number;
  }
  return true;
}
