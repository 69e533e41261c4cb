// A part of the test-suite campaign (split in files so node --test runs them in parallel): each
// replica hosted by a store (src/store), as a server runs it: one ticker, Beat frames between the
// processes, and idle groups that quiesce and must wake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailures } from './campaign.js';
import { runCampaignProcess } from './campaign-process.js';

test('seeds 301..450 with every kind of fault run clean, each replica in a store', async () => {
  const summary = await runCampaignProcess(['--start', '301', '--seeds', '150', '--store', 'true']);
  assert.equal(summary.failures.length, 0, describeFailures(summary));
  assert.equal(summary.seedsRun, 150);
  // The campaign really exercised the faults it claims to (one group per process joins or leaves no other: campaign-groups does).
  for (const [kind, count] of Object.entries(summary.faults)) if (kind !== 'groupJoins' && kind !== 'groupLeaves') assert.ok(count > 0, `no ${kind} in the campaign`);
  assert.ok(summary.checks.ok >= 148, `only ${summary.checks.ok} histories fully checked`);
});
