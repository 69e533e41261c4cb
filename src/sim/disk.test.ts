// The simulated disk: a write survives a crash only once a sync covered it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EntryType, type Entry } from '../raft/types.js';
import { NodeDisk } from './disk.js';

const entry = (index: number, term = 1): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array([index]) });

test('a write the disk did not sync is lost in a crash; a synced one survives', () => {
  const node = new NodeDisk('d1');
  const disk = node.group(1);
  assert.equal(node.isEmpty(), true);
  disk.append([entry(1), entry(2)]);
  disk.setHardState({ term: 1, vote: 1, commit: 0 });
  assert.equal(disk.written.lastIndex(), 2, 'the process reads back what it wrote');
  assert.equal(disk.durable.lastIndex(), 0, 'nothing is durable before the sync');
  node.loseUnsynced();
  assert.equal(disk.written.lastIndex(), 0);
  assert.deepEqual(disk.written.hardState, { term: 0, vote: 0, commit: 0 });
  assert.equal(node.isEmpty(), true, 'a crash before the first sync leaves an empty disk (the member bootstraps again)');

  disk.append([entry(1), entry(2)]);
  node.sync();
  disk.append([entry(3)]);
  // A commit-only hard state is written without a sync (Ready.mustSync is false).
  disk.setHardState({ term: 1, vote: 1, commit: 2 });
  node.loseUnsynced();
  assert.equal(disk.durable.lastIndex(), 2);
  assert.equal(disk.written.lastIndex(), 2, 'entry 3 was never synced');
  assert.equal(disk.written.hardState.commit, 0, 'neither was the commit index');
  assert.equal(node.isEmpty(), false);
});

test('a sync makes everything written before it durable, and the images stay apart afterwards', () => {
  const node = new NodeDisk('d1');
  const disk = node.group(1);
  disk.append([entry(1), entry(2), entry(3)]);
  node.sync();
  // A new leader's entries replace the suffix from 2: written, not yet synced.
  disk.append([entry(2, 2)]);
  assert.equal(disk.written.lastIndex(), 2);
  assert.equal(disk.durable.lastIndex(), 3, 'the durable log is untouched by an unsynced write');
  assert.notEqual(disk.written.chainAt(2), disk.durable.chainAt(2), 'the two logs differ from index 2');
  assert.equal(disk.written.chainAt(1), disk.durable.chainAt(1), 'and share the prefix before it');
  node.sync();
  assert.equal(disk.durable.lastIndex(), 2);
  assert.equal(disk.durable.chainAt(2), disk.written.chainAt(2));
});

test("a member's own snapshot is durable at once in both images, and its log keeps only what follows it", () => {
  const node = new NodeDisk('d1');
  const disk = node.group(1);
  disk.append([entry(1), entry(2), entry(3), entry(4)]);
  node.sync();
  disk.append([entry(5)]);
  const snapshot = { metadata: { index: 3, term: 1, conf: { voters: [1], learners: [] } }, data: new Uint8Array(0) };
  disk.saveSnapshotFile(snapshot);
  disk.markOwnSnapshot(snapshot);
  for (const image of [disk.written, disk.durable]) {
    assert.equal(image.snapshotIndex(), 3);
    assert.equal(image.firstIndex(), 4, 'the entries the snapshot covers are gone (the WAL releases them)');
  }
  node.loseUnsynced();
  assert.equal(disk.written.snapshotIndex(), 3, 'the snapshot survives a crash');
  assert.equal(disk.written.lastIndex(), 4, 'entry 5 was never synced');
  assert.deepEqual(disk.written.entriesAfterSnapshot().map((e) => e.index), [4]);
  assert.equal(disk.snapshotFile(snapshot.metadata), snapshot);
});

test("a snapshot from the leader replaces a log that differs from it, and is lost with an unsynced marker", () => {
  const node = new NodeDisk('d1');
  const disk = node.group(1);
  disk.append([entry(1), entry(2)]);
  node.sync();
  const snapshot = { metadata: { index: 5, term: 3, conf: { voters: [1], learners: [] } }, data: new Uint8Array(0) };
  disk.saveSnapshotFile(snapshot);
  disk.writeSnapshotMarker(snapshot, 'chain-5');
  assert.equal(disk.written.snapshotIndex(), 5);
  assert.equal(disk.written.entries.length, 0, 'the whole log is replaced');
  assert.equal(disk.durable.snapshotIndex(), 0);
  node.loseUnsynced();
  assert.equal(disk.written.snapshotIndex(), 0, 'an unsynced marker is lost in a crash');
  assert.equal(disk.written.lastIndex(), 2);
  assert.equal(disk.snapshotFile(snapshot.metadata), snapshot, 'the file itself was durable once saved');
});

test("one sync makes every group's writes durable, and a crash loses every group's unsynced writes", () => {
  const node = new NodeDisk('d1');
  const [one, two] = [node.group(1), node.group(2)];
  one.append([entry(1)]);
  two.append([entry(1), entry(2)]);
  node.sync();
  assert.deepEqual([one.durable.lastIndex(), two.durable.lastIndex()], [1, 2], 'the shared WAL syncs both groups at once');
  one.append([entry(2)]);
  two.setHardState({ term: 2, vote: 1, commit: 2 });
  node.loseUnsynced();
  assert.equal(one.written.lastIndex(), 1, "group 1's entry 2 was never synced");
  assert.equal(two.written.hardState.term, 0, "neither was group 2's hard state");
  assert.deepEqual(node.groupIds(), [], 'neither group has a snapshot or a join record: a restart finds no group');
  const snapshot = { metadata: { index: 1, term: 1, conf: { voters: [1], learners: [] } }, data: new Uint8Array(0) };
  node.group(3).bootstrap(snapshot, 'chain-1', { term: 1, vote: 0, commit: 1 });
  node.group(2).joined = { catchUpIndex: 4, members: [] };
  assert.deepEqual(node.groupIds(), [2, 3]);
  node.removeGroup(3);
  assert.deepEqual(node.groupIds(), [2]);
});
