import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry, HardState } from '../raft/types.js';
import { PREALLOCATE_BYTES, Wal, WalCorruptError, type SyncEvent } from './index.js';
import {
  RECORD_HEADER_BYTES,
  RecordType,
  decodeBatch,
  encodeBatch,
  encodeRecord,
  scanRecord,
} from './record.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-wal-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const entry = (index: number, term = 1, text = `entry-${index}`): Entry => ({
  index,
  term,
  type: 0,
  data: Buffer.from(text),
});
const range = (from: number, to: number, term = 1): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
}

const indexes = (entries: Entry[]): number[] => entries.map((e) => e.index);

test('a batch record round-trips hard state, entry types, binary data and empty data', () => {
  const hardState: HardState = { term: 7, vote: 3, commit: 2 ** 40 };
  const entries: Entry[] = [
    { index: 2 ** 50, term: 6, type: 1, data: Uint8Array.from([0, 255, 1, 254]) },
    { index: 2 ** 50 + 1, term: 7, type: 0, data: new Uint8Array(0) },
  ];
  const record = encodeRecord(RecordType.Batch, encodeBatch({ hardState, entries }));
  const scanned = scanRecord(record, 0);
  assert.equal(scanned.kind, 'record');
  if (scanned.kind !== 'record') return;
  assert.equal(scanned.type, RecordType.Batch);
  assert.equal(scanned.end, record.length);
  const batch = decodeBatch(scanned.payload);
  assert.deepEqual(batch.hardState, hardState);
  assert.deepEqual(
    batch.entries.map((e) => ({ ...e, data: [...e.data] })),
    entries.map((e) => ({ ...e, data: [...e.data] })),
  );
  assert.deepEqual(decodeBatch(encodeBatch({ entries: [] })), { entries: [] });
});

test('a record with a damaged header or payload is recognised by its checksums', () => {
  const record = encodeRecord(RecordType.Batch, encodeBatch({ entries: [entry(1)] }));
  const badLength = Buffer.from(record);
  badLength[9]! ^= 0x01;
  assert.equal(scanRecord(badLength, 0).kind, 'bad-header');
  const badPayload = Buffer.from(record);
  badPayload[RECORD_HEADER_BYTES + 3]! ^= 0x10;
  assert.equal(scanRecord(badPayload, 0).kind, 'bad-payload');
  assert.equal(scanRecord(record.subarray(0, RECORD_HEADER_BYTES - 1), 0).kind, 'incomplete');
  assert.equal(scanRecord(record.subarray(0, record.length - 1), 0).kind, 'incomplete');
});

test('saved entries and hard state come back after reopening, and an empty dir opens empty', async (t) => {
  const dir = join(tempDir(t), 'nested', 'wal');
  const first = await Wal.open({ dir });
  assert.deepEqual(first.state, { hardState: { term: 0, vote: 0, commit: 0 }, entries: [] });
  assert.equal(first.wal.lastIndex, 0);
  await first.wal.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: range(1, 3) });
  await first.wal.save({ hardState: { term: 2, vote: 2, commit: 3 }, entries: [entry(4, 2)] });
  await first.wal.save({ entries: [] }); // nothing to persist: no record, no flush
  assert.equal(first.wal.lastIndex, 4);
  await first.wal.close();

  const { wal, state } = await Wal.open({ dir });
  t.after(() => wal.close());
  assert.deepEqual(state.hardState, { term: 2, vote: 2, commit: 3 });
  assert.deepEqual(indexes(state.entries), [1, 2, 3, 4]);
  assert.equal(Buffer.from(state.entries[3]!.data).toString(), 'entry-4');
  assert.equal(state.entries[3]!.term, 2);
  assert.equal(state.repairedTail, undefined);
  assert.equal(wal.lastIndex, 4);
});

test('group commit: one save of many entries is one write and one fdatasync', async (t) => {
  const dir = tempDir(t);
  const syncs: SyncEvent[] = [];
  const { wal } = await Wal.open({ dir, onSync: (event) => syncs.push(event) });
  t.after(() => wal.close());
  syncs.length = 0;
  const bytesBefore = wal.stats.bytesWritten;
  await wal.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: range(1, 64) });
  assert.deepEqual(
    syncs.map((s) => s.kind),
    ['file'],
  );
  await wal.save({ entries: range(65, 320) });
  assert.equal(syncs.length, 2);
  assert.ok(wal.stats.bytesWritten > bytesBefore + 320 * 8);
});

test('a commit-only hard state saved with sync: false is written without a flush and replays', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  await wal.save({ hardState: { term: 2, vote: 1, commit: 0 }, entries: range(1, 3, 2) });
  const syncsBefore = wal.stats.fileSyncs;
  const bytesBefore = wal.stats.bytesWritten;
  await wal.save({ hardState: { term: 2, vote: 1, commit: 3 }, entries: [], sync: false });
  assert.equal(wal.stats.fileSyncs, syncsBefore);
  assert.ok(wal.stats.bytesWritten > bytesBefore);
  await wal.close();
  const { wal: again, state } = await Wal.open({ dir });
  t.after(() => again.close());
  assert.deepEqual(state.hardState, { term: 2, vote: 1, commit: 3 });
  assert.deepEqual(indexes(state.entries), [1, 2, 3]);
});

test('entries saved with sync: false are a broken invariant (entries are always flushed)', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  t.after(() => wal.close());
  await assert.rejects(wal.save({ entries: [entry(1)], sync: false }), /entries must be flushed/);
  assert.equal(wal.lastIndex, 0);
});

test('a save on an idle WAL writes before save() returns, so its flush overlaps the caller', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  t.after(() => wal.close());
  const bytesBefore = wal.stats.bytesWritten;
  const saved = wal.save({ entries: [entry(1)] });
  assert.ok(wal.stats.bytesWritten > bytesBefore, 'the record reached the file synchronously');
  await saved;
  assert.equal(wal.lastIndex, 1);
});

test('saves issued without awaiting are applied in call order, each durable when it resolves', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  const saves = [];
  for (let i = 1; i <= 20; i++) saves.push(wal.save({ entries: [entry(i)] }));
  await Promise.all(saves);
  assert.equal(wal.lastIndex, 20);
  assert.equal(wal.stats.fileSyncs, 1 + 20); // the first segment's creation, then one per save
  await wal.close();
  const { wal: again, state } = await Wal.open({ dir });
  t.after(() => again.close());
  assert.deepEqual(indexes(state.entries), range(1, 20).map((e) => e.index));
});

test('conflicting entries truncate the suffix, and replay after a restart resolves the same way', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  await wal.save({ hardState: { term: 1, vote: 1, commit: 2 }, entries: range(1, 5, 1) });
  // A new leader at term 2 overwrote index 3 onward.
  await wal.save({ hardState: { term: 2, vote: 2, commit: 2 }, entries: [entry(3, 2, 'new-3'), entry(4, 2, 'new-4')] });
  assert.equal(wal.lastIndex, 4);
  await wal.save({ entries: [entry(5, 2, 'new-5')] });
  await wal.close();

  const { wal: again, state } = await Wal.open({ dir });
  t.after(() => again.close());
  assert.deepEqual(indexes(state.entries), [1, 2, 3, 4, 5]);
  assert.deepEqual(
    state.entries.map((e) => [e.term, Buffer.from(e.data).toString()]),
    [
      [1, 'entry-1'],
      [1, 'entry-2'],
      [2, 'new-3'],
      [2, 'new-4'],
      [2, 'new-5'],
    ],
  );
  assert.equal(again.lastIndex, 5);
});

test('saving a gap, or entries whose terms go down, is a broken invariant', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  await wal.save({ entries: range(1, 2, 3) });
  await assert.rejects(wal.save({ entries: [entry(4)] }), /gap/);
  await assert.rejects(wal.save({ entries: [entry(3, 3), entry(5, 3)] }), /not contiguous/);
  await assert.rejects(wal.save({ entries: [entry(3, 2)] }), /below the term/);
  await assert.rejects(wal.save({ entries: [entry(3, 3), entry(4, 2)] }), /below the term/);
  assert.equal(wal.lastIndex, 2);
  // Refused saves never reached the disk: the log still opens and ends at 2.
  await wal.save({ entries: [entry(3, 4)] });
  await wal.close();
  const { wal: again, state } = await Wal.open({ dir });
  t.after(() => again.close());
  assert.deepEqual(indexes(state.entries), [1, 2, 3]);
});

test('a segment is preallocated with zeros ahead of its records, and cut back to its records when full', async (t) => {
  const dir = tempDir(t);
  const segmentBytes = 4096;
  const { wal } = await Wal.open({ dir, segmentBytes });
  await wal.save({ entries: [entry(1, 1, 'first')] });
  const [first] = segmentFiles(dir);
  assert.equal(fs.statSync(join(dir, first!)).size, segmentBytes, 'preallocated up to the segment size');
  for (let i = 2; segmentFiles(dir).length === 1; i++) await wal.save({ entries: [entry(i, 1, 'x'.repeat(500))] });
  const full = fs.readFileSync(join(dir, first!));
  assert.ok(full.length < segmentBytes && full[full.length - 1] !== 0, 'the full segment ends with its last record');
  await wal.close();
  const { wal: again, state } = await Wal.open({ dir, segmentBytes });
  assert.equal(state.repairedTail, undefined);
  assert.equal(state.entries[0]!.index, 1);
  assert.equal(again.lastIndex, state.entries.length);
  await again.close();
});

test('segments roll over when full, replay spans them, and releaseTo deletes only covered whole segments', async (t) => {
  const dir = tempDir(t);
  const segmentBytes = 4096;
  const { wal } = await Wal.open({ dir, segmentBytes });
  const big = (index: number): Entry => ({ index, term: 1, type: 0, data: Buffer.alloc(1000, index & 0xff) });
  for (let i = 1; i <= 40; i++) await wal.save({ hardState: { term: 1, vote: 1, commit: i - 1 }, entries: [big(i)] });
  const files = segmentFiles(dir);
  assert.ok(files.length >= 10, `expected many segments, got ${files.length}`);
  // Names sort in log order: sequence numbers then first indexes increase.
  assert.match(files[0]!, /^0000000000000001-0000000000000001\.wal$/);
  for (const name of files) assert.ok(fs.statSync(join(dir, name)).size <= segmentBytes + 1100);
  const sizeBefore = wal.sizeBytes;

  await assert.rejects(wal.releaseTo(10), /beyond the snapshot marker/);
  await wal.saveSnapshotMarker({ index: 20, term: 1, conf: { voters: [1], learners: [] } });
  await wal.releaseTo(20);
  const remaining = segmentFiles(dir);
  assert.ok(remaining.length < files.length);
  assert.ok(wal.sizeBytes < sizeBefore);
  // Every entry above the snapshot is still on disk.
  const firstKept = parseInt(remaining[0]!.split('-')[1]!, 16);
  assert.ok(firstKept <= 21, `first kept segment starts at ${firstKept}`);
  await wal.releaseTo(20); // idempotent
  await wal.close();

  const { wal: again, state } = await Wal.open({ dir, segmentBytes });
  assert.deepEqual(state.snapshot, { index: 20, term: 1, conf: { voters: [1], learners: [] } });
  assert.deepEqual(indexes(state.entries), range(21, 40).map((e) => e.index));
  assert.deepEqual(state.hardState, { term: 1, vote: 1, commit: 39 });
  assert.equal(state.entries[0]!.data[0], 21);

  // Releasing everything the snapshot covers never deletes the live tail.
  await again.saveSnapshotMarker({ index: 40, term: 1, conf: { voters: [1], learners: [] } });
  await again.releaseTo(40);
  assert.equal(segmentFiles(dir).length, 1);
  await again.save({ entries: [big(41)] });
  await again.close();
  const { wal: third, state: thirdState } = await Wal.open({ dir, segmentBytes });
  t.after(() => third.close());
  assert.equal(thirdState.snapshot?.index, 40);
  assert.deepEqual(indexes(thirdState.entries), [41]);
});

test('a snapshot marker keeps the entries that continue it and drops a log it replaced', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  await wal.save({ entries: range(1, 10, 1) });
  await wal.saveSnapshotMarker({ index: 6, term: 1, conf: { voters: [1], learners: [] } });
  assert.equal(wal.lastIndex, 10);
  // A snapshot from a leader whose log disagrees at index 8: the local log is replaced.
  await wal.saveSnapshotMarker({ index: 8, term: 3, conf: { voters: [1, 2], learners: [3] } });
  assert.equal(wal.lastIndex, 8);
  // An older marker changes nothing.
  await wal.saveSnapshotMarker({ index: 7, term: 1, conf: { voters: [1], learners: [] } });
  await wal.save({ entries: [entry(9, 3)] });
  await wal.close();
  const { wal: again, state } = await Wal.open({ dir });
  t.after(() => again.close());
  assert.deepEqual(state.snapshot, { index: 8, term: 3, conf: { voters: [1, 2], learners: [3] } });
  assert.deepEqual(indexes(state.entries), [9]);
  assert.equal(again.lastIndex, 9);
});

test('a torn last record is cut off at every byte offset, keeping every earlier entry', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  await wal.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: range(1, 3) });
  const before = wal.sizeBytes;
  await wal.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: [entry(4, 1, 'x'.repeat(40))] });
  const after = wal.sizeBytes;
  await wal.close();
  const [file] = segmentFiles(dir);
  const path = join(dir, file!);
  const whole = fs.readFileSync(path);
  assert.equal(whole.length, before + PREALLOCATE_BYTES, 'the records, then the zeros preallocated by the first save');
  assert.ok(whole.subarray(after).every((byte) => byte === 0));
  for (let cut = before; cut < after; cut++) {
    fs.writeFileSync(path, whole.subarray(0, cut));
    const { wal: reopened, state } = await Wal.open({ dir });
    assert.deepEqual(indexes(state.entries), [1, 2, 3], `cut at ${cut}`);
    assert.deepEqual(state.hardState, { term: 1, vote: 1, commit: 0 });
    if (cut === before) assert.equal(state.repairedTail, undefined);
    else assert.deepEqual(state.repairedTail, { file: path, offset: before, bytesDropped: cut - before });
    assert.equal(fs.statSync(path).size, before, 'the torn bytes are gone from the file');
    // The repaired log takes new appends where the torn one would have gone.
    await reopened.save({ entries: [entry(4, 1, 'again')] });
    await reopened.close();
    const { wal: third, state: thirdState } = await Wal.open({ dir });
    assert.deepEqual(indexes(thirdState.entries), [1, 2, 3, 4]);
    assert.equal(Buffer.from(thirdState.entries[3]!.data).toString(), 'again');
    await third.close();
  }
});

test('zeros after the last record are unused space; a last record with a zeroed sector is a torn write', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  await wal.save({ entries: range(1, 2) });
  const start = wal.sizeBytes;
  await wal.save({ entries: [{ index: 3, term: 1, type: 0, data: Buffer.alloc(3000, 7) }] });
  await wal.close();
  const path = join(dir, segmentFiles(dir)[0]!);
  const whole = fs.readFileSync(path);

  const zeroTail = Buffer.concat([whole.subarray(0, start), Buffer.alloc(700)]);
  fs.writeFileSync(path, zeroTail);
  let opened = await Wal.open({ dir });
  assert.deepEqual(indexes(opened.state.entries), [1, 2]);
  assert.equal(opened.state.repairedTail, undefined, 'nothing to repair');
  // The next save goes where the zeros begin.
  await opened.wal.save({ entries: [entry(3, 1, 'after-zeros')] });
  await opened.wal.close();
  opened = await Wal.open({ dir });
  assert.deepEqual(indexes(opened.state.entries), [1, 2, 3]);
  await opened.wal.close();

  // `whole` ends in preallocated zeros, so the damaged record is followed by zeros, not the end of the file.
  const zeroSector = Buffer.from(whole);
  const sector = Math.ceil((start + 100) / 512) * 512;
  zeroSector.fill(0, sector, sector + 512);
  fs.writeFileSync(path, zeroSector);
  opened = await Wal.open({ dir });
  assert.deepEqual(indexes(opened.state.entries), [1, 2]);
  assert.equal(opened.state.repairedTail?.offset, start);
  await opened.wal.close();
});

test('a flipped byte anywhere but the torn tail throws WalCorruptError naming file and offset', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir, segmentBytes: 2048 });
  const offsets: number[] = [];
  for (let i = 1; i <= 30; i++) {
    offsets.push(wal.sizeBytes);
    await wal.save({ hardState: { term: 1, vote: 1, commit: i }, entries: [entry(i, 1, `payload-${i}-`.repeat(10))] });
  }
  await wal.close();
  const files = segmentFiles(dir);
  assert.ok(files.length >= 3);

  const damage = async (file: string, offset: number) => {
    const path = join(dir, file);
    const original = fs.readFileSync(path);
    const broken = Buffer.from(original);
    broken[offset]! ^= 0x40;
    fs.writeFileSync(path, broken);
    try {
      await assert.rejects(Wal.open({ dir, segmentBytes: 2048 }), (error: unknown) => {
        assert.ok(error instanceof WalCorruptError, String(error));
        assert.equal(error.file, path);
        assert.ok(error.message.includes(path), error.message);
        assert.ok(error.message.includes(`offset ${error.offset}`), error.message);
        assert.ok(error.offset <= offset, `reported ${error.offset} for damage at ${offset}`);
        return true;
      });
    } finally {
      fs.writeFileSync(path, original);
    }
  };
  const firstSize = fs.statSync(join(dir, files[0]!)).size;
  // Middle of the first segment: payload, length field, and segment header.
  await damage(files[0]!, Math.floor(firstSize / 2));
  await damage(files[0]!, firstSize - 5); // the last record of a segment that is not the last
  await damage(files[0]!, 9);
  // A length byte of a record in the middle of the last segment.
  const last = files[files.length - 1]!;
  const lastBuf = fs.readFileSync(join(dir, last));
  const headerEnd = scanRecord(lastBuf, 0);
  assert.equal(headerEnd.kind, 'record');
  if (headerEnd.kind === 'record') await damage(last, headerEnd.end + 10);
  // The payload of the very last record: it was acknowledged, so this is not a torn write.
  await damage(last, lastBuf.length - 3);

  // After all that, the untouched files still open cleanly.
  const { wal: again, state } = await Wal.open({ dir, segmentBytes: 2048 });
  t.after(() => again.close());
  assert.equal(state.entries.length, 30);
});

test('a missing segment in the middle is reported, not skipped', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir, segmentBytes: 1024 });
  for (let i = 1; i <= 20; i++) await wal.save({ entries: [entry(i, 1, 'y'.repeat(200))] });
  await wal.close();
  const files = segmentFiles(dir);
  fs.unlinkSync(join(dir, files[1]!));
  await assert.rejects(Wal.open({ dir, segmentBytes: 1024 }), (error: unknown) => {
    assert.ok(error instanceof WalCorruptError);
    assert.match(error.message, /segment 2 is missing/);
    return true;
  });
});

test('a leftover temporary segment from a crash during rollover is ignored and removed', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir });
  await wal.save({ entries: range(1, 3) });
  await wal.close();
  fs.writeFileSync(join(dir, '0000000000000002-0000000000000004.wal.tmp'), Buffer.alloc(5, 1));
  const { wal: again, state } = await Wal.open({ dir });
  t.after(() => again.close());
  assert.deepEqual(indexes(state.entries), [1, 2, 3]);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('syncDelayMs slows every flush and noSync skips them but still counts', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open({ dir: join(dir, 'a'), syncDelayMs: 30 });
  const started = performance.now();
  await wal.save({ entries: range(1, 2) });
  assert.ok(performance.now() - started >= 25);
  await wal.close();
  const fast = await Wal.open({ dir: join(dir, 'b'), noSync: true });
  await fast.wal.save({ entries: range(1, 2) });
  assert.equal(fast.wal.stats.fileSyncs, 2);
  await fast.wal.close();
});
