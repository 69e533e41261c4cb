// Memory under hostile clients, measured on a real member process: what one connection can make
// a member hold must stay bounded, and the member must keep serving everyone else meanwhile.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, freePort, type MemberProcess } from '../server/testing/process-cluster.js';
import { UnfinishedStreams } from '../api/grpc/testing/unfinished-streams.js';
import { TcpTransport } from '../transport/index.js';
import type { Message } from '../raft/types.js';

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

/** Starts a new peak: VmHWM becomes VmRSS (Linux's clear_refs, value 5). */
function resetPeak(member: MemberProcess): void {
  writeFileSync(`/proc/${member.process!.pid}/clear_refs`, '5');
}

/** A field of /proc/<pid>/status in bytes: VmRSS (resident now) or VmHWM (the peak since resetPeak). */
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
  resetPeak(member);
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

/** Polls `condition` every 50 ms until it holds; fails after `timeoutMs` (a bound, not a delay). */
async function eventually(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a 512 MiB snapshot from a current member is streamed to disk, not memory; the member keeps serving and keeps no file of it', { timeout: E2E_TEST_TIMEOUT_MS }, async (t) => {
  const member = cluster.members[0]!;
  // A member added as a learner and played by a transport in this process, so that its
  // connection passes the peer handshake (the member dials its address to check the claim).
  const port = await freePort();
  const list = await cluster.call<{ header: { cluster_id: string; member_id: string } }>(member, 'Cluster', 'MemberList', {});
  const added = await cluster.call<{ member: { ID: string } }>(member, 'Cluster', 'MemberAdd', { peerURLs: [`http://127.0.0.1:${port}`], isLearner: true });
  const [self, target] = [Number(added.member.ID), Number(list.header.member_id)];
  const sent: boolean[] = [];
  const peer = new TcpTransport({
    id: self,
    clusterId: Number(list.header.cluster_id),
    listen: { host: '127.0.0.1', port },
    onMessage: () => undefined,
    onSnapshotSent: (_to, ok) => sent.push(ok),
  });
  await peer.start();
  try {
    peer.addPeer(target, member.listenPeer);
    await eventually(() => peer.stats().peers[target]?.connected === true, 'the added member is connected');
    const snapDir = join(member.dataDir, 'snapshots', '00000001');
    const incoming = (): string[] => readdirSync(snapDir).filter((name) => name.endsWith('.incoming'));
    resetPeak(member);
    const baseline = memoryOf(member, 'VmRSS');
    // Stale (term 1: the member has campaigned since), so raft does not take it once it is in;
    // the data is never read (untouched memory costs this process nothing either).
    const snapshot: Message = {
      type: 'Snap',
      from: self,
      to: target,
      term: 1,
      snapshot: { metadata: { index: 1_000_000, term: 1, conf: { voters: [target], learners: [self] } }, data: Buffer.allocUnsafe(512 * MiB) },
    };
    peer.send([snapshot]);
    await eventually(() => incoming().length > 0, 'the snapshot is being stored in a file');
    assert.equal(await putAndGet(member, 'during-snapshot'), 'served', 'another client is served while the snapshot streams in');
    await eventually(() => sent.length > 0 && incoming().length === 0, 'the snapshot is sent, and its file removed once raft refused it');
    assert.deepEqual(sent, [true]);
    const grown = memoryOf(member, 'VmHWM') - baseline;
    t.diagnostic(`RSS ${(baseline / MiB).toFixed(0)} MiB before, peak ${((baseline + grown) / MiB).toFixed(0)} MiB`);
    assert.ok(grown < RSS_GROWTH_MAX_BYTES, `peak RSS grew by ${(grown / MiB).toFixed(0)} MiB (from ${(baseline / MiB).toFixed(0)} MiB)`);
  } finally {
    await peer.close();
  }
});
