// Half of the test-suite campaign (split in two files so node --test runs them in parallel).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, runCampaign } from './campaign.js';

test('seeds 1..300 with every kind of fault run clean', async () => {
  const summary = await runCampaign(parseArgs(['--start', '1', '--seeds', '300']));
  const report = summary.failures.map((f) => `${f.kind} ${f.message}\n  replay: ${f.replay}`).join('\n');
  assert.equal(summary.failures.length, 0, report);
  assert.equal(summary.seedsRun, 300);
  // The campaign really exercised the faults it claims to.
  for (const [kind, count] of Object.entries(summary.faults)) assert.ok(count > 0, `no ${kind} in the campaign`);
  assert.ok(summary.checks.ok >= 295, `only ${summary.checks.ok} histories fully checked`);
});
