// A campaign runs many seeds with one set of options and summarizes them. Failing seeds are
// reported with the exact command that replays them.

import { DEFAULT_OPTIONS, applyFlag, optionsToFlags, type SimOptions } from './options.js';
import { runSimulation, type SimResult } from './simulation.js';

export interface CampaignArgs {
  /** First seed, and how many seeds from there. */
  start: number;
  seeds: number;
  options: Omit<SimOptions, 'seed'>;
  /** Print the full result of every seed (for one-seed replays). */
  verbose: boolean;
  /** Where each run's event lines go (`--trace`: standard error, one line per event). */
  trace?: (line: string) => void;
}

export interface CampaignFailure {
  seed: number;
  kind: string;
  message: string;
  time: number;
  replay: string;
}

export interface CampaignSummary {
  seedsRun: number;
  firstSeed: number;
  steps: number;
  ops: number;
  unknownOps: number;
  checks: { ok: number; unknown: number };
  faults: SimResult['faults'];
  livenessTicksMax: number;
  wipesUnrefused: SimResult['wipesUnrefused'];
  failures: CampaignFailure[];
  timeMs: number;
  options: string[];
  /** Single-seed runs: the run's trace hash and full result. */
  result?: SimResult;
}

/** Seeds per campaign at most (a limit on the loop, far above any practical run). */
export const CAMPAIGN_SEEDS_MAX = 10_000_000;

export function parseArgs(argv: string[]): CampaignArgs {
  const args: CampaignArgs = { start: 1, seeds: 100, options: { ...DEFAULT_OPTIONS }, verbose: false };
  let single = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (!flag.startsWith('--')) throw new Error(`unexpected argument ${flag}`);
    const name = flag.slice(2);
    if (name === 'verbose') {
      args.verbose = true;
      continue;
    }
    if (name === 'trace') {
      args.trace = (line) => process.stderr.write(`${line}\n`);
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (name === 'seeds') args.seeds = parseCount(flag, value);
    else if (name === 'start') args.start = parseCount(flag, value);
    else if (name === 'seed') {
      args.start = parseCount(flag, value);
      single = true;
    } else if (!applyFlag(args.options, name, value)) throw new Error(`unknown flag ${flag}`);
  }
  if (single) {
    args.seeds = 1;
    args.verbose = true;
  }
  if (args.seeds > CAMPAIGN_SEEDS_MAX) throw new Error(`--seeds is limited to ${CAMPAIGN_SEEDS_MAX}`);
  if (args.options.groups > 1 && !args.options.store) throw new Error('--groups needs --store true (the groups of a process share its store)');
  return args;
}

function parseCount(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, got ${value}`);
  return n;
}

/** A campaign's failures, one per line with the command that replays it. */
export function describeFailures(summary: CampaignSummary): string {
  return summary.failures.map((f) => `${f.kind} ${f.message}\n  replay: ${f.replay}`).join('\n');
}

export function replayCommand(seed: number, options: Omit<SimOptions, 'seed'>): string {
  return ['npm run sim --', '--seed', String(seed), ...optionsToFlags(options)].join(' ');
}

export async function runCampaign(args: CampaignArgs, now: () => number = Date.now): Promise<CampaignSummary> {
  const started = now();
  const summary: CampaignSummary = {
    seedsRun: 0,
    firstSeed: args.start,
    steps: 0,
    ops: 0,
    unknownOps: 0,
    checks: { ok: 0, unknown: 0 },
    faults: {
      crashes: 0,
      readyCrashes: 0,
      partitions: 0,
      membershipProposed: 0,
      membershipApplied: 0,
      wipes: 0,
      wipesRefused: 0,
      transfers: 0,
      membershipProbes: 0,
      removedByProbe: 0,
      quiescences: 0,
      groupJoins: 0,
      groupLeaves: 0,
      snapshotsMade: 0,
      snapshotsInstalled: 0,
      messagesSent: 0,
      messagesDropped: 0,
      messagesDuplicated: 0,
    },
    livenessTicksMax: 0,
    wipesUnrefused: { removedFirst: 0, acceptedUnknown: 0 },
    failures: [],
    timeMs: 0,
    options: optionsToFlags(args.options),
  };
  for (let seed = args.start; seed < args.start + args.seeds; seed++) {
    const result = await runSimulation({ ...args.options, seed }, args.trace);
    addResult(summary, result, args.options);
    if (args.verbose) summary.result = result;
  }
  summary.timeMs = now() - started;
  return summary;
}

export function addResult(summary: CampaignSummary, result: SimResult, options: Omit<SimOptions, 'seed'>): void {
  summary.seedsRun++;
  summary.steps += result.steps;
  summary.ops += result.ops;
  summary.unknownOps += result.unknownOps;
  if (result.check === 'ok') summary.checks.ok++;
  if (result.check === 'unknown') summary.checks.unknown++;
  for (const key of Object.keys(summary.faults) as (keyof SimResult['faults'])[]) {
    summary.faults[key] += result.faults[key];
  }
  summary.wipesUnrefused.removedFirst += result.wipesUnrefused.removedFirst;
  summary.wipesUnrefused.acceptedUnknown += result.wipesUnrefused.acceptedUnknown;
  if (result.livenessTicks !== undefined) {
    summary.livenessTicksMax = Math.max(summary.livenessTicksMax, result.livenessTicks);
  }
  if (result.violation !== undefined) {
    summary.failures.push({
      seed: result.seed,
      kind: result.violation.kind,
      message: result.violation.message.slice(0, 2000),
      time: result.violation.time,
      replay: replayCommand(result.seed, options),
    });
  }
}
