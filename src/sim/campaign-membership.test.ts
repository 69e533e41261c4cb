// Membership changes (add learner, promote, remove, re-add) interleaved with crashes,
// partitions and leadership transfers, at a higher membership rate than the general campaign.
// Half of them here, each replica alone; the other half with 3 groups per process in a store
// (campaign-membership-groups). With campaign-a, campaign-b and campaign-groups, CI runs 2,000
// faulty seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailures } from './campaign.js';
import { runCampaignProcess } from './campaign-process.js';

const SEEDS = 700;

test(`seeds 100001..${100000 + SEEDS}: membership changes under crashes and partitions keep every safety check`, async () => {
  const summary = await runCampaignProcess(['--start', '100001', '--seeds', String(SEEDS), '--membership-rate', '0.03', '--steps', '2000']);
  assert.equal(summary.failures.length, 0, describeFailures(summary));
  assert.equal(summary.seedsRun, SEEDS);
  assert.ok(summary.faults.membershipApplied >= SEEDS, `only ${summary.faults.membershipApplied} membership changes applied`);
  assert.ok(summary.faults.crashes > 0 && summary.faults.partitions > 0, 'crashes and partitions happened');
});
