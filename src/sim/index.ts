// The deterministic simulator: runs the real replica (src/replica: raft, its Ready loop, proposals,
// read rounds, snapshots, membership) over the real MVCC on a memory engine, on a virtual clock,
// network and disk (whose writes survive a crash only once synced), all driven by one seeded PRNG, and checks Raft's safety properties after every step, a
// liveness bound after faults stop, and the linearizability of the client history (src/check).
// A run is a pure function of its seed and options: nothing in src/sim may call Math.random or
// read the wall clock to make a decision.
// CLI: `npm run sim -- --seeds N` (see campaign.ts for flags).
export { runSimulation, type SimResult } from './simulation.js';
export { runCampaign, parseArgs, replayCommand, type CampaignSummary, type CampaignFailure } from './campaign.js';
export { DEFAULT_OPTIONS, RAFT_VARIANTS, type SimOptions, type RaftVariant } from './options.js';
export { Prng } from '../random.js';
export { SafetyViolation, type ViolationKind } from './invariants.js';
export { REGRESSION_SEEDS } from './regressions.js';
