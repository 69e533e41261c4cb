// One process's storage shared by several raft groups: each group gets back its own log, snapshot
// and state machine from the one data directory, and a group's snapshot export and install touch
// only its own partition of the engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupPrefix } from '../engine/index.js';
import { ConfChangeType } from '../raft/index.js';
import type { LoadedSnapshot } from '../wal/index.js';
import { MemberTable, encodeJson } from './members.js';
import { ProcessStorage, type GroupStorage } from './process-storage.js';
import { encodeSnapshotData } from './snapshot-data.js';
import type { KvStateMachine } from './state-machine.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-process-storage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A group's first snapshot: one voter, and the state its machine starts with (empty). */
const initial = (machine: KvStateMachine): LoadedSnapshot => {
  const members = new MemberTable();
  members.applyConfChange({ type: ConfChangeType.AddNode, nodeId: 1, context: encodeJson({ name: 'n1', peerAddress: '127.0.0.1:1' }) });
  return { metadata: { index: 1, term: 1, conf: { voters: [1], learners: [] } }, data: encodeSnapshotData(members, machine.export()) };
};

const put = (key: string, value: string) => ({ type: 'put', request: { key: Buffer.from(key), value: Buffer.from(value) } }) as const;

function keys(storage: GroupStorage): string[] {
  return storage.machine.mvcc.range({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) }).kvs.map((kv) => `${Buffer.from(kv.key)}=${Buffer.from(kv.value)}`);
}

/** Applies puts as raft would after persisting them: the entries in the group's WAL first. */
async function write(storage: GroupStorage, ...pairs: Array<[string, string]>): Promise<void> {
  for (const [key, value] of pairs) {
    const index = storage.raftLog.lastIndex() + 1;
    const entry = { index, term: 1, type: 0 as const, data: Buffer.from(`${key}=${value}`) };
    await storage.wal.save({ hardState: { term: 1, vote: 1, commit: index }, entries: [entry] });
    storage.raftLog.append([entry]);
    storage.machine.apply(index, put(key, value));
  }
}

test('groups of one process keep their logs, snapshots and keys apart, and each gets its own back', async (t) => {
  const dir = tempDir(t);
  const disk = await ProcessStorage.open({ dir, engine: 'lmdb' });
  const groups = new Map<number, GroupStorage>();
  for (const id of [1, 2, 300]) groups.set(id, await disk.replicaStorage(id, initial));
  await write(groups.get(1)!, ['a', 'one'], ['shared', 'g1']);
  await write(groups.get(2)!, ['b', 'two'], ['shared', 'g2']);
  await write(groups.get(300)!, ['c', 'three']);
  assert.deepEqual(keys(groups.get(1)!), ['a=one', 'shared=g1']);
  assert.deepEqual(keys(groups.get(2)!), ['b=two', 'shared=g2']);

  // Group 2 takes a snapshot: its export holds only its keys; the file is in its own directory.
  const two = groups.get(2)!;
  const members = MemberTable.fromJSON(two.members.toJSON());
  const snapshot = two.raftLog.createSnapshot(3, { voters: [1], learners: [] }, encodeSnapshotData(members, two.machine.export()));
  await two.snapshots.save(snapshot);
  await two.wal.saveSnapshotMarker(snapshot.metadata);
  assert.deepEqual(fs.readdirSync(join(dir, 'snapshots')).sort(), ['00000001', '00000002', '0000012c']);
  assert.equal(fs.readdirSync(join(dir, 'snapshots', '00000002')).length, 2);

  // Installing group 1's export into group 300 replaces group 300's keys and nothing else.
  groups.get(300)!.machine.install(groups.get(1)!.machine.export());
  assert.deepEqual(keys(groups.get(300)!), ['a=one', 'shared=g1']);
  assert.deepEqual(keys(two), ['b=two', 'shared=g2']);

  for (const storage of groups.values()) {
    await storage.wal.close();
    await storage.machine.close();
  }
  await disk.close();

  const again = await ProcessStorage.open({ dir, engine: 'lmdb' });
  t.after(() => again.close());
  assert.deepEqual(again.groupIds(), [1, 2, 300]);
  const one = await again.replicaStorage(1);
  assert.deepEqual(keys(one), ['a=one', 'shared=g1']);
  assert.equal(one.raftLog.lastIndex(), 3);
  const twoAgain = await again.replicaStorage(2);
  assert.equal(twoAgain.snapshotIndex, 3);
  assert.deepEqual(keys(twoAgain), ['b=two', 'shared=g2']);
  await assert.rejects(again.replicaStorage(4), /group 4 has no snapshot/);
});

test('an engine holding lichen 0.1 keys is refused until its directory is upgraded', async (t) => {
  const dir = tempDir(t);
  const { LmdbEngine } = await import('../engine/index.js');
  const engine = LmdbEngine.open({ dir: join(dir, 'engine') });
  engine.write([{ type: 'put', key: Buffer.from('mapplied-index'), value: Buffer.from('7') }]);
  await engine.closeAsync();
  await assert.rejects(ProcessStorage.open({ dir, engine: 'lmdb' }), /holds keys of lichen 0\.1 \(not partitioned by group\)/);
});

test('a removed group leaves nothing on disk: its WAL records, keys and snapshot files go, also when the process stopped halfway', async (t) => {
  const dir = tempDir(t);
  const disk = await ProcessStorage.open({ dir, engine: 'lmdb' });
  const groups = new Map<number, GroupStorage>();
  for (const id of [1, 2, 3]) groups.set(id, await disk.replicaStorage(id, initial));
  for (const [id, storage] of groups) await write(storage, ['k', `g${id}`]);
  const partitionKeys = (storage: ProcessStorage, group: number): number =>
    [...storage.engine.range({ start: groupPrefix(group), end: groupPrefix(group + 1) })].length;
  assert.ok(partitionKeys(disk, 2) > 0 && partitionKeys(disk, 3) > 0);

  for (const id of [2, 3]) await groups.get(id)!.wal.close();
  await disk.removeGroup(2);
  assert.deepEqual(disk.groupIds(), [1, 3]);
  assert.equal(partitionKeys(disk, 2), 0);
  assert.deepEqual(fs.readdirSync(join(dir, 'snapshots')).sort(), ['00000001', '00000003']);
  // The process stops right after group 3's removal is durable in the WAL, before its files go.
  await disk.wal.removeGroup(3);
  await groups.get(1)!.wal.close();
  await disk.close();

  const again = await ProcessStorage.open({ dir, engine: 'lmdb' });
  t.after(() => again.close());
  assert.deepEqual(again.groupIds(), [1]);
  assert.deepEqual(again.wal.removedGroupIds(), []);
  assert.equal(partitionKeys(again, 2) + partitionKeys(again, 3), 0);
  assert.deepEqual(fs.readdirSync(join(dir, 'snapshots')), ['00000001']);
  assert.deepEqual(keys(await again.replicaStorage(1)), ['k=g1']);
  // A group created again under a removed id starts empty.
  assert.deepEqual(keys(await again.replicaStorage(2, initial)), []);
});

for (const engine of ['lmdb', 'leveldb'] as const) {
  test(`applied writes wait in the ${engine} engine for a commit, and durableIndex moves only with a sync`, async (t) => {
    const disk = await ProcessStorage.open({ dir: tempDir(t), engine });
    t.after(() => disk.close());
    const one = await disk.replicaStorage(1, initial);
    const durableAtOpen = one.machine.durableIndex;
    await write(one, ['a', '1'], ['b', '2'], ['c', '3']);
    assert.ok(one.machine.uncommittedOps > 0, 'applies are kept until a commit');
    assert.deepEqual(keys(one), ['a=1', 'b=2', 'c=3']);
    one.machine.commit();
    assert.equal(one.machine.uncommittedOps, 0);
    assert.equal(one.machine.durableIndex, durableAtOpen, 'a commit is not a sync');
    const applied = one.machine.appliedIndex;
    await one.machine.sync();
    assert.equal(one.machine.durableIndex, applied);
    await one.wal.close();
  });
}
