// The WAL shared by the raft groups of a process: each group gets back exactly its own log, saves
// of many groups in one turn share one write and one fdatasync, and segments go once no group
// needs them, including when an idle group's entries sit in the oldest one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry, HardState } from '../raft/types.js';
import { SharedWal, WalCorruptError, type SyncEvent } from './index.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-shared-wal-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const entry = (index: number, term = 1, text = `entry-${index}`): Entry => ({ index, term, type: 0, data: Buffer.from(text) });
const range = (from: number, to: number, term = 1, bytes = 0): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term, bytes ? 'x'.repeat(bytes) : `g-${from + i}`));
const indexes = (entries: Entry[]): number[] => entries.map((e) => e.index);
const hs = (term: number, commit: number, vote = 0): HardState => ({ term, vote, commit });
const segmentFiles = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();

test('each group gets back its own hard state, entries and snapshot marker, conflicts resolved per group', async (t) => {
  const dir = tempDir(t);
  const wal = await SharedWal.open({ dir });
  const one = wal.attach(1).log;
  const two = wal.attach(2).log;
  const big = wal.attach(0xffff_ffff).log;
  await Promise.all([one.save({ hardState: hs(1, 3), entries: range(1, 5) }), two.save({ hardState: hs(4, 1, 9), entries: range(1, 2, 4) })]);
  // Group 1 loses entries 4-5 to a new leader; group 2 is untouched by it.
  await one.save({ hardState: hs(2, 4), entries: range(4, 6, 2) });
  await two.saveSnapshotMarker({ index: 2, term: 4, conf: { voters: [9], learners: [] } });
  await two.save({ entries: range(3, 4, 4) });
  await big.save({ hardState: hs(1, 0), entries: [] });
  await wal.close();

  const again = await SharedWal.open({ dir });
  t.after(() => again.close());
  assert.deepEqual(again.groupIds(), [1, 2, 0xffff_ffff]);
  const first = again.attach(1).recovered;
  assert.deepEqual(first.hardState, hs(2, 4));
  assert.equal(first.snapshot, undefined);
  assert.deepEqual(first.entries.map((e) => [e.index, e.term]), [[1, 1], [2, 1], [3, 1], [4, 2], [5, 2], [6, 2]]);
  const second = again.attach(2).recovered;
  assert.deepEqual(second.hardState, hs(4, 1, 9));
  assert.equal(second.snapshot?.index, 2);
  assert.deepEqual(indexes(second.entries), [3, 4]);
  assert.deepEqual(again.attach(0xffff_ffff).recovered, { hardState: hs(1, 0), entries: [] });
  const fresh = again.attach(7).recovered;
  assert.deepEqual(fresh, { hardState: { term: 0, vote: 0, commit: 0 }, entries: [] });
  // A group's log goes on where it left off, and refuses what its own log would refuse.
  const view = again.attach(3).log;
  assert.throws(() => view.save({ entries: [entry(2)] }), /leaves a gap after last index 0/);
});

test('a group closed and attached again in the same process gets its log back from the disk', async (t) => {
  const wal = await SharedWal.open({ dir: tempDir(t) });
  t.after(() => wal.close());
  const other = wal.attach(2).log;
  const first = wal.attach(1).log;
  await first.save({ hardState: hs(2, 1), entries: [...range(1, 2), ...range(3, 3, 2)] });
  await first.saveSnapshotMarker({ index: 1, term: 1, conf: { voters: [1], learners: [] } });
  await other.save({ hardState: hs(1, 0), entries: range(1, 4) });
  await first.close();
  const again = wal.attach(1);
  assert.deepEqual(again.recovered.entries.map((e) => [e.index, e.term]), [[2, 1], [3, 2]]);
  assert.deepEqual(again.recovered.hardState, hs(2, 1));
  assert.equal(again.recovered.snapshot?.index, 1);
  await again.log.save({ entries: range(4, 4, 2) });
  assert.throws(() => wal.attach(1), /already attached/);
});

test('saves of many groups issued in one turn go out in one write and one fdatasync', async (t) => {
  const dir = tempDir(t);
  const syncs: SyncEvent[] = [];
  const wal = await SharedWal.open({ dir, onSync: (event) => syncs.push(event) });
  t.after(() => wal.close());
  const logs = Array.from({ length: 16 }, (_, i) => wal.attach(i + 1).log);
  for (let turn = 1; turn <= 5; turn++) {
    const before = { syncs: wal.stats.fileSyncs, bytes: wal.stats.bytesWritten };
    await Promise.all(logs.map((log) => log.save({ hardState: hs(1, turn - 1), entries: [entry(turn)] })));
    assert.equal(wal.stats.fileSyncs - before.syncs, 1, `turn ${turn}: one fdatasync for 16 groups`);
    assert.ok(wal.stats.bytesWritten > before.bytes);
  }
  // A commit-only save may skip the flush; it is still written.
  const fileSyncs = wal.stats.fileSyncs;
  await Promise.all(logs.map((log) => log.save({ hardState: hs(1, 5), entries: [], sync: false })));
  assert.equal(wal.stats.fileSyncs, fileSyncs);
  await wal.close();
  const again = await SharedWal.open({ dir });
  t.after(() => again.close());
  for (let group = 1; group <= 16; group++) {
    const { recovered } = again.attach(group);
    assert.deepEqual(indexes(recovered.entries), [1, 2, 3, 4, 5]);
    assert.equal(recovered.hardState.commit, 5);
  }
});

test('a group that releases its entries lets segments go; one that does not keeps them until it does', async (t) => {
  const dir = tempDir(t);
  // Nothing is rewritten here (rewriteBytesMax 0): a busy group pins segments until it releases.
  const wal = await SharedWal.open({ dir, segmentBytes: 4096, rewriteBytesMax: 0 });
  t.after(() => wal.close());
  const busy = wal.attach(1).log;
  const lagging = wal.attach(2).log;
  await lagging.save({ hardState: hs(1, 2), entries: range(1, 2, 1, 100) });
  for (let i = 1; i <= 60; i++) await busy.save({ hardState: hs(1, i), entries: range(i, i, 1, 200) });
  assert.ok(wal.segmentCount > 3, `${wal.segmentCount} segments`);
  await busy.saveSnapshotMarker({ index: 60, term: 1, conf: { voters: [1], learners: [] } });
  await busy.releaseTo(60);
  assert.equal(segmentFiles(dir)[0], '0000000000000001.wal', 'the lagging group still needs the first segment');
  assert.ok(lagging.sizeBytes > 200 && busy.sizeBytes === 0, `lagging ${lagging.sizeBytes}, busy ${busy.sizeBytes}`);
  await lagging.saveSnapshotMarker({ index: 2, term: 1, conf: { voters: [1], learners: [] } });
  await lagging.releaseTo(2);
  assert.equal(segmentFiles(dir)[0], '0000000000000001.wal', 'its hard state is still only in the first segment');
  await lagging.save({ hardState: hs(2, 2), entries: [] });
  await lagging.releaseTo(2);
  assert.equal(segmentFiles(dir).length, 1, `only the tail is left: ${segmentFiles(dir).join(', ')}`);
  await wal.close();
  const again = await SharedWal.open({ dir, segmentBytes: 4096 });
  t.after(() => again.close());
  assert.equal(again.attach(1).recovered.snapshot?.index, 60);
  assert.deepEqual(again.attach(2).recovered, { hardState: hs(2, 2), snapshot: { index: 2, term: 1, conf: { voters: [1], learners: [] } }, entries: [] });
});

test('an idle group does not pin old segments: its live tail is rewritten into the new segment, and replays the same', async (t) => {
  const dir = tempDir(t);
  const wal = await SharedWal.open({ dir, segmentBytes: 4096 });
  t.after(() => wal.close());
  const busy = wal.attach(1).log;
  const idle = wal.attach(2).log;
  const marked = wal.attach(3).log;
  await idle.save({ hardState: hs(3, 2, 5), entries: [...range(1, 2, 2), ...range(3, 4, 3)] });
  await marked.save({ hardState: hs(1, 9), entries: range(1, 9) });
  await marked.saveSnapshotMarker({ index: 7, term: 1, conf: { voters: [1, 2], learners: [3] } });
  for (let i = 1; i <= 200; i++) {
    await busy.save({ hardState: hs(1, i), entries: range(i, i, 1, 200) });
    if (i % 20 === 0) {
      await busy.saveSnapshotMarker({ index: i, term: 1, conf: { voters: [1], learners: [] } });
      await busy.releaseTo(i);
    }
  }
  const files = segmentFiles(dir);
  assert.ok(files.length <= 3, `old segments went although idle groups wrote only into the first: ${files.join(', ')}`);
  assert.notEqual(files[0], '0000000000000001.wal');
  await wal.close();
  const again = await SharedWal.open({ dir, segmentBytes: 4096 });
  t.after(() => again.close());
  const idleBack = again.attach(2).recovered;
  assert.deepEqual(idleBack.hardState, hs(3, 2, 5));
  assert.deepEqual(idleBack.entries.map((e) => [e.index, e.term, Buffer.from(e.data).toString()]), [
    [1, 2, 'g-1'],
    [2, 2, 'g-2'],
    [3, 3, 'g-3'],
    [4, 3, 'g-4'],
  ]);
  const markedBack = again.attach(3).recovered;
  assert.deepEqual(markedBack.snapshot, { index: 7, term: 1, conf: { voters: [1, 2], learners: [3] } });
  assert.deepEqual(indexes(markedBack.entries), [8, 9]);
  assert.equal(again.attach(1).recovered.hardState.commit, 200);
  // The rewritten groups go on writing where they were.
  const idleAgain = again.attach(4).log;
  await idleAgain.save({ entries: range(1, 1) });
});

test('a torn write at the tail is cut off for every group; damage before it is refused', async (t) => {
  const dir = tempDir(t);
  const wal = await SharedWal.open({ dir });
  const a = wal.attach(1).log;
  const b = wal.attach(2).log;
  await Promise.all([a.save({ hardState: hs(1, 1), entries: range(1, 2) }), b.save({ hardState: hs(1, 1), entries: range(1, 3) })]);
  await wal.close();
  const [file] = segmentFiles(dir);
  const path = join(dir, file!);
  const recordsEnd = (): number => {
    const bytes = fs.readFileSync(path);
    let end = bytes.length;
    while (bytes[end - 1] === 0) end--;
    return end;
  };
  const acknowledged = recordsEnd();
  const more = await SharedWal.open({ dir });
  more.attach(1);
  await more.attach(2).log.save({ entries: range(4, 4) });
  await more.close();
  // A crash between the write of a turn and its flush: its record reached the disk only in part.
  fs.truncateSync(path, recordsEnd() - 7);
  const again = await SharedWal.open({ dir });
  const back = again.attach(1).recovered;
  assert.equal(back.repairedTail?.offset, acknowledged);
  assert.deepEqual(indexes(back.entries), [1, 2]);
  assert.deepEqual(indexes(again.attach(2).recovered.entries), [1, 2, 3]);
  await again.close();
  // A flipped bit inside an acknowledged record is not a torn tail.
  const damaged = fs.readFileSync(path);
  damaged[40] = damaged[40]! ^ 0xff;
  fs.writeFileSync(path, damaged);
  await assert.rejects(SharedWal.open({ dir }), WalCorruptError);
});

test('a lichen 0.1 segment in the directory is refused, not misread', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(join(dir, '0000000000000001-0000000000000001.wal'), Buffer.alloc(64));
  await assert.rejects(SharedWal.open({ dir }), /not a segment of a shared WAL/);
});

test('idle groups too many to rewrite into one segment are rewritten over several roll-overs', async (t) => {
  const dir = tempDir(t);
  const wal = await SharedWal.open({ dir, segmentBytes: 4096 });
  t.after(() => wal.close());
  const busy = wal.attach(1).log;
  const idle = Array.from({ length: 40 }, (_, i) => wal.attach(100 + i).log);
  await Promise.all(idle.map((log) => log.save({ hardState: hs(1, 1), entries: range(1, 1, 1, 100) })));
  for (let i = 1; i <= 300; i++) {
    await busy.save({ hardState: hs(1, i), entries: range(i, i, 1, 200) });
    if (i % 20 === 0) {
      await busy.saveSnapshotMarker({ index: i, term: 1, conf: { voters: [1], learners: [] } });
      await busy.releaseTo(i);
    }
  }
  const files = segmentFiles(dir);
  assert.ok(files.length <= 4, `old segments went: ${files.join(', ')}`);
  await wal.close();
  const again = await SharedWal.open({ dir, segmentBytes: 4096 });
  t.after(() => again.close());
  for (let i = 0; i < 40; i++) assert.deepEqual(indexes(again.attach(100 + i).recovered.entries), [1], `group ${100 + i}`);
});

test('a removed group is gone on replay, pins no segment once forgotten, and can be created again from nothing', async (t) => {
  const dir = tempDir(t);
  const wal = await SharedWal.open({ dir, segmentBytes: 4096, rewriteBytesMax: 0 });
  const kept = wal.attach(1).log;
  const removed = wal.attach(2).log;
  await removed.save({ hardState: hs(3, 2, 5), entries: range(1, 2, 3, 100) });
  assert.throws(() => wal.removeGroup(2), /is attached/);
  await removed.close();
  await wal.removeGroup(2);
  assert.deepEqual(wal.groupIds(), [1]);
  assert.deepEqual(wal.removedGroupIds(), [2]);
  // The busy group fills segments and releases them; the removed group's records pin nothing, but
  // its removal record pins its own (the first) segment until the removal is forgotten.
  for (let i = 1; i <= 40; i++) await kept.save({ hardState: hs(1, i), entries: range(i, i, 1, 200) });
  await kept.saveSnapshotMarker({ index: 40, term: 1, conf: { voters: [1], learners: [] } });
  await kept.releaseTo(40);
  assert.equal(segmentFiles(dir)[0], '0000000000000001.wal');
  await wal.close();

  // A crash before the process forgot the removal: the next open still lists it, and nothing else of it.
  const again = await SharedWal.open({ dir, segmentBytes: 4096, rewriteBytesMax: 0 });
  t.after(() => again.close());
  assert.deepEqual(again.groupIds(), [1]);
  assert.deepEqual(again.removedGroupIds(), [2]);
  assert.throws(() => again.attach(2), /was removed/);
  await again.forgetRemoved(2);
  assert.deepEqual(again.removedGroupIds(), []);
  const log = again.attach(1).log;
  await log.save({ hardState: hs(1, 41), entries: range(41, 41, 1, 200) });
  await log.saveSnapshotMarker({ index: 41, term: 1, conf: { voters: [1], learners: [] } });
  await log.releaseTo(41);
  assert.equal(segmentFiles(dir).length, 1, `only the tail is left: ${segmentFiles(dir).join(', ')}`);
  // Created again: it starts from nothing, also on replay after its old records.
  const reborn = again.attach(2);
  assert.deepEqual(reborn.recovered, { hardState: hs(0, 0), entries: [] });
  await reborn.log.save({ hardState: hs(1, 1), entries: range(1, 1) });
});

test('a group created again after its removal replays only what it wrote since', async (t) => {
  const dir = tempDir(t);
  const wal = await SharedWal.open({ dir });
  const first = wal.attach(5).log;
  await first.save({ hardState: hs(7, 3, 2), entries: range(1, 3, 7) });
  await first.close();
  await wal.removeGroup(5);
  await wal.forgetRemoved(5);
  const second = wal.attach(5).log;
  await second.save({ hardState: hs(1, 1), entries: range(1, 1) });
  await wal.close();
  const again = await SharedWal.open({ dir });
  t.after(() => again.close());
  assert.deepEqual(again.removedGroupIds(), []);
  const { recovered } = again.attach(5);
  assert.deepEqual(recovered.hardState, hs(1, 1));
  assert.deepEqual(recovered.entries.map((e) => [e.index, e.term]), [[1, 1]]);
});
