// Membership changes at the membership campaign's rate with 3 groups per process, each in its
// store: members join and leave the cluster's group, and the other groups follow them (a new
// member opens each as a joiner; one removed leaves them before it leaves the cluster).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailures } from './campaign.js';
import { runCampaignProcess } from './campaign-process.js';

const FIRST = 100701;
const SEEDS = 700;

test(`seeds ${FIRST}..${FIRST + SEEDS - 1}: membership changes under crashes and partitions, 3 groups per process, keep every safety check`, async () => {
  const summary = await runCampaignProcess(['--start', String(FIRST), '--seeds', String(SEEDS), '--membership-rate', '0.03', '--steps', '2000', '--store', 'true', '--groups', '3']);
  assert.equal(summary.failures.length, 0, describeFailures(summary));
  assert.equal(summary.seedsRun, SEEDS);
  const { membershipApplied, groupJoins, groupLeaves, crashes, partitions } = summary.faults;
  assert.ok(membershipApplied >= 3 * SEEDS, `only ${membershipApplied} membership changes applied`);
  assert.ok(groupJoins >= SEEDS && groupLeaves >= SEEDS / 2, `members joined ${groupJoins} and left ${groupLeaves} groups other than the cluster's`);
  assert.ok(crashes > 0 && partitions > 0, 'crashes and partitions happened');
});
