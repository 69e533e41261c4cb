import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Snapshot } from '../raft/types.js';
import { SNAPSHOTS_KEPT, SnapshotStore, WalCorruptError, type SyncEvent } from './index.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-snap-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const snapshot = (index: number, term: number, bytes = 64): Snapshot & { data: Uint8Array } => ({
  metadata: { index, term, conf: { voters: [1, 2, 3], learners: [4] } },
  data: Uint8Array.from({ length: bytes }, (_, i) => (i * 7 + index) & 0xff),
});

test('an empty store loads nothing', async (t) => {
  const store = new SnapshotStore(join(tempDir(t), 'snap'));
  assert.equal(await store.load(), undefined);
  assert.equal(await store.load(snapshot(5, 1).metadata), undefined);
});

test('save then load returns the newest snapshot or the one named, byte for byte', async (t) => {
  const store = new SnapshotStore(join(tempDir(t), 'snap'));
  await store.save(snapshot(10, 1));
  await store.save(snapshot(20, 2, 100_000));
  const newest = await store.load();
  assert.deepEqual(newest?.metadata, snapshot(20, 2).metadata);
  assert.deepEqual(Buffer.from(newest!.data), Buffer.from(snapshot(20, 2, 100_000).data));
  const named = await store.load(snapshot(10, 1).metadata);
  assert.deepEqual(Buffer.from(named!.data), Buffer.from(snapshot(10, 1).data));
  assert.equal(await store.load(snapshot(10, 2).metadata), undefined, 'same index, other term');
});

test('a snapshot of several write slices (one per event-loop turn) loads byte for byte', async (t) => {
  const store = new SnapshotStore(join(tempDir(t), 'snap'));
  const big = snapshot(30, 3, 3 * 1024 * 1024 + 17);
  await store.save(big);
  const loaded = await store.load(big.metadata);
  assert.deepEqual(loaded?.metadata, big.metadata);
  assert.ok(Buffer.from(loaded!.data).equals(Buffer.from(big.data)));
});

test('save flushes the file and the directory, and keeps only the newest few', async (t) => {
  const dir = join(tempDir(t), 'snap');
  const syncs: SyncEvent[] = [];
  const store = new SnapshotStore(dir, { onSync: (event) => syncs.push(event) });
  await store.save(snapshot(1, 1));
  assert.deepEqual(
    syncs.map((s) => s.kind),
    ['file', 'dir'],
  );
  for (let i = 2; i <= 6; i++) await store.save(snapshot(i * 10, 1));
  const kept = await store.listMetadata();
  assert.equal(kept.length, SNAPSHOTS_KEPT);
  assert.deepEqual(
    kept.map((m) => m.index),
    [40, 50, 60],
  );
});

test('a crash during save leaves the previous snapshot loadable and the temp file is cleaned up', async (t) => {
  const dir = join(tempDir(t), 'snap');
  const store = new SnapshotStore(dir);
  await store.save(snapshot(10, 1));
  // What a crash before the rename leaves behind: a partial temporary file.
  fs.writeFileSync(join(dir, '0000000000000014-0000000000000001.snap.tmp'), Buffer.alloc(30, 9));
  assert.deepEqual((await store.load())?.metadata.index, 10);
  await store.save(snapshot(30, 1));
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('a snapshot file with a flipped byte or cut short fails its checksum with WalCorruptError', async (t) => {
  const dir = join(tempDir(t), 'snap');
  const store = new SnapshotStore(dir);
  await store.save(snapshot(10, 1, 5000));
  const [name] = fs.readdirSync(dir);
  const path = join(dir, name!);
  const original = fs.readFileSync(path);
  for (const offset of [2, 20, 2500, original.length - 1]) {
    const broken = Buffer.from(original);
    broken[offset]! ^= 0x01;
    fs.writeFileSync(path, broken);
    await assert.rejects(store.load(), (error: unknown) => error instanceof WalCorruptError && error.file === path);
  }
  fs.writeFileSync(path, original.subarray(0, original.length - 10));
  await assert.rejects(store.load(snapshot(10, 1).metadata), /truncated/);
});

test('a snapshot received in pieces reads back from its file, and saving it makes that file the store\'s', async (t) => {
  const dir = join(tempDir(t), 'snap');
  const store = new SnapshotStore(dir);
  await store.save(snapshot(10, 1));
  const expected = snapshot(40, 3, 3 * 1024 * 1024 + 5);
  const receiver = store.receive(expected.metadata, expected.data.length, 2);
  for (let at = 0; at < expected.data.length; at += 1024 * 1024) void receiver.write(expected.data.subarray(at, at + 1024 * 1024));
  const received = await receiver.finish();
  assert.equal(received.byteLength, expected.data.length);
  assert.ok(Buffer.from(received.read(1024 * 1024 - 3, 10)).equals(Buffer.from(expected.data.subarray(1024 * 1024 - 3, 1024 * 1024 + 7))));
  assert.equal((await store.load())?.metadata.index, 10, 'not the store\'s snapshot until saved');
  await store.save({ metadata: expected.metadata, data: received });
  const loaded = await store.load();
  assert.deepEqual(loaded?.metadata, expected.metadata);
  assert.ok(Buffer.from(loaded!.data).equals(Buffer.from(expected.data)), 'the checksummed file holds the data');
  assert.ok(Buffer.from(received.read(0, 64)).equals(Buffer.from(expected.data.subarray(0, 64))), 'still readable after the move');
  assert.deepEqual(fs.readdirSync(dir).filter((name) => name.endsWith('.incoming')), []);
});

test('a reception cut short, a received snapshot discarded, and the leftovers of a crash leave no file behind', async (t) => {
  const dir = join(tempDir(t), 'snap');
  const store = new SnapshotStore(dir);
  const incoming = (): string[] => fs.readdirSync(dir).filter((name) => name.endsWith('.incoming'));
  const cut = store.receive(snapshot(5, 1).metadata, 1000, 2);
  await cut.write(new Uint8Array(300));
  assert.equal(incoming().length, 1);
  cut.abort();
  await waitFor(() => incoming().length === 0);
  const whole = store.receive(snapshot(6, 1).metadata, 10, 3);
  void whole.write(new Uint8Array(10));
  (await whole.finish()).discard();
  assert.deepEqual(incoming(), []);
  // A crash mid-reception leaves a file that opening the store again removes.
  fs.writeFileSync(join(dir, '0000000000000007-0000000000000001.snap.from-2-1.incoming'), Buffer.alloc(10));
  new SnapshotStore(dir).removeIncoming();
  assert.deepEqual(incoming(), []);
});

/** Yields to the event loop until `condition` holds; gives up after 10 s (a bound, not a delay). */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), 'condition not reached');
}

test('open() checks a large snapshot a slice at a time and leaves its data in the file', async (t) => {
  const store = new SnapshotStore(join(tempDir(t), 'snap'));
  const big = snapshot(40, 4, 3 * 1024 * 1024 + 5);
  await store.save(big);
  const opened = await store.open(big.metadata);
  assert.deepEqual(opened?.metadata, big.metadata);
  assert.ok(!(opened!.data instanceof Uint8Array), 'the data is read from the file when asked for');
  assert.equal(opened!.data.byteLength, big.data.length);
  const at = 2 * 1024 * 1024 - 3;
  assert.ok(Buffer.from(opened!.data.read(at, 1000)).equals(Buffer.from(big.data.subarray(at, at + 1000))));
});

test('spool() writes data for a peer to a file that is gone from the directory, readable until released', async (t) => {
  const dir = join(tempDir(t), 'snap');
  const store = new SnapshotStore(dir);
  const chunks = [Buffer.alloc(1024 * 1024 + 3, 1), Buffer.from('tail')];
  const spooled = await store.spool(chunks);
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing is left behind, whatever happens to the process');
  assert.equal(spooled.byteLength, chunks[0]!.length + 4);
  assert.equal(Buffer.from(spooled.data.read(chunks[0]!.length - 1, 10)).toString('latin1'), '\x01tail');
  spooled.release();
  spooled.release();
  assert.throws(() => spooled.data.read(0, 1), /read after its release/);
});

test('removeIncoming() removes a spool file a crash left behind', async (t) => {
  const dir = join(tempDir(t), 'snap');
  fs.mkdirSync(dir);
  fs.writeFileSync(join(dir, '123-1.spool'), 'x');
  const store = new SnapshotStore(dir);
  await store.save(snapshot(5, 1));
  store.removeIncoming();
  assert.deepEqual(fs.readdirSync(dir), ['0000000000000005-0000000000000001.snap']);
});
