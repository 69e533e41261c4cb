// A full disk at every write point of the WAL and the snapshot files, through an injected file
// layer (DiskFaults): the write or flush that finds no space fails with DiskFullError naming the
// file, nothing after it is accepted, no save resolves that is not durable, and once space returns
// the directory opens again with exactly what was acknowledged (a partly written record is cut
// off as a torn tail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry, Snapshot } from '../raft/types.js';
import { DiskFullError, isDiskFull } from '../errors.js';
import { DiskBudget, SharedWal, SnapshotStore, Wal, type DiskFaults } from './index.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-full-disk-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const ENTRY_BYTES = 3000;
const entry = (index: number, bytes = ENTRY_BYTES): Entry => ({ index, term: 1, type: 0, data: Buffer.alloc(bytes, index & 0xff) });
const enospc = (call: string): Error => Object.assign(new Error(`ENOSPC: no space left on device, ${call}`), { code: 'ENOSPC', errno: -28 });

/** Saves one entry at a time until a save fails; returns the last index acknowledged and the error. */
async function fillUntilFull(save: (e: Entry) => Promise<void>, entryBytes = ENTRY_BYTES, maxEntries = 2000): Promise<{ acknowledged: number; error: unknown }> {
  let acknowledged = 0;
  for (let index = 1; index <= maxEntries; index++) {
    try {
      await save(entry(index, entryBytes));
      acknowledged = index;
    } catch (error) {
      return { acknowledged, error };
    }
  }
  assert.fail(`the disk never filled in ${maxEntries} saves`);
}

async function reopenShared(dir: string, entryBytes = ENTRY_BYTES): Promise<{ lastIndex: number; bytesOk: boolean }> {
  const wal = await SharedWal.open({ dir });
  try {
    const { entries } = wal.attach(1).recovered;
    const bytesOk = entries.every((e, i) => e.index === i + 1 && Buffer.from(e.data).equals(entry(e.index, entryBytes).data as Buffer));
    return { lastIndex: entries.at(-1)?.index ?? 0, bytesOk };
  } finally {
    await wal.close();
  }
}

/** Fails the `n`th write that overwrites preallocated space part way (a copy-on-write file system). */
class CopyOnWriteFull implements DiskFaults {
  private overwrites = 0;
  constructor(private readonly n: number) {}
  writable(_path: string, position: number, bytes: number, fileBytes: number): number {
    if (position + bytes <= fileBytes && ++this.overwrites === this.n) return Math.floor(bytes / 2) + 7;
    return bytes;
  }
  beforeSync(): void {}
}

/** Fails the `n`th fdatasync of a WAL segment, as a delayed-allocation file system can. */
class SyncFull implements DiskFaults {
  private syncs = 0;
  constructor(private readonly n: number) {}
  writable(_path: string, _position: number, bytes: number): number {
    return bytes;
  }
  beforeSync(path: string): void {
    if (path.endsWith('.wal') && ++this.syncs === this.n) throw enospc('fdatasync');
  }
}

test('shared WAL: whichever write runs out of space (preallocation, segment header, roll-over), the save fails, every later one too, and reopening finds exactly what was acknowledged', async (t) => {
  // Small segments so that roll-overs (a new segment's header, its preallocation) come up among
  // the failing writes as the budget varies.
  for (const budget of [0, 5_000, 9_000, 16_384, 20_000, 33_000, 41_000]) {
    const dir = tempDir(t);
    const opened = await SharedWal.open({ dir, segmentBytes: 8192, faults: new DiskBudget(budget) }).catch((error: unknown) => error);
    if (!(opened instanceof SharedWal)) {
      // Not even the first segment fits: opening fails on the disk, and leaves nothing to repair.
      assert.ok(opened instanceof DiskFullError, `budget ${budget}: ${String(opened)}`);
      assert.deepEqual(fs.readdirSync(dir), [], `budget ${budget}: the temporary segment is gone`);
      continue;
    }
    const log = opened.attach(1).log;
    const { acknowledged, error } = await fillUntilFull((e) => log.save({ hardState: { term: 1, vote: 1, commit: e.index }, entries: [e] }));
    assert.ok(error instanceof DiskFullError, `budget ${budget}: ${String(error)}`);
    assert.match(error.message, /no space left on device: cannot write .*\.wal(\.tmp)?$/);
    assert.equal(error.code, 'ENOSPC');
    await assert.rejects(log.save({ entries: [entry(acknowledged + 2)] }), DiskFullError, 'nothing is written after a failed write');
    await opened.close();
    const reopened = await reopenShared(dir);
    assert.ok(reopened.bytesOk, `budget ${budget}: the entries read back are the ones written`);
    assert.equal(reopened.lastIndex, acknowledged, `budget ${budget}: exactly what was acknowledged is there`);
  }
});

test('shared WAL: a record written part way (a copy-on-write file system full while overwriting) is cut off, and the WAL opens once space returns', async (t) => {
  for (const n of [1, 2, 5]) {
    const dir = tempDir(t);
    const wal = await SharedWal.open({ dir, faults: new CopyOnWriteFull(n) });
    const log = wal.attach(1).log;
    // Records smaller than a sector: one cut short leaves no whole sector of zeros, so on open it
    // would look like damage to acknowledged data, not a torn tail, if it were left in the file.
    const { acknowledged, error } = await fillUntilFull((e) => log.save({ entries: [e] }), 300);
    assert.ok(isDiskFull(error));
    assert.equal(acknowledged, n - 1);
    await wal.close();
    const reopened = await reopenShared(dir, 300);
    assert.ok(reopened.bytesOk);
    assert.equal(reopened.lastIndex, acknowledged);
  }
});

test('shared WAL: an fdatasync that fails with ENOSPC fails its save (never acknowledged) and every later one, naming the segment', async (t) => {
  const dir = tempDir(t);
  const wal = await SharedWal.open({ dir, faults: new SyncFull(4) });
  const log = wal.attach(1).log;
  const { acknowledged, error } = await fillUntilFull((e) => log.save({ entries: [e] }));
  assert.equal(acknowledged, 3);
  assert.ok(error instanceof DiskFullError);
  assert.equal(error.path, join(dir, '0000000000000001.wal'));
  assert.equal((error.cause as { code?: string }).code, 'ENOSPC');
  await assert.rejects(log.save({ entries: [entry(5)] }), DiskFullError);
  await wal.close();
  // The failed save's record reached the page cache: it may be read back or not, never half.
  const reopened = await reopenShared(dir);
  assert.ok(reopened.bytesOk);
  assert.ok(reopened.lastIndex === 3 || reopened.lastIndex === 4);
});

test('single-group WAL: a full disk fails the save, and the log reopens with exactly what was acknowledged', async (t) => {
  for (const budget of [2_000, 10_000, 30_000]) {
    const dir = tempDir(t);
    const { wal } = await Wal.open({ dir, segmentBytes: 8192, faults: new DiskBudget(budget) });
    const { acknowledged, error } = await fillUntilFull((e) => wal.save({ entries: [e] }));
    assert.ok(error instanceof DiskFullError, String(error));
    await wal.close();
    const again = await Wal.open({ dir });
    assert.equal(again.state.entries.at(-1)?.index ?? 0, acknowledged, `budget ${budget}`);
    await again.wal.close();
  }
});

const snapshot = (index: number, bytes: number): Snapshot & { data: Uint8Array } => ({
  metadata: { index, term: 1, conf: { voters: [1], learners: [] } },
  data: Uint8Array.from({ length: bytes }, (_, i) => (i + index) & 0xff),
});

test('snapshot files: a save that runs out of space part way fails, leaves no temporary file holding space, and the previous snapshot still loads', async (t) => {
  const dir = join(tempDir(t), 'snap');
  const budget = new DiskBudget(200_000 + 1_500_000);
  const store = new SnapshotStore(dir, { faults: budget });
  await store.save(snapshot(10, 200_000));
  // Three slices of 1 MiB: the second one finds the disk full.
  const error = await store.save(snapshot(20, 3 * 1024 * 1024)).catch((e: unknown) => e);
  assert.ok(error instanceof DiskFullError, String(error));
  assert.match(error.path, /0000000000000014-0000000000000001\.snap\.tmp$/);
  assert.deepEqual(fs.readdirSync(dir), ['000000000000000a-0000000000000001.snap']);
  const loaded = await new SnapshotStore(dir).load();
  assert.equal(loaded?.metadata.index, 10);
  assert.ok(Buffer.from(loaded!.data).equals(Buffer.from(snapshot(10, 200_000).data)));
});

test('a snapshot received from a peer onto a full disk: the write fails, and aborting the reception removes its file', async (t) => {
  const dir = join(tempDir(t), 'snap');
  const store = new SnapshotStore(dir, { faults: new DiskBudget(100_000) });
  const meta = snapshot(30, 0).metadata;
  const receiver = store.receive(meta, 300_000, 2);
  await receiver.write(Buffer.alloc(60_000, 1));
  await assert.rejects(receiver.write(Buffer.alloc(60_000, 2)), (error: unknown) => error instanceof DiskFullError && /\.incoming$/.test(error.path));
  receiver.abort();
  // abort removes the file once the writes queued before it have settled.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(fs.readdirSync(dir), []);
});
