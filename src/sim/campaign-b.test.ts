// Half of the test-suite campaign (split in two files so node --test runs them in parallel): each
// replica hosted by a store (src/store), as a server runs it: one ticker, Beat frames between the
// processes, and idle groups that quiesce and must wake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailures } from './campaign.js';
import { runCampaignProcess } from './campaign-process.js';

test('seeds 301..600 with every kind of fault run clean, each replica in a store', async () => {
  const summary = await runCampaignProcess(['--start', '301', '--seeds', '300', '--store', 'true']);
  assert.equal(summary.failures.length, 0, describeFailures(summary));
  assert.equal(summary.seedsRun, 300);
  // The campaign really exercised the faults it claims to.
  for (const [kind, count] of Object.entries(summary.faults)) assert.ok(count > 0, `no ${kind} in the campaign`);
  assert.ok(summary.checks.ok >= 295, `only ${summary.checks.ok} histories fully checked`);
});
