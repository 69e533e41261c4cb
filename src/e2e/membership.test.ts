// Membership in a live cluster, with real processes: growing by --join under load, replacing a
// member, moving leadership, and a follower that fell behind past compaction catching up by
// snapshot. After each, every member holds the same data and no acknowledged write is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, type MemberProcess } from '../server/testing/process-cluster.js';


interface Member {
  ID: string;
  name: string;
  isLearner: boolean;
}

/** Sequential puts spread over the running members, recording every acknowledged write. */
class Writer {
  readonly acknowledged = new Map<string, string>();
  private running = true;
  private finished: Promise<void>;

  constructor(private readonly cluster: ProcessCluster, prefix: string) {
    this.finished = this.loop(prefix);
  }

  private async loop(prefix: string): Promise<void> {
    for (let i = 0; this.running; i++) {
      const members = this.cluster.running();
      if (members.length === 0) return; // The cluster is being stopped.
      const member = members[i % members.length]!;
      const key = `${prefix}/${String(i).padStart(6, '0')}`;
      try {
        await this.cluster.call(member, 'KV', 'Put', { key: Buffer.from(key), value: Buffer.from(String(i)) }, 3000);
        this.acknowledged.set(key, String(i));
      } catch {
        // Unknown or failed outcome: not acknowledged, so the check below does not require it.
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.finished;
  }
}

async function members(cluster: ProcessCluster, via: MemberProcess): Promise<Member[]> {
  return (await cluster.call<{ members: Member[] }>(via, 'Cluster', 'MemberList', {})).members;
}

/** Polls (bounded) until `condition` holds. */
async function eventually(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts a new member that joins through `via`, tracked by the cluster. */
async function addByJoin(cluster: ProcessCluster, name: string, via: MemberProcess): Promise<MemberProcess> {
  const member = await cluster.newJoiner(name);
  await cluster.join(member, via);
  return member;
}

async function isVoter(cluster: ProcessCluster, via: MemberProcess, name: string): Promise<boolean> {
  return (await members(cluster, via)).some((m) => m.name === name && !m.isLearner);
}

/** Every acknowledged write is readable on every running member, and their hashes agree. */
async function assertConverged(cluster: ProcessCluster, acknowledged: Map<string, string>): Promise<void> {
  const running = cluster.running();
  const marker = await cluster.call<{ header: { revision: string } }>(running[0]!, 'KV', 'Put', { key: Buffer.from('converged'), value: Buffer.from('1') });
  const revision = Number(marker.header.revision);
  for (const member of running) {
    await eventually(`${member.name} applied revision ${revision}`, async () => {
      const r = await cluster.call<{ header: { revision: string } }>(member, 'KV', 'Range', { key: Buffer.from('converged'), serializable: true });
      return Number(r.header.revision) >= revision;
    });
    const { kvs } = await cluster.call<{ kvs: { key: Buffer; value: Buffer }[] }>(member, 'KV', 'Range', {
      key: Buffer.from('\0'),
      range_end: Buffer.from('\0'),
      serializable: true,
      revision,
    });
    const stored = new Map(kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
    for (const [key, value] of acknowledged) {
      assert.equal(stored.get(key), value, `${member.name} lost the acknowledged write ${key}`);
    }
  }
  const hashes = await Promise.all(running.map((m) => cluster.call<{ hash: string }>(m, 'Maintenance', 'HashKV', { revision })));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `HashKV differs at revision ${revision}: ${hashes.map((h) => h.hash).join(', ')}`);
}

test('a one-member cluster grows to three by --join while a client writes', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 1 });
  try {
    const writer = new Writer(cluster, 'grow');
    const [first] = cluster.members;
    const second = await addByJoin(cluster, 'n2', first!);
    await eventually('n2 is a voter', () => isVoter(cluster, first!, 'n2'));
    const third = await addByJoin(cluster, 'n3', second);
    await eventually('n3 is a voter', () => isVoter(cluster, first!, 'n3'));
    await writer.stop();
    assert.ok(writer.acknowledged.size > 0, 'the writer made progress during the joins');
    assert.equal((await members(cluster, third)).length, 3);
    await assertConverged(cluster, writer.acknowledged);

    // Joining is not needed again: a restarted joiner comes back from its data directory.
    await cluster.kill(third);
    await cluster.launch(third);
    await assertConverged(cluster, writer.acknowledged);
    assert.equal((await members(cluster, third)).length, 3, 'restarting did not add another member');
  } finally {
    await cluster.stop();
  }
});

test('a member is replaced under load: add the new one, then remove the old one', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  try {
    const writer = new Writer(cluster, 'replace');
    const [old, stay] = cluster.members;
    await addByJoin(cluster, 'n4', stay!);
    await eventually('n4 is a voter', () => isVoter(cluster, stay!, 'n4'));
    const oldId = (await members(cluster, stay!)).find((m) => m.name === old!.name)!.ID;
    await cluster.call(stay!, 'Cluster', 'MemberRemove', { ID: oldId });
    await eventually('n1 is gone from the member list', async () => !(await members(cluster, stay!)).some((m) => m.name === old!.name));
    // The removed member stops by itself, says why, and refuses to start again on its data.
    const removedProcess = old!.process!;
    await eventually('the removed member exits', async () => removedProcess.exitCode !== null);
    assert.equal(removedProcess.exitCode, 1);
    assert.ok(old!.log.some((line) => line.includes('removed from the cluster')), 'the removed member says why it stopped');
    await cluster.kill(old!);
    await assert.rejects(cluster.launch(old!), /was removed from cluster/);
    const afterRemoval = writer.acknowledged.size;
    await eventually('the writer commits after the removal', async () => writer.acknowledged.size > afterRemoval + 10);
    await writer.stop();
    assert.deepEqual((await members(cluster, stay!)).map((m) => m.name).sort(), ['n2', 'n3', 'n4']);
    await assertConverged(cluster, writer.acknowledged);
  } finally {
    await cluster.stop();
  }
});

test('MoveLeader hands leadership to the chosen member', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  try {
    const leader = await cluster.waitForLeader();
    const target = cluster.members.find((m) => m !== leader)!;
    const targetId = (await members(cluster, leader)).find((m) => m.name === target.name)!.ID;
    await cluster.call(leader, 'Maintenance', 'MoveLeader', { targetID: targetId });
    const newLeader = await cluster.waitForLeader();
    assert.equal(newLeader.name, target.name);
    await cluster.call(target, 'KV', 'Put', { key: Buffer.from('after-move'), value: Buffer.from('ok') });
  } finally {
    await cluster.stop();
  }
});

test('a follower that fell behind past compaction catches up from a snapshot', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const cluster = await ProcessCluster.start({
    nodes: 3,
    flags: ['--snapshot-entries', '50', '--snapshot-catch-up-entries', '10'],
  });
  try {
    const leader = await cluster.waitForLeader();
    const laggard = cluster.members.find((m) => m !== leader)!;
    await cluster.kill(laggard);
    const acknowledged = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const key = `behind/${i}`;
      await cluster.call(leader, 'KV', 'Put', { key: Buffer.from(key), value: Buffer.from(String(i)) });
      acknowledged.set(key, String(i));
    }
    assert.ok(leader.log.some((line) => line.includes('"took a snapshot"')), 'the leader compacted its log');
    await cluster.launch(laggard);
    await assertConverged(cluster, acknowledged);
    assert.ok(
      laggard.log.some((line) => line.includes('"installed a snapshot from the leader"')),
      'the restarted follower caught up through a snapshot',
    );
  } finally {
    await cluster.stop();
  }
});
