// Seeds that once exposed a bug (in raft or in the simulator). The tests replay every one of them
// with its options; each entry says what it found. Add a seed here whenever a campaign fails and
// the fix lands, so the bug stays fixed.

import type { SimOptions } from './options.js';

export interface RegressionSeed {
  seed: number;
  /** Options that differ from DEFAULT_OPTIONS (as the failing campaign ran them). */
  options: Partial<Omit<SimOptions, 'seed'>>;
  found: string;
}

export const REGRESSION_SEEDS: RegressionSeed[] = [
  {
    seed: 3605,
    options: {},
    found:
      'raft liveness: voters silently dropped RequestVote with a stale term, so up-to-date candidates ' +
      'never learned the higher term a stale voter kept raising; no leader for 200+ ticks after faults ' +
      'stopped (fixed: reject with the current term, §5.1)',
  },
  {
    seed: 15884,
    options: {},
    found:
      'simulator: a snapshot message the network dropped at send time was never reported to raft ' +
      '(reportSnapshot), so the leader waited for two followers forever and commits stalled ' +
      '(fixed: report the loss, as a real transport does)',
  },
  {
    seed: 100436,
    options: { steps: 2000, membershipRateMax: 0.03 },
    found:
      'raft liveness: without pre-vote, a member whose log was far behind campaigned again and again, ' +
      'and every refused vote request restarted the up-to-date members\' election timers, so none of ' +
      'them campaigned; no leader for 330 ticks after faults stopped (fixed: only a granted vote or the ' +
      'leader restarts the timer, §5.2 Figure 2)',
  },
];
