// A part of the test-suite campaign (a file of its own so node --test runs it beside the others):
// each process hosts 3 raft groups in its store, as a server hosting several groups does: one disk
// and one sync for all of them (a crash loses every group's unsynced writes), one ticker, Beats that
// carry every group's heartbeats, each group checked on its own, and the groups other than the
// cluster's following its members as they join and leave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailures } from './campaign.js';
import { runCampaignProcess } from './campaign-process.js';

test('seeds 451..600 with every kind of fault run clean, 3 groups per process', async () => {
  const summary = await runCampaignProcess(['--start', '451', '--seeds', '150', '--store', 'true', '--groups', '3']);
  assert.equal(summary.failures.length, 0, describeFailures(summary));
  assert.equal(summary.seedsRun, 150);
  // The campaign really exercised the faults it claims to, including members joining and leaving the other groups.
  for (const [kind, count] of Object.entries(summary.faults)) assert.ok(count > 0, `no ${kind} in the campaign`);
  assert.ok(summary.checks.ok >= 148, `only ${summary.checks.ok} histories fully checked`);
});
