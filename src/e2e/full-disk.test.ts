// A member whose disk fills, with real processes: restarted with only a few bytes free for its WAL
// and snapshot files (LICHEN_UNSAFE_DISK_BUDGET_BYTES, the `full-disk` fault of `lichen check`),
// it stops by itself at its first write with exit code 4 and a message that names the file, the
// error and the remedy, while the other two keep serving; restarted with the space freed, it opens
// its WAL, catches up, and every member agrees on HashKV.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { EXIT_DISK_FULL } from '../cli/dispatch.js';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, type MemberProcess } from '../server/testing/process-cluster.js';

function exitCodeOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

test('a member whose disk fills stops with exit code 4 and the remedy, the others keep serving, and once space is freed it catches up and agrees', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  try {
    const put = (m: MemberProcess, key: string) =>
      cluster.call<{ header: { revision: string } }>(m, 'KV', 'Put', { key: Buffer.from(key), value: Buffer.alloc(1000, key) });
    const leader = await cluster.waitForLeader();
    for (let i = 0; i < 20; i++) await put(leader, `before/${i}`);
    const full = cluster.members.find((m) => m !== leader)!;

    // 100 kB free: about a hundred puts of 1 kB fill it.
    await cluster.kill(full);
    await cluster.launch(full, { env: { LICHEN_UNSAFE_DISK_BUDGET_BYTES: '100000' } });
    const exited = exitCodeOf(full.process!);
    // The others keep a quorum: every put is acknowledged while (and after) the member stops.
    let written = 0;
    let code: number | null | undefined;
    void exited.then((c) => (code = c));
    while (code === undefined) {
      await put(leader, `during/${written++}`);
      assert.ok(written < 2_000, 'the member with the full disk never stopped');
    }
    assert.equal(code, EXIT_DISK_FULL, full.log.slice(-10).join('\n'));
    const message = full.log.find((line) => line.includes('stopping: no space left on device writing'));
    assert.ok(message, `no stop message; last lines:\n${full.log.slice(-10).join('\n')}`);
    assert.ok(message.includes(join(full.dataDir, 'log')), `the message names the WAL file: ${message}`);
    assert.match(message, /Free space on the disk that holds .*, then start this member again/);
    for (let i = 0; i < 20; i++) await put(leader, `after/${i}`);

    // Space freed: it starts on the same data directory (its WAL opens) and catches up.
    await cluster.launch(full);
    const last = await put(leader, 'last');
    const revision = Number(last.header.revision);
    for (;;) {
      const response = await cluster.call<{ kvs: { value: Buffer }[] }>(full, 'KV', 'Range', { key: Buffer.from('last'), serializable: true });
      if (response.kvs.length > 0) break;
      // Waits on the member's progress, bounded by the test's timeout; no figure depends on it.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const hashes = await Promise.all(cluster.members.map((m) => cluster.call<{ hash: string }>(m, 'Maintenance', 'HashKV', { revision })));
    assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `members disagree on HashKV at revision ${revision}`);
  } finally {
    await cluster.stop();
  }
});
