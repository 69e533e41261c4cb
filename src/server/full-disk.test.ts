// A member whose disk fills, in-process over the real WAL, snapshot files and lmdb: its file layer
// is given a budget of bytes (config.unsafe.diskBudgetBytes, as LICHEN_UNSAFE_DISK_BUDGET_BYTES
// sets it). The write that finds no space stops the member (fail-stop) with an error that says so;
// every put acknowledged before it is there after a restart with the space freed, and none after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDiskFull } from '../errors.js';
import { startTestMember } from './testing/in-process.js';
import { defaultNodeConfig } from './config.js';

const unsafe = (diskBudgetBytes?: number) => ({ ...defaultNodeConfig({ name: 'solo', dataDir: '' }).unsafe, diskBudgetBytes });

test('a member whose disk fills stops on the write that found no space, acknowledged only what is durable, and restarts once space is freed', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lichen-full-disk-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  // A member that fails sets its process's exit code (node.ts), as `lichen serve` must; the
  // process here is the test runner's, whose verdict is the test's.
  t.after(() => void (process.exitCode = undefined));
  // Enough for the start (its first snapshot, WAL segment and preallocation), then ~40 puts of 4 kB.
  const member = await startTestMember({ dataDir, unsafe: unsafe(1_400_000) });
  const acknowledged: string[] = [];
  let failure: unknown;
  for (let i = 0; i < 1000 && failure === undefined; i++) {
    try {
      await member.call('KV', 'Put', { key: Buffer.from(`k${i}`), value: Buffer.alloc(4096, i) });
      acknowledged.push(`k${i}`);
    } catch (error) {
      failure = error;
    }
  }
  assert.ok(failure !== undefined, 'the disk never filled');
  assert.ok(acknowledged.length > 0, 'the start left room for some puts');
  const halt = await member.node.halted;
  assert.equal(halt.removed, false);
  assert.ok(isDiskFull(halt.error), `stopped for the full disk: ${String(halt.error)}`);
  assert.match(String((halt.error as Error).message), new RegExp(`no space left on device: cannot write ${join(dataDir, 'log')}`));
  // Refused, not acknowledged: later writes fail too.
  await assert.rejects(member.call('KV', 'Put', { key: Buffer.from('late'), value: Buffer.from('x') }));
  await member.close({ keepData: true });

  // Still full: the member stops again, on start or at its first write, never serving a write it cannot keep.
  const stillFull = await startTestMember({ dataDir, unsafe: unsafe(0) }).catch((error: unknown) => error);
  if (isDiskFull(stillFull)) assert.ok(true);
  else {
    const again = stillFull as Awaited<ReturnType<typeof startTestMember>>;
    await assert.rejects(again.call('KV', 'Put', { key: Buffer.from('late'), value: Buffer.from('x') }));
    assert.ok(isDiskFull((await again.node.halted).error));
    await again.close({ keepData: true });
  }

  // Space freed: the WAL opens (a record cut part way was cut off) and every acknowledged put is there.
  const restarted = await startTestMember({ dataDir, unsafe: unsafe(undefined) });
  const range = await restarted.call<{ kvs: { key: Buffer }[] }>('KV', 'Range', { key: Buffer.from('k'), range_end: Buffer.from('l'), keys_only: true });
  const keys = range.kvs.map((kv) => kv.key.toString());
  for (const key of acknowledged) assert.ok(keys.includes(key), `acknowledged put ${key} survived`);
  assert.ok(keys.length <= acknowledged.length + 1, 'at most the put that failed (outcome unknown to its client) is there besides');
  await restarted.call('KV', 'Put', { key: Buffer.from('after'), value: Buffer.from('space freed') });
  await restarted.close({ keepData: true });
});
