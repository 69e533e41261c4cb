// Memory under hostile clients, measured on a real member process: what one connection can make
// a member hold must stay bounded, and the member must keep serving everyone else meanwhile.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, type MemberProcess } from '../server/testing/process-cluster.js';
import { UnfinishedStreams } from '../api/grpc/testing/unfinished-streams.js';

const MiB = 1024 * 1024;
/** What an attack may add to a member's resident memory (the budget is 256 MB). */
const RSS_GROWTH_MAX_BYTES = 128 * MiB;

let cluster: ProcessCluster;

before(async () => {
  cluster = await ProcessCluster.start({ nodes: 1 });
});

after(async () => {
  await cluster?.stop();
});

/** A field of /proc/<pid>/status in bytes: VmRSS (resident now) or VmHWM (the most it ever was). */
function memoryOf(member: MemberProcess, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${member.process!.pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
}

async function putAndGet(member: MemberProcess, key: string): Promise<string | undefined> {
  await cluster.call(member, 'KV', 'Put', { key: Buffer.from(key), value: Buffer.from('served') });
  const response = await cluster.call<{ kvs: { value: Buffer }[] }>(member, 'KV', 'Range', { key: Buffer.from(key) });
  return response.kvs[0]?.value.toString();
}

test('1,500 unfinished gRPC streams of the largest message on one connection leave RSS bounded, and others are served', { timeout: E2E_TEST_TIMEOUT_MS }, async (t) => {
  const member = cluster.members[0]!;
  assert.equal(await putAndGet(member, 'before'), 'served');
  const baseline = memoryOf(member, 'VmRSS');
  const [host, port] = member.client.split(':') as [string, string];
  // The largest message a member accepts by default: --max-request-bytes (1.5 MiB) + 512 KiB.
  // Buffered whole, 1,500 of them took a member from 777 MB to 3.4 GB.
  const attack = await UnfinishedStreams.open({ host, port: Number(port), streams: 1500, messageBytes: 2 * MiB });
  try {
    await attack.settled();
    assert.equal(await putAndGet(member, 'during'), 'served', 'another client is served while the attack holds its streams');
    const grown = memoryOf(member, 'VmHWM') - baseline;
    t.diagnostic(`RSS ${(baseline / MiB).toFixed(0)} MiB before, peak ${((baseline + grown) / MiB).toFixed(0)} MiB; attacker sent ${(attack.report.sentBytes / MiB).toFixed(0)} MiB`);
    assert.ok(grown < RSS_GROWTH_MAX_BYTES, `peak RSS grew by ${(grown / MiB).toFixed(0)} MiB (from ${(baseline / MiB).toFixed(0)} MiB)`);
    // The streams beyond the connection's limits were answered, not reset.
    assert.ok((attack.report.statuses['8'] ?? 0) > 0, JSON.stringify(attack.report));
    assert.equal(attack.report.closed, false, 'the attacking connection itself stays open');
  } finally {
    attack.close();
  }
});
