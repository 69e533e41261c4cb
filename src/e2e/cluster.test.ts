// End-to-end: a real 3-member cluster of separate processes on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, type MemberProcess } from '../server/testing/process-cluster.js';


let cluster: ProcessCluster;

before(async () => {
  cluster = await ProcessCluster.start({ nodes: 3 });
});

after(async () => {
  await cluster?.stop();
});

const put = (m: MemberProcess, key: string, value: string) =>
  cluster.call<{ header: { revision: string } }>(m, 'KV', 'Put', { key: Buffer.from(key), value: Buffer.from(value) });

async function get(m: MemberProcess, key: string, serializable = false): Promise<string | undefined> {
  const response = await cluster.call<{ kvs: { value: Buffer }[] }>(m, 'KV', 'Range', { key: Buffer.from(key), serializable });
  return response.kvs[0]?.value.toString();
}

async function hashAt(m: MemberProcess, revision: number): Promise<string> {
  const response = await cluster.call<{ hash: string }>(m, 'Maintenance', 'HashKV', { revision });
  return response.hash;
}

test('a write through one member is read back linearizably through every other member', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const [a, b, c] = cluster.members;
  await put(a!, 'greeting', 'hello');
  assert.equal(await get(b!, 'greeting'), 'hello');
  assert.equal(await get(c!, 'greeting'), 'hello');
});

test('after the leader is killed, a new leader is elected and writes continue', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const leader = await cluster.waitForLeader();
  await cluster.kill(leader);
  const survivors = cluster.running();
  const newLeader = await cluster.waitForLeader(20_000, survivors);
  assert.notEqual(newLeader.name, leader.name);
  for (let i = 0; i < 20; i++) await put(survivors[i % 2]!, `after-failover/${i}`, String(i));
  assert.equal(await get(survivors[0]!, 'after-failover/19'), '19');

  // The killed member restarts from its data directory and catches up.
  await cluster.launch(leader);
  const last = await put(newLeader, 'after-restart', 'yes');
  const revision = Number(last.header.revision);
  const deadline = Date.now() + 20_000;
  while ((await get(leader, 'after-restart', true)) !== 'yes') {
    assert.ok(Date.now() < deadline, 'the restarted member did not catch up within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const hashes = await Promise.all(cluster.members.map((m) => hashAt(m, revision)));
  assert.equal(new Set(hashes).size, 1, `members disagree on HashKV at revision ${revision}: ${hashes.join(', ')}`);
});

test('/metrics reports raft, WAL and per-method gRPC latency figures', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const member = cluster.running()[0]!;
  await put(member, 'metered', 'yes');
  const text = await (await fetch(`http://${member.http}/metrics`)).text();
  assert.match(text, /^lichen_grpc_request_seconds_count\{method="\/etcdserverpb\.KV\/Put",code="OK"\} [1-9]\d*$/m);
  assert.match(text, /^lichen_raft_term [1-9]\d*$/m);
  assert.match(text, /^lichen_raft_applied_index [1-9]\d*$/m);
  for (const stage of ['disk_wal_fsync_duration', 'disk_backend_commit_duration', 'server_apply_duration', 'server_proposal_commit_duration']) {
    assert.match(text, new RegExp(`^lichen_${stage}_seconds_count [1-9]\\d*$`, 'm'), stage);
  }
  assert.match(text, /^lichen_mvcc_revision [1-9]\d*$/m);
  assert.match(text, /^lichen_server_has_leader 1$/m);
  assert.match(text, /^lichen_server_is_leader [01]$/m);
  assert.match(text, /^process_cpu_user_seconds_total \d/m);
  assert.match(text, /^nodejs_heap_size_used_bytes \d/m);
});

test('Hash is equal on members holding the same data, and a write changes it', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const members = cluster.running();
  /** Each member's Hash once it has applied `revision` (a serializable read shows what it applied). */
  const hashesAt = async (revision: number): Promise<number[]> => {
    const deadline = Date.now() + 20_000;
    for (const m of members) {
      for (;;) {
        const r = await cluster.call<{ header: { revision: string } }>(m, 'KV', 'Range', { key: Buffer.from('hashed'), serializable: true });
        if (Number(r.header.revision) >= revision) break;
        assert.ok(Date.now() < deadline, `${m.name} did not apply revision ${revision} within 20 s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    return Promise.all(members.map(async (m) => (await cluster.call<{ hash: number }>(m, 'Maintenance', 'Hash', {})).hash));
  };
  const first = Number((await put(members[0]!, 'hashed', 'one')).header.revision);
  const before = await hashesAt(first);
  assert.equal(new Set(before).size, 1, `members disagree on Hash: ${before.join(', ')}`);
  const second = Number((await put(members[1]!, 'hashed', 'two')).header.revision);
  const after = await hashesAt(second);
  assert.equal(new Set(after).size, 1, `members disagree on Hash: ${after.join(', ')}`);
  assert.notEqual(after[0], before[0], 'a write changes the hash');
});
