// End-to-end: the forged-frame attack (forged-frames.ts) on the peer port of a real cluster without
// TLS: the member-id binding alone must stop it.
import { test } from 'node:test';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster } from '../server/testing/process-cluster.js';
import { plainTcp, replayForgedFrames } from './forged-frames.js';

test('forged proposals, appends and TimeoutNow from a process that knows the ids are not applied', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  try {
    await replayForgedFrames(cluster, [plainTcp]);
  } finally {
    await cluster.stop();
  }
});
