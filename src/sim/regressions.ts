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
  // Seeds 9451, 11744 and 15574: one bug. A leader that removed itself applied the removal (and its
  // member stopped) before the others learned that it committed, so they kept counting votes in the
  // old configuration, which needed the stopped leader (fixed in src/raft/raft.ts, see ownRemoval).
  // They failed on 181d385; the message ordering of 1763be9 changed their runs. Seed 32 with more
  // membership changes and wipes fails the same way on a2bf773 (and the unit tests in
  // src/raft/sim-regressions.test.ts reproduce the bug without a simulator).
  {
    seed: 9451,
    options: {},
    found:
      'raft liveness: removed leader stopped before the others knew its removal committed; the old ' +
      'configuration then needed a far-behind member whose own campaigns kept splitting the vote ' +
      '(no leader for 254 ticks after faults stopped)',
  },
  {
    seed: 11744,
    options: {},
    found:
      'raft liveness: removed leader stopped before the others knew its removal committed; the old ' +
      'configuration then needed a member partitioned since the start (no leader for 236 ticks)',
  },
  {
    seed: 15574,
    options: {},
    found:
      'raft liveness: removed leader stopped before the others knew its removal committed; with a ' +
      'wiped member also gone the old configuration had no quorum left at all (no leader, ever)',
  },
  {
    seed: 32,
    options: { membershipRateMax: 0.03, wipeRateMax: 0.002 },
    found:
      'raft liveness: removed leader stopped before the others knew its removal committed; a wiped ' +
      'member was also gone, so the old configuration had no quorum left at all (no leader, ever)',
  },
  {
    seed: 19044,
    options: {},
    found:
      'simulator: the durability check failed a learner that in one Ready acknowledged an append of ' +
      'term 13 and then, from the term-15 leader, replaced those entries (only the result is written); ' +
      'that is a legitimate run (the ack reflects a state the final one follows), so acks of a term ' +
      'older than the disk\'s are not held against the log',
  },
  {
    seed: 5784,
    options: {},
    found:
      'simulator: a removed member was stopped as soon as ANY member applied its removal; here the ' +
      'removed leader was stopped in the middle of its handoff, and the one follower that had learned ' +
      'the commit then lost it in a crash (a commit index is written without a sync), so nobody alive ' +
      'knew the removal committed: no leader, ever (fixed: a member stops when it applies its own ' +
      'removal, as a replica does; found by the first 10,000-seed campaign through the Ready loop)',
  },
  // Seeds 17632 and 18512 failed the same way (liveness, no leader after faults stopped) in the
  // 10,001..20,000 campaign on c4f70fd and pass with the same fix.
  { seed: 17632, options: {}, found: 'simulator: liveness, as seed 5784 (a removed member stopped before it applied its removal)' },
  { seed: 18512, options: {}, found: 'simulator: liveness, as seed 5784 (a removed member stopped before it applied its removal)' },
  {
    seed: 949,
    options: {},
    found:
      'simulator: the check that no wiped member talks to a peer that knew its lost data directory ' +
      'fired for a joiner that merely ran raft, before any peer had admitted it (it was refused at its ' +
      'first connection; fixed: the check and the remedy look at the connections it has)',
  },
  // Found when the simulator first ran the real Replica (simstore, 2026-12-06); each fails on
  // 9215dc4, which is that simulator without the replica fix named.
  {
    seed: 44,
    options: {},
    found:
      'replica: a proposal made by a member\'s previous process committed after it restarted and ' +
      'answered a request of the new process that had the same sequence number (each process counted ' +
      'from 1), so a client got a put\'s answer for its compare-and-swap: not linearizable (fixed: each ' +
      'process starts its sequence at a random point, src/replica/requests.ts)',
  },
  {
    seed: 26,
    options: {},
    found:
      'replica: a member that had just joined heard no leader, probed the others, and believed a member ' +
      'that had not yet applied its addition: it stopped as removed while a member (fixed: a joiner ' +
      'trusts only answers from members that applied its catch-up index, src/replica/membership.ts)',
  },
  { seed: 51, options: {}, found: 'replica: a joiner stopped as removed on a lagging member\'s answer, as seed 26' },
  {
    seed: 14837,
    options: {},
    found:
      'raft liveness: with commit indexes that pass a membership change synced (74401b3), a removed ' +
      'member kept its knowledge that its removal committed across a crash and held the removal back; ' +
      'its log was the only complete one, so nobody else could win its vote, and it could not campaign ' +
      'with a committed change unapplied: no leader, ever (failed through the old simulator loop on ' +
      'd73d2f0 with 74401b3; fixed: a held removal does not stop a campaign, see raft.ts)',
  },
  {
    seed: 3317,
    options: {},
    found:
      'simulator: a transport report for a message of a member\'s previous process was queued into its ' +
      'new process, a wiped member still waiting for its peers (raft not started, so its loop does not ' +
      'run), and settle() took the queued report for work the loop could do: it never settled (fixed: ' +
      'Replica.hasPendingWork is false before start(); found by the 5,000-seed run on 3379d54)',
  },
  // Found by the first 20,000 seeds through the real replica (2026-12-06); each failed on 4ba82cb.
  {
    seed: 7605,
    options: {},
    found:
      'simulator: the network duplicated a proposal a follower forwarded to the leader, which appended ' +
      'it again (raft does not deduplicate proposals, nor does the MVCC), so a put applied twice and a ' +
      'read returned the older value after the newer one: not linearizable (the real transport never ' +
      'duplicates a message; fixed: the simulated network duplicates anything but a proposal, and the ' +
      'exactly-once check now catches a proposal committed twice)',
  },
  ...[9252, 13096, 15038, 17096, 18229, 18606, 18862].map((seed) => ({
    seed,
    options: {},
    found: 'simulator: not linearizable, as seed 7605 (a proposal duplicated by the network applied twice)',
  })),
  {
    seed: 19468,
    options: {},
    found:
      'simulator: a member that joined and never got its first snapshot restarted from an empty raft ' +
      'log, forgetting the term and vote on its disk; it voted for node 1 in term 17, crashed, and ' +
      'voted for node 3 in term 17: two leaders of one term (fixed: it recovers its hard state and ' +
      'entries, as a process does, through the same recoverJoiner)',
  },
  {
    seed: 11,
    options: { store: true, groups: 3 },
    found:
      'store: a group removed from a process (its member removed from group 3) still sent the ' +
      'heartbeats it had held for the next Beat, promising a term its removed log no longer held: ' +
      'the durability check failed (fixed: Store.removeGroup drops them; fails on ba594b1^ with ' +
      'bd050ed\'s simulator)',
  },
  {
    seed: 203147,
    options: { store: true },
    found:
      'simulator: when faults stopped it brought up only members of the committed configuration, but ' +
      'raft already counted node 8, whose addition was appended and not yet committed: with node 6 ' +
      'wiped (refused) and node 8 left down, 2 of the 4 voters could not elect a leader for 200 ' +
      'ticks (fixed: calmDown also starts a member whose addition a running replica counts; found ' +
      'by the 2026-12-07 campaign, fails on 1bed9f8)',
  },
  {
    seed: 100363,
    options: { steps: 2000, membershipRateMax: 0.03 },
    found:
      'replica: once the Ready loop stepped actions while a Ready\'s write was in flight, a membership ' +
      'change refused because the previous one was not yet applied was retried as soon as the member ' +
      'had applied it, but raft counts it applied only when the Ready is advanced: refused again at ' +
      'once, forever, and the loops never settled (fixed: the retry waits until the core counts it, ' +
      'Replica.appliedAdvanced; found by campaign-membership.test.ts on the fprop branch)',
  },
];
