// A part of the test-suite campaign (split in files so node --test runs them in parallel): each
// replica alone, with its own ticker, as every recorded seed replays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailures } from './campaign.js';
import { runCampaignProcess } from './campaign-process.js';

test('seeds 1..300 with every kind of fault run clean', async () => {
  const summary = await runCampaignProcess(['--start', '1', '--seeds', '300']);
  assert.equal(summary.failures.length, 0, describeFailures(summary));
  assert.equal(summary.seedsRun, 300);
  // The campaign really exercised the faults it claims to (a replica alone never quiesces: campaign-b's
  // store does; one group per process joins or leaves no other: campaign-groups does).
  const elsewhere = ['quiescences', 'groupJoins', 'groupLeaves'];
  for (const [kind, count] of Object.entries(summary.faults)) if (!elsewhere.includes(kind)) assert.ok(count > 0, `no ${kind} in the campaign`);
  assert.ok(summary.checks.ok >= 295, `only ${summary.checks.ok} histories fully checked`);
});
