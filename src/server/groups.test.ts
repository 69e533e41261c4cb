// Raft groups besides the cluster's on real members (in this process, over loopback TCP, each on
// its own data directory: lmdb and the shared WAL on disk): groups created on three members keep
// their own data, survive a member's restart, catch a lagging member up by snapshot, and leave
// nothing behind on disk once removed.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { groupPrefix } from '../engine/index.js';
import { ProcessStorage, snapshotDirName, SNAP_DIR } from '../replica/index.js';
import type { Replica } from '../replica/index.js';
import { startTestCluster, startTestMember, type TestMember } from './testing/in-process.js';

const TICK_MS = 20;
const GROUPS = [2, 3, 4];

async function eventually(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Promise.resolve().then(condition).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const put = (key: string, value: string) => ({ type: 'put', request: { key: Buffer.from(key), value: Buffer.from(value) } }) as const;

/** The value of `key` in this member's copy of the group (a local read: what it applied). */
function localValue(replica: Replica, key: string): string | undefined {
  const [kv] = replica.store.range({ key: Buffer.from(key) }).kvs;
  return kv && Buffer.from(kv.value).toString();
}

/** Snapshot files of `group` in a member's data directory (the first is the group's bootstrap snapshot, index 1). */
const snapshotFiles = (dataDir: string, group: number): string[] => {
  const dir = join(dataDir, SNAP_DIR, snapshotDirName(group));
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith('.snap')) : [];
};

describe('raft groups besides the cluster\'s on three members', () => {
  let members: TestMember[] = [];
  after(async () => {
    await Promise.all(members.map((m) => m.close()));
  });

  it('are created, written, kept over a restart, caught up by snapshot, and removed from disk', { timeout: 120_000 }, async () => {
    // Snapshots every 8 entries, keeping 2 behind: a member that misses more must take a snapshot.
    const config = { tickMs: TICK_MS, snapshotEntries: 8, snapshotCatchUpEntries: 2 };
    members = await startTestCluster(3, config);
    await members[0]!.node.node.waitForLeader();
    for (const group of GROUPS) await Promise.all(members.map((m) => m.node.groups.createGroup(group)));
    for (const group of GROUPS) {
      const replica = members[0]!.node.groups.group(group)!;
      await replica.propose(put('k', `g${group}`));
      await replica.propose(put('shared', `from ${group}`));
    }
    // Each group has its own keys (the cluster's group has none of them).
    assert.equal(localValue(members[0]!.node.node, 'k'), undefined);
    for (const member of members) {
      for (const group of GROUPS) await eventually(`member ${member.node.memberId} applied group ${group}'s writes`, () => localValue(member.node.groups.group(group)!, 'shared') === `from ${group}`);
      assert.deepEqual(member.node.groups.groups, [1, ...GROUPS]);
    }

    // The third member stops; group 2 moves on far enough that its log no longer holds what it missed.
    const third = members[2]!;
    members = members.slice(0, 2);
    await third.close({ keepData: true });
    after(() => fs.rmSync(third.dataDir, { recursive: true, force: true }));
    // (If the third member led group 2, a proposal forwarded to it is lost, as in etcd: write through a live leader.)
    const leaderOfTwo = (): Replica | undefined => members.map((m) => m.node.groups.group(2)!).find((replica) => replica.isLeader());
    await eventually('group 2 has a leader among the running members', () => leaderOfTwo() !== undefined);
    for (let i = 0; i < 30; i++) await leaderOfTwo()!.propose(put(`late-${i}`, String(i)));

    // It takes no snapshot of its own now, so a new snapshot file of group 2 can only be its leader's.
    const restarted = await startTestMember({ ...config, snapshotEntries: 100_000, name: 'm3', dataDir: third.dataDir, listenPeer: third.node.addresses.peer });
    members.push(restarted);
    assert.deepEqual(restarted.node.groups.groups, [1, ...GROUPS], 'every group is opened again from the data directory');
    // What it applied before it stopped is there at once, from its own disk.
    for (const group of GROUPS) assert.equal(localValue(restarted.node.groups.group(group)!, 'k'), `g${group}`);
    const snapshotsBefore = snapshotFiles(third.dataDir, 2);
    const caughtUp = restarted.node.groups.group(2)!;
    await eventually('the restarted member caught up on group 2', () => localValue(caughtUp, 'late-29') === '29');
    const received = snapshotFiles(third.dataDir, 2).filter((name) => !snapshotsBefore.includes(name));
    assert.equal(received.length, 1, `group 2 took a snapshot from its leader: ${received.join(', ')} (had ${snapshotsBefore.join(', ')})`);
    assert.equal(localValue(caughtUp, 'late-0'), '0');
    // A write through the restarted member reaches the others: it takes part again.
    await restarted.node.groups.group(3)!.propose(put('after-restart', 'yes'));
    await eventually('the others applied the write', () => members.every((m) => localValue(m.node.groups.group(3)!, 'after-restart') === 'yes'));

    // Group 3 is removed from every member: nothing of it stays on their disks.
    for (const member of members) await member.node.groups.removeGroup(3);
    for (const member of members) {
      assert.deepEqual(member.node.groups.groups, [1, 2, 4]);
      assert.deepEqual(snapshotFiles(member.dataDir, 3), []);
    }
    await assert.rejects(members[0]!.node.groups.removeGroup(3), /group 3 is not hosted here/);
    await assert.rejects(members[0]!.node.groups.createGroup(1), /group 1 is the cluster's/);
    await assert.rejects(members[0]!.node.groups.createGroup(2), /group 2 is hosted here already/);
    const dataDirs = members.map((m) => m.dataDir);
    await Promise.all(members.map((m) => m.close({ keepData: true })));
    members = [];
    for (const dataDir of dataDirs) {
      after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
      const disk = await ProcessStorage.open({ dir: dataDir, engine: 'lmdb' });
      try {
        assert.deepEqual(disk.groupIds(), [1, 2, 4]);
        assert.equal([...disk.engine.range({ start: groupPrefix(3), end: groupPrefix(4) })].length, 0, 'no key of group 3 is left');
        assert.ok([...disk.engine.range({ start: groupPrefix(4), end: groupPrefix(5) })].length > 0, 'group 4 keeps its keys');
        assert.equal(fs.existsSync(join(dataDir, SNAP_DIR, snapshotDirName(3))), false);
      } finally {
        await disk.close();
      }
    }
  });
});
